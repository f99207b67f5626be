"""``scanedge waybill IMAGE... [--json]``: tracking number and carrier from waybill photos.

With ``--json``: one JSON object a line per image (docs/interfaces.md): ``{"file", "tracking_number",
"carrier", "source", "confidence", "elapsed_ms"}`` plus ``candidates``, ``carrier_name``,
``flags`` and ``region``. An unreadable file gets ``{"file", "error", "message", ...}``, one line
on stderr, and the exit status is 2 once all files are done. Without ``--json``: one line of
text per image read (an unreadable one is only the line on stderr). A progress bar goes to
stderr for many files on a terminal.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("waybill", parents=[common],
                       help="read the tracking number and carrier from waybill photos",
                       description="Tracking number and carrier of courier labels (电子面单): "
                                   "barcode first, then the printed number; never a guess.")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="photos, or directories of them")
    p.add_argument("--json", action="store_true", help="one JSON object a line per image")
    p.add_argument("--engine", choices=("auto", "tesseract", "tesserocr", "rapidocr"),
                   help="OCR engine (default: setting waybill_ocr_engine, auto)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=_cmd_waybill)


def _cmd_waybill(args: argparse.Namespace) -> int:
    from scanedge.edge.cli import CliError, settings_from
    from scanedge.ocr import memory, text_engines
    from scanedge.ocr.cli import _utf8, run_over_images
    from scanedge.ocr.images import limits_from_settings
    from scanedge.ocr.waybill import read_waybill

    settings = settings_from(args)
    memory.configure(settings.image_memory_mb)
    engine = args.engine or settings.waybill_ocr_engine
    try:
        text_engines.engine(engine)  # load models now, not inside the first file's elapsed_ms
    except text_engines.EngineUnavailable as e:
        raise CliError(str(e)) from None
    limits = limits_from_settings(settings)
    out = _utf8(sys.stdout)

    def read(name: str) -> dict[str, Any]:
        return read_waybill(name, engine=engine, **limits).to_json()

    def emit(row: dict[str, Any]) -> None:
        if "error" in row and not args.json:
            return  # run_over_images said it on stderr; the text lines are the files read
        out.write((json.dumps(row, ensure_ascii=False) if args.json else _text_line(row)) + "\n")
        out.flush()

    return run_over_images("waybill", args.images, read=read, emit=emit, empty={
        "tracking_number": None, "carrier": None, "source": None, "confidence": 0.0},
        progress=not args.no_progress)


def _text_line(row: dict[str, Any]) -> str:
    if row["tracking_number"]:
        return (f"{row['file']}: {row['tracking_number']} {row['carrier'] or '?'} "
                f"({row['source']}, confidence {row['confidence']:.2f}, "
                f"{row['elapsed_ms']:.0f} ms)")
    cands = ", ".join(c["tracking_number"] for c in row.get("candidates", [])) or "none"
    return f"{row['file']}: not sure; candidates: {cands} ({row['elapsed_ms']:.0f} ms)"
