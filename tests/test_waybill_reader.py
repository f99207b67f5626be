"""The waybill reader on real photos (a sample of the dev set) and crafted cases; real engines:
pytesseract (the fallback) and RapidOCR (the default install; skipped where it is absent)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from scanedge.edge.cli import main
from scanedge.ocr import text_engines
from scanedge.ocr.images import ImageError
from scanedge.ocr.waybill import read_waybill

DATA = Path(__file__).parent / "data" / "waybills"
ENGINE = "tesseract"  # the fallback, always there (CLI and input tests)
NO_RAPIDOCR = pytest.mark.skipif(
    not text_engines.installed("rapidocr"),
    reason="rapidocr-onnxruntime is not installed (scripts/setup.sh installs it)")
# The behaviour every engine must have.
# RapidOCR reads take seconds each: slow (the fast loop keeps Tesseract here and RapidOCR
# in test_waybill_engines.py)
ENGINES = ["tesseract", pytest.param("rapidocr", marks=[NO_RAPIDOCR, pytest.mark.slow])]


def _truth() -> list[dict[str, str]]:
    with open(DATA / "manifest.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("row", _truth(), ids=lambda r: r["file"])
def test_dev_sample_never_wrong(row: dict[str, str], engine: str) -> None:
    res = read_waybill(str(DATA / row["file"]), engine=engine)
    # a wrong number is the one failure that must not happen; "not sure" is allowed
    assert res.tracking_number in (None, row["tracking_number"])
    if res.tracking_number is None:
        assert res.source is None and res.confidence == 0.0
    else:
        assert res.carrier == ("DBL" if row["carrier"] == "DEPPON" else row["carrier"])
        assert res.region is not None and len(res.region) == 4
        assert 0.5 <= res.confidence <= 1.0


@pytest.mark.slow
def test_dev_sample_mostly_exact() -> None:
    rows = _truth()
    exact = sum(read_waybill(str(DATA / r["file"]), engine=ENGINE).tracking_number
                == r["tracking_number"] for r in rows[:4])
    assert exact >= 3


def test_barcode_first() -> None:
    res = read_waybill(str(DATA / "barcode_0000_EMS.jpg"), engine=ENGINE)
    assert (res.tracking_number, res.carrier, res.source) == ("1174567041595", "EMS", "barcode")
    doc = res.to_json()
    assert {"file", "tracking_number", "carrier", "source", "confidence", "elapsed_ms",
            "candidates", "carrier_name", "flags", "region"} <= set(doc)


@pytest.mark.parametrize("engine", ENGINES)
def test_text_only_letter_prefixed(engine: str) -> None:
    res = read_waybill(str(DATA / "nobarcode_0002_SF.jpg"), engine=engine)
    assert (res.tracking_number, res.carrier, res.source) == ("SF3395329961247", "SF", "ocr")


@pytest.mark.parametrize("engine", ENGINES)
def test_upside_down_label(engine: str) -> None:
    img = cv2.rotate(cv2.imread(str(DATA / "nobarcode_0002_SF.jpg")), cv2.ROTATE_180)
    res = read_waybill(img, engine=engine)
    assert res.tracking_number in (None, "SF3395329961247")
    assert res.tracking_number == "SF3395329961247" and "upside_down" in res.flags


@pytest.mark.slow  # the rule: test_waybill_rules.py test_two_labels_accept_nothing
@pytest.mark.parametrize("engine", ENGINES)
def test_two_labels_in_one_photo_give_no_number(engine: str) -> None:
    import zxingcpp

    a = cv2.imread(str(DATA / "barcode_0000_EMS.jpg"), cv2.IMREAD_GRAYSCALE)
    # a second label beside it: a printed Code 128 of another carrier's number
    bars = np.array(zxingcpp.create_barcode("YT7463103515258", zxingcpp.BarcodeFormat.Code128)
                    .to_image(scale=3))
    other = np.full_like(a, 240)
    other[500 : 500 + bars.shape[0], 100 : 100 + bars.shape[1]] = bars
    res = read_waybill(np.hstack([a, other]), engine=engine)
    assert res.tracking_number is None and "several_numbers" in res.flags
    assert {c["tracking_number"] for c in res.candidates} >= {"1174567041595",
                                                              "YT7463103515258"}


@pytest.mark.parametrize("engine", ENGINES)
def test_blank_photo(engine: str) -> None:
    blank = np.full((1200, 900, 3), 235, np.uint8)
    res = read_waybill(blank, engine=engine)
    assert res.tracking_number is None and res.candidates == [] and res.source is None


def test_bad_inputs() -> None:
    with pytest.raises(ImageError):
        read_waybill(b"not an image at all", engine=ENGINE)
    with pytest.raises(ImageError):
        read_waybill(b"", engine=ENGINE)
    with pytest.raises(OSError):
        read_waybill(str(DATA / "missing.jpg"), engine=ENGINE)


def test_cli_json_lines_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.jpg"
    bad.write_bytes((DATA / "barcode_0000_EMS.jpg").read_bytes()[:500])
    rc = main(["waybill", "--engine", ENGINE, "--json", str(DATA / "barcode_0000_EMS.jpg"),
               str(bad)])
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert rc == 2
    assert rows[0]["tracking_number"] == "1174567041595" and rows[0]["carrier"] == "EMS"
    assert rows[0]["source"] == "barcode" and isinstance(rows[0]["elapsed_ms"], float)
    assert rows[1]["error"] and rows[1]["tracking_number"] is None
    assert "broken.jpg" in err


def test_cli_all_good_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["waybill", "--engine", ENGINE, str(DATA / "barcode_0011_STO.jpg")])
    out, _ = capsys.readouterr()
    assert rc == 0 and "779224370708720" in out


def test_cli_says_once_that_a_file_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-photo.jpg"
    rc = main(["waybill", "--engine", ENGINE, str(missing)])
    out, err = capsys.readouterr()
    assert rc == 2
    assert (out + err).count("no-such-photo.jpg") == 1, out + err
    assert err == f"scanedge waybill: {missing}: no such file\n"
