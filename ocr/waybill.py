"""Waybill reader: tracking number and carrier from a photo of a courier label (电子面单).

The method (docs/waybill.md has the long version):

1. **Barcode first**: the decoding cascade (``ocr.decode``). A barcode that fits a carrier format
   is the answer (carrier from the pattern; the header is read only when the pattern leaves more
   than one carrier or when a fast OCR engine makes it cheap).
2. **Text** when no barcode fits: deskew once (projection profile), find text lines, keep the
   runs of glyphs that look like a printed number (beside a barcode, on the 运单号 line, the
   stub copy...), and read those tight crops with the OCR engine (digits and capitals only).
   The header is read at the same time (Chinese + English) for the carrier's printed name.
3. **Acceptance** (``ocr.waybill_rules``): letter-prefixed or check-digit numbers on one read,
   plain digits only when two printed copies agree, glued numbers rejected, near-miss reads
   voted, two different numbers (two labels) rejected. When nothing is accepted the result has
   no number, only ``candidates`` for a person to confirm.
4. **The whole page** with an engine that finds text itself (RapidOCR, the default install)
   when the located runs gave no accepted number: heavy blur melts a number's glyphs into one
   blob the run finder cannot cut. Its reads of a copy already read count as the same place.
   Its angle classifier turns upside-down lines; with Tesseract, nothing found and the photo
   maybe upside down, the text stage runs once more turned by half a turn.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np

from scanedge.edge.domain.carriers import Carrier, carrier_by_code, find_carrier_names
from scanedge.ocr import text_engines
from scanedge.ocr.readers import bbox
from scanedge.ocr.waybill_layout import (
    barcode_bands,
    estimate_skew,
    find_lines,
    number_runs,
    rotate,
    rotation_matrix,
)
from scanedge.ocr.waybill_rules import Candidate, Read, collect, decide, interpret

log = logging.getLogger(__name__)

MAX_RUNS = 14  # number-like runs read per orientation; a label prints the number 2-4 times
GLYPH_PX = 34  # glyph height the crops are scaled to (Tesseract reads best at ~30-40 px)
WORK_MAX_SIDE = 1800  # photos are reduced to this before the text stage (speed, same accuracy)
# Memory of the text stage (measured in benchmarks/image_memory.py): ~35 bytes a pixel of the
# levelled copy (turned copies, ink masks, labels of connected components), and what the engine
# holds in this process while it reads (RapidOCR's page pass: ~70 MB; Tesseract runs outside).
TEXT_BYTES_PER_PIXEL = 40
ENGINE_BYTES = {"rapidocr": 80 << 20, "tesserocr": 48 << 20, "tesseract": 16 << 20}

_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="waybill-ocr")

Quad = list[list[float]]
Box = tuple[int, int, int, int]


@dataclass
class WaybillResult:
    """What ``scanedge waybill --json`` prints and ``POST /api/v1/waybills`` returns."""

    file: str | None
    tracking_number: str | None
    carrier: str | None
    source: str | None  # "barcode" | "ocr" | None
    confidence: float
    elapsed_ms: float
    candidates: list[dict[str, Any]] = field(default_factory=list)
    carrier_name: str | None = None  # the carrier's printed name when it was read
    flags: list[str] = field(default_factory=list)
    region: Quad | None = None  # photo-space corners of the number that was accepted

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "tracking_number": self.tracking_number,
            "carrier": self.carrier,
            "source": self.source,
            "confidence": round(self.confidence, 3),
            "elapsed_ms": round(self.elapsed_ms, 1),
            "candidates": self.candidates,
            "carrier_name": self.carrier_name,
            "flags": self.flags,
            "region": self.region,
        }


# ---------------------------------------------------------------------------------------------
# barcodes


def _barcode_reads(gray: np.ndarray, budget_ms: float | None) -> list[Read]:
    from scanedge.ocr.decode import decode

    # exhaustive: a second label's barcode in the frame must be seen, or the reader would answer
    # with whichever label it happened to decode first.
    symbols = decode(gray, budget_ms=budget_ms, exhaustive=True)
    return [Read(s.text, "barcode", f"barcode:{i}", 1.0, _quad(getattr(s, "position", None)))
            for i, s in enumerate(symbols)]


def _quad(position: Any) -> tuple[tuple[float, float], ...] | None:
    if not position:
        return None
    try:
        return tuple((float(p[0]), float(p[1])) for p in position)
    except (TypeError, IndexError, KeyError):
        return None


# ---------------------------------------------------------------------------------------------
# text


@dataclass
class _View:
    """The photo deskewed (and maybe turned), with the way back to photo coordinates."""

    gray: np.ndarray
    back: np.ndarray  # 2x3: view -> photo
    name: str
    # number run -> the other glyphs of its line (painted over in its crop)
    neighbours: dict[Box, tuple[Box, ...]] = field(default_factory=dict)


def _views(gray: np.ndarray, scale: float) -> tuple[_View, _View]:
    angle = estimate_skew(gray)
    m = rotation_matrix(gray.shape, angle)
    level = rotate(gray, angle)
    # view -> working image (inverse of m), then working image -> photo (1/scale)
    back = cv2.invertAffineTransform(m) / scale
    h, w = level.shape
    flipped = cv2.rotate(level, cv2.ROTATE_180)
    flip = np.array([[-1.0, 0, w - 1], [0, -1.0, h - 1], [0, 0, 1]])
    back_flipped = np.vstack([back, [0, 0, 1]]) @ flip
    return _View(level, back, "level"), _View(flipped, back_flipped[:2], "turned")


def _to_photo(view: _View, box: tuple[int, int, int, int]) -> tuple[tuple[float, float], ...]:
    x, y, w, h = box
    pts = np.array([[x, y, 1], [x + w, y, 1], [x + w, y + h, 1], [x, y + h, 1]], float)
    out = pts @ view.back.T
    return tuple((round(float(px), 1), round(float(py), 1)) for px, py in out)


def _crop(gray: np.ndarray, box: Box, glyph_px: int, others: tuple[Box, ...] = ()) -> np.ndarray:
    x, y, w, h = box
    pv, ph = max(3, int(0.3 * h)), max(4, int(0.6 * h))
    x0, y0 = max(0, x - ph), max(0, y - pv)
    c = gray[y0 : y + h + pv, x0 : x + w + ph].copy()
    # Paper over the line's other glyphs: a neighbour in the margin ("运单号:"'s colon, the next
    # word) would be read as more characters and make the number look glued to others.
    if others and c.size:
        paper = np.percentile(c, 90)
        d = max(2, int(0.12 * h))  # a blurred glyph's halo reaches past its ink box
        for gx, gy, gw, gh in others:
            left, right = gx - d, gx + gw + d
            # never into the run itself
            right = min(right, x) if gx < x else right
            left = max(left, x + w) if gx >= x + w else left
            if right > left:
                c[max(0, gy - y0 - d) : max(0, gy + gh - y0 + d),
                  max(0, left - x0) : max(0, right - x0)] = paper
    s = glyph_px / max(h, 1)
    interp = cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA
    c = cv2.resize(c, None, fx=s, fy=s, interpolation=interp)
    # Stretch the local contrast: shadows and glare leave thin grey glyphs otherwise.
    lo, hi = np.percentile(c, (2, 98))
    if hi - lo > 10:
        c = np.clip((c.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return c


def _binarized(crop: np.ndarray) -> np.ndarray:
    """A second look at a crop the first read could not use: Otsu after a light blur."""
    blur = cv2.GaussianBlur(crop, (3, 3), 0)
    _, th = cv2.threshold(blur, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return th


def _number_boxes(view: _View) -> tuple[list[tuple[int, int, int, int]], list, tuple]:
    """Number-like runs (best first), the lines, and the text area (x0, y0, x1, y1)."""
    lines = find_lines(view.gray)
    neighbours = view.neighbours
    if not lines:
        return [], [], (0, 0, view.gray.shape[1], view.gray.shape[0])
    bands = barcode_bands(view.gray)
    runs = []
    for ln in lines:
        for box in number_runs(ln):
            x, y, w, h = box
            near = any(
                bx - h < x + w / 2 < bx + bw + h and (by - 3 * h < y < by + bh + 2 * h)
                for bx, by, bw, bh in bands
            )
            others = tuple(gl for gl in ln.glyphs if not x <= gl[0] + gl[2] / 2 <= x + w)
            runs.append((near, w / max(h, 1), box))
            neighbours[box] = others
    # Beside a barcode first, then the longest runs (a number is 10-22 glyphs).
    runs.sort(key=lambda r: (not r[0], -r[1]))
    tops = np.array([ln.y for ln in lines])
    bottoms = np.array([ln.y + ln.h for ln in lines])
    lefts = np.array([ln.x for ln in lines])
    rights = np.array([ln.x + ln.w for ln in lines])
    area = (
        int(np.percentile(lefts, 3)), int(tops.min()),
        int(np.percentile(rights, 97)), int(np.percentile(bottoms, 97)),
    )
    return [r[2] for r in runs[:MAX_RUNS]], lines, area


def _header_crop(view: _View, lines: list, area: tuple[int, int, int, int]) -> np.ndarray | None:
    """The top band of the label's text area, where carriers print their name (left part)."""
    x0, y0, x1, y1 = area
    if x1 - x0 < 50 or y1 - y0 < 50:
        return None
    pad = int(0.02 * (y1 - y0))
    band = view.gray[max(0, y0 - pad) : y0 + int(0.13 * (y1 - y0)),
                     max(0, x0 - pad) : x0 + int(0.7 * (x1 - x0))]
    if band.size == 0:
        return None
    s = min(1.0, 700 / band.shape[1])
    return cv2.resize(band, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else band


def _ocr_view(
    view: _View, engine: text_engines.TextEngine, *, with_header: bool
) -> tuple[list[Read], str]:
    boxes, lines, area = _number_boxes(view)
    header_job = None
    if with_header:
        header = _header_crop(view, lines, area)
        if header is not None:
            header_job = _pool.submit(engine.read_text, header)
    crops = [_crop(view.gray, b, GLYPH_PX, view.neighbours.get(b, ())) for b in boxes]
    texts = engine.read_lines(crops) if crops else []
    reads = []
    retry = []
    for i, (box, t) in enumerate(zip(boxes, texts, strict=True)):
        reads.append(Read(t.text, "ocr", f"{view.name}:{i}", t.confidence, _to_photo(view, box)))
        if interpret(t.text) is None:
            retry.append(i)
    # The re-read rule: a copy that gave nothing usable is read once more, binarized and larger.
    if retry:
        again = engine.read_lines([_binarized(_crop(view.gray, boxes[i], GLYPH_PX + 10,
                                                            view.neighbours.get(boxes[i], ())))
                                   for i in retry])
        for i, t in zip(retry, again, strict=True):
            reads.append(
                Read(t.text, "ocr", f"{view.name}:{i}", t.confidence, _to_photo(view, boxes[i]))
            )
    header_text = header_job.result() if header_job is not None else ""
    return reads, header_text


def _page_reads(view: _View, engine: text_engines.TextEngine) -> tuple[list[Read], str, bool]:
    """Every text line of the page, found and read by an engine that detects text itself.

    Returns the reads, the header's text and whether the page was upside down (most lines
    were). Each line is its own place (two printed copies are two independent reads); lines
    whose boxes overlap are one place. The carrier's name is looked for in the header band: the
    top quarter of the text, or the bottom one when the page was upside down.
    """
    lines = engine.read_page(view.gray)  # type: ignore[attr-defined]
    if not lines:
        return [], "", False
    boxes = [bbox(ln.quad) for ln in lines]
    places: list[int] = []
    for i, b in enumerate(boxes):
        same = next((places[j] for j in range(i) if _iou(b, boxes[j]) > 0.5), i)
        places.append(same)
    reads = [
        Read(ln.text, "ocr", f"{view.name}-page:{p}", ln.confidence, _quad_to_photo(view, ln.quad))
        for ln, p in zip(lines, places, strict=True)
    ]
    y0 = min(b[1] for b in boxes)
    y1 = max(b[3] for b in boxes)
    turned = sum(ln.turned for ln in lines) > len(lines) / 2
    band = 0.25 * (y1 - y0)
    header = [ln.text for ln, b in zip(lines, boxes, strict=True)
              if ((b[1] + b[3]) / 2 > y1 - band if turned else (b[1] + b[3]) / 2 < y0 + band)]
    return reads, "\n".join(header), turned


def _same_places(page_reads: list[Read], line_reads: list[Read]) -> list[Read]:
    """Page reads of a copy that a located run already read take that run's place.

    The same printed copy read twice is not two independent reads: a plain-digit number must
    not be accepted on one copy seen by both passes.
    """
    out = []
    for r in page_reads:
        # the line's own quad, not its upright box: on a tilted photo that box reaches into
        # the lines above and below
        quad = np.array(r.region, np.float32).reshape(-1, 1, 2) if r.region else None
        for lr in line_reads:
            if quad is None or not lr.region:
                continue
            cx = sum(p[0] for p in lr.region) / len(lr.region)
            cy = sum(p[1] for p in lr.region) / len(lr.region)
            if cv2.pointPolygonTest(quad, (float(cx), float(cy)), False) >= 0:
                r = replace(r, where=lr.where)
                break
        out.append(r)
    return out


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _quad_to_photo(view: _View, quad) -> tuple[tuple[float, float], ...]:
    pts = np.array([[x, y, 1.0] for x, y in quad])
    out = pts @ view.back.T
    return tuple((round(float(px), 1), round(float(py), 1)) for px, py in out)


# ---------------------------------------------------------------------------------------------
# the reader


def _carrier(
    winner: Candidate | None, printed: list[Carrier], flags: list[str]
) -> tuple[str | None, float]:
    """(carrier code, confidence factor): the printed name, cross-checked with the pattern."""
    if winner is None:
        return (printed[0].code if printed else None), 1.0
    codes = winner.carrier_codes
    if not codes:
        return (printed[0].code if printed else None), 1.0
    for p in printed:
        if p.code in codes:
            return p.code, 1.0
    if printed:
        flags.append("carrier_mismatch")
        strong = [m for m in winner.matches if m.prefixed or m.check_digit]
        # A letter prefix or a check digit is better evidence than a misread header.
        return (strong[0].carrier.code if len(strong) == 1 else printed[0].code), 0.85
    if len(codes) > 1:
        flags.append("carrier_ambiguous")
        return codes[0], 0.9
    return codes[0], 1.0


def read_waybill(
    source: Any,
    *,
    file: str | None = None,
    engine: str = "auto",
    budget_ms: float | None = None,
    header_on_barcode: bool | None = None,
    max_bytes: int | None = None,
    max_pixels: int | None = None,
) -> WaybillResult:
    """Read one waybill photo (a path, encoded bytes or an image array).

    ``budget_ms`` is the barcode decode's safety net (``ocr.decode``), off by default and in the
    service: cutting the barcode short only sends the photo to the text stage, which is slower
    and weaker (the decode's own plan bounds its work). The photo is
    read at most ``ocr.decode.WORK_MAX_SIDE`` px a side, within a reservation of
    ``ocr.memory`` (the waybill's estimate: :func:`job_bytes`). Raises
    ``ocr.images.ImageError`` (or ``OSError`` for a path) when the input is not an image.
    """
    from scanedge.ocr.decode import load_working_image
    from scanedge.ocr.images import open_image
    from scanedge.ocr.memory import image_job

    t0 = time.perf_counter()
    limits = {k: v for k, v in (("max_bytes", max_bytes), ("max_pixels", max_pixels)) if v}
    pending = open_image(source, **limits)
    if file is None and isinstance(source, str | os.PathLike):
        file = os.fspath(source)
    ocr_engine = text_engines.engine(engine)
    with image_job(job_bytes(pending, ocr_engine.name), "this photo"):
        gray = load_working_image(pending)
        return _read(gray, file, t0, ocr_engine, budget_ms, header_on_barcode)


def job_bytes(pending: Any, engine: str = "rapidocr") -> int:
    """Estimated peak memory of reading a waybill photo: the barcode decode, then (after it) the
    text stage on a copy at most WORK_MAX_SIDE long (levelled, turned, thresholded, labelled)
    and the OCR engine's inputs, beside the working image."""
    from scanedge.ocr.decode import WORK_MAX_PIXELS
    from scanedge.ocr.decode import WORK_MAX_SIDE as DECODE_MAX_SIDE
    from scanedge.ocr.decode import job_bytes as decode_bytes

    gw, gh = pending.out_size(DECODE_MAX_SIDE, WORK_MAX_PIXELS)
    w, h = pending.out_size(WORK_MAX_SIDE)
    text = gw * gh + w * h * TEXT_BYTES_PER_PIXEL + ENGINE_BYTES.get(engine, 80 << 20)
    return max(decode_bytes(pending), text)


def _read(gray: np.ndarray, file: str | None, t0: float, ocr_engine: Any,
          budget_ms: float | None, header_on_barcode: bool | None) -> WaybillResult:
    if header_on_barcode is None:
        # tesserocr reads a header in ~50 ms; rapidocr (~0.2 s) and pytesseract (~0.7 s) only when
        # the pattern leaves several carriers
        header_on_barcode = ocr_engine.name == "tesserocr"

    flags: list[str] = []
    reads = _barcode_reads(gray, budget_ms)
    printed: list[Carrier] = []
    header_text = ""
    decision = decide(collect(reads))
    winner = decision.winner
    if winner is not None and winner.matches:
        if header_on_barcode or len(winner.carrier_codes) > 1:
            scale = min(1.0, WORK_MAX_SIDE / max(gray.shape))
            work = cv2.resize(gray, None, fx=scale, fy=scale) if scale < 1 else gray
            level, _ = _views(work, scale)
            _, lines, area = _number_boxes(level)
            header = _header_crop(level, lines, area)
            if header is not None:
                header_text = ocr_engine.read_text(header)
                printed = find_carrier_names(header_text)
        return _result(file, t0, winner, decision.candidates, printed, flags + decision.flags)

    # Text stage.
    scale = min(1.0, WORK_MAX_SIDE / max(gray.shape))
    work = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) \
        if scale < 1 else gray
    level, turned = _views(work, scale)
    ocr_reads, header_text = _ocr_view(level, ocr_engine, with_header=True)
    printed = find_carrier_names(header_text)
    all_reads = reads + ocr_reads
    decision = decide(collect(all_reads, printed))
    if decision.winner is None and hasattr(ocr_engine, "read_page"):
        # An engine that finds text itself reads the whole page when the located runs were not
        # enough: blur that melts a number's glyphs into one blob hides it from the run finder,
        # and its classifier turns upside-down lines (no second pass needed).
        page_reads, page_header, upside_down = _page_reads(level, ocr_engine)
        all_reads += _same_places(page_reads, ocr_reads)
        printed = printed or find_carrier_names(page_header)
        decision = decide(collect(all_reads, printed))
        if upside_down:
            flags.append("upside_down")
    elif decision.winner is None and not any(c.matches for c in decision.candidates):
        # Nothing that even looks like a number: maybe the label is upside down.
        turned_reads, turned_header = _ocr_view(turned, ocr_engine, with_header=not printed)
        more = decide(collect(all_reads + turned_reads,
                              printed or find_carrier_names(turned_header)))
        if more.winner is not None or any(c.matches for c in more.candidates):
            decision = more
            all_reads += turned_reads
            if not printed:
                printed = find_carrier_names(turned_header)
            flags.append("upside_down")
    winner = decision.winner
    flags += decision.flags
    if winner is None:
        # A lone barcode whose text fits no known format is still the number (docs/interfaces.md, issue 4),
        # with no carrier and a low confidence, unless the text stage found rivals.
        unknown = [c for c in decision.candidates if not c.matches and "barcode" in c.sources]
        rivals = [c for c in decision.candidates if c.matches]
        if len(unknown) == 1 and not rivals:
            flags.append("unknown_format")
            return _result(file, t0, unknown[0], decision.candidates, printed, flags,
                           confidence=0.5)
    return _result(file, t0, winner, decision.candidates, printed, flags)


