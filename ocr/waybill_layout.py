"""Where the text is on a waybill photo: skew, text lines, number-like lines, barcode-like bands.

Pure image geometry (OpenCV + NumPy), no OCR. The reader (``ocr.waybill``) deskews the photo
once with :func:`estimate_skew`, then asks :func:`find_lines` for text lines, ranks them with
:func:`number_likeness` and reads only the best ones.

Why glyph statistics: a tracking number is a run of 10-20 glyphs of one height, each narrower
than tall (digits, capitals), with no gaps wider than a space. Chinese address lines have square,
multi-part glyphs; sorting codes are short. Measuring that is cheap and needs no OCR.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Line:
    """A text line in the deskewed image: its box and the glyph boxes inside (x, y, w, h)."""

    x: int
    y: int
    w: int
    h: int
    glyphs: tuple[tuple[int, int, int, int], ...]
    score: float = 0.0  # number-likeness, 0..1
    near_barcode: bool = False

    @property
    def box(self) -> tuple[int, int, int, int]:
        return (self.x, self.y, self.w, self.h)


def to_gray(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def dark_mask(gray: np.ndarray, block: int) -> np.ndarray:
    """Ink pixels (255) by a local threshold: robust to shadows, glare and uneven light."""
    block = max(3, block | 1)
    return cv2.adaptiveThreshold(
        gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, 12
    )


def estimate_skew(gray: np.ndarray, *, max_side: int = 900) -> float:
    """The rotation (degrees, counter-clockwise positive as OpenCV) that makes text lines level.

    Projection profile of ink pixels: rows of text give the sharpest horizontal profile when
    level. Searched over the whole half-turn (a label lying sideways works too), coarse then
    fine. Returns the angle to pass to :func:`rotate`.
    """
    scale = min(1.0, max_side / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    mask = dark_mask(small, max(15, int(min(small.shape) / 40)))
    # Long strokes (barcode bars, frame rules) would vote for their own direction: thin them out
    # by keeping only small components' pixels (glyphs).
    _n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    side = max(small.shape)
    keep = (stats[:, cv2.CC_STAT_WIDTH] < side / 15) & (stats[:, cv2.CC_STAT_HEIGHT] < side / 15)
    keep[0] = False
    ys, xs = np.nonzero(keep[labels])
    if len(xs) < 50:
        return 0.0
    if len(xs) > 40000:
        idx = np.random.default_rng(0).choice(len(xs), 40000, replace=False)
        xs, ys = xs[idx], ys[idx]
    xs = xs.astype(np.float32) - small.shape[1] / 2
    ys = ys.astype(np.float32) - small.shape[0] / 2
    span = int(math.hypot(*small.shape)) + 2

    def sharpness(deg: float) -> float:
        t = math.radians(deg)
        proj = ys * math.cos(t) - xs * math.sin(t)
        hist = np.bincount((proj + span / 2).astype(np.int32).clip(0, span - 1), minlength=span)
        return float(np.dot(hist, hist))

    coarse = np.arange(-90.0, 90.0, 1.0)
    best = max(coarse, key=sharpness)
    fine = np.arange(best - 1.0, best + 1.01, 0.1)
    best = float(max(fine, key=sharpness))
    # Lines sloping down to the right by `best` (image y points down) are levelled by turning
    # the image counter-clockwise by the same angle, which is OpenCV's positive direction.
    return best if abs(best) > 0.05 else 0.0


def rotate(image: np.ndarray, angle: float, *, border: int = 255) -> np.ndarray:
    """Rotate about the centre (degrees, OpenCV sign), growing the canvas to keep every pixel."""
    if abs(angle) < 0.05:
        return image
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos + 0.5), int(h * cos + w * sin + 0.5)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    value = (border,) * (1 if image.ndim == 2 else image.shape[2])
    return cv2.warpAffine(
        image, m, (nw, nh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
        borderValue=value,
    )


def rotation_matrix(shape: tuple[int, ...], angle: float) -> np.ndarray:
    """The 2x3 matrix :func:`rotate` applies (to map boxes back to the photo)."""
    h, w = shape[:2]
    if abs(angle) < 0.05:
        return np.array([[1.0, 0, 0], [0, 1.0, 0]])
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = int(h * sin + w * cos + 0.5), int(h * cos + w * sin + 0.5)
    m[0, 2] += nw / 2 - w / 2
    m[1, 2] += nh / 2 - h / 2
    return m


def _remove_rules(mask: np.ndarray, min_len: int) -> np.ndarray:
    """Drop long horizontal and vertical strokes (frames, dashed cut lines) from an ink mask."""
    hk = cv2.getStructuringElement(cv2.MORPH_RECT, (min_len, 1))
    vk = cv2.getStructuringElement(cv2.MORPH_RECT, (1, min_len))
    rules = cv2.morphologyEx(mask, cv2.MORPH_OPEN, hk) | cv2.morphologyEx(mask, cv2.MORPH_OPEN, vk)
    rules = cv2.dilate(rules, np.ones((3, 3), np.uint8))
    return cv2.bitwise_and(mask, cv2.bitwise_not(rules))


def barcode_bands(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Boxes of barcode-like regions (dense vertical bars), decodable or not.

    Bars give strong horizontal gradients and weak vertical ones; a closed region of them wider
    than tall is a 1D barcode, even when smudged or torn.
    """
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    grad = cv2.convertScaleAbs(cv2.subtract(cv2.absdiff(gx, 0), cv2.absdiff(gy, 0)))
    grad = cv2.blur(grad, (9, 9))
    _, th = cv2.threshold(grad, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    k = max(9, gray.shape[1] // 60)
    th = cv2.morphologyEx(th, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, 3)))
    th = cv2.erode(th, None, iterations=2)
    th = cv2.dilate(th, None, iterations=2)
    n, _, stats, _ = cv2.connectedComponentsWithStats(th)
    out = []
    min_w = gray.shape[1] / 12
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if w >= min_w and h >= 12 and w > 1.3 * h and area > 0.5 * w * h:
            out.append((int(x), int(y), int(w), int(h)))
    return out


