"""ocr.images reads every kind of image in bounded memory and gives the pixels Pillow gives."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

import scanedge.ocr.images as images
from scanedge.ocr.images import ImageError, load_image, open_image
from tests.test_decode_images import png_header_only

RNG = np.random.default_rng(0)
BASE = RNG.integers(0, 256, (37, 53, 4), dtype=np.uint8)
BASE[5:20, 10:40] = 30  # flat areas: PNG encoders pick other filters there


def encoded(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def reference(data: bytes, grayscale: bool) -> np.ndarray:
    """What Pillow makes of it: EXIF turned, transparency onto white, gray or BGR (a JPEG's
    gray is libjpeg's luma plane, as the loader decodes it)."""
    img = Image.open(io.BytesIO(data))
    if grayscale and img.format == "JPEG":
        img.draft("L", img.size)
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    if img.mode.startswith("I"):
        arr = np.asarray(img).astype(np.float64)
        arr = (arr - arr.min()) * 255.0 / (arr.max() - arr.min())
        img = Image.fromarray(arr.astype(np.uint8))
    if grayscale:
        return np.asarray(img.convert("L"))
    return np.asarray(img.convert("RGB"))[:, :, ::-1]


def png_images() -> dict[str, bytes]:
    p = Image.fromarray(BASE[:, :, :3].copy(), "RGB").quantize(50)
    return {
        "L": encoded(Image.fromarray(BASE[:, :, 0], "L")),
        "LA": encoded(Image.fromarray(BASE[:, :, :2].copy(), "LA")),
        "RGB": encoded(Image.fromarray(BASE[:, :, :3].copy(), "RGB")),
        "RGBA": encoded(Image.fromarray(BASE, "RGBA")),
        "P": encoded(p),
        "P-transparent": encoded(p, transparency=3),
        "P-4bit": encoded(Image.fromarray(BASE[:, :, 0] // 17, "L").convert("P"), bits=4),
        "1bit": encoded(Image.fromarray(BASE[:, :, 0] > 128)),
        "16bit-gray": cv2.imencode(".png", BASE[:, :, 0].astype(np.uint16) * 200 + 1000)[1]
        .tobytes(),
        "opencv-RGBA": cv2.imencode(".png", BASE)[1].tobytes(),
        "16bit-RGBA": cv2.imencode(".png", BASE.astype(np.uint16) * 257)[1].tobytes(),
    }


@pytest.mark.parametrize("band_bytes", [2 * 1024 * 1024, 100, 1], ids=["one-band", "bands",
                                                                        "row-by-row"])
@pytest.mark.parametrize("name", list(png_images()))
def test_png_in_bands_gives_pillows_pixels(name: str, band_bytes: int, monkeypatch) -> None:
    monkeypatch.setattr(images, "BAND_BYTES", band_bytes)
    data = png_images()[name]
    for gray in (True, False):
        got, want = load_image(data, grayscale=gray), reference(data, gray)
        assert got.shape == want.shape and got.dtype == np.uint8
        assert np.abs(got.astype(int) - want).max() <= 1, name


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "GIF", "BMP", "TIFF", "PPM"])
def test_other_formats(fmt: str) -> None:
    img = Image.fromarray(BASE[:, :, :3].copy(), "RGB")
    data = encoded(img if fmt != "GIF" else img.quantize(64), fmt,
                   **({"quality": 95} if fmt == "JPEG" else {}))
    got = load_image(data, grayscale=False)
    assert np.abs(got.astype(int) - reference(data, False)).max() <= 1
    gray = load_image(data, grayscale=True)
    assert np.abs(gray.astype(int) - reference(data, True)).max() <= 1


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF"])
def test_every_exif_orientation(fmt: str) -> None:
    arr = RNG.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        data = encoded(Image.fromarray(arr, "RGB"), fmt, exif=exif.tobytes(),
                       **({"quality": 100} if fmt == "JPEG" else {}))
        got = load_image(data, grayscale=True)
        want = reference(data, True)
        assert got.shape == want.shape, (fmt, orientation)
        assert np.abs(got.astype(int) - want).max() <= 1, (fmt, orientation)


def test_reduced_while_decoded() -> None:
    big = Image.fromarray(np.tile(BASE, (40, 40, 1)), "RGBA")  # 2120 x 1480
    for data in (encoded(big), encoded(big.convert("RGB"), "JPEG"), encoded(big, "WEBP")):
        out = load_image(data, grayscale=True, max_side=500)
        assert max(out.shape) <= 500 and out.shape[1] > out.shape[0]
        out = load_image(data, grayscale=True, max_area=100_000)
        assert out.size <= 100_000


def test_a_jpeg_is_decoded_at_reduced_size(monkeypatch) -> None:
    photo = encoded(Image.fromarray(np.tile(BASE[:, :, :3], (60, 60, 1)), "RGB"), "JPEG")
    seen = []
    original = Image.Image.load

    def spy(self):
        out = original(self)
        seen.append(self.size)
        return out

    monkeypatch.setattr(Image.Image, "load", spy)
    # 3180 x 2220 to at most 1000: libjpeg decodes at 1/4 (795 px, at least 3/4 of the limit)
    out = load_image(photo, grayscale=True, max_side=1000)
    assert out.shape == (555, 795)
    assert seen == [(795, 555)] * len(seen)


def test_cost_is_known_before_decoding() -> None:
    bomb = png_header_only(6000, 6000)
    pending = open_image(bomb)
    assert (pending.width, pending.height, pending.format) == (6000, 6000, "PNG")
    # what Pillow would hold (36 MB gray, 144 MB for RGBA) is not what reading it in bands costs
    assert pending.cost(grayscale=True, max_side=2048) < 30 * 2**20
    assert pending.out_size(2048) == (2048, 2048)


@pytest.mark.parametrize(("width", "height"), [(39_000_000, 1), (1, 39_000_000), (30_001, 100),
                                               (5000, 49), (2, 201)])
def test_absurd_shapes_are_refused_from_the_header(width: int, height: int) -> None:
    with pytest.raises(ImageError) as info:
        open_image(png_header_only(width, height))
    assert info.value.code == "bad_shape" and info.value.status == 400
    assert f"{width}x{height}" in info.value.message


@pytest.mark.parametrize(("width", "height"), [(1, 1), (2, 3), (100, 1), (1, 100), (3, 300)])
def test_tiny_and_thin_images_load(width: int, height: int) -> None:
    data = encoded(Image.new("RGBA", (width, height), (0, 0, 0, 0)))
    assert load_image(data, grayscale=True).shape == (height, width)
    assert load_image(data, grayscale=True, max_side=50).shape[0] >= 1


def test_truncated_png_in_bands(monkeypatch) -> None:
    monkeypatch.setattr(images, "BAND_BYTES", 1000)
    data = encoded(Image.fromarray(RNG.integers(0, 256, (300, 400), dtype=np.uint8)))
    for cut in (len(data) // 2, len(data) - 20, len(data) - 13):
        with pytest.raises(ImageError) as info:
            load_image(data[:cut])
        assert info.value.code == "truncated"
    corrupt = bytearray(data)
    corrupt[200:260] = b"\xff" * 60
    with pytest.raises(ImageError) as info:
        load_image(bytes(corrupt))
    assert info.value.code in ("truncated", "not_an_image")
