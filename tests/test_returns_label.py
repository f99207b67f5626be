"""The returns sticker (printers/returns_label.py, printers/templates/returns_*.toml): rendered
on every paper with the RMA's barcode reading back, and printed through the print queue to the
virtual printer over real TCP when a receipt finishes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from scanedge.edge.config import load_settings
from scanedge.edge.context import EdgeContext
from scanedge.edge.domain.returns import iso
from scanedge.printers.returns_label import render_returns_label, sticker_fields
from scanedge.printers.selfcheck import decode_symbols
from scanedge.printers.sim import VirtualPrinter
from scanedge.sync.apply import apply_changes
from tests.support import wait_until

PAYLOAD = {"rma_id": "RMA-2026-0001", "order_id": "SO-1001", "receipt_id": "01JRECEIPT",
           "reason": "七天无理由", "qualifies": True, "station": "bench-1",
           "lines": [{"sku": "6901234567892", "name": "保温杯", "qty": 2,
                      "disposition": "restock", "bin": "A-02-14-3"},
                     {"sku": "9787115428028", "name": "", "qty": 1,
                      "disposition": "quarantine", "bin": None}]}


@pytest.mark.parametrize("paper", ["58", "80", "100x150"])
def test_the_sticker_renders_on_every_paper_and_its_barcode_reads_back(paper):
    image = render_returns_label(PAYLOAD, paper, printed_at=datetime(2026, 12, 1, 9, 30))
    assert image.mode == "1"
    symbols = decode_symbols(np.array(image.convert("L")))
    assert [s.text for s in symbols if s.format == "Code128"] == ["RMA-2026-0001"]


def test_the_stickers_fields_say_disposition_and_bin_per_line():
    fields = sticker_fields(PAYLOAD, station="bench-9", printed_at=datetime(2026, 12, 1, 9, 30))
    assert fields["line1"] == "6901234567892 保温杯 ×2  上架 restock → A-02-14-3"
    assert fields["line2"] == "9787115428028 ×1  隔离待检 quarantine"
    assert fields["verdict"].startswith("可退款") and not fields["unannounced"]
    many = {**PAYLOAD, "rma_id": None, "qualifies": False,
            "lines": PAYLOAD["lines"] * 4}  # eight lines
    fields = sticker_fields(many, station="bench-9", printed_at=datetime(2026, 12, 1))
    assert fields["more"].startswith("+2") and fields["unannounced"] == "1"
    assert fields["barcode_text"] == "01JRECEIPT" and fields["verdict"].startswith("不予退款")


def test_a_finished_receipt_prints_its_sticker_on_the_bench_printer(tmp_path):
    with VirtualPrinter(dots=576) as sim:
        settings = load_settings(env={}, data_dir=str(tmp_path / "var"), device_id="dev-1",
                                 station="bench-1", printer=sim.address,
                                 printer_model="generic-80")
        ctx = EdgeContext.open(settings)
        try:
            doc = {"rma_id": "RMA-7", "order_id": "SO-7", "reason": "质量问题",
                   "deadline": iso(datetime.now(UTC) + timedelta(days=3)),
                   "lines": [{"sku": "SELLER-CASE-07", "name": "手机壳", "qty": 1,
                              "bin": "R-01"}]}
            change = {"seq": 1, "kind": "rma", "order_id": "SO-7", "payload": doc,
                      "created_at": iso(datetime.now(UTC))}
            ctx.store.write(lambda db: apply_changes(db, "dev-1", [change]))
            receipt, _ = ctx.returns.start(rma_id="RMA-7", code="RMA-7", station="bench-1",
                                           operator="k1")
            rid = receipt["receipt_id"]
            ctx.returns.scan_item(rid, "SELLER-CASE-07", scan_id=None, operator="k1")
            ctx.returns.set_condition(rid, "SELLER-CASE-07", "damaged", operator="k1")
            out = ctx.returns.finish(rid, operator="k1")
            assert out["verdict"]["lines"][0]["disposition"] == "scrap"
            wait_until(lambda: ctx.printing.get(out["label_job"]).state == "printed",
                       timeout=15, what="the sticker printed")
            assert sim.wait_labels(1)
            texts = [s.text for s in decode_symbols(np.array(sim.labels[0].image))]
            assert "RMA-7" in texts
            printed = ctx.store.read().execute(
                "SELECT payload FROM events WHERE type = 'print_printed'").fetchone()
            assert json.loads(printed[0])["kind"] == "returns"
        finally:
            ctx.close()
