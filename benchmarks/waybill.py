"""Waybill capture benchmark: tracking number and carrier from photos, per OCR engine.

    .venv/bin/python benchmarks/waybill.py [DATA_DIR] [--engines tesseract,tesserocr,rapidocr]
                                           [--limit N] [--verbose] [--repeat 3]

DATA_DIR (default ../shared/data/waybills) holds ``manifest.csv`` + ``img/`` (photos with their
barcodes) and ``nobarcode/`` (the same kind of labels with the barcodes destroyed). For each
engine configuration and each folder it prints: exact-number rate, wrong-number rate (a number
returned that is not the truth), carrier rate, median and p95 milliseconds, as a markdown table.
The raw libraries (zxing-cpp, pyzbar on the whole photo) are measured in each run, and each
engine's median is also given as a ratio to raw zxing-cpp's median of that run. Default: the
engine ``auto`` takes (the product's), 3 runs, ~3 min on 2 busy cores.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path
from typing import cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import Cell, Num, add_repeat, percentile, run_repeated, runs_footer, table  # noqa: E402

from scanedge.edge.domain.carriers import carrier_by_code  # noqa: E402
from scanedge.ocr import text_engines  # noqa: E402
from scanedge.ocr.waybill import read_waybill  # noqa: E402


def _folders(data: Path) -> list[tuple[str, Path]]:
    out = []
    for name, sub in (("barcode readable or damaged", data), ("barcode destroyed",
                                                              data / "nobarcode")):
        if (sub / "manifest.csv").is_file():
            out.append((name, sub))
    return out


def _truth(sub: Path, limit: int | None) -> list[dict[str, str]]:
    with open(sub / "manifest.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return rows[:limit] if limit else rows


def _row(label: str, folder: str, n: int, exact: int, wrong: int, carrier: int | None,
         ms: list[float], raw_ms: float | None) -> list[Cell]:
    """One table row of one run; ``raw_ms``: raw zxing-cpp's median on the same photos in
    this run, so the product's time is also given as a ratio to it (the load moves both)."""
    med = statistics.median(ms)
    return [label, folder, str(n), Num(100 * exact / n, "{:.1f}"), Num(100 * wrong / n, "{:.1f}"),
            Num(100 * carrier / n, "{:.1f}") if carrier is not None else "–", Num(med),
            Num(percentile(ms, 0.95)), Num(med / raw_ms, "{:.1f}") if raw_ms else "–"]


def _raw_baselines(folder: str, sub: Path, rows: list[dict[str, str]]) -> list[list[Cell]]:
    import cv2
    import zxingcpp
    from pyzbar import pyzbar

    out = []
    for label, read in (
        ("raw zxing-cpp, whole photo", lambda g: [r.text for r in zxingcpp.read_barcodes(g)]),
        ("raw pyzbar, whole photo",
         lambda g: [s.data.decode("latin-1") for s in pyzbar.decode(g)]),
    ):
        exact = wrong = 0
        ms = []
        for r in rows:
            g = cv2.imread(str(sub / r["file"]), cv2.IMREAD_GRAYSCALE)
            t = time.perf_counter()
            texts = read(g)
            ms.append((time.perf_counter() - t) * 1000)
            if r["tracking_number"] in texts:
                exact += 1
            elif texts:
                wrong += 1
        out.append(_row(label, folder, len(rows), exact, wrong, None, ms, None))
    return out


def one_run(args: argparse.Namespace, folders: list[tuple[str, Path]],
            engines: list[str]) -> list[list[Cell]]:
    """The raw libraries, then each installed engine, on every folder: one run's rows."""
    out: list[list[Cell]] = []
    raw_ms: dict[str, float] = {}
    for folder, sub in folders:
        rows = _raw_baselines(folder, sub, _truth(sub, args.limit))
        raw_ms[folder] = cast(Num, rows[0][6]).value
        out += rows
    for name in engines:
        for folder, sub in folders:
            rows = _truth(sub, args.limit)
            exact = wrong = carrier = 0
            ms = []
            for r in rows:
                res = read_waybill(str(sub / r["file"]), engine=name)
                ms.append(res.elapsed_ms)
                truth_carrier = carrier_by_code(r["carrier"])
                ok_carrier = truth_carrier is not None and res.carrier == truth_carrier.code
                carrier += ok_carrier
                if res.tracking_number == r["tracking_number"]:
                    exact += 1
                elif res.tracking_number is not None:
                    wrong += 1
                if args.verbose and (res.tracking_number != r["tracking_number"]
                                     or not ok_carrier):
                    print(f"  {r['file']}: truth {r['tracking_number']} {r['carrier']} got "
                          f"{res.tracking_number} {res.carrier} {res.flags} "
                          f"{[c['tracking_number'] for c in res.candidates]} "
                          f"{res.elapsed_ms:.0f} ms", file=sys.stderr, flush=True)
            out.append(_row(f"scanedge waybill, {name}", folder, len(rows), exact, wrong, carrier,
                            ms, raw_ms[folder]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", default=str(ROOT.parent / "shared/data/waybills"))
    ap.add_argument("--engines", default=None,
                    help="comma-separated: tesseract, tesserocr, rapidocr (default: the one "
                         "`auto` takes on this install, the product's; the three together take "
                         "~2.5 min a run on 2 busy cores)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--verbose", action="store_true")
    add_repeat(ap)
    args = ap.parse_args(argv)
    data = Path(args.data)
    folders = _folders(data)
    if not folders:
        print(f"no manifest.csv under {data}", file=sys.stderr)
        return 2
    started = time.monotonic()
    wanted = args.engines.split(",") if args.engines else [text_engines.auto_name()]
    engines = [name for name in wanted if text_engines.installed(name)]
    for name in engines:
        text_engines.engine(name)  # load models outside the timing
    runs, loads = run_repeated(args.repeat, lambda: one_run(args, folders, engines))
    print(table(["method", "photos", "n", "exact %", "wrong %", "carrier %", "median ms",
                 "p95 ms", "median / raw zxing-cpp's"], runs))
    for name in sorted(set(wanted) - set(engines)):
        print(f"\nscanedge waybill, {name}: not installed")
    print(f"\n{runs_footer(loads, started)}")
    print(f"`auto` (the setting's default) is `{text_engines.auto_name()}` on this install.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
