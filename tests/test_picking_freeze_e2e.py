"""A freeze mid-wave, end to end: a real ``scanedge hub``, a real ``scanedge serve`` with a layout
(the picker's gateway, enrolled at the hub), orders with locations sent by the order system to the
hub. A picker claims a wave and puts part of an order into its tote; the order system freezes the
order at the hub; the picker's station alarms, the order's remaining stops go, a put-back task
says what goes back to which bin, a scan confirms it, and the interception at stage ``pick``
reaches the hub and its report (docs/picking.md, "Freeze during picking").

No timing asserts: every wait is a ``wait_until`` with a generous timeout.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import EdgeServer, HubServer, wait_until

pytestmark = pytest.mark.slow

STATION = "pda-1"
LAYOUT = """aisles = 8
bins = 60
levels = 5
[waves]
max_orders = 12
"""
# PK-1 has two stops, so one is left to walk when the freeze lands; PK-2 is another order in the
# same wave that must not be touched. Item codes are seller codes (no lot, no expiry).
ORDERS = {
    "PK-1": {"priority": "P1", "carrier": "SF", "lines": [
        {"sku": "SELLER-PK-CUP", "name": "杯子", "qty": 2, "location": "A-02-10-1"},
        {"sku": "SELLER-PK-LID", "name": "杯盖", "qty": 1, "location": "A-06-30-3"}]},
    "PK-2": {"priority": "P2", "carrier": "SF", "lines": [
        {"sku": "SELLER-PK-PEN", "name": "笔", "qty": 1, "location": "A-04-20-2"}]},
}


def get(server, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def start_rig(root: Path, orders: dict[str, dict], device_id: str = "pda-gw"
              ) -> tuple[HubServer, EdgeServer]:
    """A hub, an edge with LAYOUT enrolled at it, ``orders`` sent to the hub and on the edge."""
    hub = HubServer(root / "hub", str(root / "hub" / "hub.db")).start()
    token = hub.add_device(device_id)
    data = root / "edge"
    data.mkdir(parents=True)
    (data / "layout.toml").write_text(LAYOUT, encoding="utf-8")
    edge = EdgeServer(data, SCANEDGE_DEVICE_ID=device_id, SCANEDGE_HUB_URL=hub.url,
                      SCANEDGE_HUB_TOKEN=token, SCANEDGE_HUB_PUBLIC_KEY=hub.public_key,
                      SCANEDGE_PRINTER="dummy://", SCANEDGE_SYNC_POLL_S="0.3",
                      SCANEDGE_HUB_TIMEOUT_S="2")
    try:
        edge.start()
        for oid, doc in orders.items():
            hub.admin("PUT", f"/api/v1/orders/{oid}", doc)
        for oid in orders:
            wait_until(lambda o=oid: get(edge, f"/api/v1/orders/{o}")[0] == 200, timeout=30,
                       what=f"order {oid} on the edge")
    except BaseException:
        edge.kill()
        hub.kill()
        raise
    return hub, edge


def pick(edge: EdgeServer, code: str) -> dict:
    status, body = edge.post("/api/v1/pick/scans", {"code": code, "station": STATION})
    assert status == 200, body
    return body


def walk_stop(edge: EdgeServer, stop: dict) -> dict:
    """Scan the bin, the item once per unit, the tote of the stop's slot: the stop is done."""
    assert pick(edge, stop["location"])["verdict"] == "ok"
    for _ in range(stop["qty"] - stop["picked"]):
        assert pick(edge, stop["sku"])["verdict"] == "ok"
    answer = pick(edge, f"TOTE-{stop['slot']:02d}")
    assert answer["verdict"] == "ok", answer
    return answer["wave"]


def walk_until_part_of(edge: EdgeServer, wave: dict, order_id: str) -> tuple[dict, dict]:
    """Walk the route until one stop of ``order_id`` is in its tote; returns (that stop, wave)."""
    while True:
        stop = wave["current"]
        assert stop is not None, "the wave ended before the order was reached"
        wave = walk_stop(edge, stop)
        if stop["order_id"] == order_id:
            return stop, wave


@pytest.fixture
def rig(tmp_path) -> Iterator[tuple[HubServer, EdgeServer]]:
    hub, edge = start_rig(tmp_path, ORDERS)
    yield hub, edge
    edge.kill()
    hub.kill()


