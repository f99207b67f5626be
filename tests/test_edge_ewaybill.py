"""The device's 打印面单 (edge/ewaybills.py, POST /api/v1/orders/{id}/ewaybill) through the real
Flask app, with a real hub (in-process, on 127.0.0.1), a carrier simulator and a virtual printer:
the gate, the number here at once, one event, the hub's order, the refusals in words."""

from __future__ import annotations

import json

import pytest

from scanedge.edge.config import load_settings
from scanedge.printers.sim import VirtualPrinter
from scanedge.sync.carriers.accounts import parse_accounts
from scanedge.sync.carriers.sim import CarrierSimulator
from tests.support import free_port

SENDER = {"name": "杭州仓", "phone": "0571-88888888", "address": "浙江省杭州市余杭区仓前街道1号"}


def outbox(ctx, kind):
    return ctx.store.read().execute("SELECT payload FROM events WHERE type = ?", [kind]).fetchall()


def tracking(ctx, order_id):
    return ctx.store.read().execute("SELECT tracking_number, carrier FROM orders WHERE order_id"
                                    " = ?", [order_id]).fetchone()


# -- without a hub: the gate and the offline answer -----------------------------------------------
def test_an_unverified_order_gets_no_number_and_the_gate_says_why(client, demo_ctx):
    r = client.post("/api/v1/orders/SO-1001/ewaybill", json={"carrier": "SF"})
    assert r.status_code == 409 and r.get_json()["error"] == "ewaybill_gate"
    assert {p["code"] for p in r.get_json()["problems"]} >= {"lines_unpacked"}
    assert outbox(demo_ctx, "ewaybill_issued") == []


@pytest.mark.parametrize(("path", "body", "status", "code"), [
    ("/api/v1/orders/SO-404/ewaybill", {}, 404, "unknown_order"),
    ("/api/v1/orders/SO-1001/ewaybill", {"carrier": 7}, 400, "bad_request"),
    ("/api/v1/orders/SO-1001/ewaybill", {"station": ""}, 400, "bad_request"),
])
def test_bad_requests_are_refused_in_words(client, path, body, status, code):
    r = client.post(path, json=body)
    assert (r.status_code, r.get_json()["error"]) == (status, code) and r.get_json()["message"]


def test_a_verified_order_on_a_device_without_a_hub_waits_for_the_hub(tmp_path):
    from scanedge.edge.commands import load_demo_orders
    from scanedge.edge.context import EdgeContext
    from scanedge.edge.web.app import create_app

    settings = load_settings(env={}, data_dir=str(tmp_path / "var"), device_id="dev-1",
                             station="bench-1", print_policy="off")
    ctx = EdgeContext.open(settings)
    try:
        load_demo_orders(ctx.store)
        r = create_app(settings, ctx).test_client().post("/api/v1/orders/SO-1001/ewaybill",
                                                         json={})
        assert r.status_code == 503 and r.get_json()["error"] == "hub_unreachable"
        assert "waiting for the hub" in r.get_json()["message"]
        assert tracking(ctx, "SO-1001") == ("SF1385628716739", "SF")  # untouched
    finally:
        ctx.close()


@pytest.mark.parametrize("hub_change_first", [False, True])
def test_a_waybill_is_recorded_once_whether_or_not_the_hubs_order_change_came_first(
        demo_ctx, hub_change_first):
    from scanedge.edge.domain.ewaybill import EWaybill
    from scanedge.edge.ewaybills import record

    ewb = EWaybill.from_json({"carrier": "SF", "number": "SF7444400000019", "order_id": "SO-1002"})
    if hub_change_first:  # the sync worker applied the hub's order with the number already
        demo_ctx.store.write(lambda db: db.execute(
            "UPDATE orders SET tracking_number = ?, carrier = 'SF' WHERE order_id = 'SO-1002'",
            [ewb.number]))
    assert record(demo_ctx, ewb, source="hub", operator="pat") is True
    assert record(demo_ctx, ewb, source="hub", operator="pat") is False  # a replay
    events = outbox(demo_ctx, "ewaybill_issued")
    assert len(events) == 1 and json.loads(events[0][0])["number"] == ewb.number
    assert tracking(demo_ctx, "SO-1002") == (ewb.number, "SF")


