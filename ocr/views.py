"""OpenCV preprocessing for the fallback steps: each function turns the grayscale input into
one or more :class:`~ocr.readers.View`s (with the transform back to input pixels).

Which ones run, and in which order, is decided in :mod:`ocr.decode` from measurements
(``benchmarks/decode.py``).
"""

from __future__ import annotations

import math
import threading

import cv2
import numpy as np

from scanedge.ocr.readers import View, identity_view

_local = threading.local()  # OpenCV detectors are not thread-safe: one per thread


def warm_up() -> None:
    """Import the readers and build the detectors once, outside any timed decode."""
    import zxingcpp
    from PIL import Image
    from pyzbar import pyzbar

    import scanedge.ocr.validate  # noqa: F401  (biip's tables load on import)

    Image.init()  # Pillow imports its format plugins on the first open
    blank = np.full((16, 16), 255, np.uint8)
    zxingcpp.read_barcodes(blank)
    pyzbar.decode(blank)  # loads libzbar on first use
    _barcode_detector()


def scaled(gray: np.ndarray, factor: float, name: str) -> View:
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    out = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=interp)
    sx = gray.shape[1] / out.shape[1]
    sy = gray.shape[0] / out.shape[0]
    return View(out, np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0]]), name)


def fit_within(gray: np.ndarray, max_side: int, name: str = "fast") -> View:
    """The image scaled down so that its longer side is at most ``max_side`` (never up)."""
    longest = max(gray.shape[:2])
    if longest <= max_side:
        return identity_view(gray, name)
    return scaled(gray, max_side / longest, name)


def clahe(gray: np.ndarray) -> View:
    """Local contrast for dim, unevenly lit photos (glare on one side, shadow on the other)."""
    c = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8))
    return identity_view(c.apply(gray), "clahe")