def find_lines(gray: np.ndarray) -> list[Line]:
    """Text lines of a deskewed gray image, each with its glyph boxes."""
    h_img, w_img = gray.shape
    mask = dark_mask(gray, max(15, int(min(gray.shape) / 30)))
    mask = _remove_rules(mask, max(40, w_img // 12))
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    glyph_ok = np.zeros(n, bool)
    heights = stats[:, cv2.CC_STAT_HEIGHT]
    widths = stats[:, cv2.CC_STAT_WIDTH]
    areas = stats[:, cv2.CC_STAT_AREA]
    max_h = h_img / 12
    glyph_ok[1:] = (
        (heights[1:] >= 7) & (heights[1:] <= max_h) & (widths[1:] <= 3 * heights[1:] + 4)
        & (areas[1:] >= 12)
        # blotches of a textured desk are filled blobs; glyphs are strokes
        & ((areas[1:] <= 0.8 * widths[1:] * heights[1:]) | (heights[1:] < 20) | (widths[1:] < 8))
    )
    glyphs = [tuple(int(v) for v in stats[i, :4]) for i in np.nonzero(glyph_ok)[0]]
    if not glyphs:
        return []
    # Join glyphs into lines: neighbours on one baseline band, horizontally close.
    glyphs.sort(key=lambda b: b[0])
    lines: list[list[tuple[int, int, int, int]]] = []
    open_lines: list[list] = []  # [x_end, y_top, y_bottom, glyph list]
    for g in glyphs:
        x, y, w, h = g
        cy = y + h / 2
        best = None
        for ol in open_lines:
            x_end, top, bottom, members = ol
            lh = bottom - top
            gap = x - x_end
            if gap > 1.2 * max(lh, h) or gap < -0.5 * lh:
                continue
            if not (top - 0.15 * lh <= cy <= bottom + 0.15 * lh):
                continue
            if h > 2.2 * lh:  # a much taller glyph starts a line of its own
                continue
            best = ol
            break
        if best is None:
            open_lines.append([x + w, y, y + h, [g]])
        else:
            best[0] = max(best[0], x + w)
            # grow the band by the glyph only when it is a full-height glyph
            if h >= 0.6 * (best[2] - best[1]):
                best[1] = min(best[1], y)
                best[2] = max(best[2], y + h)
            best[3].append(g)
        # retire lines far to the left to keep this linear-ish
        if len(open_lines) > 64:
            keep = [ol for ol in open_lines if ol[0] > x - 4 * (ol[2] - ol[1])]
            lines.extend(ol[3] for ol in open_lines if ol not in keep)
            open_lines = keep
    lines.extend(ol[3] for ol in open_lines)
    out = []
    for members in lines:
        if len(members) < 4:
            continue
        xs = [g[0] for g in members]
        ys = [g[1] for g in members]
        x2 = [g[0] + g[2] for g in members]
        y2 = [g[1] + g[3] for g in members]
        x, y = min(xs), min(ys)
        out.append(Line(x, y, max(x2) - x, max(y2) - y, tuple(members)))
    return out


def number_runs(line: Line, *, min_glyphs: int = 8) -> list[tuple[int, int, int, int]]:
    """Boxes of the runs of >= ``min_glyphs`` glyphs in a line that look like a printed number.

    A run is glyphs that share a height (within 20 %) and a baseline, are narrower than tall
    (digits, capitals) and stand at most about a space apart: tracking numbers are 10-22 such
    glyphs, printed plain or in groups of four. A Chinese prefix ("运单号:") has square glyphs
    and a colon, so it is not part of the run: the crop holds the number alone.
    """
    g = sorted(line.glyphs, key=lambda b: b[0])
    runs: list[list[tuple[int, int, int, int]]] = []
    cur: list[tuple[int, int, int, int]] = []
    count = 0.0  # glyphs in the run, a blurred pair of touching digits counting as two
    joins = 0

    def close() -> None:
        nonlocal cur, count, joins
        if count >= min_glyphs:
            runs.append(cur)
        cur, count, joins = [], 0.0, 0

    colon = _colon_specks(g)
    for b in g:
        x, y, w, h = b
        if b in colon:
            close()  # "运单号:" -- what stands before a colon is a label, not the number
            continue
        narrow = 0.2 * h <= w <= 0.95 * h
        thin = w < 0.2 * h  # "1", "I"
        # Blur joins neighbouring digits into one blob: inside a run, a blob as tall as the
        # run and up to ~3 digits wide continues it.
        # Chinese glyphs are square (w ~ h), so only clearly wider blobs count, at most two.
        joined = (len(cur) - joins >= 4 and joins < 2 and not narrow and not thin
                  and 1.15 * h <= w <= 2.6 * h)
        if cur and h < 0.5 * cur[-1][3] and x - (cur[-1][0] + cur[-1][2]) < cur[-1][3]:
            continue  # a dot or speck inside the run: skip it, keep the run
        if not (narrow or thin or joined):
            close()
            continue
        if cur:
            px, py, pw, ph = cur[-1]
            ref = max(h, ph)
            same_h = abs(h - ph) <= 0.2 * ref or (thin and abs(h - ph) <= 0.3 * ref)
            same_base = abs((y + h) - (py + ph)) <= 0.25 * ref
            gap = x - (px + pw)
            if not (same_h and same_base and -0.15 * ref <= gap <= 1.3 * ref):
                close()
                if not (narrow or thin):
                    continue
        cur.append(b)
        count += round(w / (0.6 * h)) if joined else 1.0
        joins += joined
    close()
    # A run may have lost glyphs at either end: blur melts a prefix ("YT", "JT") into one blob,
    # grouped printing ("JT 2948 2924 4289 3") puts a wider space before a short group, and a
    # thin "1" may stand apart. Take back at most three neighbours of the run's height and
    # baseline on each side: narrow glyphs up to a group space away, wider blobs (melted
    # glyphs) only when tight. A "运单号:" label stays out: its colon is a speck that stops the
    # walk, and Chinese glyphs are square and taller than digits.
    for r in runs:
        _extend(r, g, left=True)
        _extend(r, g, left=False)
    out = []
    for r in runs:
        x1 = min(b[0] for b in r)
        y1 = min(b[1] for b in r)
        x2 = max(b[0] + b[2] for b in r)
        y2 = max(b[1] + b[3] for b in r)
        out.append((x1, y1, x2 - x1, y2 - y1))
    return out


def _extend(run: list[tuple[int, int, int, int]], glyphs: list[tuple[int, int, int, int]], *,
            left: bool) -> None:
    """Grow ``run`` (glyph boxes sorted by x) by up to three neighbours on one side, in place."""
    hs = sorted(b[3] for b in run)
    ref = hs[len(hs) // 2]
    members = set(run)
    for _ in range(3):
        edge = run[0] if left else run[-1]
        if left:
            side = [b for b in glyphs if b[0] + b[2] <= edge[0] + 0.3 * ref and b not in members]
            if not side:
                return
            nb = max(side, key=lambda b: b[0] + b[2])
            gap = edge[0] - (nb[0] + nb[2])
        else:
            side = [b for b in glyphs if b[0] >= edge[0] + edge[2] - 0.3 * ref
                    and b not in members]
            if not side:
                return
            nb = min(side, key=lambda b: b[0])
            gap = nb[0] - (edge[0] + edge[2])
        _x, y, w, h = nb
        # Aligned with the glyph at the end (a photo's residual tilt moves the line along the
        # run) by the baseline, or by the top for a descender ("J" of a melted "JT").
        on_base = abs((y + h) - (edge[1] + edge[3])) <= 0.25 * ref and abs(h - ref) <= 0.25 * ref
        on_top = abs(y - edge[1]) <= 0.15 * ref and 0 <= h - ref <= 0.35 * ref
        if not (on_base or on_top):
            return
        narrow = w <= 0.95 * h
        if not ((narrow and -0.1 * ref <= gap <= 1.4 * ref)
                or (w <= 2.6 * h and -0.1 * ref <= gap <= 0.35 * ref)):
            return
        if left:
            run.insert(0, nb)
        else:
            run.append(nb)
        members.add(nb)


def _colon_specks(glyphs: list[tuple[int, int, int, int]]) -> set[tuple[int, int, int, int]]:
    """Specks that stand one above the other in a column: the two dots of a colon."""
    if not glyphs:
        return set()
    line_h = sorted(b[3] for b in glyphs)[len(glyphs) // 2]
    specks = [b for b in glyphs if b[3] < 0.45 * line_h and b[2] < 0.6 * line_h]
    out = set()
    for i, a in enumerate(specks):
        for b in specks[i + 1:]:
            overlap = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
            if overlap > 0.5 * min(a[2], b[2]) and abs(a[1] - b[1]) > max(a[3], b[3]):
                out |= {a, b}
    return out
