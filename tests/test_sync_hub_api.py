"""The hub's HTTP API through the real Flask app, against SQLite and PostgreSQL storage."""

import pytest
from ulid import ULID

from scanedge.sync.hub.app import create_hub_app
from scanedge.sync.hub.storage import open_storage

ADMIN = "admin-token-for-tests"


@pytest.fixture
def hub(hub_database):
    storage = open_storage(hub_database)
    storage.ensure_admin_token(ADMIN)
    app = create_hub_app(storage)
    client = app.test_client()
    client.device_token = storage.add_device("dev-1")
    client.other_token = storage.add_device("dev-2")
    yield client
    storage.close()


def admin(client, method, path, body=None):
    return client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {ADMIN}"})


def device(client, method, path, body=None, token=None):
    return client.open(path, method=method, json=body,
                       headers={"Authorization": f"Bearer {token or client.device_token}"})


def event(seq, device_id="dev-1", **over):
    return {"event_id": str(ULID()), "device_id": device_id, "seq": seq, "type": "scan",
            "order_id": "SO-1", "payload": {"code": "x"}, "device_time": "2026-11-22T00:00:00Z",
            "hlc": f"{1795000000000 + seq:013d}.0000", **over}


ORDER = {"lines": [{"sku": "6901234567892", "qty": 1}], "priority": "P1"}


def test_tokens_are_checked(hub):
    assert hub.put("/api/v1/orders/SO-1", json=ORDER).status_code == 401
    assert device(hub, "PUT", "/api/v1/orders/SO-1", ORDER).status_code == 403  # device != admin
    assert admin(hub, "POST", "/api/v1/sync/push", {"events": []}).status_code == 403
    resp = hub.get("/api/v1/sync/pull", headers={"Authorization": "Bearer nope"})
    assert resp.status_code == 403 and "add-device" in resp.get_json()["message"]


def test_order_upsert_is_versioned(hub):
    r = admin(hub, "PUT", "/api/v1/orders/SO-1", ORDER).get_json()
    assert (r["version"], r["changed"]) == (1, True)
    r = admin(hub, "PUT", "/api/v1/orders/SO-1", ORDER).get_json()
    assert (r["version"], r["changed"]) == (1, False)  # same content: no new version
    r = admin(hub, "PUT", "/api/v1/orders/SO-1", {**ORDER, "priority": "P0"}).get_json()
    assert (r["version"], r["changed"]) == (2, True)
    bad = admin(hub, "PUT", "/api/v1/orders/SO-1", {"lines": []})
    assert bad.status_code == 400 and "lines" in bad.get_json()["message"]
    other = admin(hub, "PUT", "/api/v1/orders/SO-1", {**ORDER, "order_id": "SO-2"})
    assert other.status_code == 400


def test_commands_bump_the_order_version(hub):
    admin(hub, "PUT", "/api/v1/orders/SO-1", ORDER)
    f = admin(hub, "POST", "/api/v1/orders/SO-1/freeze", {"reason": "cancel"})
    assert f.status_code == 202
    body = f.get_json()
    assert body["command_id"] and body["issued_at"] and body["version"] == 2
    u = admin(hub, "POST", "/api/v1/orders/SO-1/unfreeze", {}).get_json()
    assert u["version"] == 3
    bad = admin(hub, "POST", "/api/v1/orders/SO-1/freeze", {"reason": "whim"})
    assert bad.status_code == 400


def test_push_accepts_once_and_says_duplicate(hub):
    batch = [event(1), event(2)]
    r = device(hub, "POST", "/api/v1/sync/push", {"events": batch}).get_json()
    assert [x["status"] for x in r["results"]] == ["accepted", "accepted"]
    r = device(hub, "POST", "/api/v1/sync/push", {"events": [*batch, event(3)]}).get_json()
    assert [x["status"] for x in r["results"]] == ["duplicate", "duplicate", "accepted"]
    events = admin(hub, "GET", "/api/v1/events?order_id=SO-1").get_json()["events"]
    assert [e["seq"] for e in events] == [1, 2, 3]


def test_push_rejects_bad_events_without_blocking_the_rest(hub):
    batch = [event(1), {"event_id": "nope"}, event(2, device_id="dev-2"), event(0),
             event(4, payload="text"), "garbage", event(5)]
    r = device(hub, "POST", "/api/v1/sync/push", {"events": batch}).get_json()
    assert [x["status"] for x in r["results"]] == [
        "accepted", "rejected:bad_event_id", "rejected:device_mismatch", "rejected:bad_seq",
        "rejected:bad_payload", "rejected:not_an_object", "accepted"]


@pytest.mark.parametrize("body, status", [({"events": "x"}, 400), ({}, 400),
                                          ({"events": [{}] * 1001}, 413)])
def test_push_bad_bodies(hub, body, status):
    assert device(hub, "POST", "/api/v1/sync/push", body).status_code == status


