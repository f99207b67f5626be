"""decode() on codes the tests make: every symbology, turned, scaled, noisy, several per
frame, small in a 1080p frame; and the rules that keep wrong reads out."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import zxingcpp

from scanedge.ocr.decode import _Cascade, decode, decode_report
from scanedge.ocr.readers import Read
from scanedge.ocr.validate import s10_ok, validate
from scanedge.ocr.views import rotated

F = zxingcpp.BarcodeFormat


def render(content: str | bytes, fmt, *, scale: int = 3, quiet: int = 20, **kw) -> np.ndarray:
    img = np.asarray(zxingcpp.create_barcode(content, fmt, **kw).to_image(scale=scale))
    return cv2.copyMakeBorder(img, quiet, quiet, quiet, quiet, cv2.BORDER_CONSTANT, value=255)


def texts(image) -> list[tuple[str, str]]:
    return [(s.format, s.text) for s in decode(image)]


GS = "\x1d"

SYMBOLOGIES = [
    ("Code128", "SF1385628716739", F.Code128, {}, {"Code128"}, "SF1385628716739"),
    ("Code39", "ORDER-1001", F.Code39, {}, {"Code39"}, "ORDER-1001"),
    ("Code93", "PICK 42", F.Code93, {}, {"Code93"}, "PICK 42"),
    ("EAN13", "6901234567892", F.EAN13, {}, {"EAN13"}, "6901234567892"),
    ("EAN8", "96385074", F.EAN8, {}, {"EAN8"}, "96385074"),
    ("UPCA", "036000291452", F.UPCA, {}, {"UPCA", "EAN13"}, "0036000291452"),
    ("UPCE", "01234565", F.UPCE, {}, {"UPCE", "EAN13"}, "0012345000065"),
    ("ITF14", "15400141288763", F.ITF, {}, {"ITF", "ITF14"}, "15400141288763"),
    ("Codabar", "A40156B", F.Codabar, {}, {"Codabar"}, "A40156B"),
    ("QR-UTF8", "顺丰速运 SF1385628716739", F.QRCode, {}, {"QRCode"}, "顺丰速运 SF1385628716739"),
    ("QR-GB18030", "收件人：李四 浙江省杭州市".encode("gb18030"), F.QRCode, {}, {"QRCode"},
     "收件人：李四 浙江省杭州市"),
    ("DataMatrix", "BENCH-1/SO-1001", F.DataMatrix, {}, {"DataMatrix"}, "BENCH-1/SO-1001"),
    ("PDF417", "SO-1001|SF1385628716739|A", F.PDF417, {}, {"PDF417"},
     "SO-1001|SF1385628716739|A"),
    ("Aztec", "TOTE-0042", F.Aztec, {}, {"Aztec"}, "TOTE-0042"),
]


@pytest.mark.parametrize(("content", "fmt", "kw", "names", "expected"),
                         [s[1:] for s in SYMBOLOGIES], ids=[s[0] for s in SYMBOLOGIES])
def test_every_warehouse_symbology(content, fmt, kw, names, expected) -> None:
    found = decode(render(content, fmt, **kw))
    assert [s.text for s in found] == [expected]
    assert found[0].format in names


def test_gs1_128_text_as_a_scanner_types_it() -> None:
    img = render("(01)09501101530003(17)270131(10)AB12(21)S-1", F.Code128, gs1=True)
    (sym,) = decode(img)
    assert sym.gs1 and sym.symbology_identifier == "]C1"
    assert sym.text == "010950110153000317270131" + "10AB12" + GS + "21S-1"
    assert sym.gs1_data is not None
    assert (sym.gs1_data.gtin, sym.gs1_data.lot, sym.gs1_data.serial) == (
        "09501101530003", "AB12", "S-1")
    assert sym.to_json()["gs1_fields"]["expiry"] == "2027-01-31"


def test_gs1_datamatrix() -> None:
    (sym,) = decode(render("(01)06901234567892(10)L2301(17)270131", F.DataMatrix, gs1=True))
    assert sym.gs1 and sym.gs1_data is not None and sym.gs1_data.lot == "L2301"
    assert sym.text.startswith("0106901234567892") and not sym.text.startswith("]")


@pytest.mark.parametrize("angle", [90, 180, 270, 20, -35])
@pytest.mark.parametrize(("content", "fmt"), [
    ("SF1385628716739", F.Code128), ("6901234567892", F.EAN13),
    ("SO-1001|SF1385628716739", F.PDF417), ("BENCH-1/SO-1001", F.QRCode),
])
def test_rotated(angle: int, content: str, fmt) -> None:
    img = rotated(render(content, fmt, quiet=30), angle).gray
    assert [s.text for s in decode(img)] == [content]


@pytest.mark.parametrize("factor", [0.7, 2.5])
def test_scaled(factor: float) -> None:
    img = render("SF1385628716739", F.Code128, scale=3)
    img = cv2.resize(img, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    assert texts(img) == [("Code128", "SF1385628716739")]


def test_noisy_blurred_and_dim() -> None:
    rng = np.random.default_rng(3)
    img = render("6901234567892", F.EAN13, scale=3).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 1.2)
    img = img * 0.35 + 90 + rng.normal(0, 12, img.shape)  # dim, low contrast, sensor noise
    img = np.clip(img, 0, 255).astype(np.uint8)
    assert texts(img) == [("EAN13", "6901234567892")]


def test_several_codes_in_one_frame() -> None:
    canvas = np.full((900, 1200), 255, np.uint8)
    codes = {
        "SF1385628716739": (render("SF1385628716739", F.Code128), (40, 40)),
        "6901234567892": (render("6901234567892", F.EAN13), (40, 600)),
        "https://example.com/o/SO-1001": (render("https://example.com/o/SO-1001", F.QRCode,
                                                 scale=5), (450, 700)),
        "TOTE-0042": (render("TOTE-0042", F.DataMatrix, scale=6), (600, 60)),
    }
    for img, (y, x) in codes.values():
        canvas[y:y + img.shape[0], x:x + img.shape[1]] = img
    found = {s.text: s for s in decode(canvas)}
    assert set(found) == set(codes)
    for text, (img, (y, x)) in codes.items():
        cx, cy = found[text].center
        assert x <= cx <= x + img.shape[1] and y <= cy <= y + img.shape[0], text


def clutter_1080p(seed: int) -> np.ndarray:
    """A busy background: blurred noise blobs, like a bench photographed from above."""
    rng = np.random.default_rng(seed)
    small = rng.integers(60, 200, (54, 96)).astype(np.uint8)
    frame = cv2.resize(small, (1920, 1080), interpolation=cv2.INTER_CUBIC)
    return np.clip(frame + rng.normal(0, 6, frame.shape), 0, 255).astype(np.uint8)


def test_small_code_in_a_1080p_frame() -> None:
    frame = clutter_1080p(1)
    code = render("SF1385628716739", F.Code128, scale=2, quiet=16)
    y, x = 700, 1300
    frame[y:y + code.shape[0], x:x + code.shape[1]] = code
    report = decode_report(frame)  # its speed is measured in benchmarks/decode.py
    assert [s.text for s in report.symbols] == ["SF1385628716739"]
    assert report.symbols[0].stage == "fast"  # found by the cheap first pass
    cx, cy = report.symbols[0].center
    assert x <= cx <= x + code.shape[1] and y <= cy <= y + code.shape[0]


def test_empty_1080p_frame_finds_nothing() -> None:
    report = decode_report(clutter_1080p(2), budget_ms=300)
    assert report.symbols == []


def test_budget_is_a_safety_net_only() -> None:
    rng = np.random.default_rng(4)
    noise = rng.integers(0, 256, (700, 900)).astype(np.uint8)  # worst case: texture everywhere
    # Which steps run is planned from the image; the budget only stops a run that is slower
    # than planned (here: a budget no machine meets). No budget runs the whole plan, the same
    # plan as a budget that is never reached.
    cut = decode_report(noise, budget_ms=0.001)
    full = decode_report(noise, budget_ms=None)
    roomy = decode_report(noise, budget_ms=600_000)
    assert cut.cut_short and cut.skipped_for_budget and cut.steps == ["fast"]
    assert not full.cut_short and not full.skipped_for_budget
    assert full.steps == roomy.steps and len(full.steps) > 3
    assert full.symbols == cut.symbols == []


# -- validation ----------------------------------------------------------------------------

QUAD = ((10.0, 10.0), (110.0, 10.0), (110.0, 60.0), (10.0, 60.0))


def read(fmt: str, text: str, reader: str = "zxing-cpp", quad=QUAD, **kw) -> Read:
    return Read(reader=reader, format=fmt, text=text, raw=text.encode(), position=quad,
                stage="test", **kw)


@pytest.mark.parametrize(("fmt", "text", "ok", "strong"), [
    ("EAN13", "6901234567892", True, True),
    ("EAN13", "6901234567893", False, False),  # check digit
    ("EAN8", "96385074", True, True),
    ("UPCE", "01234565", True, True),
    ("ITF", "15400141288763", True, True),
    ("ITF", "15400141288764", False, False),  # ITF-14 check digit
    ("ITF", "0817605453", True, False),  # no check digit: needs a second reader
    ("ITF", "1515", False, False),  # short ITF: the classic false positive
    ("ITF", "12345", False, False),  # odd length
    ("Code39", "ORDER-1001", True, False),
    ("Code32", "A123456788", True, True),
    ("Codabar", "A40156B", True, False),
    ("Code128", "EA123456785CN", True, True),  # UPU S10 with a good check digit
    ("Code128", "EA123456784CN", False, False),  # ... and a bad one
    ("Code128", "ab\x07cd", False, False),  # a control character no label carries
    ("QRCode", "顺丰速运", True, True),
])
def test_validation_rules(fmt: str, text: str, ok: bool, strong: bool) -> None:
    verdict = validate(read(fmt, text))
    assert verdict.ok is ok, verdict.reason
    if ok:
        assert verdict.strong is strong


def test_zbar_guessing_a_charset_is_weak() -> None:
    assert validate(read("QRCode", "佼猿厒堍", reader="zbar")).strong is False
    assert validate(read("QRCode", "SO-1001", reader="zbar")).strong is True


def test_gs1_check_digit_error_is_reported_not_hidden() -> None:
    verdict = validate(read("Code128", "0106901234567893", gs1=True))
    assert verdict.ok and verdict.gs1_error.startswith("GS1 check digit wrong")
    assert validate(read("ITF", "0106901234567893", gs1=True)).ok is False
    assert s10_ok("RR123456785CN") is True and s10_ok("SF1385628716739") is None


def make_cascade() -> _Cascade:
    return _Cascade(np.full((100, 200), 255, np.uint8), start=time.perf_counter(),
                    budget_ms=300, exhaustive=False)


def test_two_libraries_disagreeing_reject_both() -> None:
    c = make_cascade()
    c._take([read("EAN13", "6901234567892")], "fast")
    c._take([read("EAN13", "6901234567809", reader="zbar")], "zbar")
    c._finish()
    assert c.report.symbols == []
    assert len(c.report.rejected) == 2
    assert all("differently" in r.reason for r in c.report.rejected)
    assert "6901234567892" not in str([r.to_json() for r in c.report.rejected])


def test_weak_read_needs_the_other_library() -> None:
    c = make_cascade()
    c._take([read("ITF", "0817605453")], "fast")
    assert c.accepted == []
    c._take([read("ITF", "0817605453", reader="zbar")], "zbar")
    c._finish()
    assert [(s.text, s.readers) for s in c.report.symbols] == [
        ("0817605453", ("zxing-cpp", "zbar"))]


def test_weak_read_alone_is_rejected() -> None:
    c = make_cascade()
    c._take([read("Codabar", "A40156B"), read("Codabar", "A40156B", quad=QUAD)], "fast")
    c._finish()
    assert c.report.symbols == []
    assert "second reading" in c.report.rejected[0].reason


def test_codes_in_different_places_do_not_conflict() -> None:
    c = make_cascade()
    far = ((500.0, 500.0), (600.0, 500.0), (600.0, 550.0), (500.0, 550.0))
    c._take([read("EAN13", "6901234567892"), read("EAN13", "4006381333931", quad=far)], "fast")
    c._finish()
    assert sorted(s.text for s in c.report.symbols) == ["4006381333931", "6901234567892"]