# -- with a hub and the SF simulator ----------------------------------------------------------------
@pytest.fixture
def rig(tmp_path):
    from scanedge.edge.commands import load_demo_orders
    from scanedge.edge.context import EdgeContext
    from scanedge.edge.demo import demo_orders
    from scanedge.edge.lifecycle import BackgroundServer
    from scanedge.edge.web.app import create_app
    from scanedge.sync.hub.app import HubOptions
    from scanedge.sync.hub.asgi import create_hub_asgi
    from scanedge.sync.hub.storage import open_storage

    sim = CarrierSimulator("sf", key="partner", secret="checkword", hang_s=10).start()
    printer = VirtualPrinter("127.0.0.1", 0).start()
    accounts = parse_accounts({"sites": {"default": {"SF": {
        "url": sim.url, "key": "partner", "secret": "checkword", "sender": SENDER,
        "timeout_s": 0.5}}}})
    storage = open_storage(str(tmp_path / "hub.db"))
    for doc in demo_orders():
        storage.upsert_order(doc)
    token = storage.add_device("dev-1")
    port = free_port()
    hub = BackgroundServer(create_hub_asgi(storage, HubOptions(carriers=accounts)),
                           "127.0.0.1", port).start()
    settings = load_settings(env={}, data_dir=str(tmp_path / "var"), device_id="dev-1",
                             station="bench-1", print_policy="off", printer=printer.address,
                             hub_url=f"http://127.0.0.1:{port}", hub_token=token)
    ctx = EdgeContext.open(settings)
    load_demo_orders(ctx.store)
    client = create_app(settings, ctx).test_client()
    client.ctx, client.sim, client.storage, client.printer = ctx, sim, storage, printer
    yield client
    ctx.close()
    hub.stop()
    storage.close()
    printer.stop()
    sim.stop()


def test_one_tap_gets_the_sf_number_prints_it_and_tells_the_hub(rig):
    r = rig.post("/api/v1/orders/SO-1001/ewaybill", json={"carrier": "SF"})
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    number = body["ewaybill"]["number"]
    assert body["source"] == "hub" and body["job"] and number.startswith("SF")
    assert body["ewaybill"]["sort_code"] and body["ewaybill"]["qr"]
    assert tracking(rig.ctx, "SO-1001") == (number, "SF")  # the scan rules see it at once
    assert len(outbox(rig.ctx, "ewaybill_issued")) == 1
    assert rig.storage.order_doc("SO-1001")["tracking_number"] == number
    # a tap again: the same waybill and job, no second event, no second carrier order
    again = rig.post("/api/v1/orders/SO-1001/ewaybill", json={}).get_json()
    assert (again["ewaybill"]["number"], again["job"]) == (number, body["job"])
    assert len(outbox(rig.ctx, "ewaybill_issued")) == 1 and rig.sim.creates == 1


def test_a_scan_of_the_new_number_opens_the_order(rig):
    number = rig.post("/api/v1/orders/SO-1002/ewaybill", json={"carrier": "SF"}
                      ).get_json()["ewaybill"]["number"]
    r = rig.post("/api/v1/scans", json={"code": number})
    assert r.status_code == 200 and r.get_json().get("order_id") == "SO-1002", r.get_json()


def test_the_carriers_refusal_reaches_the_bench_with_its_code(rig):
    rig.sim.quota = 0
    r = rig.post("/api/v1/orders/SO-1001/ewaybill", json={"carrier": "SF"})
    assert r.status_code == 502 and r.get_json()["error"] == "carrier_refused"
    assert r.get_json()["carrier_code"] == "8196" and r.get_json()["carrier"] == "SF"
    assert tracking(rig.ctx, "SO-1001") == ("SF1385628716739", "SF")
    assert outbox(rig.ctx, "ewaybill_issued") == []


def test_a_carrier_timeout_then_a_tap_again_gives_one_live_waybill(rig):
    rig.sim.fail_next("timeout")
    r = rig.post("/api/v1/orders/SO-1001/ewaybill", json={"carrier": "SF"})
    assert r.status_code == 503 and r.get_json()["error"] == "carrier_unavailable"
    r = rig.post("/api/v1/orders/SO-1001/ewaybill", json={"carrier": "SF"})
    assert r.status_code == 200
    assert list(rig.sim.live()) == ["SO-1001"] and rig.sim.creates == 1
    assert rig.sim.live()["SO-1001"]["number"] == r.get_json()["ewaybill"]["number"]


def test_an_account_the_site_lacks_is_refused_in_words(rig):
    r = rig.post("/api/v1/orders/SO-1003/ewaybill", json={"carrier": "JT"})
    assert r.status_code == 409 and r.get_json()["error"] == "no_carrier_account"
    assert "JT" in r.get_json()["message"]