def test_pull_pages_by_cursor(hub):
    for i in range(5):
        admin(hub, "PUT", f"/api/v1/orders/SO-{i}", ORDER)
    admin(hub, "POST", "/api/v1/orders/SO-0/freeze", {"reason": "hold"})
    page = device(hub, "GET", "/api/v1/sync/pull?cursor=0&limit=4").get_json()
    assert [c["kind"] for c in page["changes"]] == ["order"] * 4 and page["more"] is True
    rest = device(hub, "GET", f"/api/v1/sync/pull?cursor={page['cursor']}&limit=4").get_json()
    assert [c["kind"] for c in rest["changes"]] == ["order", "freeze"] and rest["more"] is False
    assert rest["changes"][-1]["payload"]["reason"] == "hold"
    empty = device(hub, "GET", f"/api/v1/sync/pull?cursor={rest['cursor']}").get_json()
    who = empty.pop("hub")
    assert empty == {"changes": [], "cursor": rest["cursor"], "more": False}
    assert who["last_seq"] == rest["cursor"] == 6 and who["from_mark"]
    assert who["key_id"] and len(who["database_id"]) == 32
    assert device(hub, "GET", "/api/v1/sync/pull?cursor=abc").status_code == 400


def test_errors_are_json(hub):
    assert hub.get("/nope").is_json
    r = admin(hub, "GET", "/api/v1/events?after=x")
    assert r.status_code == 400 and r.is_json


def test_a_device_decides_its_sites_conflicts_only_when_the_hub_allows_it(hub):
    from scanedge.sync.signing import verify

    storage = hub.application.extensions["scanedge_hub"].storage
    north = storage.add_device("dev-n", "north", can_decide=True)
    for order_id, site in (("SO-1", "default"), ("SO-9", "north")):
        admin(hub, "PUT", f"/api/v1/orders/{order_id}", {**ORDER, "site": site})
        admin(hub, "POST", f"/api/v1/orders/{order_id}/expedite")
        assert admin(hub, "POST", f"/api/v1/orders/{order_id}/freeze",
                     {"reason": "cancel"}).get_json()["conflict"]
    listed = device(hub, "GET", "/api/v1/sync/conflicts").get_json()  # dev-1: site default
    assert [c["order_id"] for c in listed["conflicts"]] == ["SO-1"]
    assert listed["can_decide"] is False and listed["site"] == "default"
    assert [(d["kind"], d["reason"]) for d in listed["conflicts"][0]["command_details"]] == [
        ("expedite", None), ("freeze", "cancel")]
    ship = {"decision": "ship", "operator": "s1"}
    refused = device(hub, "POST", "/api/v1/sync/decide/SO-1", ship)
    assert refused.status_code == 403 and refused.get_json()["error"] == "cannot_decide"
    assert "scanedge hub device dev-1 --can-decide" in refused.get_json()["message"]
    assert storage.set_can_decide("dev-1", True) and not storage.set_can_decide("nope", True)
    rows = {d["device_id"]: d for d in admin(hub, "GET", "/api/v1/devices").get_json()["devices"]}
    assert (rows["dev-1"]["can_decide"], rows["dev-2"]["can_decide"]) == (True, False)
    assert device(hub, "POST", "/api/v1/sync/decide/SO-9", ship).status_code == 404  # north's
    assert device(hub, "POST", "/api/v1/sync/decide/SO-1", {"decision": "x",
                                                            "operator": "s1"}).status_code == 400
    decided = device(hub, "POST", "/api/v1/sync/decide/SO-1", ship).get_json()
    assert (decided["decided_by"], decided["decided_device"]) == ("s1", "dev-1")
    stored = admin(hub, "GET", "/api/v1/conflicts").get_json()["conflicts"]
    row = next(c for c in stored if c["order_id"] == "SO-1")
    assert (row["decision"], row["decided_by"], row["decided_device"]) == ("ship", "s1", "dev-1")
    # the signed command every device of the site gets names both
    changes = device(hub, "GET", "/api/v1/sync/pull?cursor=0").get_json()["changes"]
    command = {k: v for k, v in changes[-1]["payload"].items() if k != "change_seq"}
    assert command["kind"] == "unfreeze" and command["command_id"] == decided["command"]["command_id"]
    assert (command["decided_by"], command["decided_device"]) == ("s1", "dev-1")
    assert verify(command, storage.signer().public_b64) is None
    again = device(hub, "POST", "/api/v1/sync/decide/SO-1", ship)
    assert again.status_code == 409 and again.get_json()["error"] == "no_conflict"
    # north's device cancels its own order; a token re-issued keeps the permission
    storage.add_device("dev-n", "north")
    assert device(hub, "GET", "/api/v1/sync/conflicts", token=north).status_code == 403  # old token
    north = storage.add_device("dev-n", "north")
    cancel = device(hub, "POST", "/api/v1/sync/decide/SO-9", {"decision": "cancel",
                                                              "operator": "s9"}, token=north)
    assert cancel.get_json()["command"]["reason"] == "cancel"
    storage.set_can_decide("dev-1", False)  # revoked
    assert device(hub, "POST", "/api/v1/sync/decide/SO-1", ship).status_code == 403
