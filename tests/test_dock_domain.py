"""The dock's rules (edge/domain/dock.py) as tables: which parcel goes onto a truck, what a closed
batch's manifest says."""

from __future__ import annotations

import pytest

from scanedge.edge.domain.dock import (
    Batch,
    DockVerdict,
    Loaded,
    Parcel,
    Printed,
    close_blockers,
    judge,
    manifest,
    manifest_rows,
)

SF = Batch("B1", "SF")
MIXED = Batch("B2", None)


def parcel(**facts) -> Parcel:
    return Parcel(**{"code": "SF1385628716739", "order_id": "SO-1", "carrier": "SF",
                     "printed": True, **facts})


@pytest.mark.parametrize("batch, facts, verdict, counted, flags", [
    (SF, {}, DockVerdict.ACCEPTED, True, ()),
    (SF, {"carrier": "sf"}, DockVerdict.ACCEPTED, True, ()),  # carriers compare by code
    (SF, {"carrier": None}, DockVerdict.ACCEPTED, True, ()),  # an order with no carrier
    (SF, {"printed": False}, DockVerdict.ACCEPTED, True, ("no_label_here",)),
    (SF, {"order_id": None}, DockVerdict.UNKNOWN, False, ()),
    (SF, {"freeze_reason": "cancel"}, DockVerdict.FROZEN, False, ()),
    # frozen wins over everything else: even scanned in before, even another carrier's
    (SF, {"freeze_reason": "cancel", "in_this_batch": True}, DockVerdict.FROZEN, False, ()),
    (SF, {"freeze_reason": "hold", "carrier": "YTO"}, DockVerdict.FROZEN, False, ()),
    (SF, {"void_reason": "address_change"}, DockVerdict.LABEL_VOID, False, ()),
    (SF, {"loaded_in": "B0"}, DockVerdict.ALREADY_LOADED, False, ()),
    (SF, {"in_this_batch": True}, DockVerdict.DUPLICATE, False, ("scanned_twice",)),
    (SF, {"open_batch": "B9"}, DockVerdict.IN_OTHER_BATCH, False, ()),
    (SF, {"carrier": "YTO"}, DockVerdict.WRONG_CARRIER, False, ()),
    (MIXED, {"carrier": "YTO"}, DockVerdict.ACCEPTED, True, ()),  # a mixed truck takes any
])
def test_each_scan_at_the_dock_is_judged_by_the_rules_in_order(batch, facts, verdict, counted,
                                                               flags) -> None:
    decision = judge(batch, parcel(**facts))
    assert (decision.verdict, decision.counted, decision.flags) == (verdict, counted, flags)
    assert decision.message["zh"] and decision.message["en"]


@pytest.mark.parametrize("facts, code, alarm", [
    ({}, None, False),
    ({"in_this_batch": True}, None, False),
    ({"order_id": None}, "parcel_unknown", False),
    ({"freeze_reason": "cancel"}, "parcel_frozen", True),
    ({"void_reason": "address_change"}, "label_void", True),
    ({"loaded_in": "B0"}, "already_loaded", False),
    ({"open_batch": "B9"}, "in_other_batch", False),
    ({"carrier": "ZTO"}, "wrong_carrier", False),
])
def test_a_refused_parcel_has_a_refusal_code_and_only_one_to_pull_raises_the_alarm(
        facts, code, alarm) -> None:
    from scanedge.edge.domain.refusal import STATUS

    decision = judge(SF, parcel(**facts))
    assert decision.refusal_code == code and decision.refused is (code is not None)
    assert decision.alarm is alarm
    assert code is None or code in STATUS


def test_a_frozen_parcel_says_pull_it_in_both_languages() -> None:
    message = judge(SF, parcel(freeze_reason="cancel")).message
    assert "拦截" in message["zh"] and "不要装车" in message["zh"] and "已取消" in message["zh"]
    assert "pull it" in message["en"] and "cancelled" in message["en"]


def loaded(order_id: str, carrier: str | None = "SF", scans: int = 1, frozen: bool = False) -> Loaded:
    return Loaded(order_id, carrier, f"T-{order_id}", scans, "2026-05-01T09:00:00.000Z", frozen)


