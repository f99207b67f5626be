"""Notes (备注) on the device: a signed note blocks its order at the bench until a person reads it.

The device's real store, scan service and HTTP API (Flask test client); the note arrives as the
hub's signed change, as the sync worker would hand it over.
"""

from __future__ import annotations

import pytest

from scanedge.sync.apply import apply_changes
from scanedge.sync.pinning import pin_configured_key
from scanedge.sync.signing import HubSigner

ITEM = "4006381333931"  # SO-1002 has none of it; SO-1001's line 2


@pytest.fixture
def signer(demo_ctx) -> HubSigner:
    signer = HubSigner.generate()
    pin_configured_key(demo_ctx.store, demo_ctx.settings.device_id, signer.public_b64)
    return signer


def deliver(ctx, signer: HubSigner, seq: int, kind: str, order_id: str, **fields) -> dict:
    payload = signer.sign({"command_id": f"cmd-{seq}", "order_id": order_id, "kind": kind,
                           "issued_at": "2026-11-30T08:00:00.000Z", "version": 10 + seq,
                           "effective_by": "2026-11-30T08:00:15.000Z", **fields})
    applied = ctx.store.write(lambda db: apply_changes(
        db, ctx.settings.device_id, [{"seq": seq, "kind": kind, "order_id": order_id,
                                      "payload": payload}]))
    ctx.freezes.on_applied(applied)  # what the sync worker does after the commit
    return payload


def scan(client, code: str, station: str = "bench-1") -> dict:
    r = client.post("/api/v1/scans", json={"code": code, "station": station})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def test_a_note_blocks_its_order_until_it_is_read(demo_ctx, client, signer):
    sub = demo_ctx.bus.subscribe()

    def heard() -> list[tuple[str, dict]]:
        out = []
        while (m := sub.get(timeout=0)) is not None:
            out.append((m.kind, m.data))
        return out

    assert scan(client, "SO-1001")["verdict"] == "ok"  # open at bench-1
    deliver(demo_ctx, signer, 1, "note", "SO-1001", note="改发顺丰,加一个赠品")

    # the open page hears it at once, for its station
    [(_, shown)] = [(k, d) for k, d in heard() if k == "note"]
    assert shown["stations"] == ["bench-1"] and shown["note"] == "改发顺丰,加一个赠品"
    # item scans and order scans answer note_pending: nothing counted, the note in the answer
    for code in (ITEM, "SO-1001"):
        r = scan(client, code)
        assert (r["verdict"], r["reason"]) == ("note_pending", "note_pending")
        assert r["note"]["command_id"] == "cmd-1"
        assert "改发顺丰" in r["message"]["zh"] and r["alarm"] is False
    assert client.get("/api/v1/orders/SO-1001").get_json()["items_packed"] == 0
    # the label waits too; the order view carries the note (a page that reloads shows it)
    view = client.get("/api/v1/orders/SO-1001?station=bench-1").get_json()
    assert "note_unread" in [p["code"] for p in view["print_gate"]["problems"]]
    assert view["note"]["note"] == "改发顺丰,加一个赠品"
    # acknowledged to the hub like a freeze (the countdown's "applied")
    followup = demo_ctx.store.read().execute(
        "SELECT kind, effects_at IS NOT NULL FROM freeze_followups WHERE command_id = 'cmd-1'"
    ).fetchone()
    assert followup == ("note", 1)

    r = client.post("/api/v1/orders/SO-1001/notes/cmd-1/read", json={"station": "bench-1"})
    assert r.status_code == 200, r.get_json()
    assert r.get_json()["read_by"] and r.get_json()["station"] == "bench-1"
    assert [d["read_station"] for k, d in heard() if k == "note_read"] == ["bench-1"]
    r = scan(client, ITEM)
    assert (r["verdict"], r["reason"]) == ("ok", "item_counted")
    assert r["order"].get("note") is None
    events = [row[0] for row in demo_ctx.store.read().execute(
        "SELECT type FROM events WHERE order_id = 'SO-1001' ORDER BY seq")]
    assert events.count("note_applied") == 1 and events.count("note_read") == 1


