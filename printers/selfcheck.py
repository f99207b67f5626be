"""Self-check of printed labels, independent of the renderer.

It reads only the ESC/POS bytes: rebuilds each label as the printer would print it, decodes its
barcodes with zxing-cpp, finds an inverted (white on black) badge by its pixels, and reads text
with Tesseract. Tests and the benchmark use it to prove that what goes to the printer scans.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from scanedge.printers.escpos_stream import pages_from_bytes


@dataclass
class Symbol:
    format: str
    text: str


@dataclass
class PrintedLabel:
    image: np.ndarray  # grey, 0 = black
    cut: bool
    beeps: int
    symbols: list[Symbol] = field(default_factory=list)

    def texts(self, fmt: str) -> list[str]:
        return [s.text for s in self.symbols if s.format == fmt]


def decode_symbols(image: np.ndarray) -> list[Symbol]:
    import zxingcpp

    return [Symbol(r.format.name, r.text) for r in zxingcpp.read_barcodes(image)]


def labels_from_bytes(data: bytes, width: int = 576) -> list[PrintedLabel]:
    """Every label the byte stream prints, with the barcodes found on it."""
    out = []
    for page in pages_from_bytes(data, width):
        image = page.image(width)
        out.append(PrintedLabel(image, page.cut, page.beeps, decode_symbols(image)))
    return out


def inverted_badges(image: np.ndarray, *, min_height: int = 40,
                    min_width_ratio: float = 0.2) -> list[tuple[int, int, int, int]]:
    """Boxes (x0, y0, x1, y1) of solid black areas with white inside (white-on-black text).

    A run of rows whose longest black run covers at least ``min_width_ratio`` of the width, at a
    stable position, for ``min_height`` rows; inside, 10-60 % of the dots must be white (a bare
    black bar is not a badge).
    """
    black = image < 128
    h, w = black.shape
    spans: list[tuple[int, int] | None] = []
    for y in range(h):
        row = black[y]
        padded = np.concatenate(([False], row, [False]))
        edges = np.flatnonzero(padded[1:] != padded[:-1])
        starts, ends = edges[::2], edges[1::2]
        if len(starts) == 0:
            spans.append(None)
            continue
        i = int(np.argmax(ends - starts))
        spans.append((int(starts[i]), int(ends[i])) if ends[i] - starts[i] >= w * min_width_ratio else None)
    boxes = []
    y = 0
    while y < h:
        span = spans[y]
        if span is None:
            y += 1
            continue
        y0 = y
        x0, x1 = span
        while y < h and spans[y] is not None and abs(spans[y][0] - x0) <= 4:
            y += 1
        # rows crossing the text are split into several runs: close the gap via the frame rows
        if y - y0 >= 3:
            y1 = y
            # extend through text rows: same left edge black, right edge black
            while y1 < h and black[y1, x0] and black[y1, min(w - 1, x1 - 1)]:
                y1 += 1
            if y1 - y0 >= min_height:
                inside = black[y0:y1, x0:x1]
                white = 1.0 - inside.mean()
                if 0.1 <= white <= 0.6:
                    boxes.append((x0, y0, x1, y1))
            y = max(y, y1)
    return boxes


def ocr(image: np.ndarray, lang: str = "chi_sim+eng") -> str:
    """Text Tesseract reads on the label (spaces removed, '×' read as 'x' kept as is)."""
    import pytesseract
    from PIL import Image

    text = pytesseract.image_to_string(Image.fromarray(image), lang=lang, config="--psm 6")
    return "".join(text.split())


def badge_text(image: np.ndarray) -> list[str]:
    """OCR of each inverted badge, turned black on white."""
    out = []
    for x0, y0, x1, y1 in inverted_badges(image):
        crop = 255 - image[y0:y1, x0:x1]
        padded = np.full((crop.shape[0] + 20, crop.shape[1] + 20), 255, dtype=np.uint8)
        padded[10:-10, 10:-10] = crop
        out.append(ocr(padded, lang="eng").upper().replace("O", "0"))
    return out


_ZBAR_FORMATS = {"CODE128": "Code128", "QRCODE": "QRCode"}


def decode_symbols_zbar(image: np.ndarray) -> list[Symbol]:
    """The same label read by zbar (pyzbar): a second, independent decoder, as the carrier's
    sorting machines and couriers' handhelds are not zxing."""
    from pyzbar import pyzbar

    return [Symbol(_ZBAR_FORMATS.get(s.type, s.type), s.data.decode("utf-8", errors="replace"))
            for s in pyzbar.decode(image)]


def ewaybill_problems(image: np.ndarray, number: str, qr: str | None) -> list[str]:
    """What is wrong with a printed carrier label, read back by zxing-cpp and zbar both: each must
    find the number's Code 128 (and nothing else in Code 128) and the carrier's 2D code when it has
    one. An empty list: the label scans."""
    problems = []
    for name, decoder in (("zxing", decode_symbols), ("zbar", decode_symbols_zbar)):
        symbols = decoder(image)
        codes = {s.text for s in symbols if s.format == "Code128"}
        if codes != {number}:
            problems.append(f"{name}: Code 128 reads {sorted(codes)}, expected {number!r}")
        qrs = [s.text for s in symbols if s.format == "QRCode"]
        if qr and qrs != [qr]:
            problems.append(f"{name}: 2D code reads {qrs}, expected {qr!r}")
    return problems
