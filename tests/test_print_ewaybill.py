"""Carrier labels (issue 19 item 3): each carrier's layout at each stock size prints the number's
Code 128 and the carrier's 2D code so that zxing-cpp and zbar both read them back from the
printed raster; our gift line and P0 mark are there where the stock has room; a printer too
narrow for any carrier layout is refused with a clear error."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

import numpy as np
import pytest

from scanedge.edge.domain.ewaybill import EWaybill
from scanedge.edge.domain.orders import Gift, parse_order
from scanedge.edge.domain.refusal import Refusal
from scanedge.printers.encode import label_bytes
from scanedge.printers.ewaybill_label import (
    CARRIERS,
    SIZES,
    ewaybill_fields,
    ewaybill_size,
    ewaybill_template,
    render_ewaybill,
)
from scanedge.printers.models import get_model
from scanedge.printers.selfcheck import (
    badge_text,
    decode_symbols_zbar,
    ewaybill_problems,
    inverted_badges,
    labels_from_bytes,
    ocr,
)
from tests.support import DATA, run_cli

WHEN = datetime(2025, 3, 1, 9, 30)
P0_GIFT = parse_order(json.loads((DATA / "printers" / "order_p0_gift.json").read_text(encoding="utf-8")))
PLAIN = replace(P0_GIFT, priority="P2", gifts=())
# the model that prints each stock: 76 x 130 on an 80 mm printer (576 dots), 100 mm stock on a
# 4-inch label printer (832 dots)
MODEL_FOR = {"76x130": "generic-80", "100x150": "generic-100x150", "100x180": "generic-100x150"}


def ewaybill(carrier: str) -> EWaybill:
    path = DATA / "printers" / f"ewaybill_{carrier.lower()}.json"
    return EWaybill.from_json(json.loads(path.read_text(encoding="utf-8")))


def printed(ewb: EWaybill, size: str, order=P0_GIFT, **kw):
    """Render, encode to ESC/POS, and rebuild the label from the bytes as the printer would."""
    template = ewaybill_template(ewb.carrier, size)
    image, info = render_ewaybill(ewb, template, order=order, station="bench-1", printed_at=WHEN, **kw)
    model = get_model(MODEL_FOR[size])
    (label,) = labels_from_bytes(label_bytes([image], model), model.dots)
    return label, info, image


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("carrier", CARRIERS)
def test_each_carrier_layout_at_each_size_prints_a_number_and_2d_code_that_read_back(
        carrier: str, size: str) -> None:
    ewb = ewaybill(carrier)
    label, info, image = printed(ewb, size)
    template = ewaybill_template(carrier, size)
    width, length = (int(v) * 8 for v in size.split("x"))  # 203 dpi: 8 dots a millimetre
    assert image.size == (template.width, template.length) and template.length == length
    assert template.width <= width
    assert info.barcode_text == ewb.number and not info.barcode_rotated
    assert info.barcode_module >= 3  # 0.375 mm: what carrier sorters read at speed
    assert ewaybill_problems(label.image, ewb.number, ewb.qr) == []
    assert ewb.qr in label.texts("QRCode") and set(label.texts("Code128")) == {ewb.number}
    # our additions fit on every stock: the gift line is not left out, the P0 badge is inverted
    assert info.omitted == ()
    assert inverted_badges(label.image)


def test_p0_badge_and_gift_line_read_back_on_the_smallest_stock() -> None:
    label, _, _ = printed(ewaybill("SF"), "76x130")
    assert any(t.startswith("P0") for t in badge_text(label.image))
    text = ocr(label.image)
    assert "含赠品" in text and "帆布包" in text
    assert "755WF-010-A1" in text  # the 三段码, big on top
    plain, _, _ = printed(ewaybill("SF"), "76x130", order=PLAIN)
    assert badge_text(plain.image) == []  # no P0, no badge (and no OCR: nothing to read)


@pytest.mark.slow  # OCR of four more labels; the 76 x 130 SF one above keeps it in the fast loop
@pytest.mark.parametrize("carrier,size", [("ZTO", "76x130"), ("JT", "76x130"), ("ZTO", "100x180"),
                                          ("JT", "100x150")])
def test_p0_badge_and_gift_line_read_back_on_other_layouts(carrier: str, size: str) -> None:
    label, _, _ = printed(ewaybill(carrier), size)
    assert any(t.startswith("P0") for t in badge_text(label.image))
    text = ocr(label.image)
    assert "含赠品" in text and "帆布包" in text


def test_gift_lines_the_stock_has_no_room_for_are_left_out_and_reported() -> None:
    many = replace(P0_GIFT, gifts=tuple(Gift(f"赠品{i}号 限量版帆布包", 1) for i in range(12)))
    label, info, image = printed(ewaybill("SF"), "76x130", order=many)
    assert image.height == 1040  # the stock's length: nothing spills onto the next label
    assert "gifts" in info.omitted
    assert ewaybill_problems(label.image, "SF1385628716739", ewaybill("SF").qr) == []
    assert inverted_badges(label.image)  # the P0 mark is in the top row, never left out
    _, roomy, _ = printed(ewaybill("SF"), "100x180", order=replace(many, gifts=many.gifts[:2]))
    assert "gifts" not in roomy.omitted


@pytest.mark.parametrize("length", [300, 800])
def test_a_long_2d_payload_gets_smaller_modules_and_still_reads_back(length: int) -> None:
    # the carriers' 2D codes carry routing data: SF's 丰密 code runs to a few hundred characters
    for carrier in CARRIERS:
        ewb = replace(ewaybill(carrier), qr=("MMM=" + "x1Y2z3" * 200)[:length])
        for size in SIZES:
            label, info, _ = printed(ewb, size)
            assert ewaybill_problems(label.image, ewb.number, ewb.qr) == [], (carrier, size)
            assert "gifts" not in info.omitted or length > 500, (carrier, size, info.omitted)


def test_a_58mm_printer_is_refused_with_a_clear_error() -> None:
    with pytest.raises(Refusal) as e:
        ewaybill_size("58")
    assert e.value.code == "paper_too_narrow" and e.value.status == 422
    assert "58" in e.value.message and "76" in e.value.message
    assert e.value.details["sizes"] == list(SIZES)


@pytest.mark.parametrize("paper,size", [("80", "76x130"), ("76x130", "76x130"),
                                        ("100x150", "100x150"), ("100x180", "100x180")])
def test_the_bench_paper_picks_the_carrier_stock(paper: str, size: str) -> None:
    assert ewaybill_size(paper) == size


def test_a_carrier_without_a_layout_and_a_waybill_of_another_order_are_refused() -> None:
    with pytest.raises(Refusal) as e:
        ewaybill_template("YTO", "76x130")
    assert e.value.code == "unknown_carrier" and "YTO" in e.value.message
    other = replace(P0_GIFT, order_id="SO-9999")
    with pytest.raises(Refusal) as e:
        render_ewaybill(ewaybill("SF"), ewaybill_template("SF", "76x130"), order=other)
    assert e.value.code == "bad_field"


def test_without_the_order_or_a_2d_code_the_label_still_prints_the_number() -> None:
    ewb = replace(ewaybill("ZTO"), qr=None)
    label, info, _ = printed(ewb, "76x130", order=None)
    assert label.texts("QRCode") == [] and label.texts("Code128") == [ewb.number]
    assert inverted_badges(label.image) == []  # no order here: no P0 to mark
    assert info.omitted == ()


def test_a_long_sorting_code_shrinks_to_one_line_instead_of_wrapping() -> None:
    long = replace(ewaybill("ZTO"), sort_code="乌鲁木齐 新A01-02 37 转 喀什 118")
    _, _, short_img = printed(ewaybill("ZTO"), "76x130")
    _, _, long_img = printed(long, "76x130")

    def first_rule(img) -> int:  # the row of the rule under the sorting code
        arr = np.asarray(img.convert("L")) < 128
        full = np.flatnonzero(arr.mean(axis=1) > 0.9)
        return int(full[0])

    assert first_rule(long_img) <= first_rule(short_img) + 2


@pytest.mark.parametrize("phone,masked", [("13812341234", "138****1234"), ("139****5678", "139****5678"),
                                          ("057188881234", "********1234"), ("", "")])
def test_both_parties_phones_are_masked(phone: str, masked: str) -> None:
    ewb = replace(ewaybill("JT"), recipient={"name": "a", "phone": phone, "address": "x"},
                  sender={"name": "b", "phone": phone, "address": "y"})
    fields = ewaybill_fields(ewb, None, station="b", printed_at=WHEN)
    assert fields["recipient_phone"] == fields["sender_phone"] == masked


def test_zbar_reads_a_plain_code128_the_same_as_zxing() -> None:
    _, _, image = printed(ewaybill("JT"), "100x150")
    gray = np.asarray(image.convert("L"))
    assert {(s.format, s.text) for s in decode_symbols_zbar(gray)} >= {("Code128", "JT0012345678901")}


def test_cli_renders_an_ewaybill_json_in_its_carriers_layout(tmp_path) -> None:
    png, binfile = tmp_path / "e.png", tmp_path / "e.bin"
    proc = run_cli("label", str(DATA / "printers" / "order_p0_gift.json"),
                   "--ewaybill", str(DATA / "printers" / "ewaybill_zto.json"), "--paper", "80",
                   "--png", str(png), "--escpos", str(binfile), data_dir=tmp_path / "var")
    out = json.loads(proc.stdout)
    assert out["template"] == "ewaybill_zto_76x130" and out["size"] == "76x130"
    assert out["model"] == "generic-80" and out["omitted"] == [] and out["height"] == 1040
    (label,) = labels_from_bytes(binfile.read_bytes(), 576)
    ewb = ewaybill("ZTO")
    assert ewaybill_problems(label.image, ewb.number, ewb.qr) == []
    assert inverted_badges(label.image)  # the order given: its P0 is marked
    big = run_cli("label", "--ewaybill", str(DATA / "printers" / "ewaybill_sf.json"),
                  "--paper", "100x180", "--escpos", str(binfile), data_dir=tmp_path / "var")
    assert json.loads(big.stdout)["model"] == "generic-100x150"
    (label,) = labels_from_bytes(binfile.read_bytes(), 832)
    assert set(label.texts("Code128")) == {"SF1385628716739"}


@pytest.mark.parametrize("args,words", [
    (["--paper", "58"], "too narrow"),
    (["--paper", "80", "--model", "generic-58"], "prints 384"),
])
def test_cli_refuses_a_printer_too_narrow_in_one_line(tmp_path, args, words) -> None:
    bad = run_cli("label", "--ewaybill", str(DATA / "printers" / "ewaybill_sf.json"), *args,
                  "--png", str(tmp_path / "x.png"), data_dir=tmp_path / "var", check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and words in bad.stderr


def test_cli_refuses_a_bad_ewaybill_file_in_one_line(tmp_path) -> None:
    broken = tmp_path / "bad.json"
    for text, words in [('{"carrier": "SF"}', "number"), ("{not json", "not valid JSON"),
                        ('{"carrier": "YTO", "number": "YT1", "order_id": "SO-1"}', "YTO")]:
        broken.write_text(text, encoding="utf-8")
        bad = run_cli("label", "--ewaybill", str(broken), "--png", str(tmp_path / "x.png"),
                      data_dir=tmp_path / "var", check=False)
        assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and words in bad.stderr, bad.stderr
