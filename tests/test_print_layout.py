"""Labels: Code 128 encoding, layout rules, bytes per printer model, and the self-check."""

from __future__ import annotations

import json
import re
from datetime import datetime

import numpy as np
import pytest

from scanedge.edge.domain.orders import parse_order
from scanedge.printers import code128
from scanedge.printers.encode import label_bytes
from scanedge.printers.layout import (
    LabelError,
    choose_barcode_geometry,
    label_fields,
    load_template,
    mask_phone,
    render_label,
    sorting_lane,
    template_names,
)
from scanedge.printers.models import get_model, models
from scanedge.printers.selfcheck import badge_text, decode_symbols, labels_from_bytes, ocr
from tests.support import DATA, DEMO_ORDERS, run_cli

ORDERS = [parse_order(o) for o in json.loads(DEMO_ORDERS.read_text(encoding="utf-8"))]
P0_GIFT = parse_order(json.loads((DATA / "printers" / "order_p0_gift.json").read_text(encoding="utf-8")))
WHEN = datetime(2025, 3, 1, 9, 30)


def _print(order, paper: str, *, model: str | None = None, reprint_no: int = 0):
    template = load_template(f"standard_{paper}")
    m = get_model(model or f"generic-{paper}")
    image, info = render_label(order, template, station="bench-1", printed_at=WHEN, reprint_no=reprint_no)
    data = label_bytes([image], m)
    labels = labels_from_bytes(data, m.dots)
    assert len(labels) == 1
    return labels[0], info, image


@pytest.mark.parametrize("text", ["SF1385628716739", "SO-1001", "1234567890", "A1", "JDVA00123456789",
                                  "12345", "abCD99887766x"])
def test_code128_round_trip_and_code_set_c_for_digit_runs(text: str) -> None:
    symbol = code128.encode(text)
    row = np.array([0 if m == "1" else 255 for m in "0" * 10 + symbol.modules + "0" * 10],
                   dtype=np.uint8).repeat(2)
    found = decode_symbols(np.tile(row, (40, 1)))
    assert [(s.format, s.text) for s in found] == [("Code128", text)]
    digit_run = max((len(r) for r in "".join(c if c.isdigit() else " " for c in text).split()), default=0)
    if digit_run >= 4:
        assert "C" in symbol.sets


def test_code128_is_shortest_for_tracking_numbers() -> None:
    # start B, S, F, '1' in B, code C, 6 digit pairs, check, stop: 12 symbols + stop = 145 modules
    assert code128.encode("SF1385628716739").width_modules == 145
    assert code128.encode("1234567890").sets == "CCCCC"
    with pytest.raises(code128.Code128Error):
        code128.encode("单号")


def test_barcode_geometry_rotates_on_58mm_and_errors_only_when_nothing_fits() -> None:
    rules = load_template("standard_58").barcode
    total = code128.encode("SF1385628716739").width_modules + 2 * rules.quiet_modules
    assert choose_barcode_geometry(total, 368, 2400, rules) == (3, True)
    assert choose_barcode_geometry(total, 552, 2400, load_template("standard_80").barcode) == (3, False)
    never = load_template("standard_100x150").barcode
    with pytest.raises(LabelError, match="dots across"):
        choose_barcode_geometry(2000, 752, 1200, never)


@pytest.mark.parametrize("paper", ["58", "80", "100x150", "100x180"])
def test_every_template_prints_scannable_barcode_and_qr(paper: str) -> None:
    for order in ORDERS:
        label, info, image = _print(order, paper)
        assert image.width == load_template(f"standard_{paper}").width
        assert label.texts("Code128") == [order.tracking_number]
        assert label.texts("QRCode") == [f"{order.order_id}:L1"]  # the label's own name
        assert info.barcode_module >= 2
    if paper == "58":
        assert info.barcode_rotated  # a 15-character tracking number turns along the feed


def test_quiet_zone_is_at_least_ten_modules() -> None:
    _, info, image = _print(ORDERS[1], "80")
    arr = np.asarray(image.convert("L"))
    # the barcode rows: the widest band of rows with many black/white transitions
    transitions = (np.diff(arr.astype(int), axis=1) != 0).sum(axis=1)
    row = arr[int(np.argmax(transitions))]
    black = np.flatnonzero(row < 128)
    assert black[0] >= 10 * info.barcode_module
    assert arr.shape[1] - 1 - black[-1] >= 10 * info.barcode_module


