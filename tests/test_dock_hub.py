"""The dock at the hub (docs/dock.md, "Hub"): a device's ``loaded`` events pushed make the order
``loaded`` in ``GET /api/v1/orders/{id}``, once, and a frozen parcel's interception at the dock is
in the interception report's stage ``dock``. The whole path through real processes and Chromium:
tests/test_dock_e2e.py (slow)."""

from __future__ import annotations

import json

import pytest

from scanedge.edge.config import load_settings
from scanedge.edge.context import EdgeContext
from scanedge.edge.domain.interception_report import parse_time
from scanedge.edge.domain.orders import parse_order
from scanedge.edge.domain.packing import Freeze
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.store.orders import save_freeze, save_order
from scanedge.sync.hub.app import create_hub_app
from scanedge.sync.hub.storage import open_storage
from tests.test_dock_api import printed

ADMIN = "admin-token-for-tests"
ORDER = {"lines": [{"sku": "6901234567892", "qty": 1}], "carrier": "SF",
         "tracking_number": "SF1000000000011", "site": "sh"}


@pytest.fixture
def hub(hub_database):
    storage = open_storage(hub_database)
    storage.ensure_admin_token(ADMIN)
    client = create_hub_app(storage).test_client()
    client.device_token = storage.add_device("dev-1", site="sh")
    yield client
    storage.close()


@pytest.fixture
def device(tmp_path):
    ctx = EdgeContext.open(load_settings(env={}, data_dir=str(tmp_path / "dev"),
                                         device_id="dev-1", station="bench-1"))
    ctx.store.write(lambda db: save_order(db, parse_order({"order_id": "SO-1", **ORDER})))
    printed(ctx, "SO-1")
    yield ctx
    ctx.close()


def admin(client, method: str, path: str, body=None):
    return client.open(path, method=method, json=body,
                       headers={"Authorization": f"Bearer {ADMIN}"})


def push_all(hub, ctx) -> list[str]:
    rows = ctx.store.read().execute(
        "SELECT event_id, device_id, seq, type, order_id, payload, device_time, hlc"
        " FROM events ORDER BY seq").fetchall()
    events = [dict(zip(("event_id", "device_id", "seq", "type", "order_id", "payload",
                        "device_time", "hlc"), r, strict=True)) for r in rows]
    for e in events:
        e["payload"] = json.loads(e["payload"])
    r = hub.post("/api/v1/sync/push", json={"events": events},
                 headers={"Authorization": f"Bearer {hub.device_token}"})
    assert r.status_code == 200, r.get_json()
    return [x["status"] for x in r.get_json()["results"]]


def test_an_order_loaded_at_a_dock_is_shown_loaded_at_the_hub_once(hub, device) -> None:
    assert admin(hub, "PUT", "/api/v1/orders/SO-1", ORDER).status_code == 200
    assert admin(hub, "GET", "/api/v1/orders/SO-1").get_json()["loaded"] is None
    batch, _ = device.dock.open_batch(carrier="SF", station="dock-1", operator="li")
    device.dock.scan(batch["batch_id"], "SF1000000000011", scan_id=None, operator="li")
    device.dock.close(batch["batch_id"], operator="li")
    push_all(hub, device)
    got = admin(hub, "GET", "/api/v1/orders/SO-1").get_json()["loaded"]
    assert got == {"device_id": "dev-1", "batch_id": batch["batch_id"], "carrier": "SF",
                   "tracking_number": "SF1000000000011", "station": "dock-1", "operator": "li",
                   "loaded_at": got["loaded_at"]}
    assert set(push_all(hub, device)) == {"duplicate"}  # pushed again: nothing new
    types = [e["type"] for e in admin(hub, "GET", "/api/v1/events?order_id=SO-1")
             .get_json()["events"]]
    assert types.count("loaded") == 1


def test_a_parcel_pulled_at_the_dock_is_in_the_reports_dock_stage(hub, device) -> None:
    assert admin(hub, "PUT", "/api/v1/orders/SO-1", ORDER).status_code == 200
    assert admin(hub, "POST", "/api/v1/orders/SO-1/freeze", {"reason": "cancel"}).status_code == 202
    change = next(c for c in hub.get("/api/v1/sync/pull?cursor=0&limit=500", headers={
        "Authorization": f"Bearer {hub.device_token}"}).get_json()["changes"]
        if c["kind"] == "freeze")
    issued = parse_time(change["payload"]["issued_at"])  # the hub's freeze, as the device has it
    device.store.write(lambda db: save_freeze(db, Freeze("SO-1", "cancel", issued), source="hub",
                                              command_id=change["payload"]["command_id"]))
    batch, _ = device.dock.open_batch(carrier="SF", station="dock-1", operator="li")
    with pytest.raises(Refusal) as refused:
        device.dock.scan(batch["batch_id"], "SO-1", scan_id=None, operator="li")
    assert refused.value.code == "parcel_frozen"
    push_all(hub, device)
    report = admin(hub, "GET", "/api/v1/reports/interceptions?since=2020-01-01").get_json()
    dock = next(s for s in report["stages"] if s["stage"] == "dock")
    assert (dock["freezes"], dock["interceptions"]) == (1, 1)
    assert report["total"]["intercepted_after_print"] == 1
