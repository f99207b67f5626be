"""decode() on a sample of the dev set (real photos and scans), against the expected texts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from scanedge.ocr.decode import decode, decode_report

DATA = Path(__file__).parent / "data" / "barcodes"
FORMAT_NAMES = {"code128": {"Code128"}, "ean13": {"EAN13", "UPCA"}, "qrcode": {"QRCode"},
                "datamatrix": {"DataMatrix"}, "pdf417": {"PDF417"}, "itf": {"ITF"},
                "code39": {"Code39", "Code32"}}


def manifest() -> list[tuple[str, str, str]]:
    with open(DATA / "manifest.csv", newline="", encoding="utf-8") as f:
        return [(r["file"], r["format"], json.loads('"' + r["expected_text"] + '"'))
                for r in csv.DictReader(f)]


@pytest.mark.parametrize(("name", "fmt", "expected"), manifest(), ids=lambda v: str(v)[:40])
def test_sample(name: str, fmt: str, expected: str) -> None:
    report = decode_report(DATA / name)
    texts = [s.text for s in report.symbols]
    if fmt == "none":
        assert texts == []
        return
    assert texts == [expected], f"steps {report.steps}, rejected {report.rejected}"
    assert report.symbols[0].format in FORMAT_NAMES[fmt]


def test_gs1_datamatrix_has_gs_separator_and_parsed_fields() -> None:
    (sym,) = decode(DATA / "datamatrix-3__n794.png")
    assert sym.format == "DataMatrix" and sym.gs1 and sym.symbology_identifier == "]d2"
    assert "\x1d" in sym.text and not sym.text.startswith("]")
    assert sym.gs1_data is not None
    assert sym.gs1_data.gtin == "08903819987659"
    assert sym.gs1_data.lot == "BNav4Cam2"
    assert sym.gs1_data.expiry is not None and sym.gs1_data.expiry.isoformat() == "2031-06-30"
    out = sym.to_json()
    assert out["gs1_fields"]["ais"]["21"] == "S1ND6MPPFCGG6B869XES"
    assert json.loads(json.dumps(out))["text"] == sym.text


def test_json_shape_matches_design() -> None:
    (sym,) = decode((DATA / "ean13-1__8.webp").read_bytes())
    out = sym.to_json()
    assert {"format", "text", "position"} <= set(out)
    assert out["format"] == "EAN13" and out["text"] == "8480017507990"
    assert len(out["position"]) == 4 and all(len(p) == 2 for p in out["position"])
    assert all(isinstance(v, int) for p in out["position"] for v in p)
    assert out["readers"][0] == "zxing-cpp" and out["raw_hex"] == b"8480017507990".hex()


def test_iso15434_pdf417_keeps_rs_gs_eot() -> None:
    (sym,) = decode(DATA / "pdf417-3__12.webp")
    assert sym.text.startswith("[)>\x1e01\x1d") and sym.text.endswith("\x1e\x04")


def test_code32_reads_the_same_from_both_libraries() -> None:
    """zbar reports the raw Code 39 characters; the product reports what zxing-cpp does."""
    from scanedge.ocr.images import load_image
    from scanedge.ocr.readers import identity_view, read_zbar, read_zxing

    gray = load_image(DATA / "code39-1__code32-1.png", grayscale=True)
    zx = read_zxing(identity_view(gray))
    zb = read_zbar(identity_view(gray))
    assert [(r.format, r.text) for r in zx] == [("Code32", "A123456788")]
    assert [(r.format, r.text) for r in zb] == [("Code32", "A123456788")]


def test_big_photo_with_no_sign_of_a_code_still_gets_zbar() -> None:
    # 1312x1749 (over SMALL_IMAGE_PIXELS): zxing-cpp sees nothing, OpenCV's locator finds
    # nothing, zbar alone reads the smudged Code 128. It used to run on regions only, so here
    # it never ran and the decode returned nothing.
    photo = Path(__file__).parent / "data" / "waybills" / "barcode_0031_JT.jpg"
    report = decode_report(photo, exhaustive=True)
    assert [s.text for s in report.symbols] == ["JT1559065407836"]
    assert "zbar" in report.steps
    assert [s.text for s in decode(photo)] == ["JT1559065407836"]