def test_reading_a_note_twice_or_an_old_note_is_refused(demo_ctx, client, signer):
    deliver(demo_ctx, signer, 1, "note", "SO-1002", note="第一条")
    deliver(demo_ctx, signer, 2, "note", "SO-1002", note="第二条")  # supersedes the first
    r = scan(client, "SO-1002")
    assert r["note"]["note"] == "第二条"
    r = client.post("/api/v1/orders/SO-1002/notes/cmd-1/read", json={})
    assert (r.status_code, r.get_json()["error"]) == (409, "note_not_pending")
    assert client.post("/api/v1/orders/SO-1002/notes/cmd-2/read", json={}).status_code == 200
    r = client.post("/api/v1/orders/SO-1002/notes/cmd-2/read", json={})
    assert (r.status_code, r.get_json()["error"]) == (409, "note_not_pending")
    r = client.post("/api/v1/orders/NOPE/notes/cmd-2/read", json={})
    assert r.status_code == 404
    assert scan(client, "SO-1002")["verdict"] == "ok"


def test_a_freeze_outranks_a_note(demo_ctx, client, signer):
    deliver(demo_ctx, signer, 1, "note", "SO-1002", note="备注")
    deliver(demo_ctx, signer, 2, "freeze", "SO-1002", reason="cancel")
    r = scan(client, "SO-1002", station="bench-9")
    assert r["verdict"] == "frozen"


def test_an_unsigned_note_is_refused(demo_ctx, client, signer):
    payload = {"command_id": "forged", "order_id": "SO-1002", "kind": "note",
               "issued_at": "2026-11-30T08:00:00.000Z", "version": 99, "note": "直接发货"}
    applied = demo_ctx.store.write(lambda db: apply_changes(
        db, demo_ctx.settings.device_id, [{"seq": 1, "kind": "note", "order_id": "SO-1002",
                                           "payload": payload}]))
    assert [r["problem"] for r in applied.rejected] == ["unsigned"]
    assert scan(client, "SO-1002")["verdict"] == "ok"


def test_a_fuse_from_the_hub_warns_the_supervisor_without_holding_scans(demo_ctx, client):
    applied = demo_ctx.store.write(lambda db: apply_changes(
        db, demo_ctx.settings.device_id, [{"seq": 1, "kind": "fuse", "order_id": "SO-1002",
                                           "payload": {
            "type": "fuse_tripped", "command_id": "c9", "kind": "freeze", "reason": "cancel",
            "countdown_s": 15, "not_in_time": ["dev-7"], "tripped_at": "2026-11-30T08:00:15Z"}}]))
    demo_ctx.freezes.on_applied(applied)
    [alarm] = [a for a in client.get("/api/v1/alarms").get_json()["alarms"]
               if a["type"] == "fuse_tripped"]
    assert alarm["level"] == "warning" and "dev-7" in alarm["message"]["zh"]
    assert "熔断" in alarm["message"]["zh"]
    assert scan(client, "SO-1002")["verdict"] == "ok"  # a warning holds no station


def test_the_countdown_card_shows_what_this_device_applied_while_the_hub_is_away(tmp_path):
    """GET /api/v1/countdowns with the hub out of reach: the hub's part is an error in plain
    words, this device's applied commands (and whether the hub has their ack) are still there."""
    from scanedge.edge.config import load_settings
    from scanedge.edge.context import EdgeContext
    from scanedge.edge.web.app import create_app
    from tests.support import free_port

    settings = load_settings(env={}, data_dir=str(tmp_path / "var"), device_id="test-dev",
                             station="bench-1", hub_url=f"http://127.0.0.1:{free_port()}",
                             hub_token="t", hub_timeout_s=0.5)
    ctx = EdgeContext.open(settings)
    try:
        signer = HubSigner.generate()
        pin_configured_key(ctx.store, "test-dev", signer.public_b64)
        from scanedge.edge.commands import load_demo_orders

        load_demo_orders(ctx.store)
        deliver(ctx, signer, 1, "note", "SO-1002", note="改地址")
        r = create_app(settings, ctx).test_client().get("/api/v1/countdowns")
        assert r.status_code == 200
        body = r.get_json()
        assert body["countdowns"] == [] and body["hub_error"]["error"] == "hub_unavailable"
        [mine] = body["applied_here"]
        assert (mine["command_id"], mine["kind"], mine["acked_at"]) == ("cmd-1", "note", None)
    finally:
        ctx.close()
