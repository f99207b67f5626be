"""The edge HTTP API through the real Flask app (demo orders loaded)."""

import json

import pytest

GS = "\x1d"


def post_scan(client, code, **extra):
    resp = client.post("/api/v1/scans", json={"code": code, **extra})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


# Every verdict, reached through HTTP, from a fresh bench with the demo orders.
@pytest.mark.parametrize("setup, code, verdict, reason", [
    ([], "SO-1001", "ok", "order_opened"),
    ([], "SF1385628716739", "ok", "order_opened"),  # by tracking number
    (["SO-1001"], "9787115428028", "wrong_item", "not_in_order"),
    (["SO-1003", "]C1010001234560001210B7" + GS + "17300101"], "]C1010001234560001210B7", "ok",
     "order_complete"),
    (["SO-1003", "]C1010001234560001210B7", "]C1010001234560001210B7"], "]C1010001234560001210B7",
     "over_scan", "line_full"),
    (["SO-1001"], "]C1010690123456789210L9999" + GS + "17270131", "wrong_lot", "lot_mismatch"),
    (["SO-1001"], "]C1010690123456789210L2301" + GS + "17200101", "expired", "expired"),
    ([], "4006381333931", "unknown", "no_open_order"),
    (["SO-1001"], "6901234567891", "unknown", "bad_check_digit"),
])
def test_every_verdict_over_http(client, setup, code, verdict, reason):
    for c in setup:
        post_scan(client, c)
    body = post_scan(client, code, operator="张三")
    assert (body["verdict"], body["reason"]) == (verdict, reason)
    assert body["message"]["zh"] and body["message"]["en"]
    assert body["alarm"] is (verdict not in ("ok", "unknown"))
    assert body["event_id"] and body["seq"] > 0


def test_frozen_over_http(client, demo_ctx):
    from scanedge.edge.freezes.local import freeze_order

    post_scan(client, "SO-1001")
    freeze_order(demo_ctx.store, "test-dev", "SO-1001", "address_change", source="test")
    item = post_scan(client, "4006381333931")
    assert item["verdict"] == "frozen" and item["alarm"]
    assert item["freeze"]["reason"] == "address_change"
    assert "地址已变更" in item["message"]["zh"]
    # the station's alarm waits for a person: the next scan is held, not judged
    again = post_scan(client, "SF1385628716739")
    assert (again["verdict"], again["alarms"]) == ("alarm_pending", [item["alarm_id"]])
    # a scan that carries the alarm's ack (the person saw it) goes through: still frozen
    seen = post_scan(client, "SF1385628716739", acks=[item["alarm_id"]])
    assert seen["verdict"] == "frozen"
    order = client.get("/api/v1/orders/SO-1001").get_json()
    assert order["freeze"]["reason"] == "address_change"
    assert order["items_packed"] == 0


def test_complete_order_is_ready_to_print(client):
    post_scan(client, "SO-1002")
    post_scan(client, "9787115428028")
    for _ in range(2):
        assert post_scan(client, "SELLER-CASE-07")["ready_to_print"] is False
    last = post_scan(client, "seller-case-07")
    assert last["ready_to_print"] is True and last["order"]["complete"] is True


def test_each_scan_writes_one_outbox_event(client, demo_ctx):
    bodies = [post_scan(client, c) for c in ("SO-1001", "4006381333931", "garbage!")]
    rows = demo_ctx.store.read().execute(
        "SELECT event_id, type, payload FROM events ORDER BY seq").fetchall()
    assert [r[0] for r in rows] == [b["event_id"] for b in bodies]
    assert {r[1] for r in rows} == {"scan"}
    assert json.loads(rows[1][2])["verdict"] == "ok"


def test_scan_id_makes_a_retry_harmless(client, demo_ctx):
    post_scan(client, "SO-1002")
    first = post_scan(client, "9787115428028", scan_id="pda-7:0001")
    retry = post_scan(client, "9787115428028", scan_id="pda-7:0001")
    assert retry["replayed"] is True and retry["event_id"] == first["event_id"]
    order = client.get("/api/v1/orders/SO-1002").get_json()
    assert order["lines"][0]["packed"] == 1
    n = demo_ctx.store.read().execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert n == 2


def test_stations_are_independent(client):
    post_scan(client, "SO-1001", station="bench-1")
    other = post_scan(client, "4006381333931", station="bench-2")
    assert other["reason"] == "no_open_order"


@pytest.mark.parametrize("kwargs, status, fragment", [
    ({"data": "code=1", "content_type": "application/x-www-form-urlencoded"}, 400, "JSON body"),
    ({"data": "{not json", "content_type": "application/json"}, 400, "not a JSON object"),
    ({"json": ["SO-1001"]}, 400, "not a JSON object"),
    ({"json": {"code": 42}}, 400, "code: required"),
    ({"json": {"code": "SO-1001", "station": "bench 1;drop"}}, 400, "station"),
])
def test_malformed_scans_get_clear_400(client, kwargs, status, fragment):
    resp = client.post("/api/v1/scans", **kwargs)
    assert resp.status_code == status
    assert resp.is_json and fragment in resp.get_json()["message"]