@pytest.mark.parametrize("paper", [pytest.param("58", marks=pytest.mark.slow), "80"])  # OCR: 4 s
def test_p0_badge_and_gift_line_are_on_the_printed_label(paper: str) -> None:
    label, _, _ = _print(P0_GIFT, paper)
    assert label.texts("Code128") == ["SF1385628716739"]
    assert label.texts("QRCode") == ["SO-2001:L1"]
    assert any(t.startswith("P0") for t in badge_text(label.image))  # white on black, large
    text = ocr(label.image)
    assert "含赠品" in text and "帆布包" in text
    # an ordinary order has no inverted badge
    plain, _, _ = _print(ORDERS[1], paper)
    assert badge_text(plain.image) == []


def test_reprint_mark_and_masked_phone() -> None:
    import zxingcpp

    label, _, _ = _print(P0_GIFT, "80", reprint_no=2)
    whole = ocr(label.image)  # read once: the same image reads the same (no second 1 s OCR below)
    assert "补打#2" in whole
    # the phone is printed beside the QR: read that block alone (Tesseract reads QR modules as
    # junk that runs into the text next to them, differently for every QR content)
    (qr,) = [s for s in zxingcpp.read_barcodes(label.image) if s.format.name == "QRCode"]
    p = qr.position
    top, bottom = min(p.top_left.y, p.top_right.y), max(p.bottom_left.y, p.bottom_right.y)
    beside = label.image[max(0, top - 10):bottom + 10, max(p.top_right.x, p.bottom_right.x) + 12:]
    text = ocr(beside)
    # Tesseract reads this font's "*" as "x" or "*" depending on what surrounds it: what
    # matters is that four digits are hidden and the full number is nowhere on the label
    assert re.search(r"138[*x×]{4}1234", text) and "13812341234" not in whole
    assert label_fields(P0_GIFT, station="b", printed_at=WHEN)["phone"] == "138****1234"
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone("139****5678") == "139****5678"


@pytest.mark.parametrize("model", sorted(models()))
def test_every_printer_model_prints_decodable_bytes(model: str) -> None:
    m = get_model(model)
    template = load_template(f"standard_{m.paper}")
    image, _ = render_label(P0_GIFT, template, printed_at=WHEN)
    data = label_bytes([image, image], m, beep=True)
    labels = labels_from_bytes(data, m.dots)
    assert len(labels) == 2  # two copies, two labels (cut or ESC @ between them)
    for label in labels:
        assert label.texts("Code128") == ["SF1385628716739"]
    assert labels[-1].beeps == (0 if m.buzzer == "none" else 1)
    assert all(label.cut == (m.cut != "none") for label in labels)


def test_lane_from_rules_when_the_order_has_none() -> None:
    base = json.loads((DATA / "printers" / "order_p0_gift.json").read_text(encoding="utf-8"))
    del base["lane"]
    assert sorting_lane(parse_order({**base, "weight_kg": 0.4})) == "A"
    assert sorting_lane(parse_order({**base, "weight_kg": 3})) == "B"
    assert sorting_lane(parse_order({**base, "weight_kg": 50})) == "D"
    assert sorting_lane(parse_order(base)) == "-"


def test_templates_are_data() -> None:
    assert {"standard_58", "standard_80", "standard_100x150"} <= set(template_names())
    with pytest.raises(LabelError, match="not found"):
        load_template("no_such_template")


def test_cli_label_writes_png_and_escpos(tmp_path) -> None:
    png, binfile = tmp_path / "l.png", tmp_path / "l.bin"
    proc = run_cli("label", str(DATA / "printers" / "order_p0_gift.json"), "--paper", "58",
                   "--png", str(png), "--escpos", str(binfile), data_dir=tmp_path / "var")
    out = json.loads(proc.stdout)
    assert out["paper"] == "58" and out["barcode"]["rotated"] is True
    labels = labels_from_bytes(binfile.read_bytes(), 384)
    assert labels[0].texts("Code128") == ["SF1385628716739"]
    assert png.stat().st_size > 1000
    bad = run_cli("label", str(tmp_path / "missing.json"), "--png", str(png), data_dir=tmp_path / "var",
                  check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
