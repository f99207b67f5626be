"""The hub's e-waybills (sync/hub/ewaybills.py) through its Flask API, with a carrier simulator on
127.0.0.1: the number on the order, one live waybill per order across retries, cancel on freeze,
the carrier's refusals, migration 7 beside a missing 6."""

from __future__ import annotations

import sqlite3

import pytest

from scanedge.sync.carriers.accounts import parse_accounts
from scanedge.sync.carriers.sim import CarrierSimulator
from scanedge.sync.hub import ewaybills
from scanedge.sync.hub.app import HubOptions, create_hub_app
from scanedge.sync.hub.storage import MIGRATIONS, SCHEMA_VERSION, open_storage
from tests.support import wait_until

ADMIN = "admin-token-for-tests"
SENDER = {"name": "杭州仓", "phone": "0571-88888888", "address": "浙江省杭州市余杭区仓前街道1号"}
ORDER = {"lines": [{"sku": "6901234567892", "name": "保温杯", "qty": 1}], "carrier": "SF",
         "tracking_number": "SF1385628716739",
         "recipient": {"name": "李四", "phone": "13800001234",
                       "address": "浙江省杭州市西湖区文三路 90 号"}}


@pytest.fixture
def rig(hub_database):
    sim = CarrierSimulator("sf", key="partner", secret="checkword", hang_s=10).start()
    accounts = parse_accounts({"sites": {"default": {"default": "SF", "SF": {
        "url": sim.url, "key": "partner", "secret": "checkword", "customer_code": "7551234567",
        "sender": SENDER, "timeout_s": 0.5}}}})
    storage = open_storage(hub_database)
    storage.ensure_admin_token(ADMIN)
    client = create_hub_app(storage, HubOptions(carriers=accounts)).test_client()
    client.token = storage.add_device("dev-1")
    client.sim, client.storage, client.accounts = sim, storage, accounts
    assert admin(client, "PUT", "/api/v1/orders/SO-1", ORDER).status_code == 200
    yield client
    sim.stop()
    storage.close()


def admin(client, method, path, body=None):
    return client.open(path, method=method, json=body, headers={"Authorization": f"Bearer {ADMIN}"})


def ask(client, order_id="SO-1", body=None):
    return client.post(f"/api/v1/sync/ewaybill/{order_id}", json=body or {},
                       headers={"Authorization": f"Bearer {client.token}"})


def test_a_device_gets_a_waybill_and_its_number_is_on_the_hubs_order(rig):
    r = ask(rig)
    assert r.status_code == 200, r.get_json()
    ewb = r.get_json()["ewaybill"]
    assert ewb["carrier"] == "SF" and ewb["number"].startswith("SF") and ewb["sort_code"]
    assert ewb["sender"]["name"] == "杭州仓" and r.get_json()["replayed"] is False
    order = admin(rig, "GET", "/api/v1/orders/SO-1").get_json()
    assert order["tracking_number"] == ewb["number"] and order["order"]["version"] == 2
    assert order["ewaybill"]["number"] == ewb["number"]
    assert [a["state"] for a in order["ewaybills"]] == ["live"]
    changes = rig.storage.changes_since(0)
    assert changes[-1].kind == "order" and changes[-1].payload["tracking_number"] == ewb["number"]
    # the order system sends the order again without the number: the parcel's number stays
    admin(rig, "PUT", "/api/v1/orders/SO-1", {**ORDER, "priority": "P0"})
    assert admin(rig, "GET", "/api/v1/orders/SO-1").get_json()["tracking_number"] == ewb["number"]


def test_asking_again_answers_the_live_waybill_without_the_carrier(rig):
    first = ask(rig).get_json()["ewaybill"]
    again = ask(rig, body={"carrier": "SF"}).get_json()
    assert again["ewaybill"] == first and again["replayed"] is True
    assert rig.sim.creates == 1 and len(rig.sim.calls) == 1


def test_a_retry_after_the_carrier_timed_out_leaves_one_live_waybill(rig):
    rig.sim.fail_next("timeout")
    r = ask(rig)
    assert r.status_code == 503 and r.get_json()["error"] == "carrier_unavailable"
    assert [a["state"] for a in ewaybills.for_order(rig.storage, "SO-1")] == ["requesting"]
    r = ask(rig)
    assert r.status_code == 200
    live = rig.sim.live()
    assert list(live) == ["SO-1"] and live["SO-1"]["number"] == r.get_json()["ewaybill"]["number"]
    assert rig.sim.creates == 1