def stretch(gray: np.ndarray) -> View:
    """Global contrast stretch (percentiles, so a few glare pixels do not spoil it)."""
    lo, hi = np.percentile(gray, (1, 99))
    if hi - lo < 8:
        return identity_view(gray, "stretch")
    out = np.clip((gray.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return identity_view(out, "stretch")


def otsu(gray: np.ndarray) -> View:
    blurred = cv2.GaussianBlur(gray, (3, 3), 0)
    _, out = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return identity_view(out, "otsu")


def sharpen(gray: np.ndarray) -> View:
    """Unsharp mask: restores bar edges of a slightly out-of-focus photo."""
    blurred = cv2.GaussianBlur(gray, (0, 0), 2.0)
    out = cv2.addWeighted(gray, 2.0, blurred, -1.0, 0)
    return identity_view(out, "sharpen")


def rotated(gray: np.ndarray, degrees: float, name: str | None = None) -> View:
    """Rotate by ``degrees`` (counter-clockwise) on a canvas big enough to keep every pixel.

    zxing-cpp tries 0/90/180/270 degrees itself; 1D codes tilted in between need this.
    """
    h, w = gray.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), degrees, 1.0)
    cos, sin = abs(m[0, 0]), abs(m[0, 1])
    nw, nh = math.ceil(h * sin + w * cos), math.ceil(h * cos + w * sin)
    m[0, 2] += nw / 2.0 - w / 2.0
    m[1, 2] += nh / 2.0 - h / 2.0
    out = cv2.warpAffine(gray, m, (nw, nh), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return View(out, cv2.invertAffineTransform(m), name or f"rot{degrees:+.0f}")


def dominant_angle(gray: np.ndarray) -> float | None:
    """The tilt of the strongest straight-edge direction (bars, PDF417 rows), in degrees.

    The magnitude-weighted histogram of gradient directions of a 1D code or a PDF417 peaks at
    the normal of its bars; rotating by the returned angle turns that normal horizontal (bars
    upright), which is where the readers look. None when no direction stands out (clutter).
    """
    small = fit_within(gray, 400).gray.astype(np.float32)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    mag = cv2.magnitude(gx, gy)
    ang = (np.degrees(np.arctan2(gy, gx)) + 180.0) % 180.0
    hist, _ = np.histogram(ang, bins=90, range=(0.0, 180.0), weights=mag)
    hist = np.convolve(np.concatenate([hist[-2:], hist, hist[:2]]), np.ones(5) / 5, "valid")
    total = hist.sum()
    if total <= 0:
        return None
    peak = int(np.argmax(hist))
    if hist[peak] < 2.5 * total / len(hist):  # not much above a flat histogram
        return None
    phi = (peak + 0.5) * 2.0
    return phi - 180.0 if phi > 90.0 else phi


def _barcode_detector():
    det = getattr(_local, "barcode", None)
    if det is None:
        det = cv2.barcode.BarcodeDetector()
        _local.barcode = det
    return det


def locate_1d(gray: np.ndarray, *, max_regions: int = 4) -> list[np.ndarray]:
    """Corner points (4x2) of 1D barcode candidates found by OpenCV's gradient-based locator."""
    try:
        ok, corners = _barcode_detector().detect(gray)
    except cv2.error:
        return []
    if not ok or corners is None:
        return []
    quads = [np.asarray(c, dtype=np.float32).reshape(4, 2) for c in corners]
    quads.sort(key=lambda q: -cv2.contourArea(q))
    return quads[:max_regions]


def straightened(gray: np.ndarray, quad: np.ndarray, *, index: int = 0,
                 min_width: int = 400) -> View:
    """Cut a located 1D code out, turned so that its bars are vertical, with quiet zones.

    The locator's box is tight around the bars; quiet zones are added (12% each side) since a
    reader needs them, and the crop is scaled up so that thin bars get a few pixels each.
    """
    rect = cv2.minAreaRect(quad.astype(np.float32))
    (cx, cy), (rw, rh), angle = rect
    # Bars run across the box's short side: make the long side horizontal.
    if rw < rh:
        rw, rh = rh, rw
        angle += 90.0
    out_w = rw * 1.24 + 16
    out_h = max(rh * 1.3, 24.0)
    scale = max(1.0, min(4.0, min_width / max(out_w, 1.0)))
    ow, oh = int(out_w * scale), int(out_h * scale)
    theta = math.radians(angle)
    cos, sin = math.cos(theta), math.sin(theta)
    # Affine map from output pixels to source pixels (centre to centre, rotated, scaled).
    to_src = np.array([
        [cos / scale, -sin / scale, cx - (cos * ow / 2 - sin * oh / 2) / scale],
        [sin / scale, cos / scale, cy - (sin * ow / 2 + cos * oh / 2) / scale],
    ])
    out = cv2.warpAffine(gray, to_src, (ow, oh), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_REPLICATE)
    return View(out, to_src, f"locate1d#{index}")


def crop_around(gray: np.ndarray, quad, *, margin: float = 0.6, min_side: int = 300,
                max_side: int = 1000, name: str = "crop") -> View:
    """An axis-aligned crop around a quad (with margin), scaled up when small.

    Scaled so that the short side reaches ``min_side`` (small codes get pixels to work with)
    but the long side stays within ``max_side`` (a thin strip must not become a huge image).
    """
    pts = np.asarray(quad, dtype=np.float64)
    x0, y0 = pts.min(axis=0)
    x1, y1 = pts.max(axis=0)
    mw, mh = (x1 - x0) * margin + 8, (y1 - y0) * margin + 8
    h, w = gray.shape[:2]
    ix0, iy0 = max(0, int(x0 - mw)), max(0, int(y0 - mh))
    ix1, iy1 = min(w, math.ceil(x1 + mw)), min(h, math.ceil(y1 + mh))
    crop = gray[iy0:iy1, ix0:ix1]
    if crop.size == 0:
        return identity_view(gray, name)
    factor = min(4.0, min_side / max(1, min(crop.shape[:2])),
                 max_side / max(1, max(crop.shape[:2])))
    if factor < 1.0 and max(crop.shape[:2]) <= max_side:
        factor = 1.0
    if factor > 1.0:
        crop = cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    return View(np.ascontiguousarray(crop),
                np.array([[1 / factor, 0.0, ix0], [0.0, 1 / factor, iy0]]), name)
