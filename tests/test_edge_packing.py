"""Pack verification rules, as pure functions (no store, no HTTP)."""

from datetime import UTC, date, datetime

import pytest

from scanedge.edge.domain.codes import classify
from scanedge.edge.domain.messages import scan_message
from scanedge.edge.domain.orders import OrderError, parse_order
from scanedge.edge.domain.packing import Freeze, PackState, Reason, ScanContext, Verdict, evaluate_scan

TODAY = date(2026, 11, 22)
GS = "\x1d"
ORDER = parse_order({
    "order_id": "SO-1", "priority": "P0",
    "lines": [
        {"sku": "6901234567892", "name": "保温杯", "qty": 2, "lot": "L1", "expires": "2027-01-31"},
        {"sku": "4006381333931", "name": "荧光笔", "qty": 1},
        {"sku": "OWN-7", "name": "手机壳", "qty": 1},
    ],
    "gifts": [{"name": "帆布包", "qty": 1}],
})


def gs1(gtin: str, lot: str, expiry: str) -> str:
    return f"]C101{gtin}10{lot}{GS}17{expiry}"


def scan(text: str, state: PackState | None, *, named: bool = False, frozen: bool = False):
    code = classify(text)
    freezes = {}
    if frozen and state is not None:
        freezes[state.order.order_id] = Freeze(state.order.order_id, "cancel", datetime.now(UTC))
    ctx = ScanContext("bench-1", TODAY, open=None if named else state,
                      named=state if named else None, freezes=freezes)
    return evaluate_scan(code, ctx)


def test_order_scan_opens_and_items_count_to_complete():
    fresh = PackState.fresh(ORDER)
    out = scan("SO-1", fresh, named=True)
    assert (out.verdict, out.reason, out.opens) == (Verdict.OK, Reason.ORDER_OPENED, True)
    state = fresh
    for text in [gs1("06901234567892", "L1", "270228"), gs1("06901234567892", "L1", "270131"),
                 "4006381333931"]:
        out = scan(text, state)
        assert out.verdict is Verdict.OK and out.reason is Reason.ITEM_COUNTED
        state = out.state
    out = scan("own-7", state)
    assert out.reason is Reason.ORDER_COMPLETE and out.complete
    assert out.state.packed == (2, 1, 1)


@pytest.mark.parametrize("text, verdict, reason", [
    ("9787115428028", Verdict.WRONG_ITEM, Reason.NOT_IN_ORDER),  # valid EAN, not in order
    ("SOMETHING-ELSE", Verdict.WRONG_ITEM, Reason.NOT_IN_ORDER),
    ("6901234567892", Verdict.WRONG_LOT, Reason.LOT_MISSING),  # lot required, plain EAN has none
    (gs1("06901234567892", "L9", "270131"), Verdict.WRONG_LOT, Reason.LOT_MISMATCH),
    (gs1("06901234567892", "L1", "261121"), Verdict.EXPIRED, Reason.EXPIRED),  # before today
    (gs1("06901234567892", "L1", "261231"), Verdict.EXPIRED, Reason.EXPIRES_TOO_SOON),
    ("6901234567891", Verdict.UNKNOWN, Reason.BAD_CHECK_DIGIT),
    ("SF1131481879204", Verdict.UNKNOWN, Reason.UNKNOWN_TRACKING),
])
def test_refusals(text, verdict, reason):
    out = scan(text, PackState.fresh(ORDER))
    assert (out.verdict, out.reason) == (verdict, reason)
    assert not out.counted
    msg = scan_message(out, text)
    assert msg["zh"] and msg["en"] and "?" not in msg["en"]


def test_over_scan():
    state = PackState(ORDER, (2, 1, 0))
    out = scan("4006381333931", state)
    assert (out.verdict, out.reason) == (Verdict.OVER_SCAN, Reason.LINE_FULL)
    assert out.alarm


def test_frozen_order_refuses_order_scan_and_item_scans():
    state = PackState.fresh(ORDER)
    out = scan("SO-1", state, named=True, frozen=True)
    assert out.verdict is Verdict.FROZEN and not out.opens and out.alarm
    out = scan("4006381333931", state, frozen=True)
    assert out.verdict is Verdict.FROZEN and not out.counted
    assert "已取消" in scan_message(out, "4006381333931")["zh"]


def test_no_open_order():
    out = evaluate_scan(classify("4006381333931"), ScanContext("bench-1", TODAY))
    assert (out.verdict, out.reason) == (Verdict.UNKNOWN, Reason.NO_OPEN_ORDER)
    assert not out.alarm


def test_same_sku_two_lots_counts_into_matching_line():
    order = parse_order({"order_id": "SO-2", "lines": [
        {"sku": "6901234567892", "qty": 1, "lot": "A"},
        {"sku": "6901234567892", "qty": 1, "lot": "B"}]})
    out = scan(gs1("06901234567892", "B", "280101"), PackState.fresh(order))
    assert out.line_no == 1 and out.state.packed == (0, 1)


@pytest.mark.parametrize("doc, fragment", [
    ({"lines": [{"sku": "x", "qty": 1}]}, "order_id: required"),
    ({"order_id": "SO 1", "lines": [{"sku": "x", "qty": 1}]}, "order_id"),
    ({"order_id": "SO-1", "lines": []}, "lines: expected a non-empty list"),
    ({"order_id": "SO-1", "lines": [{"sku": "x", "qty": 0}]}, "lines[0].qty"),
    ({"order_id": "SO-1", "priority": "P9", "lines": [{"sku": "x", "qty": 1}]}, "priority"),
    ({"order_id": "SO-1", "lines": [{"sku": "x", "qty": 1, "expires": "31/01/2027"}]}, "expires"),
    ("not an object", "JSON object"),
])
def test_order_validation_names_the_field(doc, fragment):
    with pytest.raises(OrderError, match=None) as e:
        parse_order(doc)
    assert fragment in str(e.value)


def test_unknown_order_keys_are_kept():
    order = parse_order({"order_id": "SO-3", "lines": [{"sku": "x", "qty": 1}], "weight_g": 420})
    assert order.extra == {"weight_g": 420}
    assert order.to_json()["weight_g"] == 420
