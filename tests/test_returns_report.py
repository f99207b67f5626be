"""The returns report (edge/domain/returns_report.py) as a table test, and
``scanedge report returns --since DATE`` over a device's finished receipts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from scanedge.edge.config import load_settings
from scanedge.edge.context import EdgeContext
from scanedge.edge.demo import demo_rmas
from scanedge.edge.domain.returns import iso
from scanedge.edge.domain.returns_report import UNANNOUNCED, ReturnRecord, build_report, record_of
from scanedge.sync.apply import apply_changes
from tests.support import run_cli

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def rec(station: str, reason: str, qualifies: bool, minutes: float, *blocking: str,
        at: datetime = T0) -> ReturnRecord:
    return ReturnRecord("dev-1", station, reason, qualifies, blocking, at,
                        at + timedelta(minutes=minutes))


def test_the_report_counts_by_reason_code_and_station_with_median_minutes():
    records = [
        rec("bench-1", "七天无理由", True, 2),
        rec("bench-1", "七天无理由", False, 4, "condition_not_allowed"),
        rec("bench-2", "七天无理由", True, 10),
        rec("bench-2", "尺码不符", False, 3, "past_deadline", "condition_not_allowed"),
        rec("bench-2", UNANNOUNCED, False, 1, "unannounced"),
        rec("bench-1", "质量问题", True, 1, at=T0 - timedelta(days=2)),  # before since
    ]
    report = build_report(T0 - timedelta(hours=1), records).as_json()
    assert (report["received"], report["qualified"], report["rejected"]) == (5, 2, 3)
    assert report["median_minutes_to_verdict"] == 3.0
    assert report["rejected_by_reason"] == {"condition_not_allowed": 2, "past_deadline": 1,
                                            "unannounced": 1}
    assert [(r["reason"], r["received"], r["qualified"], r["median_minutes_to_verdict"])
            for r in report["by_reason_code"]] == [
        (UNANNOUNCED, 1, 0, 1.0), ("七天无理由", 3, 2, 4.0), ("尺码不符", 1, 0, 3.0)]
    assert [(r["station"], r["received"], r["rejected"]) for r in report["by_station"]] == [
        ("bench-1", 2, 1), ("bench-2", 3, 2)]


def test_an_event_of_another_shape_is_left_out_not_a_crash():
    assert record_of("dev-1", {"verdict": "?"}) is None
    assert record_of("dev-1", {}) is None
    empty = build_report(T0, []).as_json()
    assert empty["received"] == 0 and empty["median_minutes_to_verdict"] is None


def test_scanedge_report_returns_reads_the_devices_finished_receipts(tmp_path):
    data = tmp_path / "var"
    ctx = EdgeContext.open(load_settings(env={}, data_dir=str(data), device_id="test-dev",
                                         station="bench-1"))
    try:
        changes = [{"seq": i, "kind": "rma", "order_id": r["order_id"], "payload": r,
                    "created_at": iso(datetime.now(UTC))} for i, r in enumerate(demo_rmas(), 1)]
        ctx.store.write(lambda db: apply_changes(db, "test-dev", changes))
        for rma in demo_rmas():
            receipt, _ = ctx.returns.start(rma_id=rma["rma_id"], code=None, station="bench-1",
                                           operator="k1")
            line = rma["lines"][0]
            ctx.returns.scan_item(receipt["receipt_id"], line["sku"], scan_id=None, operator="k1")
            ctx.returns.set_condition(receipt["receipt_id"], line["sku"], "resaleable",
                                      operator="k1")
            ctx.returns.finish(receipt["receipt_id"], operator="k1")
    finally:
        ctx.close()
    out = run_cli("report", "returns", "--since", "2026-01-01", "--json", data_dir=data)
    report = json.loads(out.stdout)
    assert (report["received"], report["qualified"], report["rejected"]) == (2, 1, 1)
    assert report["rejected_by_reason"] == {"past_deadline": 1}
    table = run_cli("report", "returns", "--since", "2026-01-01", data_dir=data).stdout
    assert "| 尺码不符 | 1 | 0 | 1 |" in table and "| bench-1 | 2 | 1 | 1 |" in table
    bad = run_cli("report", "returns", "--since", "yesterday", data_dir=data, check=False)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
