"""Thin wrappers around the two barcode libraries, returning :class:`Read`s in one shape.

Both readers take a :class:`View`: a grayscale image made from the caller's image (scaled,
cropped, rotated, contrast-stretched) plus the affine transform that maps the view's pixels back
to the caller's, so every position is reported in the caller's coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

Quad = tuple[tuple[float, float], tuple[float, float], tuple[float, float], tuple[float, float]]

# What a warehouse uses (issue 3), and no more: every extra symbology is another way for noise
# to decode into a false positive. DataBar is on fresh food and pharmacy items; MicroQR is rare
# but cheap to try and carries strong error correction.
ZXING_FORMATS = (
    "Code128,Code39,Code93,Codabar,EAN13,EAN8,UPCA,UPCE,ITF,DataBar,DataBarExp,DataBarLtd,"
    "QRCode,MicroQRCode,DataMatrix,PDF417,Aztec"
)
ZBAR_SYMBOLS = ("CODE128", "CODE39", "CODE93", "CODABAR", "EAN13", "EAN8", "I25", "QRCODE",
                "DATABAR", "DATABAR_EXP")
GS1_IDENTIFIERS = ("]C1", "]d2", "]Q3", "]e0", "]J1")


@dataclass(frozen=True)
class View:
    """A grayscale image derived from the input and how to map its points back to the input."""

    gray: np.ndarray
    to_source: np.ndarray  # 2x3 affine matrix: view (x, y, 1) -> source (x, y)
    name: str

    def map_points(self, pts: list[tuple[float, float]]) -> Quad:
        arr = np.asarray(pts, dtype=np.float64)
        out = arr @ self.to_source[:, :2].T + self.to_source[:, 2]
        return tuple((float(x), float(y)) for x, y in out)  # type: ignore[return-value]


def bbox(quad) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a quad or any sequence of points."""
    xs = [p[0] for p in quad]
    ys = [p[1] for p in quad]
    return min(xs), min(ys), max(xs), max(ys)


def identity_view(gray: np.ndarray, name: str = "full") -> View:
    return View(gray, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), name)


@dataclass(frozen=True)
class Read:
    """One library's decode of one symbol, before validation."""

    reader: str  # "zxing-cpp" or "zbar"
    format: str  # zxing-cpp's name
    text: str
    raw: bytes
    position: Quad  # source coordinates: top-left, top-right, bottom-right, bottom-left
    symbology_identifier: str = ""
    content_type: str = "Text"
    gs1: bool | None = None  # None: the reader cannot tell (zbar)
    error: str = ""  # zxing-cpp: found the symbol but could not decode it (a hint, not a read)
    stage: str = ""
    charset: str = ""  # set when the text's charset was guessed here (not declared by ECI)


@lru_cache(maxsize=1)
def _zxing_formats():
    import zxingcpp

    return zxingcpp.barcode_formats_from_str(ZXING_FORMATS)


def read_zxing(
    view: View,
    *,
    try_rotate: bool = True,
    try_downscale: bool = True,
    try_invert: bool = True,
    binarizer: str = "LocalAverage",
    return_errors: bool = False,
    stage: str = "",
) -> list[Read]:
    import zxingcpp

    results = zxingcpp.read_barcodes(
        view.gray,
        formats=_zxing_formats(),
        try_rotate=try_rotate,
        try_downscale=try_downscale,
        try_invert=try_invert,
        # Plain: FNC1 as GS, no "(01)" brackets: what a keyboard-wedge scanner types.
        text_mode=zxingcpp.TextMode.Plain,
        binarizer=getattr(zxingcpp.Binarizer, binarizer),
        return_errors=return_errors,
    )
    reads: list[Read] = []
    for b in results:
        p = b.position
        quad = view.map_points([(p.top_left.x, p.top_left.y), (p.top_right.x, p.top_right.y),
                                (p.bottom_right.x, p.bottom_right.y),
                                (p.bottom_left.x, p.bottom_left.y)])
        sid = b.symbology_identifier or ""
        content = b.content_type.name if b.content_type is not None else "Text"
        text, charset = b.text, ""
        if b.format.name in CHARSET_GUESS_FORMATS:
            text, charset = guess_cjk(text, bytes(b.bytes))
            if charset:
                content = "Text"
        error = str(b.error) if b.error else ""
        reads.append(Read(
            reader="zxing-cpp",
            format=b.format.name,
            text=text,
            raw=bytes(b.bytes),
            position=quad,
            symbology_identifier=sid,
            content_type=content,
            gs1=sid in GS1_IDENTIFIERS or content == "GS1",
            error=error if not b.valid or error else "",
            stage=stage or view.name,
            charset=charset,
        ))
    return reads


CHARSET_GUESS_FORMATS = frozenset({"QRCode", "MicroQRCode", "PDF417", "Aztec", "DataMatrix"})


def _is_cjk(c: str) -> bool:
    o = ord(c)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x3000 <= o <= 0x303F
            or 0xFF00 <= o <= 0xFFEF or 0x2E80 <= o <= 0x2FDF)