def test_errors_are_json_not_html(client, demo_ctx):
    assert client.get("/api/v1/orders/NOPE").status_code == 404
    resp = client.get("/no/such/page")
    assert resp.status_code == 404 and resp.is_json
    resp = client.delete("/api/v1/scans")
    assert resp.status_code == 405 and resp.is_json
    limit = int(demo_ctx.settings.max_body_mb * 1024 * 1024)
    resp = client.post("/api/v1/scans", data=b"x" * (limit + 1), content_type="application/json")
    assert resp.status_code == 413 and resp.is_json and "larger than" in resp.get_json()["message"]


def test_healthz_and_metrics(client):
    post_scan(client, "SO-1001")
    post_scan(client, "9787115428028")
    health = client.get("/healthz").get_json()
    assert health["status"] == "ok" and health["outbox"]["pending"] == 2
    text = client.get("/metrics").get_data(as_text=True)
    assert 'scanedge_scans_total{verdict="ok"} 1.0' in text
    assert 'scanedge_scans_total{verdict="wrong_item"} 1.0' in text
    assert 'scanedge_outbox_depth{state="pending"} 2.0' in text


def test_get_order(client):
    body = client.get("/api/v1/orders/SO-1001").get_json()
    assert body["priority"] == "P0" and body["gifts"] == [
        {"gift_no": 0, "name": "帆布包", "qty": 1, "code": None, "confirmed": False}]
    assert body["print_gate"]["allowed"] is False
    assert body["lines"][0]["lot"] == "L2301" and body["freeze"] is None


def test_frozen_scan_raises_an_alarm_that_waits_for_a_person(client, demo_ctx):
    from scanedge.edge.freezes.local import freeze_order

    heard = []
    demo_ctx.bus.on("alarm", heard.append)
    sub = demo_ctx.bus.subscribe()
    freeze_order(demo_ctx.store, "test-dev", "SO-1002", "cancel", source="test")
    demo_ctx.accounts.add_user("w5", "王五", "packer", badge="BADGE-W5-0001")
    demo_ctx.accounts.add_user("z6", "赵六", "supervisor", badge="BADGE-Z6-0001")
    assert client.post("/api/v1/scans", json={"code": "SO-1002"}).status_code == 401
    assert client.post("/api/v1/session", json={"badge": "BADGE-W5-0001"}).status_code == 200
    body = post_scan(client, "SO-1002", operator="冒名 impostor")  # the body's name is ignored
    assert body["verdict"] == "frozen" and body["alarm_id"]
    assert [a["alarm_id"] for a in heard] == [body["alarm_id"]]
    kinds = [m.kind for m in iter(lambda: sub.get(0.1), None)]
    assert "alarm" in kinds and "scan" in kinds
    active = client.get("/api/v1/alarms").get_json()["alarms"]
    assert [a["alarm_id"] for a in active] == [body["alarm_id"]]
    assert active[0]["speak"] == "订单 SO-1002 已取消,请停止操作"
    # an acknowledgement names who did it: the signed-in person, whatever the body says
    assert client.post("/api/v1/alarms/NOPE/ack", json={}).status_code == 404
    ack = client.post(f"/api/v1/alarms/{body['alarm_id']}/ack", json={"operator": "赵六"})
    assert ack.status_code == 200 and ack.get_json()["acked_by"] == "w5"
    assert client.get("/api/v1/alarms").get_json()["alarms"] == []
    client.delete("/api/v1/session")
    client.post("/api/v1/session", json={"badge": "BADGE-Z6-0001"})
    again = client.post(f"/api/v1/alarms/{body['alarm_id']}/ack", json={})
    assert again.get_json()["acked_by"] == "w5"  # the first acknowledgement stands
    types = [r[0] for r in demo_ctx.store.read().execute("SELECT type FROM events ORDER BY seq")
             if r[0] not in ("signin", "signout")]
    assert types == ["freeze_applied", "scan", "interception", "alarm", "alarm_ack"]
    interception = demo_ctx.store.read().execute(
        "SELECT payload FROM events WHERE type = 'interception'").fetchone()[0]
    payload = json.loads(interception)
    assert payload["action"] == "scan" and payload["operator"] == "w5"
    assert payload["seconds_since_freeze"] >= 0


def test_the_answer_says_when_the_code_named_an_order(client):
    opened = post_scan(client, "SO-1001")
    assert opened["reason"] == "order_opened" and opened["code"]["kind"] == "order"
    by_tracking = post_scan(client, "yt7544099603234")  # SO-1002's, typed in lower case
    assert by_tracking["order_id"] == "SO-1002" and by_tracking["code"]["kind"] == "tracking"
    item = post_scan(client, "4006381333931")  # not SO-1002's: the shape's kind stays
    assert item["code"]["kind"] == "gtin"
    assert post_scan(client, "NO-SUCH-ORDER")["code"]["kind"] == "unknown"
