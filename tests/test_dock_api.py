"""The device's dock API (docs/dock.md, "API") through the real Flask app and SQLite: batches,
parcels scanned in (by order id, tracking number or label QR), the refusals with the station's
alarm, duplicates and replays, closing with its manifest and events, the CSV and the printed
manifest."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from scanedge.edge.domain.packing import Freeze
from scanedge.edge.store.orders import save_freeze
from scanedge.printers import queue as q


def events(ctx, type_: str) -> list[dict]:
    rows = ctx.store.read().execute("SELECT order_id, payload FROM events WHERE type = ?"
                                    " ORDER BY seq", [type_]).fetchall()
    return [{"order_id": r[0], **json.loads(r[1])} for r in rows]


def printed(ctx, order_id: str) -> None:
    """A label of the order printed on this device (the print queue's own steps)."""
    device = ctx.settings.device_id

    def tx(db):
        job, _ = q.enqueue_job(db, device, order_id, "P2")
        q.start_sending(db, device, job.job_id, 100)
        q.finish_printed(db, device, job.job_id, 100)

    ctx.store.write(tx)


def freeze(ctx, order_id: str, reason: str = "cancel") -> None:
    ctx.store.write(lambda db: save_freeze(db, Freeze(order_id, reason, datetime.now(UTC)),
                                           source="hub"))


@pytest.fixture
def rig(client, demo_ctx):
    for order_id in ("SO-1001", "SO-1002", "SO-1003"):
        printed(demo_ctx, order_id)
    return client, demo_ctx


def open_batch(client, carrier: str | None = "SF", station: str = "dock-1") -> dict:
    body = {"station": station, **({"carrier": carrier} if carrier else {})}
    r = client.post("/api/v1/dock/batches", json=body)
    assert r.status_code in (200, 201), r.get_json()
    return r.get_json()


def scan(client, batch_id: str, code: str, **extra):
    return client.post(f"/api/v1/dock/batches/{batch_id}/scans", json={"code": code, **extra})


@pytest.mark.parametrize("code", ["SO-1001", "SF1385628716739", "sf1385628716739", "SO-1001:L1"])
def test_a_parcel_is_scanned_in_by_its_order_id_tracking_number_or_label_qr(rig, code):
    client, _ = rig
    batch = open_batch(client)
    r = scan(client, batch["batch_id"], code)
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["verdict"] == "accepted" and body["order_id"] == "SO-1001" and body["flags"] == []
    assert body["batch"]["count"] == 1 and body["batch"]["parcels"][0]["carrier"] == "SF"


def test_the_stations_open_batch_for_the_same_truck_is_resumed(rig):
    client, _ = rig
    first = client.post("/api/v1/dock/batches", json={"carrier": "sf", "station": "dock-1"})
    again = client.post("/api/v1/dock/batches", json={"carrier": "SF", "station": "dock-1"})
    other = client.post("/api/v1/dock/batches", json={"station": "dock-1"})  # a mixed truck
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert first.get_json()["batch_id"] == again.get_json()["batch_id"] != other.get_json()["batch_id"]
    assert first.get_json()["carrier"] == "SF" and other.get_json()["carrier"] is None
    listed = client.get("/api/v1/dock/batches").get_json()["batches"]
    assert {b["batch_id"] for b in listed} == {first.get_json()["batch_id"],
                                               other.get_json()["batch_id"]}


def test_a_parcel_scanned_twice_is_flagged_and_counted_once_and_a_replay_writes_nothing(rig):
    client, _ = rig
    bid = open_batch(client)["batch_id"]
    assert scan(client, bid, "SO-1001", scan_id="s-1").get_json()["verdict"] == "accepted"
    replay = scan(client, bid, "SO-1001", scan_id="s-1").get_json()
    assert replay["verdict"] == "accepted" and replay["replayed"] is True
    twice = scan(client, bid, "SF1385628716739", scan_id="s-2").get_json()
    assert twice["verdict"] == "duplicate" and twice["flags"] == ["scanned_twice"]
    assert scan(client, bid, "SF1385628716739", scan_id="s-2").get_json()["replayed"] is True
    batch = client.get(f"/api/v1/dock/batches/{bid}").get_json()
    assert batch["count"] == 1 and batch["parcels"][0]["scans"] == 2 and batch["scanned_twice"] == 1


def test_a_frozen_parcel_is_refused_with_the_alarm_and_an_interception_at_stage_dock(rig):
    client, ctx = rig
    bid = open_batch(client)["batch_id"]
    freeze(ctx, "SO-1001")
    r = scan(client, bid, "SF1385628716739", scan_id="f-1")
    assert r.status_code == 409
    body = r.get_json()
    assert body["error"] == "parcel_frozen" and body["order_id"] == "SO-1001"
    assert "pull it" in body["message"] and "拦截" in body["words"]["zh"]
    alarms = [a for a in ctx.alarms.active() if a.type == "dock_pull"]
    assert len(alarms) == 1 and alarms[0].station == "dock-1" and alarms[0].order_id == "SO-1001"
    assert "拦截" in alarms[0].message["zh"] and "pull it" in alarms[0].message["en"]
    got = events(ctx, "interception")
    assert [(e["order_id"], e["action"], e["station"], e["batch_id"]) for e in got] == [
        ("SO-1001", "dock", "dock-1", bid)]
    # the scanner's retry of the same scan: the same refusal, no second alarm or interception
    again = scan(client, bid, "SF1385628716739", scan_id="f-1")
    assert again.status_code == 409 and again.get_json()["replayed"] is True
    assert len([a for a in ctx.alarms.active() if a.type == "dock_pull"]) == 1
    assert len(events(ctx, "interception")) == 1
    assert client.get(f"/api/v1/dock/batches/{bid}").get_json()["count"] == 0


def test_a_void_label_is_refused_with_the_alarm_to_pull_it_for_a_new_label(rig):
    from scanedge.edge.store import bench

    client, ctx = rig
    bid = open_batch(client)["batch_id"]
    ctx.store.write(lambda db: bench.void_printed_label(db, "SO-1001", "address_change"))
    r = scan(client, bid, "SO-1001:L1")
    assert r.status_code == 409 and r.get_json()["error"] == "label_void"
    assert [a.details["verdict"] for a in ctx.alarms.active() if a.type == "dock_pull"] == [
        "label_void"]
    assert events(ctx, "interception") == []  # not frozen: nothing to intercept


@pytest.mark.parametrize("code, error, status", [
    ("SO-1002", "wrong_carrier", 409),       # a YTO parcel on the SF truck
    ("NOPE-1", "parcel_unknown", 404),
])
def test_parcels_that_do_not_belong_on_the_truck_are_refused(rig, code, error, status):
    client, _ = rig
    bid = open_batch(client)["batch_id"]
    r = scan(client, bid, code)
    assert (r.status_code, r.get_json()["error"]) == (status, error)


def test_a_parcel_in_another_open_batch_is_refused(rig):
    client, _ = rig
    first = open_batch(client, None, station="dock-1")["batch_id"]
    second = open_batch(client, None, station="dock-2")["batch_id"]
    assert scan(client, first, "SO-1002").status_code == 200
    r = scan(client, second, "SO-1002")
    assert r.status_code == 409 and r.get_json()["error"] == "in_other_batch"


def test_closing_writes_the_manifest_one_handover_event_and_one_loaded_event_per_parcel(rig):
    client, ctx = rig
    bid = open_batch(client, None)["batch_id"]  # a mixed truck
    for code in ("SO-1001", "YT7544099603234", "SO-1001"):
        assert scan(client, bid, code).status_code == 200
    open_view = client.get(f"/api/v1/dock/batches/{bid}").get_json()
    assert [p["order_id"] for p in open_view["not_scanned"]] == ["SO-1003"]
    r = client.post(f"/api/v1/dock/batches/{bid}/close")
    assert r.status_code == 200, r.get_json()
    doc = r.get_json()["manifest"]
    assert doc["counts"] == {"parcels": 2, "by_carrier": {"SF": 1, "YTO": 1}, "scanned_twice": 1,
                             "not_scanned": 1, "to_pull": 0}
    assert [p["order_id"] for p in doc["not_scanned"]] == ["SO-1003"]
    closed = events(ctx, "handover_closed")
    assert len(closed) == 1 and closed[0]["batch_id"] == bid and closed[0]["order_id"] is None
    assert closed[0]["not_scanned"] == ["SO-1003"]
    loaded = events(ctx, "loaded")
    assert sorted(e["order_id"] for e in loaded) == ["SO-1001", "SO-1002"]
    assert {e["batch_id"] for e in loaded} == {bid}
    # a retried close: the same manifest, no more events
    again = client.post(f"/api/v1/dock/batches/{bid}/close").get_json()
    assert again["replayed"] is True and again["manifest"] == doc
    assert len(events(ctx, "handover_closed")) == 1 and len(events(ctx, "loaded")) == 2
    # the batch is closed; the parcels left in it
    assert scan(client, bid, "SO-1003").get_json()["error"] == "batch_closed"
    later = open_batch(client, "SF")["batch_id"]
    r = scan(client, later, "SO-1001")
    assert r.status_code == 409 and r.get_json()["error"] == "already_loaded"
    assert client.get("/api/v1/dock/batches?state=closed").get_json()["batches"][0]["batch_id"] == bid


def test_a_parcel_frozen_after_its_scan_keeps_the_batch_open_until_it_is_taken_out(rig):
    client, ctx = rig
    bid = open_batch(client)["batch_id"]
    assert scan(client, bid, "SO-1001").status_code == 200
    freeze(ctx, "SO-1001")
    assert client.get(f"/api/v1/dock/batches/{bid}").get_json()["frozen"] == ["SO-1001"]
    r = client.post(f"/api/v1/dock/batches/{bid}/close")
    assert r.status_code == 409 and r.get_json()["error"] == "frozen_in_batch"
    assert r.get_json()["orders"] == ["SO-1001"]
    assert events(ctx, "loaded") == []
    r = client.delete(f"/api/v1/dock/batches/{bid}/parcels/SO-1001")
    assert r.status_code == 200 and r.get_json()["count"] == 0
    assert [e["order_id"] for e in events(ctx, "dock_removed")] == ["SO-1001"]
    # nothing left to load
    assert client.post(f"/api/v1/dock/batches/{bid}/close").get_json()["error"] == "bad_state"
    assert client.delete(f"/api/v1/dock/batches/{bid}/parcels/SO-1001").status_code == 404


def test_the_manifest_downloads_as_csv_and_prints_as_one_job_on_the_bench_printer(rig):
    client, ctx = rig
    bid = open_batch(client)["batch_id"]
    scan(client, bid, "SO-1001")
    assert client.get(f"/api/v1/dock/batches/{bid}/manifest.csv").status_code == 409  # not closed
    client.post(f"/api/v1/dock/batches/{bid}/close")
    r = client.get(f"/api/v1/dock/batches/{bid}/manifest.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.get_data(as_text=True))))
    assert rows[0][:3] == ["batch_id", "carrier", "order_id"]
    assert rows[1][:4] == [bid, "SF", "SO-1001", "SF1385628716739"] and len(rows) == 2
    first = client.post(f"/api/v1/dock/batches/{bid}/manifest/print")
    again = client.post(f"/api/v1/dock/batches/{bid}/manifest/print")
    assert (first.status_code, again.status_code) == (201, 200)
    job = first.get_json()["job"]
    assert job["kind"] == "manifest" and again.get_json()["job"]["job_id"] == job["job_id"]
    assert client.get(f"/api/v1/dock/batches/{bid}").get_json()["manifest_job"] == job["job_id"]
    payload = ctx.printing.render(ctx.printing.get(job["job_id"]))  # what the worker sends
    assert payload.images and payload.images[0].width == 576 and payload.data


def test_unknown_batches_and_bad_bodies_are_clear_errors(rig):
    client, _ = rig
    assert client.get("/api/v1/dock/batches/NOPE").get_json()["error"] == "batch_unknown"
    assert scan(client, "NOPE", "SO-1001").status_code == 404
    bid = open_batch(client)["batch_id"]
    for body in ({}, {"code": ""}, {"code": 5}, {"code": "SO-1001", "scan_id": 7}):
        r = client.post(f"/api/v1/dock/batches/{bid}/scans", json=body)
        assert r.status_code == 400 and r.get_json()["error"] == "bad_request", body
    assert client.post(f"/api/v1/dock/batches/{bid}/scans", data="x",
                       content_type="application/json").status_code == 400
    assert client.post("/api/v1/dock/batches", json={"carrier": 5}).status_code == 400
    assert client.get("/api/v1/dock/batches?state=gone").status_code == 400
    assert client.post(f"/api/v1/dock/batches/{bid}/close", data="[1]",
                       content_type="application/json").status_code == 400


def test_the_dock_needs_a_signed_in_person_once_people_are_configured(rig, demo_ctx):
    client, _ = rig
    demo_ctx.accounts.add_user("k2", "李四", "packer", badge="BADGE-LOADER-1")
    assert client.post("/api/v1/dock/batches", json={"carrier": "SF"}).status_code == 401
    assert client.post("/api/v1/session", json={"badge": "BADGE-LOADER-1",
                                                "station": "dock-1"}).status_code == 200
    batch = open_batch(client)
    assert batch["operator"] != "local"
