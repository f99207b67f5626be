"""Safe image loading for everything that takes photos (barcodes, waybills).

Photos come from PDAs, phones and uploads, so the bytes are untrusted. The rules:

* the byte size is checked before anything is parsed (``too_large``, HTTP 413);
* the header is read first (Pillow opens lazily) and the pixel count is checked *before* any
  pixel is decoded, so a 20,000 x 20,000 PNG of a few KB (a decompression bomb) is refused in
  microseconds without allocating it (``too_many_pixels``, HTTP 413);
* only common still-image formats are parsed at all (PNG, JPEG, WebP, BMP, GIF, TIFF, PPM);
* animated GIF/WebP/PNG and multi-page TIFF are refused (``multi_frame``): taking "frame 1"
  would silently decode something the sender may not have meant;
* a file that ends early is refused (``truncated``), never decoded with grey padding;
* decoding time and memory are bounded by ``max_pixels``.

A missing or unreadable *path* raises the usual :class:`OSError` (it is not an image problem).
"""

from __future__ import annotations

import io
import os
import re
import warnings
from typing import Final

import numpy as np
from PIL import Image, ImageOps

DEFAULT_MAX_BYTES: Final = 20 * 1024 * 1024  # 20 MB: a 50 MP phone JPEG fits
DEFAULT_MAX_PIXELS: Final = 40_000_000  # 40 MP: ~120 MB as BGR, a few hundred ms to decode
ALLOWED_FORMATS: Final = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF", "PPM")

ERROR_STATUS: Final = {
    "empty": 400,
    "not_an_image": 400,
    "truncated": 400,
    "too_large": 413,
    "too_many_pixels": 413,
    "multi_frame": 400,
}


