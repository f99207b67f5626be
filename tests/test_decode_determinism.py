"""The cascade decides its steps from the image, never from the clock: the same photo reads the
same on a slow machine, on a loaded one and here. The time budget is only a safety net."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import scanedge.ocr.decode as decode_module
from scanedge.ocr.decode import decode_report

DATA = Path(__file__).parent / "data"
# Photos that need more than the first step (and two without any code): the plan matters here.
HARD = [DATA / "barcodes" / name for name in (
    "ean13-2__01.webp", "ean13-1__8__skew-16.png", "code128-2__25__blur.png",
    "qrcode-1__20__dim.png", "pdf417-1__03-cut-top__skew-28.png", "code128-1__3__skew+38.png",
    "itf-1__7.webp", "falsepositives-1__21.webp", "falsepositives-2__02.webp",
)] + [DATA / "waybills" / "barcode_0031_JT.jpg"]


def outcome(report) -> tuple:
    return (tuple(report.steps), tuple((s.format, s.text, s.stage) for s in report.symbols),
            tuple((r.reason, r.stage) for r in report.rejected), report.skipped_by_plan)


def noise() -> np.ndarray:
    return np.random.default_rng(4).integers(0, 256, (700, 900)).astype(np.uint8)


@pytest.fixture(scope="module")
def reference() -> dict[str, tuple]:
    out = {str(p): outcome(decode_report(p, budget_ms=None)) for p in HARD}
    out["noise"] = outcome(decode_report(noise(), budget_ms=None))
    return out


def test_a_machine_a_hundred_times_slower_reads_the_same(reference, monkeypatch) -> None:
    ticks = itertools.count()
    # Every look at the clock says a second more has passed than the last one.
    monkeypatch.setattr(decode_module.time, "perf_counter", lambda: float(next(ticks)))
    for p in HARD:
        assert outcome(decode_report(p, budget_ms=None)) == reference[str(p)], p.name
    report = decode_report(noise(), budget_ms=None)
    assert outcome(report) == reference["noise"] and not report.cut_short


def test_the_safety_net_stops_a_run_slower_than_planned(reference, monkeypatch) -> None:
    ticks = itertools.count()
    monkeypatch.setattr(decode_module.time, "perf_counter", lambda: float(next(ticks)))
    report = decode_report(noise(), budget_ms=300)
    assert report.cut_short and report.skipped_for_budget
    assert len(report.steps) < len(reference["noise"][0])


def test_same_results_with_the_cpus_busy(reference) -> None:
    """Two busy loops beside the decodes (the machine has 2 cores): the same steps and reads."""
    hog = "import time\nend = time.time() + 60\nwhile time.time() < end: pass\n"
    hogs = [subprocess.Popen(["nice", "-n", "5", sys.executable, "-c", hog]) for _ in range(2)]
    try:
        time.sleep(0.2)
        for p in HARD:
            assert outcome(decode_report(p, budget_ms=None)) == reference[str(p)], p.name
        assert outcome(decode_report(noise(), budget_ms=None)) == reference["noise"]
    finally:
        for h in hogs:
            h.kill()
            h.wait(10)


def test_the_plan_is_bounded() -> None:
    """However much an image seems to hold, its plan's estimated cost stays within PLAN_MS (the
    first step always runs: it is counted, never refused)."""
    for img in (noise(), np.random.default_rng(5).integers(0, 256, (2000, 3000), np.uint8)):
        report = decode_report(img, budget_ms=None)
        assert report.steps[0] == "fast"
        cascade = decode_module._Cascade(img, start=0.0, budget_ms=None, exhaustive=True)
        cascade.run()
        assert cascade.planned_ms <= decode_module.PLAN_MS + decode_module._Cascade._estimate(
            "zxing", img.size)