def printed(order_id: str, carrier: str | None = "SF", frozen: bool = False) -> Printed:
    return Printed(order_id, carrier, f"T-{order_id}", "2026-05-01T08:00:00.000Z", frozen)


@pytest.mark.parametrize("batch, parcels, labels, counts, not_scanned, to_pull", [
    (SF, [loaded("A"), loaded("B", scans=2)], [],
     {"parcels": 2, "by_carrier": {"SF": 2}, "scanned_twice": 1, "not_scanned": 0, "to_pull": 0},
     [], []),
    # labels printed for this truck and never scanned; another carrier's are not this truck's
    (SF, [loaded("A")], [printed("C"), printed("D", "YTO"), printed("E", None)],
     {"parcels": 1, "by_carrier": {"SF": 1}, "scanned_twice": 0, "not_scanned": 2, "to_pull": 0},
     ["C", "E"], []),
    # a frozen one printed and not scanned: someone must find it before the truck leaves
    (SF, [loaded("A")], [printed("F", frozen=True)],
     {"parcels": 1, "by_carrier": {"SF": 1}, "scanned_twice": 0, "not_scanned": 0, "to_pull": 1},
     [], ["F"]),
    # a mixed truck: counts per carrier, every printed label expected
    (MIXED, [loaded("A"), loaded("B", "YTO"), loaded("C", "yto"), loaded("D", None)],
     [printed("E", "JT")],
     {"parcels": 4, "by_carrier": {"-": 1, "SF": 1, "YTO": 2}, "scanned_twice": 0,
      "not_scanned": 1, "to_pull": 0}, ["E"], []),
])
def test_the_manifest_counts_per_carrier_and_lists_what_was_printed_but_not_scanned(
        batch, parcels, labels, counts, not_scanned, to_pull) -> None:
    doc = manifest(batch, parcels, labels, station="dock-1", operator="li", opened_at="o",
                   closed_at="c")
    assert doc["counts"] == counts
    assert [p["order_id"] for p in doc["not_scanned"]] == not_scanned
    assert [p["order_id"] for p in doc["to_pull"]] == to_pull
    assert [p["order_id"] for p in doc["parcels"]] == [p.order_id for p in parcels]


def test_a_batch_holding_a_parcel_frozen_since_its_scan_cannot_close() -> None:
    assert close_blockers([loaded("A"), loaded("B", frozen=True)]) == ["B"]
    assert close_blockers([loaded("A")]) == []


def test_the_manifest_as_csv_rows_has_a_header_and_one_row_per_parcel() -> None:
    doc = manifest(SF, [loaded("A"), loaded("B", scans=2)], [], station="d", operator="o",
                   opened_at="o", closed_at="c")
    rows = manifest_rows(doc)
    assert rows[0] == ["batch_id", "carrier", "order_id", "tracking_number", "scanned_at", "scans",
                       "parcel"]
    assert rows[1:] == [["B1", "SF", "A", "T-A", "2026-05-01T09:00:00.000Z", "1", ""],
                        ["B1", "SF", "B", "T-B", "2026-05-01T09:00:00.000Z", "2", ""]]


def test_a_parcel_pulled_at_the_dock_after_its_label_printed_is_intercepted_after_print() -> None:
    from datetime import UTC, datetime, timedelta

    from scanedge.edge.domain.interception_report import DeviceEvent, FreezeRecord, build_report

    issued = datetime(2026, 5, 1, 9, tzinfo=UTC)
    events = [DeviceEvent("gw", "print_printed", "SO-1", issued - timedelta(minutes=5), {}),
              DeviceEvent("gw", "interception", "SO-1", issued + timedelta(seconds=300),
                          {"action": "dock", "station": "dock-1", "seconds_since_freeze": 300.0,
                           "freeze_issued_at": issued.isoformat()})]
    report = build_report(issued - timedelta(days=1), [FreezeRecord("c1", "SO-1", "cancel", issued)],
                          [], events)
    assert report.total.intercepted_after_print == 1 and report.total.missed == 0
    dock = next(s for s in report.stages if s.stage == "dock")
    assert (dock.freezes, dock.interceptions, dock.median_s) == (1, 1, 300.0)
    assert [r.station for r in report.rows] == ["dock-1"]
