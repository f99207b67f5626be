"""POST /api/v1/decode through the real Flask app."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from tests.test_decode_images import encoded, png_header_only

DATA = Path(__file__).parent / "data" / "barcodes"


@pytest.fixture
def api(edge_ctx):
    from scanedge.edge.web.app import create_app

    return create_app(edge_ctx.settings, edge_ctx).test_client()


def post(api, data: bytes, name: str = "photo.png", **query):
    return api.post("/api/v1/decode", query_string=query,
                    data={"image": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def test_decode_upload(api) -> None:
    r = post(api, (DATA / "datamatrix-3__n794.png").read_bytes(), "dm.png")
    assert r.status_code == 200 and r.is_json
    body = r.get_json()
    assert set(body) >= {"file", "symbols", "elapsed_ms"} and body["file"] == "dm.png"
    (sym,) = body["symbols"]
    assert sym["format"] == "DataMatrix" and sym["gs1"] is True
    assert sym["text"] == "010890381998765921S1ND6MPPFCGG6B869XES\x1d1731063010BNav4Cam2"
    assert sym["gs1_fields"]["gtin"] == "08903819987659"
    assert len(sym["position"]) == 4


def test_no_code_is_200_with_no_symbols(api) -> None:
    r = post(api, (DATA / "falsepositives-1__21.webp").read_bytes(), budget_ms="100")
    assert r.status_code == 200 and r.get_json()["symbols"] == []


def test_same_json_as_the_cli(api) -> None:
    from scanedge.ocr.decode import decode

    path = DATA / "qrcode-2__2.png"
    body = post(api, path.read_bytes()).get_json()
    assert body["symbols"] == [s.to_json() for s in decode(path)]


@pytest.mark.parametrize(("data", "status", "code"), [
    (b"", 400, "empty"),
    (b"not an image at all", 400, "not_an_image"),
    ((DATA / "qrcode-2__2.png").read_bytes()[:500], 400, "truncated"),
    (png_header_only(20_000, 20_000), 413, "too_many_pixels"),
    (encoded(Image.new("L", (32, 32)), "GIF", save_all=True,
             append_images=[Image.new("L", (32, 32), 255)]), 400, "multi_frame"),
    (encoded(Image.new("L", (32, 32)), "TIFF", save_all=True,
             append_images=[Image.new("L", (32, 32), 255)]), 400, "multi_frame"),
    (png_header_only(39_000_000, 1), 400, "bad_shape"),
    (png_header_only(1, 39_000_000), 400, "bad_shape"),
    (png_header_only(30_001, 1_000), 400, "bad_shape"),
], ids=["empty", "text", "truncated", "bomb", "animated-gif", "multipage-tiff", "strip",
        "column", "too-long"])
def test_bad_uploads(api, data: bytes, status: int, code: str) -> None:
    r = post(api, data)
    assert r.status_code == status and r.is_json
    body = r.get_json()
    assert body["error"] == code and body["message"]


def test_50_mb_upload_is_413(api) -> None:
    r = post(api, b"\xff\xd8" + b"\0" * (50 * 1024 * 1024))
    assert r.status_code == 413 and r.is_json and r.get_json()["error"] == "too_large"


def test_image_limit_setting(tmp_path: Path) -> None:
    from scanedge.edge.config import load_settings
    from scanedge.edge.context import EdgeContext
    from scanedge.edge.web.app import create_app

    settings = load_settings(env={"SCANEDGE_MAX_IMAGE_MEGAPIXELS": "0.01"},
                             data_dir=str(tmp_path / "var"))
    ctx = EdgeContext.open(settings)
    try:
        r = post(create_app(settings, ctx).test_client(),
                 (DATA / "qrcode-2__2.png").read_bytes())
        assert r.status_code == 413 and r.get_json()["error"] == "too_many_pixels"
    finally:
        ctx.close()


def test_missing_field_and_bad_budget(api) -> None:
    r = api.post("/api/v1/decode", data={"photo": (io.BytesIO(b"x"), "a.png")},
                 content_type="multipart/form-data")
    assert r.status_code == 400 and r.get_json()["error"] == "missing_image"
    r = post(api, (DATA / "qrcode-2__2.png").read_bytes(), budget_ms="soon")
    assert r.status_code == 400 and r.get_json()["error"] == "bad_budget"


def test_more_memory_than_the_budget_is_413(api, monkeypatch) -> None:
    from scanedge.ocr import memory

    # 1 MB of image work: even a small photo's estimate does not fit
    monkeypatch.setattr(memory.GATE, "capacity", 1 * 1024 * 1024)
    monkeypatch.setattr(memory, "configure", lambda *_a, **_k: None)
    r = post(api, (DATA / "qrcode-2__2.png").read_bytes())
    assert r.status_code == 413 and r.get_json()["error"] == "too_many_pixels"
    assert "image_memory_mb" in r.get_json()["message"]
