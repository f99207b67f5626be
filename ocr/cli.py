"""``scanedge decode IMAGE... [--json]``: barcodes from image files.

With ``--json``: one JSON object a line per image, ``{"file", "symbols", "elapsed_ms"}``
(docs/interfaces.md "Command line"); an unreadable file gets ``{"file", "error", "message", "symbols": [],
"elapsed_ms"}``, one line on stderr, and the exit status is 2 once all files are done.
Without ``--json``: a table. A directory argument means the images in it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TextIO

from scanedge.edge.progress import Progress

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff",
                            ".ppm", ".pgm"})
PROGRESS_MIN_FILES = 5


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("decode", parents=[common], help="read barcodes from image files",
                       description="Read every barcode in each image (1D and 2D codes).")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files (png, jpeg, webp, bmp, gif, tiff) or directories of them")
    p.add_argument("--json", action="store_true", help="one JSON object a line per image")
    p.add_argument("--budget-ms", type=float, metavar="MS",
                   help="time budget per image, a safety net: no step starts after it "
                        "(default: setting decode_budget_ms, 300; 0 = none)")
    p.add_argument("--exhaustive", action="store_true",
                   help="keep looking after the first code found (crowded images; slower)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=_cmd_decode)


def expand(paths: list[str]) -> Iterator[str]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from (str(p) for p in sorted(path.iterdir())
                        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            yield raw


def _cmd_decode(args: argparse.Namespace) -> int:
    from scanedge.edge.cli import CliError, settings_from
    from scanedge.ocr import memory
    from scanedge.ocr.decode import decode_report
    from scanedge.ocr.images import limits_from_settings
    from scanedge.ocr.views import warm_up

    settings = settings_from(args)
    memory.configure(settings.image_memory_mb)
    warm_up()  # load the libraries now, not inside the first file's elapsed_ms
    budget = args.budget_ms if args.budget_ms is not None else settings.decode_budget_ms
    if budget < 0 or budget != budget:
        raise CliError(f"--budget-ms must be 0 (no limit) or more, not {budget}")
    limits = limits_from_settings(settings)
    out = _utf8(sys.stdout)
    table = None if args.json else _Table(out)

    def read(name: str) -> dict[str, Any]:
        report = decode_report(name, budget_ms=budget or None, exhaustive=args.exhaustive,
                               **limits)
        row = {"file": name, "symbols": [s.to_json() for s in report.symbols],
               "elapsed_ms": round(report.elapsed_ms, 1)}
        if report.rejected:
            row["rejected"] = [r.to_json() for r in report.rejected]
        return row

    def emit(row: dict[str, Any]) -> None:
        if table is None:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            out.flush()
        else:
            table.add(row)

    try:
        return run_over_images("decode", args.images, read=read, emit=emit,
                               empty={"symbols": []}, progress=not args.no_progress)
    finally:
        if table is not None:
            table.flush()


def image_problem(e: Exception) -> tuple[str, str]:
    """(error code, message) for a file that could not be read as an image."""
    from scanedge.ocr.images import ImageError

    if isinstance(e, ImageError):
        return e.code, e.message
    if isinstance(e, FileNotFoundError):
        return "not_found", "no such file"
    if isinstance(e, IsADirectoryError):
        return "not_a_file", "is a directory"
    return "unreadable", f"cannot read: {getattr(e, 'strerror', None) or e}"


def run_over_images(command: str, images: list[str], *, read: Callable[[str], dict[str, Any]],
                    emit: Callable[[dict[str, Any]], None], empty: dict[str, Any],
                    progress: bool = True) -> int:
    """The batch loop of `scanedge decode` and `scanedge waybill`.

    Each file gives one row; a file that cannot be read gives an error row (``empty`` filled in),
    one line on stderr, and the run goes on; exit status 2 at the end if any file failed.
    """
    from scanedge.edge.cli import CliError
    from scanedge.ocr.images import ImageError

    files = list(expand(images))
    if not files:
        raise CliError("no image files given (a directory with no images?)")
    bar = Progress(len(files), enabled=progress and sys.stderr.isatty()
                    and len(files) >= PROGRESS_MIN_FILES)
    failed = 0
    for i, name in enumerate(files):
        bar.show(i, Path(name).name)
        start = time.perf_counter()
        try:
            row = read(name)
        except (ImageError, OSError) as e:
            failed += 1
            code, message = image_problem(e)
            bar.clear()
            print(f"scanedge {command}: {name}: {message}", file=sys.stderr)
            row = {"file": name, "error": code, "message": message, **empty,
                   "elapsed_ms": round((time.perf_counter() - start) * 1000.0, 1)}
        emit(row)
    bar.done()
    if failed:
        if len(files) > 1:  # one file: its own line said it all
            print(f"scanedge {command}: {failed} of {len(files)} files could not be read",
                  file=sys.stderr)
        return 2
    return 0


def _utf8(stream: TextIO) -> TextIO:
    """Chinese QR contents must print whatever the locale says."""
    with contextlib.suppress(AttributeError, ValueError):  # not a text file stream (tests)
        stream.reconfigure(encoding="utf-8", errors="backslashreplace")  # type: ignore[attr-defined]
    return stream


def printable(text: str, width: int = 60) -> str:
    """Control characters made visible: GS as <GS> (the FNC1 separator), others as \\xNN."""
    names = {"\x1d": "<GS>", "\x1e": "<RS>", "\x1c": "<FS>", "\x04": "<EOT>", "\r": "\\r",
             "\n": "\\n", "\t": "\\t"}
    shown = "".join(names.get(c, f"\\x{ord(c):02x}") if ord(c) < 32 else c for c in text)
    return shown if len(shown) <= width else shown[: width - 1] + "…"


class _Table:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, row: dict[str, Any]) -> None:
        ms = f"{row['elapsed_ms']:.1f}"
        if "error" in row:
            self.rows.append((row["file"], "ERROR", row["message"], ms))
        elif not row["symbols"]:
            self.rows.append((row["file"], "-", "(no code found)", ms))
        for sym in row["symbols"]:
            fmt = sym["format"] + (" (GS1)" if sym.get("gs1") else "")
            self.rows.append((row["file"], fmt, printable(sym["text"]), ms))
        if len(self.rows) >= 200:  # stream long runs instead of holding everything
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        header = ("FILE", "FORMAT", "TEXT", "MS")
        widths = [max(len(r[i]) for r in [header, *self.rows]) for i in range(3)]
        widths[0] = min(widths[0], 50)
        for r in [header, *self.rows]:
            name = r[0] if len(r[0]) <= widths[0] else "…" + r[0][-(widths[0] - 1):]
            self.out.write(f"{name:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  "
                           f"{r[3]:>7}\n")
        self.out.flush()
        self.rows = []
