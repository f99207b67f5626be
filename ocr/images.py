"""Safe image loading for everything that takes photos (barcodes, waybills).

Photos come from PDAs, phones and uploads, so the bytes are untrusted. The rules:

* the byte size is checked before anything is parsed (``too_large``, HTTP 413);
* the header is read first (Pillow opens lazily) and the pixel count and the shape are checked
  *before* any pixel is decoded, so a 20,000 x 20,000 PNG of a few KB (a decompression bomb) is
  refused in microseconds without allocating it (``too_many_pixels``, HTTP 413), and so is a
  39,000,000 x 1 strip (``bad_shape``, HTTP 400);
* only common still-image formats are parsed at all (PNG, JPEG, WebP, BMP, GIF, TIFF, PPM);
* animated GIF/WebP/PNG and multi-page TIFF are refused (``multi_frame``): taking "frame 1"
  would silently decode something the sender may not have meant;
* a file that ends early is refused (``truncated``), never decoded with grey padding;
* **memory is bounded by what the caller keeps, not by the file**: with ``max_side`` the image
  is reduced *while* it is decoded. A JPEG is decoded at 1/2, 1/4 or 1/8 size by libjpeg
  (Pillow's ``draft``); a PNG is inflated in bands of rows (``_png_bands``), each band turned
  gray (transparency onto white) and shrunk before the next one is read, so a 6300 x 6300 RGBA
  PNG never exists at full size (it would be 160 MB). Other formats are decoded whole by Pillow
  and then reduced band by band; :meth:`Pending.cost` says beforehand how many bytes any of this
  will take, so that callers (``ocr.memory``) can refuse or queue the work before it starts.

A missing or unreadable *path* raises the usual :class:`OSError` (it is not an image problem).
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image

from scanedge.edge.domain.refusal import Refusal

DEFAULT_MAX_BYTES: Final = 20 * 1024 * 1024  # 20 MB: a 50 MP phone JPEG fits
DEFAULT_MAX_PIXELS: Final = 40_000_000  # 40 MP: a 6300 x 6300 photo
ALLOWED_FORMATS: Final = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF", "PPM")
# Shapes that are no photo: a 40 MP limit still lets a 39,000,000 x 1 strip through, and a strip
# like that breaks every image library's assumptions (and holds no readable code).
MAX_SIDE: Final = 30_000  # px; 40 MP at this length is still 1,333 px the other way
MAX_ASPECT: Final = 100  # longer side / shorter side
BAND_BYTES: Final = 2 * 1024 * 1024  # decoded bytes per band when an image is read in bands


class ImageError(Refusal, ValueError):
    """The input is not an image we will decode: ``empty``, ``not_an_image``, ``truncated``,
    ``bad_shape``, ``multi_frame`` (400), ``too_large``, ``too_many_pixels`` (413), ``busy``
    (503, the memory budget; edge/domain/refusal.py has the statuses)."""


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
    max_side: int | None = None,
    max_area: int | None = None,
) -> np.ndarray:
    """Load a path, encoded bytes or an array as a C-contiguous uint8 BGR (or gray) array.

    With ``max_side`` (``max_area``) the result is at most that many pixels on its longer side
    (in all), and the image is reduced while it is decoded (see the module's doc). Raises
    :class:`ImageError` for anything that is not one reasonable still image, and
    :class:`OSError` when a path cannot be read.
    """
    return open_image(source, max_bytes=max_bytes, max_pixels=max_pixels).load(
        grayscale=grayscale, max_side=max_side, max_area=max_area)


def open_image(source: Source, *, max_bytes: int = DEFAULT_MAX_BYTES,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> Pending:
    """Read the bytes and the header, check them; no pixel is decoded yet."""
    if isinstance(source, np.ndarray):
        return _pending_array(source, max_pixels)
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
    return _pending_bytes(data, max_pixels)


# --------------------------------------------------------------------------------------------
# header


@dataclass(frozen=True)
class _Png:
    """What the PNG reader needs from IHDR (and the palette chunks)."""

    bit_depth: int
    color_type: int
    interlace: int
    palette: bytes = b""  # PLTE: RGB triples
    palette_alpha: bytes = b""  # tRNS of a palette image: one alpha per index
    orientation: int = 1  # from an eXIf chunk before the image data

    @property
    def channels(self) -> int:
        return {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[self.color_type]

    @property
    def unit(self) -> int:
        """Bytes per pixel as PNG's filters count them (at least 1)."""
        return max(1, self.channels * self.bit_depth // 8)

    def row_bytes(self, width: int) -> int:
        return (width * self.channels * self.bit_depth + 7) // 8

    @property
    def in_bands(self) -> bool:
        # A band is re-wrapped as an 8-bit PNG of the same filter unit (see _png_bands): not
        # possible for 16-bit colour (6 or 8 bytes a pixel) or interlaced images.
        return self.interlace == 0 and self.unit <= 4


@dataclass
class Pending:
    """An image whose header was read and checked; :meth:`load` decodes it."""

    format: str  # PIL format name, or "array"
    mode: str  # PIL mode of the decoded image (or the array's kind)
    width: int
    height: int
    _data: bytes | None = None
    _array: np.ndarray | None = None
    _png: _Png | None = None

    @property
    def pixels(self) -> int:
        return self.width * self.height

    def out_size(self, max_side: int | None, max_area: int | None = None) -> tuple[int, int]:
        """(width, height) that :meth:`load` returns (before any EXIF turn): at most
        ``max_side`` on the longer side and ``max_area`` pixels."""
        longest = max(self.width, self.height)
        s = 1.0
        if max_side and longest > max_side:
            s = max_side / longest
        if max_area and self.pixels * s * s > max_area:
            s = (max_area / self.pixels) ** 0.5
        if s >= 1.0:
            return self.width, self.height
        return max(1, int(self.width * s)), max(1, int(self.height * s))

    def cost(self, *, grayscale: bool = True, max_side: int | None = None,
             max_area: int | None = None) -> int:
        """Bytes that :meth:`load` will hold at its peak (the result included), estimated."""
        ch = 1 if grayscale else 3
        ow, oh = self.out_size(max_side, max_area)
        out = ow * oh * ch
        depth = 2 if self.mode.startswith("I;16") else 1
        mid = self.height * ow * ch * depth if (ow, oh) != (self.width, self.height) else 0
        band = 6 * BAND_BYTES
        if self._array is not None:
            return out + mid + band
        if self.format == "PNG" and self._png is not None and self._png.in_bands:
            return out + mid + band
        if self.format == "JPEG":
            s = _jpeg_scale(self.width, self.height, max(ow, oh))
            w, h = -(-self.width // s), -(-self.height // s)
            decoded = w * h * (1 if grayscale and self.mode in ("L", "RGB", "YCbCr") else 4)
            return decoded + out + mid + band
        whole = self.pixels * _PIL_BYTES.get(self.mode, 4)
        if self.format == "WEBP":  # libwebp's own buffer, copied into Pillow's image
            whole += self.pixels * 4
        return whole + out + mid + band

    def load(self, *, grayscale: bool = False, max_side: int | None = None,
             max_area: int | None = None) -> np.ndarray:
        ow, oh = self.out_size(max_side, max_area)
        if self._array is not None:
            out = _from_array(self._array, grayscale=grayscale, size=(ow, oh))
            self._array = None
            return out
        assert self._data is not None
        data, self._data = self._data, None  # one load per Pending: let the bytes go early
        if self.format == "PNG" and self._png is not None and self._png.in_bands:
            out = _load_png_bands(data, self._png, self.width, self.height, grayscale, (ow, oh))
            return _orient(out, self._png.orientation)
        return _load_pillow(data, grayscale=grayscale, size=(ow, oh))


_PIL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}


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


def check_shape(width: int, height: int, max_pixels: int) -> None:
    """``empty``, ``too_many_pixels`` or ``bad_shape`` for a size no photo has."""
    if width <= 0 or height <= 0:
        raise ImageError("empty", f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(
            "too_many_pixels",
            f"image is {width}x{height} = {width * height / 1e6:.1f} megapixels, "
            f"the limit is {max_pixels / 1e6:.1f}",
        )
    longest, shortest = max(width, height), min(width, height)
    if longest > MAX_SIDE:
        raise ImageError("bad_shape", f"image is {width}x{height}: a side longer than "
                                      f"{MAX_SIDE} px is not a photo")
    if longest > MAX_ASPECT * shortest:
        raise ImageError("bad_shape", f"image is {width}x{height}: more than {MAX_ASPECT} "
                                      "times longer than wide is not a photo")


def _open_pil(data: bytes) -> Image.Image:
    if not data:
        raise ImageError("empty", "the image file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit replaces Pillow's bomb warning (and its error above 2x limit).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as e:  # far above any sane limit: Pillow's own check
        m = re.search(r"\((\d+) pixels\)", str(e))
        size = f"{int(m.group(1)) / 1e6:.1f} megapixels" if m else "too many pixels"
        raise ImageError("too_many_pixels", f"image is {size}") from None
    except Exception:  # Pillow raises many types for garbage (UnidentifiedImageError, ...)
        kind = "a text file" if _looks_like_text(data[:16]) else "not a recognised image format"
        raise ImageError(
            "not_an_image",
            f"not an image ({kind}); accepted: {', '.join(f.lower() for f in ALLOWED_FORMATS)}",
        ) from None


def _pending_bytes(data: bytes, max_pixels: int) -> Pending:
    img = _open_pil(data)
    with img:
        width, height = img.size
        check_shape(width, height, max_pixels)
        # is_animated stops looking after the second frame (n_frames would walk all of them).
        if getattr(img, "is_animated", False):
            what = "multi-page" if img.format == "TIFF" else "animated"
            raise ImageError(
                "multi_frame", f"{what} {img.format} with several frames; send one still image"
            )
        png = _png_header(data) if img.format == "PNG" else None
        return Pending(str(img.format), img.mode, width, height, _data=data, _png=png)


def _pending_array(arr: np.ndarray, max_pixels: int) -> Pending:
    if arr.size == 0:
        raise ImageError("empty", "the image array is empty")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ImageError("not_an_image", f"array of shape {arr.shape} is not an image")
    if not (arr.dtype == np.bool_ or np.issubdtype(arr.dtype, np.number)):
        raise ImageError("not_an_image", f"array of dtype {arr.dtype} is not an image")
    height, width = arr.shape[:2]
    check_shape(width, height, max_pixels)
    return Pending("array", "L" if arr.ndim == 2 else "BGR", width, height, _array=arr)


def _looks_like_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# output: reduce band by band


class _Reducer:
    """Collects rows of the decoded image and shrinks them to the output size.

    Each band is shrunk across (INTER_AREA) as it arrives; the rows are shrunk down once at the
    end. Area averaging is separable, so this is the same as one resize of the whole image,
    without ever holding it.
    """

    def __init__(self, width: int, height: int, size: tuple[int, int], tail: tuple[int, ...],
                 dtype: type = np.uint8) -> None:
        self.width, self.height = width, height
        self.out_w, self.out_h = size
        self.rows = np.empty((height, self.out_w, *tail), dtype)
        self.y = 0

    def add(self, band: np.ndarray) -> None:
        import cv2

        n = band.shape[0]
        if self.out_w != self.width:
            band = cv2.resize(band, (self.out_w, n), interpolation=cv2.INTER_AREA)
            if band.ndim < self.rows.ndim:  # cv2 drops a trailing axis of 1
                band = band.reshape(n, self.out_w, *self.rows.shape[2:])
        self.rows[self.y:self.y + n] = band
        self.y += n

    def result(self) -> np.ndarray:
        import cv2

        if self.y != self.height:
            raise ImageError("truncated", f"image data ends after {self.y} of {self.height} rows")
        if self.out_h == self.height:
            return self.rows
        rows, self.rows = self.rows, np.empty(0, np.uint8)
        return cv2.resize(rows, (self.out_w, self.out_h), interpolation=cv2.INTER_AREA)


def _band_rows(row_bytes: int) -> int:
    return max(1, BAND_BYTES // max(1, row_bytes))


def _on_white(color: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Transparent -> white: 255 - (255 - c) * a / 255, in 8-bit OpenCV arithmetic (rounded;
    no float or 16-bit copy of anything)."""
    import cv2

    if color.ndim == 3:
        alpha = cv2.merge([alpha] * color.shape[2])
    ink = cv2.multiply(cv2.bitwise_not(color), alpha, scale=1.0 / 255.0)
    return cv2.bitwise_not(ink)


def _gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)


def _finish_rgb(rgb: np.ndarray, alpha: np.ndarray | None, grayscale: bool) -> np.ndarray:
    """RGB(+alpha) band -> gray or BGR band, transparency onto white."""
    if grayscale:
        g = _gray(rgb)
        return g if alpha is None else _on_white(g, alpha)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    return bgr if alpha is None else _on_white(bgr, alpha)


def _finish_rgba(rgba: np.ndarray, grayscale: bool) -> np.ndarray:
    """A contiguous RGBA band -> gray or BGR on white (OpenCV: no strided copies)."""
    import cv2

    alpha = cv2.extractChannel(rgba, 3)
    color = cv2.cvtColor(rgba, cv2.COLOR_RGBA2GRAY if grayscale else cv2.COLOR_RGBA2BGR)
    return _on_white(color, alpha)


def _finish_gray(g: np.ndarray, alpha: np.ndarray | None, grayscale: bool) -> np.ndarray:
    if alpha is not None:
        g = _on_white(g, alpha)
    return g if grayscale else np.repeat(g[:, :, None], 3, axis=2)


def _stretch(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """16-bit or float pixels -> 0..255, stretched to [lo, hi] (the range the image uses)."""
    import cv2

    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    scale = 255.0 / (hi - lo)
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype not in (np.uint8, np.uint16, np.int16, np.int32, np.float32, np.float64):
        arr = arr.astype(np.float32)
    return cv2.convertScaleAbs(arr, alpha=scale, beta=-lo * scale)


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (2..8) the way Pillow's ``exif_transpose`` does."""
    if orientation == 2:
        arr = arr[:, ::-1]
    elif orientation == 3:
        arr = arr[::-1, ::-1]
    elif orientation == 4:
        arr = arr[::-1]
    elif orientation == 5:
        arr = np.swapaxes(arr, 0, 1)
    elif orientation == 6:
        arr = np.rot90(arr, -1)
    elif orientation == 7:
        arr = np.swapaxes(arr[::-1, ::-1], 0, 1)
    elif orientation == 8:
        arr = np.rot90(arr, 1)
    return np.ascontiguousarray(arr)


# --------------------------------------------------------------------------------------------
# PNG in bands

_PNG_SIG = b"\x89PNG\r\n\x1a\n"
# The 8-bit PNG type with the same filter unit (bytes per pixel): a band of any PNG with that
# unit is re-wrapped as one, so that Pillow undoes the filters losslessly (16-bit gray is
# 8-bit gray+alpha, 1-4 bit images are 8-bit gray as wide as their rows in bytes).
_CARRIER = {1: 0, 2: 4, 3: 2, 4: 6}


def _chunks(data: bytes):
    """(type, payload) of each chunk after the signature, up to IEND; truncation raises."""
    pos, view = 8, memoryview(data)
    while True:
        if pos + 8 > len(data):
            raise ImageError("truncated", "PNG data ends before its IEND chunk")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 8 + length
        if length > 0x7FFFFFFF or end + 4 > len(data):
            raise ImageError("truncated", f"PNG chunk {kind!r} runs past the end of the file")
        yield kind, view[pos + 8:end]
        if kind == b"IEND":
            return
        pos = end + 4


def _png_header(data: bytes) -> _Png:
    """IHDR, PLTE, tRNS and eXIf (Pillow checked the signature and IHDR already). Only the
    chunk headers are walked: the image data is not touched."""
    _w, _h, depth, ctype, _c, _f, interlace = struct.unpack(">IIBBBBB", data[16:29])
    palette = palette_alpha = b""
    orientation = 1
    try:
        for kind, payload in _chunks(data):
            if kind == b"PLTE":
                palette = bytes(payload)
            elif kind == b"tRNS" and ctype == 3:
                palette_alpha = bytes(payload)
            elif kind == b"eXIf":
                orientation = _exif_orientation(bytes(payload))
    except ImageError:
        pass  # a truncated file is reported when its pixels are read
    return _Png(depth, ctype, interlace, palette, palette_alpha, orientation)


def _exif_orientation(payload: bytes) -> int:
    exif = Image.Exif()
    try:
        exif.load(payload if payload.startswith(b"Exif") else b"Exif\x00\x00" + payload)
        value = int(exif.get(0x0112, 1))
    except Exception:  # a broken EXIF block is no reason to refuse the photo
        return 1
    return value if 1 <= value <= 8 else 1


def _png_bands(data: bytes, png: _Png, width: int, height: int):
    """Yield the unfiltered rows of a PNG, a band at a time, as (rows, row_bytes) uint8.

    The image data is one zlib stream of filtered rows (a filter byte, then the row). It is
    inflated here with a bounded output per step; each band of rows is re-wrapped as a small
    8-bit PNG whose first row is the previous band's last row, unfiltered ("None" filter), so
    that the "Up", "Average" and "Paeth" filters of the band's first real row see the right
    row above; Pillow undoes the filters in C, and the extra row is dropped.
    """
    row_bytes = png.row_bytes(width)
    stride = row_bytes + 1
    rows_per_band = _band_rows(row_bytes)
    carrier_width = row_bytes // png.unit
    inflate = zlib.decompressobj()
    pending = bytearray()
    seed: bytes | None = None
    done = 0

    def band(n: int) -> np.ndarray:
        nonlocal seed
        rows = bytearray()
        if seed is not None:
            rows += b"\x00"
            rows += seed
        rows += memoryview(pending)[:n * stride]
        del pending[:n * stride]
        total = n + (seed is not None)
        ihdr = struct.pack(">IIBBBBB", carrier_width, total, 8, _CARRIER[png.unit], 0, 0, 0)
        blob = io.BytesIO()
        blob.write(_PNG_SIG)
        _chunk(blob, b"IHDR", ihdr)
        _chunk(blob, b"IDAT", zlib.compress(rows, 0))
        _chunk(blob, b"IEND", b"")
        del rows
        blob.seek(0)
        try:
            with Image.open(blob, formats=("PNG",)) as im:
                im.load()
                raw = np.asarray(im).reshape(total, row_bytes)
        except Exception as e:  # a bad filter type, ...
            raise ImageError("truncated", f"PNG image data is corrupt ({e})") from None
        if seed is not None:
            raw = raw[1:]
        seed = raw[-1].tobytes()
        return raw

    for kind, payload in _chunks(data):
        if kind == b"IEND":
            break
        if kind != b"IDAT":
            continue
        chunk = bytes(payload)
        while chunk and done < height:
            try:
                pending += inflate.decompress(chunk, rows_per_band * stride)
            except zlib.error as e:
                raise ImageError("truncated", f"PNG image data is corrupt ({e})") from None
            chunk = inflate.unconsumed_tail
            while len(pending) >= rows_per_band * stride and done < height:
                n = min(rows_per_band, height - done)
                yield band(n)
                done += n
        if done >= height:
            break
    while done < height and len(pending) >= stride:
        n = min(rows_per_band, height - done, len(pending) // stride)
        yield band(n)
        done += n
    if done < height:
        raise ImageError("truncated", f"PNG image data ends after {done} of {height} rows")


def _chunk(out: io.BytesIO, kind: bytes, payload: bytes) -> None:
    out.write(struct.pack(">I", len(payload)))
    out.write(kind)
    out.write(payload)
    out.write(struct.pack(">I", zlib.crc32(payload, zlib.crc32(kind)) & 0xFFFFFFFF))


def _unpack_bits(raw: np.ndarray, depth: int, width: int) -> np.ndarray:
    """Rows of 1, 2 or 4-bit samples -> one uint8 sample per pixel (values 0..2**depth-1)."""
    if depth == 8:
        return raw[:, :width]
    per = 8 // depth
    shifts = np.arange(8 - depth, -1, -depth, dtype=np.uint8)  # high bits first
    vals = (raw[:, :, None] >> shifts) & ((1 << depth) - 1)
    return vals.reshape(raw.shape[0], raw.shape[1] * per)[:, :width]


def _palette_lut(png: _Png) -> tuple[np.ndarray, np.ndarray | None]:
    pal = np.frombuffer(png.palette.ljust(768, b"\0")[:768], np.uint8).reshape(256, 3)
    alpha = None
    if png.palette_alpha:
        alpha = np.full(256, 255, np.uint8)
        given = np.frombuffer(png.palette_alpha[:256], np.uint8)
        alpha[:len(given)] = given
    return pal, alpha


def _load_png_bands(data: bytes, png: _Png, width: int, height: int, grayscale: bool,
                    size: tuple[int, int]) -> np.ndarray:
    depth, ctype = png.bit_depth, png.color_type
    sixteen_gray = ctype == 0 and depth == 16
    tail = () if grayscale else (3,)
    out = _Reducer(width, height, size, tail, np.uint16 if sixteen_gray else np.uint8)
    lut = None
    if ctype == 3:
        pal, alpha = _palette_lut(png)
        colors = _finish_rgb(pal[None], None if alpha is None else alpha[None], grayscale)[0]
        lut = colors  # index -> gray (256,) or BGR (256, 3), transparency already on white
    for raw in _png_bands(data, png, width, height):
        n = raw.shape[0]
        if ctype == 3:
            band = lut[_unpack_bits(raw, depth, width)]
        elif ctype == 0:
            if sixteen_gray:
                band = raw.view(">u2").astype(np.uint16)
                band = band if grayscale else np.repeat(band[:, :, None], 3, axis=2)
            else:
                g = _unpack_bits(raw, depth, width)
                if depth < 8:
                    g = (g * (255 // ((1 << depth) - 1))).astype(np.uint8)
                band = _finish_gray(np.ascontiguousarray(g), None, grayscale)
        elif ctype == 4:  # gray + alpha, 8 or 16 bit (16: the high bytes)
            px = raw.reshape(n, width, 2 * (depth // 8))
            step = depth // 8
            band = _finish_gray(np.ascontiguousarray(px[:, :, 0]),
                                np.ascontiguousarray(px[:, :, step]), grayscale)
        elif ctype == 2:
            band = _finish_rgb(raw.reshape(n, width, 3), None, grayscale)
        else:  # 6: RGBA 8-bit
            band = _finish_rgba(raw.reshape(n, width, 4), grayscale)
        out.add(band)
    result = out.result()
    if sixteen_gray:
        import cv2

        lo, hi, _, _ = cv2.minMaxLoc(result if result.ndim == 2 else result[:, :, 0])
        result = _stretch(result, lo, hi)
    return np.ascontiguousarray(result)


# --------------------------------------------------------------------------------------------
# everything else: Pillow


def _jpeg_scale(width: int, height: int, max_side: int | None) -> int:
    """libjpeg decodes at 1/2, 1/4 or 1/8 size for free: the largest such reduction that keeps
    the longer side at least 3/4 of ``max_side`` (then it is resized to fit exactly)."""
    longest = max(width, height)
    if not max_side or longest <= max_side:
        return 1
    for s in (8, 4, 2):
        if longest / s >= 0.75 * max_side:
            return s
    return 1


def _load_pillow(data: bytes, *, grayscale: bool, size: tuple[int, int]) -> np.ndarray:
    img = _open_pil(data)
    with img:
        width, height = img.size
        if img.format == "JPEG":
            s = _jpeg_scale(width, height, max(size))
            mode = "L" if grayscale and img.mode in ("RGB", "YCbCr", "L") else None
            if s > 1 or mode:
                # Decode only the luma plane (a third of the memory) and/or at 1/s size.
                img.draft(mode, (-(-width // s), -(-height // s)))
        try:
            img.load()
        except Image.DecompressionBombError as e:
            raise ImageError("too_many_pixels", f"image has too many pixels: {e}") from None
        except Exception as e:  # OSError "image file is truncated", zlib errors, struct errors...
            raise ImageError(
                "truncated", f"image data is truncated or corrupt ({type(e).__name__}: {e})"
            ) from None
        orientation = _pil_orientation(img)  # after load: TIFF reads its tags then
        out = _reduce_pil(img, grayscale=grayscale, size=size if img.size == (width, height)
                          else _fit(img.size, size))
    return _orient(out, orientation)


def _fit(have: tuple[int, int], want: tuple[int, int]) -> tuple[int, int]:
    """The output size for an image that libjpeg already reduced: never larger than it is."""
    return (min(have[0], want[0]), min(have[1], want[1]))


def _pil_orientation(img: Image.Image) -> int:
    try:
        value = int(img.getexif().get(0x0112, 1))
    except Exception:
        return 1
    return value if 1 <= value <= 8 else 1


def _reduce_pil(img: Image.Image, *, grayscale: bool, size: tuple[int, int]) -> np.ndarray:
    """A loaded Pillow image -> uint8 gray/BGR at ``size``, converted a band at a time."""
    width, height = img.size
    mode = img.mode
    lo = hi = 0.0
    if mode.startswith("I") or mode == "F":
        lo, hi = img.getextrema()  # type: ignore[misc]
    lut = None
    if mode in ("P", "PA"):
        pal = np.frombuffer(bytes(img.getpalette() or []).ljust(768, b"\0")[:768],
                            np.uint8).reshape(256, 3)
        trans = img.info.get("transparency") if mode == "P" else None
        alpha = None
        if isinstance(trans, int):
            alpha = np.full(256, 255, np.uint8)
            alpha[trans] = 0
        elif isinstance(trans, bytes):
            alpha = np.full(256, 255, np.uint8)
            alpha[:len(trans[:256])] = np.frombuffer(trans[:256], np.uint8)
        lut = (pal, alpha)
    out = _Reducer(width, height, size, () if grayscale else (3,))
    rows = _band_rows(width * 4)
    for y in range(0, height, rows):
        part = img.crop((0, y, width, min(height, y + rows)))
        out.add(_pil_band(part, mode, grayscale, lut, lo, hi))
    return np.ascontiguousarray(out.result())


def _pil_band(part: Image.Image, mode: str, grayscale: bool, lut, lo: float,
              hi: float) -> np.ndarray:
    if mode == "1":
        return _finish_gray(np.asarray(part.convert("L")), None, grayscale)
    if mode in ("P", "PA"):
        pal, alpha = lut
        arr = np.asarray(part)
        idx = arr if mode == "P" else arr[:, :, 0]
        a = None
        if mode == "PA":
            a = np.ascontiguousarray(arr[:, :, 1])
        elif alpha is not None:
            a = alpha[idx]
        return _finish_rgb(pal[idx], a, grayscale)
    if mode == "L":
        return _finish_gray(np.asarray(part), None, grayscale)
    if mode == "LA":
        arr = np.asarray(part)
        return _finish_gray(np.ascontiguousarray(arr[:, :, 0]),
                            np.ascontiguousarray(arr[:, :, 1]), grayscale)
    if mode.startswith("I") or mode == "F":
        return _finish_gray(_stretch(np.asarray(part), lo, hi), None, grayscale)
    if mode == "RGB":
        return _finish_rgb(np.asarray(part), None, grayscale)
    if mode == "RGBA":
        return _finish_rgba(np.asarray(part), grayscale)
    # CMYK, YCbCr, LAB, RGBa, La, ...: Pillow converts the band
    has_alpha = "A" in mode or "a" in mode
    conv = np.asarray(part.convert("RGBA" if has_alpha else "RGB"))
    return _finish_rgba(conv, grayscale) if has_alpha else _finish_rgb(conv, None, grayscale)


# --------------------------------------------------------------------------------------------
# arrays


def _from_array(arr: np.ndarray, *, grayscale: bool, size: tuple[int, int]) -> np.ndarray:
    import cv2

    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.dtype == np.bool_:
        arr = arr.view(np.uint8) * np.uint8(255)
    elif arr.dtype != np.uint8:
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr = _stretch(np.nan_to_num(arr) if arr.dtype.kind == "f" else arr, lo, hi)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]  # BGRA -> BGR
    arr = np.ascontiguousarray(arr)
    if (arr.shape[1], arr.shape[0]) != size:
        arr = cv2.resize(arr, size, interpolation=cv2.INTER_AREA)
    if grayscale and arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGR2GRAY)
    elif not grayscale and arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr)