class ImageError(ValueError):
    """The input is not an image we will decode. ``code`` is stable, ``http_status`` 400 or 413."""

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_STATUS:
            raise ValueError(f"unknown image error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = ERROR_STATUS[code]


Source = str | os.PathLike | bytes | bytearray | memoryview | np.ndarray


def limits_from_settings(settings: object) -> dict[str, int]:
    """``max_bytes``/``max_pixels`` keyword arguments from the ``max_image_*`` settings."""
    mb = getattr(settings, "max_image_mb", None)
    mp = getattr(settings, "max_image_megapixels", None)
    out: dict[str, int] = {}
    if mb:
        out["max_bytes"] = int(mb * 1024 * 1024)
    if mp:
        out["max_pixels"] = int(mp * 1_000_000)
    return out


def load_image(
    source: Source,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    grayscale: bool = False,
) -> np.ndarray:
    """Load a path, encoded bytes or an array as a C-contiguous uint8 BGR (or gray) array.

    Raises :class:`ImageError` for anything that is not one reasonable still image, and
    :class:`OSError` when a path cannot be read.
    """
    if isinstance(source, np.ndarray):
        return _from_array(source, max_pixels=max_pixels, grayscale=grayscale)
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > max_bytes:
            raise ImageError(
                "too_large", f"image is {_mb(len(data))}, the limit is {_mb(max_bytes)}"
            )
    elif isinstance(source, (str, os.PathLike)):
        data = _read_file(source, max_bytes)
    else:
        kind = type(source).__name__
        raise TypeError(f"load_image takes a path, bytes or a numpy array, not {kind}")
    return _decode_bytes(data, max_pixels=max_pixels, grayscale=grayscale)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _read_file(path: str | os.PathLike, max_bytes: int) -> bytes:
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise ImageError("too_large", f"image is {_mb(size)}, the limit is {_mb(max_bytes)}")
        # Read one byte more than allowed: a file that grows (or a FIFO) cannot get past the limit.
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ImageError("too_large", f"image is larger than the limit of {_mb(max_bytes)}")
    return data


def _decode_bytes(data: bytes, *, max_pixels: int, grayscale: bool) -> np.ndarray:
    if not data:
        raise ImageError("empty", "the image file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit replaces Pillow's bomb warning (and its error above 2x limit).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as e:  # far above any sane limit: Pillow's own check
        m = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(m.group(1)) / 1e6:.1f} megapixels" if m else "too many pixels"
        raise ImageError(
            "too_many_pixels", f"image is {size}, the limit is {max_pixels / 1e6:.1f}"
        ) from None
    except Exception:  # Pillow raises many types for garbage (UnidentifiedImageError, ...)
        head = data[:16]
        kind = "a text file" if _looks_like_text(head) else "not a recognised image format"
        raise ImageError(
            "not_an_image",
            f"not an image ({kind}); accepted: {', '.join(f.lower() for f in ALLOWED_FORMATS)}",
        ) from None

    with img:
        width, height = img.size
        if width <= 0 or height <= 0:
            raise ImageError("empty", f"image has no pixels ({width}x{height})")
        if width * height > max_pixels:
            raise ImageError(
                "too_many_pixels",
                f"image is {width}x{height} = {width * height / 1e6:.1f} megapixels, "
                f"the limit is {max_pixels / 1e6:.1f}",
            )
        # is_animated stops looking after the second frame (n_frames would walk all of them).
        if getattr(img, "is_animated", False):
            what = "multi-page" if img.format == "TIFF" else "animated"
            raise ImageError(
                "multi_frame", f"{what} {img.format} with several frames; send one still image"
            )
        if grayscale and img.format == "JPEG" and img.mode in ("RGB", "YCbCr"):
            # Decode only the luma plane: faster and a third of the memory.
            img.draft("L", img.size)
        try:
            img.load()
        except Image.DecompressionBombError as e:
            raise ImageError("too_many_pixels", f"image has too many pixels: {e}") from None
        except Exception as e:  # OSError "image file is truncated", zlib errors, struct errors...
            raise ImageError(
                "truncated", f"image data is truncated or corrupt ({type(e).__name__}: {e})"
            ) from None
        return _to_array(img, grayscale=grayscale)


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _to_array(img: Image.Image, *, grayscale: bool) -> np.ndarray:
    if img.getexif().get(0x0112, 1) != 1:  # EXIF orientation: decode the photo as people see it
        img = ImageOps.exif_transpose(img)
    mode = img.mode
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        # Transparent background -> white, not black: black-on-transparent codes stay readable.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
        mode = img.mode
    if grayscale:
        if mode != "L":
            img = img.convert("L") if mode not in ("I;16", "I", "F") else _to_8bit(img)
        return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
    if mode in ("I;16", "I", "F"):
        img = _to_8bit(img)
    if img.mode != "RGB":
        img = img.convert("RGB")
    rgb = np.asarray(img, dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])  # RGB -> BGR (OpenCV order)


def _to_8bit(img: Image.Image) -> Image.Image:
    return Image.fromarray(_stretch_to_uint8(np.asarray(img)), mode="L")


def _stretch_to_uint8(arr: np.ndarray) -> np.ndarray:
    """16-bit or float pixels -> 0..255, stretched to the range actually used."""
    f = arr.astype(np.float32)
    lo, hi = float(f.min()), float(f.max())
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return ((f - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def _from_array(arr: np.ndarray, *, max_pixels: int, grayscale: bool) -> np.ndarray:
    if arr.size == 0:
        raise ImageError("empty", "the image array is empty")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError("not_an_image", f"array of shape {arr.shape} is not an image")
    height, width = arr.shape[:2]
    if width * height > max_pixels:
        raise ImageError(
            "too_many_pixels",
            f"image is {width}x{height} = {width * height / 1e6:.1f} megapixels, "
            f"the limit is {max_pixels / 1e6:.1f}",
        )
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.number):
            raise ImageError("not_an_image", f"array of dtype {arr.dtype} is not an image")
        arr = _stretch_to_uint8(arr)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]  # BGRA -> BGR
    if grayscale and arr.ndim == 3:
        import cv2  # the array path is used by callers that already have OpenCV loaded

        arr = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_BGR2GRAY)
    elif not grayscale and arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr)
