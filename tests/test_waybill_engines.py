"""OCR engines of the waybill reader: RapidOCR (default install) and what ``auto`` picks; the
rule that one printed copy read by two passes is still one read."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import cv2
import pytest

from scanedge.ocr import text_engines
from scanedge.ocr.waybill import _same_places, read_waybill
from scanedge.ocr.waybill_rules import Read, collect, decide

DATA = Path(__file__).parent / "data" / "waybills"
needs_rapidocr = pytest.mark.skipif(
    not text_engines.installed("rapidocr"),
    reason="rapidocr-onnxruntime is not installed (scripts/setup.sh installs it)")


@needs_rapidocr
def test_auto_is_rapidocr_when_installed() -> None:
    assert text_engines.auto_name() == "rapidocr"
    assert text_engines.engine("auto").name == "rapidocr"


def test_auto_without_rapidocr_falls_back_to_tesseract(monkeypatch: pytest.MonkeyPatch) -> None:
    real = text_engines.installed
    monkeypatch.setattr(text_engines, "installed", lambda name: name != "rapidocr" and real(name))
    assert text_engines.auto_name() in ("tesserocr", "tesseract")


@pytest.mark.slow
@needs_rapidocr
def test_rapidocr_needs_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    # The models ship inside the wheel: loading them and reading must not touch the network.
    def refuse(*args, **kwargs):
        raise AssertionError("network access")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    engine = text_engines.RapidOcrEngine()  # a fresh one: models loaded here
    gray = cv2.imread(str(DATA / "nobarcode_0002_SF.jpg"), cv2.IMREAD_GRAYSCALE)
    lines = engine.read_page(gray)
    assert any("SF3395329961247" in ln.text.replace(" ", "") for ln in lines)
    # every line has its place on the page, in the pixels of the image given
    h, w = gray.shape
    assert all(0 <= x <= w and 0 <= y <= h for ln in lines for x, y in ln.quad)


@pytest.mark.slow  # a RapidOCR photo read (2 s, both cores); in the loop: how the page pass's
# reads merge with the lines' (the two tests below), and photos read by Tesseract
# (test_waybill_reader.py)
@needs_rapidocr
def test_rapidocr_reads_a_motion_blurred_label_from_the_page() -> None:
    # Blur melts the glyphs of the printed copies into blobs the run finder cannot cut: the
    # whole-page pass finds the lines itself. A plain-digit ZTO number: two copies agree.
    res = read_waybill(str(DATA / "nobarcode_0023_ZTO.jpg"), engine="rapidocr")
    assert (res.tracking_number, res.carrier, res.source) == ("76269889531945", "ZTO", "ocr")
    assert res.confidence >= 0.97 and res.flags == []


def test_one_copy_read_by_both_passes_is_one_read() -> None:
    box = ((100.0, 200.0), (400.0, 200.0), (400.0, 230.0), (100.0, 230.0))
    wider = ((40.0, 195.0), (420.0, 195.0), (420.0, 235.0), (40.0, 235.0))  # "运单号: ..."
    elsewhere = ((100.0, 600.0), (400.0, 600.0), (400.0, 630.0), (100.0, 630.0))
    line = [Read("76269889531945", "ocr", "level:0", 0.9, box)]
    page = [Read("运单号:76269889531945", "ocr", "level-page:3", 0.9, wider)]
    merged = _same_places(page, line)
    assert merged[0].where == "level:0"
    # a plain-digit number on one copy, however many passes read it, is not accepted
    assert decide(collect(line + merged)).winner is None
    # a second printed copy elsewhere is an independent read
    other = _same_places([Read("76269889531945", "ocr", "level-page:7", 0.9, elsewhere)], line)
    assert other[0].where == "level-page:7"
    assert decide(collect(line + merged + other)).winner.number == "76269889531945"


def test_a_tilted_line_does_not_take_the_place_of_the_line_below() -> None:
    # a 15-degree line: its upright box reaches down over the next line's run
    tilted = ((100.0, 200.0), (500.0, 93.0), (508.0, 123.0), (108.0, 230.0))
    below = ((400.0, 200.0), (600.0, 200.0), (600.0, 225.0), (400.0, 225.0))
    line = [Read("76269889531945", "ocr", "level:4", 0.9, below)]
    merged = _same_places([Read("76269889531945", "ocr", "level-page:1", 0.9, tilted)], line)
    assert merged[0].where == "level-page:1"


def test_tesseract_runs_with_one_thread_unless_the_operator_says_otherwise(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Its OpenMP threads made a page read three times slower on 2 cores (docs/benchmarks.md)."""
    monkeypatch.delenv("OMP_THREAD_LIMIT", raising=False)
    text_engines.PytesseractEngine()
    assert os.environ["OMP_THREAD_LIMIT"] == "1"  # the tesseract processes inherit it
    monkeypatch.setenv("OMP_THREAD_LIMIT", "4")
    text_engines.PytesseractEngine()
    assert os.environ["OMP_THREAD_LIMIT"] == "4"
