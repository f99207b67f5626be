"""Print jobs of other kinds than an order's label (queue migration 2: ``kind`` and ``payload``):
a returns sticker carries what it prints, an order's freeze does not cancel it, and a print
queue made before the migration is upgraded in place."""

from __future__ import annotations

import json

from scanedge.edge.commands import load_demo_orders
from scanedge.edge.freezes.local import freeze_order
from scanedge.edge.store import Store
from scanedge.edge.store.db import Migration
from scanedge.printers import queue as q

PAYLOAD = {"rma_id": "RMA-1", "lines": [{"sku": "6901234567892", "disposition": "restock"}]}


def _store(tmp_path) -> Store:
    store = Store(tmp_path / "edge.db")
    store.ensure_schema(q.COMPONENT, q.MIGRATIONS)
    return store


def test_a_job_of_another_kind_keeps_its_payload_and_says_its_kind(tmp_path) -> None:
    store = _store(tmp_path)
    job, created = store.write(lambda db: q.enqueue_job(
        db, "dev", "SO-1", "P3", kind="returns", payload=PAYLOAD, idempotency_key="r-1"))
    assert created and job.kind == "returns" and job.payload == PAYLOAD
    again, created = store.write(lambda db: q.enqueue_job(
        db, "dev", "SO-1", "P3", kind="returns", payload=PAYLOAD, idempotency_key="r-1"))
    assert not created and again.job_id == job.job_id
    assert q.get_job(store.read(), job.job_id).to_json()["kind"] == "returns"
    queued = store.read().execute("SELECT payload FROM events WHERE type = 'print_queued'").fetchone()
    assert json.loads(queued[0])["kind"] == "returns"
    store.close()


def test_an_orders_freeze_cancels_its_labels_but_not_its_returns_sticker(tmp_path) -> None:
    store = _store(tmp_path)
    load_demo_orders(store)
    order_id = store.read().execute("SELECT order_id FROM orders LIMIT 1").fetchone()[0]
    label, _ = store.write(lambda db: q.enqueue_job(db, "dev", order_id, "P2"))
    sticker, _ = store.write(lambda db: q.enqueue_job(db, "dev", order_id, "P3", kind="returns",
                                                      payload=PAYLOAD))
    freeze_order(store, "dev", order_id, "cancel", source="test")
    store.write(lambda db: q.cancel_order_jobs(db, "dev", order_id))
    assert q.get_job(store.read(), label.job_id).state == "cancelled"
    assert q.get_job(store.read(), sticker.job_id).state == "queued"
    claimed = store.write(lambda db: q.start_sending(db, "dev", sticker.job_id, 100))
    assert claimed is not None and claimed.state == "sending"
    store.close()


def test_a_print_queue_of_schema_1_is_upgraded_in_place(tmp_path) -> None:
    store = Store(tmp_path / "edge.db")
    store.ensure_schema(q.COMPONENT, q.MIGRATIONS[:1])
    store.write(lambda db: db.execute(
        "INSERT INTO print_jobs (job_id, order_id, priority, rank, copies, state, created_at,"
        " updated_at) VALUES ('J1', 'SO-1', 'P2', 2, 1, 'queued', 'now', 'now')"))
    assert store.ensure_schema(q.COMPONENT, q.MIGRATIONS) == 2
    job = q.get_job(store.read(), "J1")
    assert job is not None and job.kind == q.LABEL and job.payload is None
    assert isinstance(q.MIGRATIONS[-1], Migration)
    store.close()
