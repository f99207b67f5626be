"""The device's returns API (docs/returns.md, "API") through the real Flask app and SQLite: RMAs
applied as the hub's changes, receipts, item scans, photos, conditions, the verdict with its one
outbox event and the returns sticker's print job, cancellations, unannounced returns."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from scanedge.edge.domain.returns import iso
from scanedge.sync.apply import apply_changes

_SEQ = iter(range(1, 10_000))


DEADLINE = iso(datetime.now(UTC) + timedelta(days=7))  # once: the same document is the same


def rma_doc(rma_id: str = "RMA-1", **over) -> dict:
    doc = {"rma_id": rma_id, "order_id": "SO-1001", "reason": "七天无理由",
           "return_tracking": "SF1234567890123",
           "deadline": DEADLINE,
           "lines": [{"sku": "6901234567892", "name": "保温杯 500ml", "qty": 2},
                     {"sku": "4006381333931", "name": "Stabilo 荧光笔 黄色", "qty": 1}]}
    doc.update(over)
    return doc


def apply_rma(ctx, doc: dict) -> object:
    change = {"seq": next(_SEQ) + _cursor(ctx), "kind": "rma", "order_id": doc["order_id"],
              "payload": doc, "created_at": iso(datetime.now(UTC))}
    applied = ctx.store.write(lambda db: apply_changes(db, ctx.settings.device_id, [change]))
    ctx.bus.signal("hub_applied", applied)  # what the sync worker does after its commit
    return applied


def _cursor(ctx) -> int:
    from scanedge.edge.store.syncstate import get_cursor

    return get_cursor(ctx.store.read())


def events(ctx, type_: str) -> list[dict]:
    rows = ctx.store.read().execute("SELECT payload FROM events WHERE type = ? ORDER BY seq",
                                    [type_]).fetchall()
    return [json.loads(r[0]) for r in rows]


def jpeg(color: str = "red", size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG")
    return out.getvalue()


@pytest.fixture
def rig(client, demo_ctx):
    apply_rma(demo_ctx, rma_doc())
    return client, demo_ctx


def start(client, rma_id: str = "RMA-1"):
    return client.post("/api/v1/returns/receipts", json={"rma_id": rma_id})


@pytest.mark.parametrize("code", ["RMA-1", "SF1234567890123", "sf1234567890123", "SO-1001"])
def test_lookup_finds_the_rma_by_its_id_its_return_waybill_or_the_original_order(rig, code):
    client, _ = rig
    r = client.get("/api/v1/returns/lookup", query_string={"code": code})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    assert body["rma"]["rma_id"] == "RMA-1" and body["rma"]["status"] == "open"
    assert [ln["qty"] for ln in body["rma"]["lines"]] == [2, 1] and body["receipt"] is None


def test_an_unknown_code_is_rma_unknown_and_a_missing_code_a_bad_request(rig):
    client, _ = rig
    r = client.get("/api/v1/returns/lookup", query_string={"code": "NOPE-9"})
    assert r.status_code == 404 and r.get_json()["error"] == "rma_unknown"
    assert client.get("/api/v1/returns/lookup").status_code == 400


def test_a_whole_return_qualifies_restocks_to_the_order_lines_bins_and_writes_one_event(rig):
    client, ctx = rig
    r = start(client)
    assert r.status_code == 201
    receipt = r.get_json()
    rid = receipt["receipt_id"]
    assert [(ln["sku"], ln["expected"], ln["received"]) for ln in receipt["lines"]] == [
        ("6901234567892", 2, 0), ("4006381333931", 1, 0)]
    for code in ("6901234567892", "6901234567892", "4006381333931"):
        r = client.post(f"/api/v1/returns/receipts/{rid}/items", json={"code": code})
        assert r.status_code == 200 and r.get_json()["flag"] is None
    photo = client.post(f"/api/v1/returns/receipts/{rid}/photos", data=jpeg(),
                        content_type="image/jpeg")
    assert photo.status_code == 201, photo.get_json()
    for sku in ("6901234567892", "4006381333931"):
        r = client.put(f"/api/v1/returns/receipts/{rid}/lines/{sku}",
                       json={"condition": "resaleable"})
        assert r.status_code == 200
    r = client.post(f"/api/v1/returns/receipts/{rid}/finish", json={})
    assert r.status_code == 200, r.get_json()
    out = r.get_json()
    verdict = out["verdict"]
    assert verdict["qualifies"] is True and out["receipt"]["state"] == "finished"
    assert [(ln["sku"], ln["qty"], ln["disposition"], ln["bin"]) for ln in verdict["lines"]] == [
        ("6901234567892", 2, "restock", "A-02-14-3"), ("4006381333931", 1, "restock", "A-05-22-1")]
    received = events(ctx, "return_received")
    assert len(received) == 1
    assert received[0]["rma_id"] == "RMA-1" and received[0]["verdict"] == verdict
    assert received[0]["photos"] == [{"sha256": photo.get_json()["sha256"], "bytes": len(jpeg())}]
    job = client.get(f"/api/v1/print-jobs/{out['label_job']}").get_json()
    assert job["kind"] == "returns"
    # finishing again answers the same verdict and writes nothing
    again = client.post(f"/api/v1/returns/receipts/{rid}/finish")
    assert again.status_code == 200 and again.get_json()["verdict"] == verdict
    assert len(events(ctx, "return_received")) == 1
    looked = client.get("/api/v1/returns/lookup", query_string={"code": "RMA-1"}).get_json()
    assert looked["rma"]["status"] == "received" and looked["receipt"]["receipt_id"] == rid


def test_the_same_rma_received_twice_is_refused_with_the_first_receipt(rig):
    client, _ = rig
    rid = start(client).get_json()["receipt_id"]
    client.post(f"/api/v1/returns/receipts/{rid}/items", json={"code": "4006381333931"})
    client.put(f"/api/v1/returns/receipts/{rid}/lines/4006381333931",
               json={"condition": "resaleable"})
    assert client.post(f"/api/v1/returns/receipts/{rid}/finish").status_code == 200
    r = start(client)
    assert r.status_code == 409
    body = r.get_json()
    assert body["error"] == "rma_already_received" and body["receipt"]["receipt_id"] == rid
    r = client.post(f"/api/v1/returns/receipts/{rid}/items", json={"code": "4006381333931"})
    assert r.status_code == 409 and r.get_json()["error"] == "receipt_finished"


def test_a_second_start_resumes_the_open_receipt(rig):
    client, _ = rig
    first = start(client)
    second = start(client)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json()["receipt_id"] == second.get_json()["receipt_id"]
    opened = client.get("/api/v1/returns/receipts", query_string={"state": "open"}).get_json()
    assert [r["receipt_id"] for r in opened["receipts"]] == [first.get_json()["receipt_id"]]


def test_items_not_on_the_rma_and_surplus_are_flagged_and_a_replayed_scan_counts_once(rig):
    client, _ = rig
    rid = start(client).get_json()["receipt_id"]
    url = f"/api/v1/returns/receipts/{rid}/items"
    flags = [client.post(url, json={"code": c, "scan_id": f"s-{i}"}).get_json()["flag"]
             for i, c in enumerate(["4006381333931", "4006381333931", "9787115428028"])]
    assert flags == [None, "over_quantity", "not_on_rma"]
    replay = client.post(url, json={"code": "9787115428028", "scan_id": "s-2"}).get_json()
    assert replay["replayed"] is True and replay["flag"] == "not_on_rma"
    receipt = replay["receipt"]
    assert receipt["lines"][1]["received"] == 2
    assert receipt["extras"] == [{"code": "9787115428028", "qty": 1, "kind": "not_on_rma",
                                  "condition": None}]
    gs1 = client.post(url, json={"code": "]C1010690123456789210LOT7\x1d17270101"}).get_json()
    assert gs1["matched"] == {"sku": "6901234567892"} and gs1["code"]["lot"] == "LOT7"
    bad = client.post(url, json={"code": "6901234567893"})  # a bad check digit: a misread
    assert bad.status_code == 400 and bad.get_json()["problem"] == "bad_check_digit"


def test_finishing_needs_a_condition_for_every_line_that_came_back(rig):
    client, _ = rig
    rid = start(client).get_json()["receipt_id"]
    client.post(f"/api/v1/returns/receipts/{rid}/items", json={"code": "6901234567892"})
    r = client.post(f"/api/v1/returns/receipts/{rid}/finish")
    assert r.status_code == 400 and r.get_json()["error"] == "bad_condition"
    assert r.get_json()["skus"] == ["6901234567892"]
    r = client.put(f"/api/v1/returns/receipts/{rid}/lines/6901234567892",
                   json={"condition": "shiny"})
    assert r.status_code == 400 and r.get_json()["error"] == "bad_condition"
    r = client.put(f"/api/v1/returns/receipts/{rid}/lines/NOT-A-LINE", json={"condition": "used"})
    assert r.status_code == 404


def test_a_used_item_returned_without_reason_does_not_qualify_and_goes_back(rig):
    client, _ = rig
    rid = start(client).get_json()["receipt_id"]
    client.post(f"/api/v1/returns/receipts/{rid}/items", json={"code": "6901234567892"})
    client.put(f"/api/v1/returns/receipts/{rid}/lines/6901234567892", json={"condition": "used"})
    verdict = client.post(f"/api/v1/returns/receipts/{rid}/finish").get_json()["verdict"]
    assert verdict["qualifies"] is False
    assert {r["code"] for r in verdict["reasons"]} == {"partial", "condition_not_allowed"}
    assert verdict["lines"][0]["disposition"] == "return_to_customer"


def test_an_rma_cancelled_while_on_the_bench_is_refused_and_raises_alarms(rig):
    client, ctx = rig
    rid = start(client).get_json()["receipt_id"]
    apply_rma(ctx, rma_doc(status="cancelled", version=2))
    alarms = [a for a in ctx.alarms.active() if a.type == "rma_frozen"]
    assert len(alarms) == 1 and alarms[0].details["action"] == "cancelled_on_bench"
    r = client.post(f"/api/v1/returns/receipts/{rid}/items", json={"code": "6901234567892"})
    assert r.status_code == 409 and r.get_json()["error"] == "rma_frozen"
    r = client.post(f"/api/v1/returns/receipts/{rid}/finish")
    assert r.status_code == 409 and r.get_json()["error"] == "rma_frozen"
    assert len([a for a in ctx.alarms.active() if a.type == "rma_frozen"]) == 3
    assert events(ctx, "return_received") == []
    looked = client.get("/api/v1/returns/lookup", query_string={"code": "RMA-1"}).get_json()
    assert looked["rma"]["status"] == "cancelled"


def test_a_cancellation_whose_alarm_a_crash_cut_off_raises_it_at_the_next_start(rig):
    """The hub's change committed, then the process died before the alarm (no ``hub_applied``
    signal): opening the store again raises it, once, and only for that version."""
    from scanedge.edge.context import EdgeContext

    client, ctx = rig
    start(client)
    change = {"seq": next(_SEQ) + _cursor(ctx), "kind": "rma", "order_id": "SO-1001",
              "payload": rma_doc(status="cancelled", version=2), "created_at": iso(datetime.now(UTC))}
    ctx.store.write(lambda db: apply_changes(db, ctx.settings.device_id, [change]))
    assert [a for a in ctx.alarms.active() if a.type == "rma_frozen"] == []  # "the crash"
    ctx.close()

    for _ in range(2):  # started again, twice: one alarm
        again = EdgeContext.open(ctx.settings)
        alarms = [a for a in again.alarms.active() if a.type == "rma_frozen"]
        again.close()
        assert [(a.details["action"], a.details["version"], a.station) for a in alarms] == [
            ("cancelled_on_bench", 2, ctx.settings.station)]


def test_a_cancelled_rma_cannot_be_started_and_an_older_copy_changes_nothing(rig):
    client, ctx = rig
    apply_rma(ctx, rma_doc(status="cancelled", version=3))
    applied = apply_rma(ctx, rma_doc(version=2))
    assert applied.ignored == 1
    r = start(client)
    assert r.status_code == 409 and r.get_json()["error"] == "rma_frozen"


def test_an_unannounced_return_is_kept_with_photos_and_listed_for_matching(rig):
    client, ctx = rig
    r = client.post("/api/v1/returns/receipts",
                    json={"unannounced": True, "code": "YT9876543210987"})
    assert r.status_code == 201
    rid = r.get_json()["receipt_id"]
    assert r.get_json()["unannounced"] is True and r.get_json()["rma_id"] is None
    client.post(f"/api/v1/returns/receipts/{rid}/items", json={"code": "6901234567892"})
    png = io.BytesIO()
    Image.new("RGB", (32, 32), "blue").save(png, "PNG")
    assert client.post(f"/api/v1/returns/receipts/{rid}/photos", data=png.getvalue(),
                       content_type="image/png").status_code == 201
    out = client.post(f"/api/v1/returns/receipts/{rid}/finish", json={}).get_json()
    assert out["verdict"]["qualifies"] is False
    assert out["verdict"]["reasons"][0]["code"] == "unannounced"
    assert out["verdict"]["lines"][0]["disposition"] == "quarantine"
    listed = client.get("/api/v1/returns/receipts",
                        query_string={"state": "unannounced"}).get_json()["receipts"]
    assert [x["receipt_id"] for x in listed] == [rid]
    [event] = events(ctx, "return_received")
    assert event["unannounced"] is True and event["code"] == "YT9876543210987"


@pytest.mark.parametrize(("body", "content_type", "status", "error"), [
    (b"", "image/jpeg", 400, "empty"),
    (b"hello, not a photo", "image/jpeg", 400, "not_an_image"),
    (None, "image/jpeg", 400, "truncated"),
    (b"\x89PNG", "text/plain", 400, "not_an_image"),
])
def test_bad_photos_are_refused_with_the_waybill_photos_errors(rig, body, content_type, status,
                                                               error):
    client, _ = rig
    rid = start(client).get_json()["receipt_id"]
    whole = jpeg(size=(400, 300))
    data = whole[:len(whole) // 2] if body is None else body
    r = client.post(f"/api/v1/returns/receipts/{rid}/photos", data=data,
                    content_type=content_type)
    assert (r.status_code, r.get_json()["error"]) == (status, error)
    assert client.get(f"/api/v1/returns/receipts/{rid}").get_json()["photos"] == []


def test_a_photo_bomb_and_an_oversized_photo_are_refused_before_decoding(rig, demo_ctx):
    client, _ = rig
    rid = start(client).get_json()["receipt_id"]
    bomb = io.BytesIO()
    Image.new("1", (10_000, 5_000)).save(bomb, "PNG")  # 50 MP in a few KB
    r = client.post(f"/api/v1/returns/receipts/{rid}/photos", data=bomb.getvalue(),
                    content_type="image/png")
    assert (r.status_code, r.get_json()["error"]) == (413, "too_many_pixels")
    big = b"\xff\xd8\xff" + b"\0" * int(demo_ctx.settings.max_image_mb * 1024 * 1024)
    r = client.post(f"/api/v1/returns/receipts/{rid}/photos", data=big, content_type="image/jpeg")
    assert r.status_code == 413


def test_the_same_photo_twice_is_stored_once(rig, demo_ctx):
    client, _ = rig
    rid = start(client).get_json()["receipt_id"]
    for _ in range(2):
        r = client.post(f"/api/v1/returns/receipts/{rid}/photos", data=jpeg(),
                        content_type="image/jpeg")
        assert r.status_code == 201
    assert len(r.get_json()["receipt"]["photos"]) == 1
    files = list((demo_ctx.settings.data_dir / "returns_photos").glob("*/*"))
    assert len(files) == 1 and files[0].suffix == ".jpg"


def test_unknown_receipts_and_bad_bodies_are_clear_errors(rig):
    client, _ = rig
    r = client.post("/api/v1/returns/receipts/NOPE/items", json={"code": "6901234567892"})
    assert r.status_code == 404 and r.get_json()["error"] == "receipt_unknown"
    assert client.post("/api/v1/returns/receipts", json={}).status_code == 400
    assert client.post("/api/v1/returns/receipts", json={"rma_id": 5}).status_code == 400
    r = client.post("/api/v1/returns/receipts", json={"rma_id": "RMA-404"})
    assert r.status_code == 404 and r.get_json()["error"] == "rma_unknown"
    assert client.post("/api/v1/returns/receipts",
                       json={"unannounced": "yes", "code": "x"}).status_code == 400
    assert client.get("/api/v1/returns/receipts",
                      query_string={"state": "lost"}).status_code == 400


def test_returns_need_a_signed_in_packer_once_people_are_configured(rig, demo_ctx):
    client, _ = rig
    demo_ctx.accounts.add_user("k1", "张三", "packer", badge="BADGE-PACKER-1")
    assert start(client).status_code == 401
    assert client.post("/api/v1/session", json={"badge": "BADGE-PACKER-1"}).status_code == 200
    receipt = start(client).get_json()
    assert receipt["operator"] != "local"