def _result(
    file: str | None,
    t0: float,
    winner: Candidate | None,
    candidates: list[Candidate],
    printed: list[Carrier],
    flags: list[str],
    *,
    confidence: float | None = None,
) -> WaybillResult:
    carrier, factor = _carrier(winner, printed, flags)
    shown = [c for c in candidates if c.matches or "barcode" in c.sources][:5]
    if winner is None:
        if not printed:
            # No number and no printed name: the letter prefix of the candidates still tells the
            # carrier when they all agree (JD..., YT...); plain digits say nothing certain.
            codes = {m.carrier.code for c in shown for m in c.matches if m.prefixed}
            carrier = codes.pop() if len(codes) == 1 else None
            if carrier:
                flags.append("carrier_from_candidates")
        return WaybillResult(
            file=file, tracking_number=None, carrier=carrier, source=None,
            confidence=0.0, elapsed_ms=(time.perf_counter() - t0) * 1000,
            candidates=[c.to_json() for c in shown],
            carrier_name=printed[0].name_zh if printed else None, flags=flags,
        )
    if confidence is None:
        places = len(winner.places)
        if "barcode" in winner.sources:
            confidence = 0.99 if places == 1 else 0.995
        elif winner.repaired:
            confidence = 0.8 if places >= 2 else 0.6
        else:
            confidence = {1: 0.9, 2: 0.97}.get(places, 0.99)
        if "reads_disagree" in flags:
            confidence -= 0.1
        confidence *= factor
    region_read = next((r for r in winner.reads if r.region), None)
    code = carrier
    name = None
    if printed:
        name = printed[0].name_zh
    elif code:
        c = carrier_by_code(code)
        name = c.name_zh if c else None
    return WaybillResult(
        file=file,
        tracking_number=winner.number,
        carrier=code,
        source="barcode" if "barcode" in winner.sources else "ocr",
        confidence=round(min(confidence, 0.999), 3),
        elapsed_ms=(time.perf_counter() - t0) * 1000,
        candidates=[c.to_json() for c in shown if c is not winner],
        carrier_name=name,
        flags=flags,
        region=[list(p) for p in region_read.region] if region_read else None,
    )