def test_a_freeze_cancels_the_waybill_at_the_carrier_and_a_new_one_has_a_new_order_id(rig):
    number = ask(rig).get_json()["ewaybill"]["number"]
    assert admin(rig, "POST", "/api/v1/orders/SO-1/freeze", {"reason": "address_change"}
                 ).status_code == 202
    wait_until(lambda: rig.sim.live() == {}, 10, what="the carrier's cancel")
    wait_until(lambda: ewaybills.for_order(rig.storage, "SO-1")[0]["state"] == "cancelled", 10,
               what="the hub's record of it")
    r = ask(rig)
    assert r.status_code == 409 and r.get_json()["error"] == "frozen"
    admin(rig, "POST", "/api/v1/orders/SO-1/unfreeze", {})
    again = ask(rig).get_json()["ewaybill"]["number"]
    assert again != number and list(rig.sim.live()) == ["SO-1-2"]


def test_a_cancel_the_carrier_does_not_answer_is_retried(rig):
    ask(rig)
    rig.sim.stop()
    row = ewaybills.mark_cancelling(rig.storage, "SO-1")
    assert ewaybills.cancel_row(rig.storage, rig.accounts, row) == "cancelling"
    restarted = CarrierSimulator("sf", key="partner", secret="checkword", port=rig.sim.port)
    restarted.waybills = rig.sim.waybills
    restarted.start()
    try:
        assert ewaybills.retry_cancels(rig.storage, rig.accounts, older_than_s=0) == 1
        assert restarted.live() == {}
    finally:
        restarted.stop()


@pytest.mark.parametrize(("setup", "status", "code"), [
    ("out_of_range", 502, "carrier_refused"), ("quota", 502, "carrier_refused"),
    ("http_500", 503, "carrier_unavailable"), ("zto", 409, "no_carrier_account"),
    ("unknown", 404, "unknown_order"), ("frozen", 409, "frozen"), ("bad", 400, "bad_request"),
])
def test_what_the_hub_refuses_and_the_carriers_refusals_pass_through(rig, setup, status, code):
    order_id, body = "SO-1", {}
    if setup == "out_of_range":
        admin(rig, "PUT", "/api/v1/orders/SO-2", {**ORDER, "recipient": {
            "name": "x", "phone": "1", "address": "新疆 超区"}})
        order_id = "SO-2"
    elif setup == "quota":
        rig.sim.quota = 0
    elif setup == "http_500":
        rig.sim.fail_next("http_500")
    elif setup == "zto":
        body = {"carrier": "ZTO"}
    elif setup == "unknown":
        order_id = "SO-404"
    elif setup == "frozen":
        admin(rig, "POST", "/api/v1/orders/SO-1/freeze", {"reason": "cancel"})
    elif setup == "bad":
        body = {"carrier": 5}
    r = ask(rig, order_id, body)
    assert (r.status_code, r.get_json()["error"]) == (status, code), r.get_json()
    if code == "carrier_refused":
        assert r.get_json()["carrier"] == "SF" and r.get_json()["carrier_code"]
    assert rig.sim.live() == {}


def test_migration_7_runs_on_a_schema_5_database_and_6_still_runs_when_it_lands(tmp_path,
                                                                               monkeypatch):
    monkeypatch.delitem(MIGRATIONS, 6, raising=False)  # as before the returns' migration lands
    path = tmp_path / "hub.db"
    open_storage(str(path)).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE ewaybills")
    db.execute("UPDATE hub_meta SET value = '5' WHERE key = 'schema_version'")
    db.execute("DELETE FROM hub_meta WHERE key = 'migrations'")  # as a hub before this list
    db.commit()
    open_storage(str(path)).close()
    assert db.execute("SELECT COUNT(*) FROM ewaybills").fetchone() == (0,)
    assert db.execute("SELECT value FROM hub_meta WHERE key = 'migrations'").fetchone()[0] \
        == "[2, 3, 4, 5, 7]"
    # the returns' migration 6 lands after 7: a database at 7 still runs it
    monkeypatch.setitem(MIGRATIONS, 6, ("CREATE TABLE six_landed (x INTEGER)",))  # its stand-in
    open_storage(str(path)).close()
    assert db.execute("SELECT COUNT(*) FROM six_landed").fetchone() == (0,)
    assert db.execute("SELECT value FROM hub_meta WHERE key = 'schema_version'").fetchone()[0] \
        == str(SCHEMA_VERSION)
    db.close()
