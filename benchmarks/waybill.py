"""Waybill capture benchmark: tracking number and carrier from photos, per OCR engine.

    .venv/bin/python benchmarks/waybill.py [DATA_DIR] [--engines tesseract,tesserocr,rapidocr]
                                           [--limit N] [--verbose]

DATA_DIR (default ../shared/data/waybills) holds ``manifest.csv`` + ``img/`` (photos with their
barcodes) and ``nobarcode/`` (the same kind of labels with the barcodes destroyed). For each
engine configuration and each folder it prints: exact-number rate, wrong-number rate (a number
returned that is not the truth), carrier rate, median and p95 milliseconds, as a markdown table.
The raw libraries (zxing-cpp, pyzbar on the whole photo) are measured in the same run.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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


def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return 0.0
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def _row(label: str, folder: str, n: int, exact: int, wrong: int, carrier: int | None,
         ms: list[float]) -> str:
    car = f"{100 * carrier / n:.1f} %" if carrier is not None else "–"
    return (f"| {label} | {folder} | {n} | {100 * exact / n:.1f} % | {100 * wrong / n:.1f} % | "
            f"{car} | {statistics.median(ms):.0f} | {_pct(ms, 0.95):.0f} |")


def _raw_baselines(folder: str, sub: Path, rows: list[dict[str, str]]) -> list[str]:
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
        out.append(_row(label, folder, len(rows), exact, wrong, None, ms))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", default=str(ROOT.parent / "shared/data/waybills"))
    ap.add_argument("--engines", default="tesseract,tesserocr,rapidocr")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args(argv)
    data = Path(args.data)
    folders = _folders(data)
    if not folders:
        print(f"no manifest.csv under {data}", file=sys.stderr)
        return 2
    print("| method | photos | n | exact | wrong | carrier | median ms | p95 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for folder, sub in folders:
        for line in _raw_baselines(folder, sub, _truth(sub, args.limit)):
            print(line, flush=True)
    for name in args.engines.split(","):
        if not text_engines.installed(name):
            print(f"| scanedge waybill, {name} | (not installed) | | | | | | |", flush=True)
            continue
        text_engines.engine(name)  # load models outside the timing
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
            print(_row(f"scanedge waybill, {name}", folder, len(rows), exact, wrong, carrier,
                       ms), flush=True)
    print(f"\n`auto` (the setting's default) is `{text_engines.auto_name()}` on this install.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
