"""What the benchmark scripts share: a free loopback port, waiting for a server to answer, the
machine's facts for a table's header, the spread of several runs, a process's CPU time, and
``--repeat``: ``run_repeated`` runs a benchmark N times and ``table`` prints the runs' rows with
every number as median [min-max].

The scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path`` and they
import this module as ``_common``.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar, cast

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 20) -> None:
    """Return once ``url`` answers; exit with one line if it does not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server at {url} did not start")


def machine_facts() -> str:
    """One line for a table's header: what the numbers were measured on, and how busy it was."""
    import os
    import platform
    import sys

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"{os.cpu_count()} CPUs, load average {load} (1/5/15 min) at start, "
            f"Python {platform.python_version()} ({sys.implementation.name}), "
            f"{platform.system()} {platform.machine()}, {time.strftime('%Y-%m-%d %H:%M')}")


def load_now() -> float:
    import os

    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    """``median [min-max]`` of several runs (one run: the value alone)."""
    import statistics

    values = [v for v in values if v == v]  # NaN: a run without that number
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    return (f"{fmt.format(statistics.median(values))} "
            f"[{fmt.format(min(values))}-{fmt.format(max(values))}]")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; NaN elsewhere)."""
    import os

    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def import_root(code_root: str | os.PathLike[str]) -> str:
    """A folder to put on ``PYTHONPATH`` so that ``scanedge.*`` imports another checkout's code.

    The project's folders install as ``scanedge.edge``, ``scanedge.ocr`` ... (pyproject.toml's
    package-dir), which a plain checkout on ``sys.path`` does not provide: this makes
    ``<code_root>/.bench-import/scanedge/{edge,ocr,printers,sync}`` links (kept, cheap) and
    returns ``<code_root>/.bench-import``. A ``PYTHONPATH`` entry comes before the editable
    install's import hook, so that checkout's code is what runs.
    """
    from pathlib import Path

    root = Path(code_root).resolve()
    pkg = root / ".bench-import" / "scanedge"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").touch()
    for name in ("edge", "ocr", "printers", "sync"):
        link = pkg / name
        if not link.is_symlink():
            link.symlink_to(root / name, target_is_directory=True)
    return str(pkg.parent)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def add_repeat(ap: argparse.ArgumentParser, default: int = 3, why: str = "") -> None:
    """The ``--repeat N`` every benchmark takes: whole runs, reported as median [min-max]."""
    ap.add_argument("--repeat", type=int, default=default,
                    help=f"whole runs; tables give median [min-max] of them (default {default}"
                         f"{'; ' + why if why else ''})")


@dataclass(frozen=True)
class Num:
    """A measured number in a table row: the runs' values of one cell become ``spread``."""

    value: float
    fmt: str = "{:.0f}"


Cell = str | Num
"""A table cell of one run: text (the same in every run, or listed per run) or a number."""


def run_repeated(repeat: int, one_run: Callable[[], T],
                 describe: Callable[[T], str] | None = None) -> tuple[list[T], list[float]]:
    """Print the machine's facts, then call ``one_run`` ``repeat`` times; the results and the
    1-minute load average after each run. A line per run (to stderr: progress, not the table)
    says its wall time and the load, so a slow run can be matched with a busy machine. A run
    that fails is said on stdout (above the table) and left out; the others still count."""
    print(f"machine: {machine_facts()}", flush=True)
    results: list[T] = []
    loads: list[float] = []
    for i in range(repeat):
        t0 = time.monotonic()
        try:
            results.append(one_run())
        except (Exception, SystemExit) as e:  # one failed run: said with the table, not fatal
            print(f"run {i + 1} of {repeat} FAILED after {time.monotonic() - t0:.0f} s "
                  f"(load {load_now():.2f}): {type(e).__name__}: {e}", flush=True)
            continue
        loads.append(load_now())
        what = f": {describe(results[-1])}" if describe else ""
        print(f"run {i + 1} of {repeat} ({time.monotonic() - t0:.0f} s){what}, load "
              f"{loads[-1]:.2f} after", file=sys.stderr, flush=True)
    if not results:
        raise SystemExit(f"every one of {repeat} run(s) failed")
    return results, loads


def table(header: list[str], runs: list[list[list[Cell]]]) -> str:
    """A markdown table of several runs of the same rows: each number as median [min-max]
    of the runs (once when every run gave the same), each text cell once when the runs agree,
    else per run (``a, b, c (per run)``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for cells in zip(*runs, strict=True):  # one row, as each run gave it
        out = []
        for values in zip(*cells, strict=True):  # one cell, as each run gave it
            if all(isinstance(v, Num) for v in values):
                nums = cast(tuple[Num, ...], values)
                shown = {n.fmt.format(n.value) for n in nums}  # the same in every run: once
                out.append(shown.pop() if len(shown) == 1 else
                           spread([n.value for n in nums], nums[0].fmt))
            else:
                texts = [v if isinstance(v, str) else v.fmt.format(v.value) for v in values]
                out.append(texts[0] if len(set(texts)) == 1 else ", ".join(texts) + " (per run)")
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


def runs_footer(loads: list[float], started: float) -> str:
    """The line under a benchmark's tables: how many runs, the load after each, wall time."""
    return (f"median [min-max] of {len(loads)} run(s); load average (1 min) after each run: "
            + ", ".join(f"{x:.2f}" for x in loads)
            + f"; wall time {time.monotonic() - started:.0f} s")
