"""ocr.images.load_image: bad input is refused fast, with a clear code and HTTP status."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scanedge.ocr.images import ImageError, load_image

DATA = Path(__file__).parent / "data" / "barcodes"


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    # A few KB of zlib data that would inflate to width*height bytes of zeros.
    idat = zlib.compress(b"\0" * (1 << 20), 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def code(value: object) -> str:
    with pytest.raises(ImageError) as info:
        load_image(value)  # type: ignore[arg-type]
    assert info.value.message and str(info.value) == info.value.message
    return info.value.code


def test_real_images_load_as_bgr_and_gray() -> None:
    bgr = load_image(DATA / "qrcode-2__2.png")
    gray = load_image(DATA / "qrcode-2__2.png", grayscale=True)
    webp = load_image(str(DATA / "ean13-1__8.webp"))
    assert bgr.dtype == np.uint8 and bgr.ndim == 3 and bgr.shape[2] == 3
    assert gray.ndim == 2 and gray.shape == bgr.shape[:2]
    assert webp.flags["C_CONTIGUOUS"]


def test_bytes_and_path_give_the_same_pixels() -> None:
    path = DATA / "code128-2__12.webp"
    assert np.array_equal(load_image(path), load_image(path.read_bytes()))


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert code(empty) == "empty"
    assert code(b"") == "empty"
    assert code(np.zeros((0, 10), np.uint8)) == "empty"


def test_not_an_image() -> None:
    assert code(b"hello, I am a text file\n") == "not_an_image"
    assert code(bytes(range(256)) * 8) == "not_an_image"
    assert code(b"%PDF-1.7\n...") == "not_an_image"


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated(fmt: str) -> None:
    noise = Image.effect_noise((400, 300), 60).convert("RGB")
    data = encoded(noise, fmt)
    assert code(data[: len(data) // 2]) == "truncated"


def test_decompression_bomb_is_refused_without_allocating() -> None:
    # How fast it is refused is measured in benchmarks/decode.py; here: refused from the header,
    # with no pixel buffer ever allocated.
    bomb = png_header_only(20_000, 20_000)
    assert len(bomb) < 20_000
    tracemalloc.start()
    with pytest.raises(ImageError) as info:
        load_image(bomb)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert info.value.code == "too_many_pixels" and info.value.status == 413
    assert "megapixels" in info.value.message
    assert peak < 5_000_000  # 400 MB if it had been decoded


def test_pixel_limit_is_configurable() -> None:
    img = encoded(Image.new("L", (3000, 2000), 255), "PNG")
    assert load_image(img).shape == (2000, 3000, 3)
    with pytest.raises(ImageError) as info:
        load_image(img, max_pixels=5_000_000)
    assert info.value.code == "too_many_pixels" and "3000x2000" in info.value.message


def test_too_many_bytes(tmp_path: Path) -> None:
    big = tmp_path / "big.jpg"
    with open(big, "wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse: no 50 MB written to the disk
    with pytest.raises(ImageError) as info:
        load_image(big)
    assert info.value.code == "too_large" and info.value.status == 413
    with pytest.raises(ImageError) as info:
        load_image(b"\xff" * 2048, max_bytes=1024)
    assert info.value.code == "too_large"


def test_animated_gif_and_multipage_tiff_are_refused() -> None:
    frames = [Image.new("L", (64, 64), c) for c in (0, 128, 255)]
    gif = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    tiff = encoded(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    for data in (gif, tiff):
        with pytest.raises(ImageError) as info:
            load_image(data)
        assert info.value.code == "multi_frame" and info.value.status == 400
    # One still frame in the same containers is fine.
    assert load_image(encoded(frames[0], "GIF")).shape == (64, 64, 3)
    assert load_image(encoded(frames[0], "TIFF")).shape == (64, 64, 3)


def test_transparent_background_becomes_white() -> None:
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))  # black but fully transparent
    rgba.putpixel((5, 5), (0, 0, 0, 255))
    gray = load_image(encoded(rgba, "PNG"), grayscale=True)
    assert gray[0, 0] == 255 and gray[5, 5] == 0


def test_exif_orientation_is_applied() -> None:
    img = Image.new("L", (40, 20), 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: people see it 20 wide, 40 high
    data = encoded(img, "JPEG", exif=exif.tobytes())
    assert load_image(data, grayscale=True).shape == (40, 20)


def test_arrays() -> None:
    bgra = np.zeros((5, 6, 4), np.uint8)
    assert load_image(bgra).shape == (5, 6, 3)
    assert load_image(np.zeros((5, 6), np.uint8)).shape == (5, 6, 3)
    assert load_image(np.full((5, 6, 3), 200, np.uint8), grayscale=True).shape == (5, 6)
    sixteen = np.arange(30, dtype=np.uint16).reshape(5, 6) * 1000
    out = load_image(sixteen, grayscale=True)
    assert out.dtype == np.uint8 and out.max() == 255 and out.min() == 0
    assert code(np.zeros((5, 6, 7), np.uint8)) == "not_an_image"
    with pytest.raises(ImageError):
        load_image(np.zeros((5000, 5000), np.uint8), max_pixels=1_000_000)


def test_missing_path_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "nope.png")
