"""The benchmarks' shared report helpers (benchmarks/_common.py): what a table of several runs
says about each cell. The benchmarks themselves run as scripts (docs/benchmarks.md)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest


def _common() -> ModuleType:
    # The scripts import it as ``_common`` from their own folder, which is not a package here.
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "_common.py"
    spec = importlib.util.spec_from_file_location("bench_common", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


bench = _common()


@pytest.mark.parametrize(("values", "fmt", "shown"), [
    ([3.0, 1.0, 2.0], "{:.0f}", "2 [1-3]"),
    ([1.25], "{:.2f}", "1.25"),
    ([float("nan"), 4.0, 6.0], "{:.1f}", "5.0 [4.0-6.0]"),
    ([float("nan")], "{:.0f}", "-"),
    ([1000.0, 2500.0, 1800.0], "{:,.0f}", "1,800 [1,000-2,500]"),
])
def test_spread_is_the_median_and_the_range_of_the_runs(values, fmt, shown):
    assert bench.spread(values, fmt) == shown


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([5.0, 1.0, 3.0], 0.5, 3.0),
    ([float(i) for i in range(1, 101)], 0.99, 99.0),
    ([7.0], 0.95, 7.0),
    ([2.0, 9.0], 1.0, 9.0),
])
def test_percentile_is_the_nearest_rank(values, q, expected):
    assert bench.percentile(values, q) == expected


def test_percentile_of_nothing_is_not_a_number():
    value = bench.percentile([], 0.5)
    assert value != value


@pytest.mark.parametrize(("cells", "shown"), [
    ([bench.Num(10.0), bench.Num(12.0), bench.Num(11.0)], "11 [10-12]"),
    ([bench.Num(0.5, "{:.1f}")] * 3, "0.5"),  # the same in every run: once
    (["yes", "yes", "yes"], "yes"),
    (["yes", "NO", "yes"], "yes, NO, yes (per run)"),
    (["-", bench.Num(2.0), bench.Num(3.0)], "-, 2, 3 (per run)"),  # a run without that number
])
def test_a_table_cell_says_what_the_runs_gave(cells, shown):
    runs = [[["row", cell]] for cell in cells]
    assert bench.table(["what", "value"], runs).splitlines()[2] == f"| row | {shown} |"


def test_a_table_keeps_the_rows_in_the_runs_order():
    runs = [[["a", bench.Num(1.0)], ["b", bench.Num(5.0)]],
            [["a", bench.Num(3.0)], ["b", bench.Num(5.0)]]]
    assert bench.table(["row", "n"], runs).splitlines() == [
        "| row | n |", "| --- | --- |", "| a | 2 [1-3] |", "| b | 5 |"]


def test_runs_with_different_rows_are_refused():
    with pytest.raises(ValueError):
        bench.table(["row", "n"], [[["a", bench.Num(1.0)]], [["a", bench.Num(1.0)], ["b", "x"]]])


def test_each_run_is_called_and_the_load_after_it_recorded(capsys):
    calls = iter(range(3))
    results, loads = bench.run_repeated(3, lambda: next(calls))
    assert results == [0, 1, 2]
    assert len(loads) == 3
    out, err = capsys.readouterr()
    assert out.startswith("machine: ")
    assert [line.split(" (")[0] for line in err.splitlines()] == [
        "run 1 of 3", "run 2 of 3", "run 3 of 3"]


def test_a_failed_run_is_said_and_left_out_of_the_table(capsys):
    outcomes = iter([1, RuntimeError("hub answered 500"), 3])

    def one_run() -> int:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    results, loads = bench.run_repeated(3, one_run)
    assert results == [1, 3]
    assert len(loads) == 2
    assert "run 2 of 3 FAILED" in capsys.readouterr().out


def test_when_every_run_fails_the_script_stops():
    def one_run() -> int:
        raise SystemExit("hub did not start")

    with pytest.raises(SystemExit, match="every one of 2 run"):
        bench.run_repeated(2, one_run)