def guess_cjk(text: str, raw: bytes) -> tuple[str, str]:
    """Chinese in GB18030 without an ECI header: zxing-cpp falls back to ISO-8859-1 (mojibake).

    Labels printed in China often put GB18030 (GBK) bytes in QR/PDF417 codes without saying so.
    When zxing-cpp's text is ISO-8859-1 with high bytes, and the bytes decode as GB18030 into
    text whose non-ASCII characters are all CJK (at least two), that is what it says.
    Returns (text, charset) with charset "" when nothing was changed.
    """
    if not raw or not any(0x80 <= ord(c) <= 0xFF for c in text) or any(ord(c) > 0xFF
                                                                      for c in text):
        return text, ""
    try:
        candidate = raw.decode("gb18030")
    except UnicodeDecodeError:
        return text, ""
    non_ascii = [c for c in candidate if ord(c) > 0x7F]
    if len(non_ascii) < 2 or not all(_is_cjk(c) for c in non_ascii):
        return text, ""
    # Everyday Chinese is in GB2312: both bytes >= 0xA1. An accented Latin-1 letter followed
    # by an ASCII letter ("Mü" + "l") also decodes as a (rare) GBK ideograph, but with a second
    # byte below 0xA1: require most characters to be of the common kind.
    common = sum(1 for c in non_ascii if min(c.encode("gb18030")) >= 0xA1)
    if common < 0.8 * len(non_ascii):
        return text, ""
    return candidate, "GB18030"


@lru_cache(maxsize=1)
def _zbar_symbols():
    from pyzbar.pyzbar import ZBarSymbol

    return [getattr(ZBarSymbol, name) for name in ZBAR_SYMBOLS]


def read_zbar(view: View, *, stage: str = "") -> list[Read]:
    from pyzbar import pyzbar

    from scanedge.ocr.symbols import ZBAR_TO_ZXING

    reads: list[Read] = []
    for d in pyzbar.decode(view.gray, symbols=_zbar_symbols()):
        fmt = ZBAR_TO_ZXING.get(d.type)
        if fmt is None:
            continue
        raw = bytes(d.data)
        # zbar hands out text already converted to UTF-8 (guessing the charset for QR codes).
        text = raw.decode("utf-8", errors="replace")
        if fmt == "Code39":
            fmt, text = _code39_interpretation(text)
        quad = view.map_points(_zbar_quad(d))
        reads.append(Read(reader="zbar", format=fmt, text=text, raw=raw, position=quad,
                          stage=stage or view.name))
    return reads


def _zbar_quad(d) -> list[tuple[float, float]]:
    """zbar gives a polygon (in scan order) or a rectangle: turn it into TL, TR, BR, BL."""
    pts = np.asarray([(p.x, p.y) for p in d.polygon], dtype=np.float64)
    if len(pts) < 3:
        r = d.rect
        pts = np.array([(r.left, r.top), (r.left + r.width, r.top),
                        (r.left + r.width, r.top + r.height), (r.left, r.top + r.height)], float)
    return _order_quad(pts)


def _order_quad(pts: np.ndarray) -> list[tuple[float, float]]:
    import cv2

    box = cv2.boxPoints(cv2.minAreaRect(pts.astype(np.float32))) if len(pts) > 4 or len(pts) == 3 else pts
    s = box.sum(axis=1)
    d = box[:, 0] - box[:, 1]
    tl, br = box[np.argmin(s)], box[np.argmax(s)]
    tr, bl = box[np.argmax(d)], box[np.argmin(d)]
    return [(float(tl[0]), float(tl[1])), (float(tr[0]), float(tr[1])),
            (float(br[0]), float(br[1])), (float(bl[0]), float(bl[1]))]


CODE32_ALPHABET = "0123456789BCDFGHJKLMNPQRSTUVWXYZ"
CODE39_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-. $/+%"
# Code 39 full ASCII: %A..%Z (zxing-cpp's table); $X control codes, /X punctuation, +X lower case
_PERCENT = [chr(c) for c in (27, 28, 29, 30, 31, 59, 60, 61, 62, 63, 91, 92, 93, 94, 95,
                             123, 124, 125, 126, 127, 0, 64, 96, 127, 127, 127)]


def _code39_interpretation(text: str) -> tuple[str, str]:
    """Read a Code 39 the way zxing-cpp does, so that one physical code gives one text whichever
    library read it: a valid Italian Code 32 becomes ``A`` + 9 digits (zbar says ``3PRM8N``,
    zxing-cpp ``A123456788``), and full-ASCII pairs (``+A`` for ``a``, ``/A`` for ``!``) are
    decoded as ``Code39Ext`` (zbar reports the pairs as they are printed).
    """
    code32 = _code32(text)
    if code32:
        return "Code32", code32
    return _code39_full_ascii(text)


def _code32(text: str) -> str:
    if len(text) != 6 or any(c not in CODE32_ALPHABET for c in text):
        return ""
    value = 0
    for c in text:
        value = value * 32 + CODE32_ALPHABET.index(c)
    digits = f"{value:09d}"
    if len(digits) != 9:
        return ""
    total = 0
    for i, c in enumerate(digits[:8]):
        n = int(c) * (2 if i % 2 else 1)
        total += n // 10 + n % 10
    if total % 10 != int(digits[8]):
        return ""
    return "A" + digits


def _code39_full_ascii(text: str) -> tuple[str, str]:
    """zxing-cpp's rule (ODCode39Reader.cpp): a valid mod-43 check character at the end is kept
    but not decoded; the rest is decoded when it holds shift characters and every one of them
    is followed by a letter."""
    if not text or any(c not in CODE39_ALPHABET for c in text):
        return "Code39", text
    body, check = text[:-1], text[-1]
    if sum(CODE39_ALPHABET.index(c) for c in body) % 43 != CODE39_ALPHABET.index(check):
        body, check = text, ""
    if not any(c in "$%/+" for c in body):
        return "Code39", text
    out = []
    chars = iter(body)
    for c in chars:
        if c in "$%/+":
            nxt = next(chars, "")
            if not ("A" <= nxt <= "Z"):
                return "Code39", text
            if c == "$":
                c = chr(ord(nxt) - 64)
            elif c == "%":
                c = _PERCENT[ord(nxt) - 65]
            elif c == "/":
                c = chr(ord(nxt) - 32)
            else:
                c = chr(ord(nxt) + 32)
        out.append(c)
    return "Code39Ext", "".join(out) + check
