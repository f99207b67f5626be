"""A split order at the dock (docs/parcels.md, docs/dock.md): each parcel is its own handover
item, the order counts as loaded only once all its parcels are on a truck."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scanedge.edge.domain.dock import Batch, Loaded, Parcel, judge, order_completion
from scanedge.edge.domain.orders import parse_order
from scanedge.edge.domain.packing import Freeze
from scanedge.edge.domain.parcels import Split
from scanedge.edge.store import parcels
from scanedge.edge.store.db import Migration
from scanedge.edge.store.orders import save_freeze, save_order
from scanedge.printers import queue as q
from tests import test_dock_hub
from tests.test_dock_api import events

ORDER = {"order_id": "SO-88", "tracking_number": "SF1385628716739", "carrier": "SF",
         "sub_tracking_numbers": ["SF1385628716740", "SF1385628716741"],
         "lines": [{"sku": "6901234567892", "name": "马克杯", "qty": 3}]}


# -- the rules --------------------------------------------------------------------------------

def _loaded(order_id: str, parcel_no: int = 0, parcels_: int = 0) -> Loaded:
    return Loaded(order_id, "SF", "T", parcel_no=parcel_no, parcels=parcels_)


@pytest.mark.parametrize(("on_truck", "before", "whole", "missing"), [
    ([_loaded("A")], {}, ["A"], {}),  # an order's single label
    ([_loaded("B", 1, 2), _loaded("B", 2, 2)], {}, ["B"], {}),
    ([_loaded("B", 1, 3)], {}, [], {"B": [2, 3]}),
    ([_loaded("B", 3, 3)], {"B": {1, 2}}, ["B"], {}),  # the others left on an earlier truck
    ([_loaded("A"), _loaded("B", 2, 2)], {}, ["A"], {"B": [1]}),
])
def test_an_order_is_loaded_once_all_its_parcels_are_on_a_truck(
        on_truck: list[Loaded], before: dict, whole: list[str], missing: dict) -> None:
    assert order_completion(on_truck, before) == (whole, missing)


@pytest.mark.parametrize(("parcel", "verdict", "zh", "en"), [
    (Parcel("c", "SO-1", parcel_no=2, parcels=3, printed=True), "accepted",
     "订单 SO-1 包裹 2/3 已扫入", "order SO-1 parcel 2/3 scanned in"),
    (Parcel("c", "SO-1", parcel_no=2, parcels=3, in_this_batch=True), "duplicate",
     "包裹 2/3 重复扫描", "parcel 2/3 scanned twice"),
    (Parcel("c", "SO-1", parcel_no=1, parcels=2, freeze_reason="cancel"), "frozen",
     "包裹 1/2 已冻结", "parcel 1/2 is frozen"),
    (Parcel("c", "SO-1", printed=True), "accepted", "订单 SO-1 已扫入", "order SO-1 scanned in"),
])
def test_the_dock_names_the_parcel_of_a_split_order(parcel: Parcel, verdict: str, zh: str,
                                                    en: str) -> None:
    decision = judge(Batch("B1", "SF"), parcel)
    assert decision.verdict.value == verdict
    assert zh in decision.message["zh"] and en in decision.message["en"]


# -- through the API --------------------------------------------------------------------------

def parcel_printed(ctx, parcel_no: int, count: int = 3) -> None:
    """Parcel ``parcel_no``'s label printed here (the print queue's own steps)."""
    device = ctx.settings.device_id
    tracking = ORDER["tracking_number"] if parcel_no == 1 else \
        ORDER["sub_tracking_numbers"][parcel_no - 2]

    def tx(db):
        job, _ = q.enqueue_job(db, device, "SO-88", "P2", kind="parcel", payload={
            "parcel_no": parcel_no, "count": count, "tracking_number": tracking})
        q.start_sending(db, device, job.job_id, 100)
        q.finish_printed(db, device, job.job_id, 100)

    ctx.store.write(tx)


@pytest.fixture
def rig(client, demo_ctx):
    def tx(db):
        save_order(db, parse_order(ORDER))
        parcels.save_split(db, "SO-88", Split(3, ((1,), (1,), (1,)), closed=frozenset({1, 2})),
                           station="bench-1", operator="o")

    demo_ctx.store.write(tx)
    for k in (1, 2, 3):
        parcel_printed(demo_ctx, k)
    return client, demo_ctx


def open_batch(client) -> str:
    r = client.post("/api/v1/dock/batches", json={"station": "dock-1", "carrier": "SF"})
    assert r.status_code in (200, 201)
    return r.get_json()["batch_id"]


def scan(client, batch_id: str, code: str):
    return client.post(f"/api/v1/dock/batches/{batch_id}/scans", json={"code": code})


def test_each_parcel_is_its_own_handover_item_and_the_order_loads_when_all_have(rig) -> None:
    client, ctx = rig
    first = open_batch(client)
    r = scan(client, first, "SO-88:L1:P1")
    assert r.status_code == 200 and r.get_json()["flags"] == []
    assert (r.get_json()["parcel_no"], r.get_json()["parcels"]) == (1, 3)
    # its 子单号 names parcel 2; the label again is a duplicate counted once
    r = scan(client, first, "sf1385628716740")
    assert r.get_json()["verdict"] == "accepted" and r.get_json()["parcel_no"] == 2
    assert scan(client, first, "SO-88:L1:P2").get_json()["verdict"] == "duplicate"
    batch = client.get(f"/api/v1/dock/batches/{first}").get_json()
    assert batch["count"] == 2
    assert [(p["parcel_no"], p["tracking_number"]) for p in batch["parcels"]] == [
        (1, "SF1385628716739"), (2, "SF1385628716740")]
    # parcel 3 printed, not scanned: the loader is told
    assert [(p["order_id"], p.get("parcel")) for p in batch["not_scanned"]] == [("SO-88", "3/3")]

    closed = client.post(f"/api/v1/dock/batches/{first}/close", json={}).get_json()["manifest"]
    assert closed["counts"]["parcels"] == 2 and closed["counts"]["orders"] == 1
    assert closed["incomplete"] == [{"order_id": "SO-88", "missing": [3]}]
    assert events(ctx, "loaded") == []  # not loaded while a box is still on the dock
    (partial,) = events(ctx, "parcels_loaded")
    assert (partial["parcel_nos"], partial["missing"]) == ([1, 2], [3])
    csv_text = client.get(f"/api/v1/dock/batches/{first}/manifest.csv").get_data(as_text=True)
    assert csv_text.splitlines()[1].endswith(",1/3")

    second = open_batch(client)
    assert scan(client, second, "SO-88:L1:P1").get_json()["error"] == "already_loaded"
    assert scan(client, second, "SO-88:L1:P3").status_code == 200
    client.post(f"/api/v1/dock/batches/{second}/close", json={})
    (loaded,) = events(ctx, "loaded")
    assert loaded["order_id"] == "SO-88" and loaded["parcel_nos"] == [3]


def test_a_frozen_split_order_is_pulled_parcel_by_parcel_with_the_alarm(rig) -> None:
    client, ctx = rig
    batch = open_batch(client)
    ctx.store.write(lambda db: save_freeze(db, Freeze("SO-88", "cancel", datetime.now(UTC)),
                                           source="hub"))
    r = scan(client, batch, "SO-88:L1:P2")
    assert r.status_code == 409 and r.get_json()["error"] == "parcel_frozen"
    assert "parcel 2/3" in r.get_json()["message"] and r.get_json()["alarm_id"]


@pytest.mark.parametrize("code", ["SO-88:L1:P4", "SO-99:L1:P1", "SF0000000000"])
def test_a_parcel_the_order_does_not_have_names_nothing(rig, code: str) -> None:
    client, _ = rig
    r = scan(client, open_batch(client), code)
    assert r.status_code == 404 and r.get_json()["error"] == "parcel_unknown"


def test_a_dock_database_before_parcels_is_upgraded_in_place(settings) -> None:
    from scanedge.edge import dock
    from scanedge.edge.store import Store

    store = Store(settings.edge_db_path)
    store.ensure_schema(dock.COMPONENT, dock.MIGRATIONS[:1])
    store.write(lambda db: db.execute(
        "INSERT INTO dock_parcels (batch_id, order_id, code, scanned_at) VALUES"
        " ('B1', 'SO-1', 'SO-1', '2026-05-01T09:00:00Z')"))
    store.ensure_schema(dock.COMPONENT, dock.MIGRATIONS)
    row = store.read().execute("SELECT order_id, parcel_no, parcels, scans FROM dock_parcels"
                               ).fetchone()
    assert tuple(row) == ("SO-1", 0, 0, 1)
    assert isinstance(dock.MIGRATIONS[-1], Migration)
    store.close()


# -- at the hub -------------------------------------------------------------------------------

hub = test_dock_hub.hub  # the hub's app on each database (fixture)


def test_the_hub_shows_a_split_order_loaded_only_when_its_last_parcel_left(hub, tmp_path) -> None:
    from scanedge.edge.config import load_settings
    from scanedge.edge.context import EdgeContext
    from tests.test_dock_hub import admin, push_all

    doc = {k: v for k, v in ORDER.items() if k != "order_id"} | {"site": "sh"}
    assert admin(hub, "PUT", "/api/v1/orders/SO-88", doc).status_code == 200
    ctx = EdgeContext.open(load_settings(env={}, data_dir=str(tmp_path / "dev"),
                                         device_id="dev-1", station="bench-1"))
    try:
        def tx(db):
            save_order(db, parse_order({**ORDER, "site": "sh"}))
            parcels.save_split(db, "SO-88", Split(2, ((2,), (1,)), closed=frozenset({1})),
                               station="bench-1", operator="o")

        ctx.store.write(tx)
        for k in (1, 2):
            parcel_printed(ctx, k, count=2)
        first, _ = ctx.dock.open_batch(carrier="SF", station="dock-1", operator="li")
        ctx.dock.scan(first["batch_id"], "SO-88:L1:P1", scan_id=None, operator="li")
        ctx.dock.close(first["batch_id"], operator="li")
        push_all(hub, ctx)
        assert admin(hub, "GET", "/api/v1/orders/SO-88").get_json()["loaded"] is None
        second, _ = ctx.dock.open_batch(carrier="SF", station="dock-1", operator="li")
        ctx.dock.scan(second["batch_id"], "SF1385628716740", scan_id=None, operator="li")
        ctx.dock.close(second["batch_id"], operator="li")
        push_all(hub, ctx)
        loaded = admin(hub, "GET", "/api/v1/orders/SO-88").get_json()["loaded"]
        assert loaded["batch_id"] == second["batch_id"]
        types = [e["type"] for e in admin(hub, "GET", "/api/v1/events?order_id=SO-88")
                 .get_json()["events"]]
        assert types.count("parcels_loaded") == 1 and types.count("loaded") == 1
    finally:
        ctx.close()
