"""E-waybills end to end, through real processes: `scanedge serve --demo` (its hub, its SF
simulator, its virtual printer). 打印面单 on a packed order gets an SF number, a retry after the
carrier timed out leaves one live waybill, the number reaches the hub's order and its event log,
a freeze at the hub cancels the waybill at the carrier. Slow: the fast loop has
tests/test_edge_ewaybill.py and tests/test_hub_ewaybills.py (the same paths in-process)."""

from __future__ import annotations

import json
import tomllib
import urllib.request

import pytest

from tests.support import EdgeServer, free_port, wait_until

pytestmark = pytest.mark.slow


def call(url, method="GET", body=None, token=None):
    req = urllib.request.Request(url, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_the_demo_prints_an_sf_waybill_once_and_a_freeze_cancels_it_at_the_carrier(tmp_path):
    hub_port = free_port()
    hub = f"http://127.0.0.1:{hub_port}"
    server = EdgeServer(tmp_path / "var", SCANEDGE_HUB_LISTEN=f"127.0.0.1:{hub_port}")
    server.command = ("serve", "--demo")
    server.start()
    try:
        wait_until(lambda: server.post("/api/v1/scans", {"code": "SO-1001"})[1]["verdict"] == "ok",
                   timeout=15, what="demo order SO-1001 synced")
        status, refused = server.post("/api/v1/orders/SO-1001/ewaybill", {"carrier": "SF"})
        assert (status, refused["error"]) == (409, "ewaybill_gate")  # not packed: no number
        for code in ("]C1010690123456789210L2301", "]C1010690123456789210L2301", "4006381333931"):
            assert server.post("/api/v1/scans", {"code": code})[1]["verdict"] == "ok"
        assert server.post("/api/v1/orders/SO-1001/gifts/0/confirm", {})[0] == 200
        demo = tmp_path / "var" / "demo"
        admin = (demo / "admin_token").read_text().strip()
        sim = tomllib.loads((demo / "carriers.toml").read_text())["sites"]["default"]["SF"]["url"]
        sim = sim.rsplit("/std/service", 1)[0]
        # the carrier makes the waybill but its answer never comes: the hub times out
        call(f"{sim}/_sim/next", "POST", {"fail": "timeout"})
        status, lost = server.post("/api/v1/orders/SO-1001/ewaybill", {"carrier": "SF"})
        assert (status, lost["error"]) == (503, "carrier_unavailable"), lost
        status, body = server.post("/api/v1/orders/SO-1001/ewaybill", {"carrier": "SF"})
        assert status == 200, body
        number = body["ewaybill"]["number"]
        carrier_side = call(f"{sim}/_sim/waybills")
        assert carrier_side["creates"] == 1 and [w["number"] for w in
                                                 carrier_side["waybills"].values()] == [number]
        # printed in the SF layout (its self-check decoded it before it was queued)
        wait_until(lambda: call(f"{server.url}/api/v1/print-jobs/{body['job']}")["state"]
                   == "printed", timeout=20, what="the carrier label printed")
        # the number on the hub's order and in its event log
        order = call(f"{hub}/api/v1/orders/SO-1001", token=admin)
        assert order["tracking_number"] == number and order["ewaybill"]["number"] == number
        wait_until(lambda: [e for e in call(f"{hub}/api/v1/events?order_id=SO-1001",
                                            token=admin)["events"]
                            if e["type"] == "ewaybill_issued"], timeout=15,
                   what="the ewaybill_issued event at the hub")
        # the order is cancelled: its waybill is cancelled at the carrier
        call(f"{hub}/api/v1/orders/SO-1001/freeze", "POST", {"reason": "cancel"}, token=admin)
        wait_until(lambda: call(f"{hub}/api/v1/orders/SO-1001", token=admin)["ewaybills"][0][
            "state"] == "cancelled", timeout=15, what="the waybill cancelled")
        assert call(f"{sim}/_sim/waybills")["waybills"]["SO-1001"]["state"] == "cancelled"
    finally:
        server.stop()