def test_a_freeze_mid_wave_through_the_hub(rig) -> None:
    hub, edge = rig
    status, claimed = edge.post("/api/v1/pick/claim", {"station": STATION})
    assert status == 200, claimed
    wave = claimed["wave"]
    assert {s["order_id"] for s in wave["stops"]} == {"PK-1", "PK-2"}
    picked, wave = walk_until_part_of(edge, wave, "PK-1")
    left = [s for s in wave["stops"] if s["order_id"] == "PK-1" and s["state"] == "todo"]
    assert len(left) == 1  # PK-1 is half picked: one stop in its tote, one still to walk
    tote = next(o["tote"] for o in wave["orders"] if o["order_id"] == "PK-1")
    assert tote == f"TOTE-{picked['slot']:02d}"

    # the order system cancels PK-1 at the hub
    hub.admin("POST", "/api/v1/orders/PK-1/freeze", {"reason": "cancel"})

    # the picker's station alarms (stage pick), with the put-back in it
    alarm = wait_until(lambda: next((a for a in get(edge, f"/api/v1/alarms?station={STATION}")[1]
                                     ["alarms"] if a["order_id"] == "PK-1"), None),
                       timeout=30, what="the freeze alarm at the picker's station")
    assert alarm["station"] == STATION and alarm["type"] == "freeze" and alarm["level"] == "alarm"
    assert alarm["details"]["stage"] == "pick" and alarm["details"]["putbacks"] == 1
    assert "PK-1" in alarm["message"]["zh"] and "PK-1" in alarm["message"]["en"]

    # the order's remaining stops are gone; the other order's stops are not
    wave = get(edge, f"/api/v1/pick/current?station={STATION}")[1]["wave"]
    assert {s["state"] for s in wave["stops"] if s["order_id"] == "PK-1"} == {"removed"}
    assert all(s["order_id"] != "PK-1" for s in wave["stops"]
               if s["state"] in ("todo", "at_bin", "in_hand", "skipped"))
    assert wave["current"] is None or wave["current"]["order_id"] == "PK-2"
    assert next(o for o in wave["orders"] if o["order_id"] == "PK-1")["state"] == "frozen"
    # the put-back: what was picked, from which tote slot, back to which bin
    [putback] = wave["putbacks"]
    assert (putback["order_id"], putback["sku"], putback["qty"], putback["slot"], putback["tote"],
            putback["location"]) == ("PK-1", picked["sku"], picked["qty"], picked["slot"], tote,
                                     picked["location"])
    assert wave["expect"] == {"step": "putback", "location": picked["location"]}

    # a person taps the alarm away (as the page does), then confirms the put-back by scanning
    status, acked = edge.post(f"/api/v1/alarms/{alarm['alarm_id']}/ack", {})
    assert status == 200 and acked["active"] is False
    wrong = pick(edge, "A-08-60-5")
    assert wrong["verdict"] == "wrong_bin" and wrong["wave"]["putbacks"]  # still to put back
    done = pick(edge, picked["location"])
    assert done["verdict"] == "ok" and done["order_id"] == "PK-1"
    wave = done["wave"]
    assert wave["putbacks"] == []
    # the rest of the wave goes on: PK-2 is picked to the end
    while wave.get("state") != "done" and wave["current"] is not None:
        assert wave["current"]["order_id"] == "PK-2"
        wave = walk_stop(edge, wave["current"])

    # every step reached the hub: the stop, the interception at stage pick, the put-back
    def at_hub() -> dict[str, list[dict]]:
        found: dict[str, list[dict]] = {}
        for e in hub.events(order_id="PK-1"):
            found.setdefault(e["type"], []).append(e)
        return found if {"pick_stopped", "interception", "pick_putback"} <= set(found) else {}

    events = wait_until(at_hub, timeout=30, what="PK-1's pick events at the hub")
    [interception] = events["interception"]
    assert interception["payload"]["action"] == "pick"
    assert interception["payload"]["station"] == STATION
    assert interception["payload"]["putbacks"] == 1
    assert events["pick_putback"][0]["payload"]["qty"] == picked["qty"]
    assert any(e["payload"]["verdict"] == "ok" for e in events["pick_tote"])

    # the hub's interception report has the pick stage
    def pick_stage() -> dict | None:
        report = hub.admin("GET", "/api/v1/reports/interceptions?since=2020-01-01")
        stage = next(s for s in report["stages"] if s["stage"] == "pick")
        return stage if stage["interceptions"] >= 1 and stage["freezes"] >= 1 else None

    stage = wait_until(pick_stage, timeout=30, what="the pick stage in the hub's report")
    assert stage["median_s"] is not None and stage["median_s"] >= 0
    report = hub.admin("GET", "/api/v1/reports/interceptions?since=2020-01-01")
    assert {s["stage"] for s in report["stages"]} >= {"pick", "pack", "print"}
