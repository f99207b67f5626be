"""The demo's two returns (edge/demo.py ``demo_rmas``): one that qualifies, one that does not,
received through the device API; and once through ``scanedge serve --demo`` itself (slow)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from scanedge.edge.demo import demo_orders, demo_rmas
from scanedge.edge.domain.returns import iso
from scanedge.sync.apply import apply_changes
from tests.support import EdgeServer, free_port, wait_until


def receive(post, put, rma: dict, condition: str = "resaleable") -> dict:
    """A person at /returns: scan the parcel, every item, a condition per line, finish."""
    status, receipt = post("/api/v1/returns/receipts", {"rma_id": rma["rma_id"]})
    assert status == 201, receipt
    rid = receipt["receipt_id"]
    for line in rma["lines"]:
        for _ in range(line["qty"]):
            assert post(f"/api/v1/returns/receipts/{rid}/items", {"code": line["sku"]})[0] == 200
        assert put(f"/api/v1/returns/receipts/{rid}/lines/{line['sku']}",
                   {"condition": condition})[0] == 200
    status, out = post(f"/api/v1/returns/receipts/{rid}/finish", {})
    assert status == 200, out
    return out["verdict"]


def test_the_demo_rmas_are_for_demo_orders_and_one_qualifies_and_one_does_not(client, demo_ctx):
    orders = {o["order_id"]: {ln["sku"] for ln in o["lines"]} for o in demo_orders()}
    rmas = demo_rmas()
    assert sorted(r["demo"] for r in rmas) == ["qualifies", "rejected"]
    changes = [{"seq": i, "kind": "rma", "order_id": r["order_id"], "payload": r,
                "created_at": iso(datetime.now(UTC))} for i, r in enumerate(rmas, 1)]
    applied = demo_ctx.store.write(lambda db: apply_changes(db, "test-dev", changes))
    assert applied.rmas == ["RMA-DEMO-1", "RMA-DEMO-2"]

    def post(path, body):
        r = client.post(path, json=body)
        return r.status_code, r.get_json()

    def put(path, body):
        r = client.put(path, json=body)
        return r.status_code, r.get_json()

    for rma in rmas:
        assert {ln["sku"] for ln in rma["lines"]} <= orders[rma["order_id"]]
        verdict = receive(post, put, rma)
        assert verdict["qualifies"] is (rma["demo"] == "qualifies"), verdict
    rejected = next(r for r in rmas if r["demo"] == "rejected")
    looked = client.get(f"/api/v1/returns/lookup?code={rejected['return_tracking']}").get_json()
    assert [r["code"] for r in looked["receipt"]["verdict"]["reasons"]] == ["past_deadline"]


@pytest.mark.slow
def test_scanedge_serve_demo_has_the_two_rmas_to_receive(tmp_path):
    hub_port = free_port()
    server = EdgeServer(tmp_path / "var", SCANEDGE_HUB_LISTEN=f"127.0.0.1:{hub_port}")
    server.command = ("serve", "--demo")
    server.start()

    def call(method, path, body):
        req = urllib.request.Request(server.url + path, data=json.dumps(body).encode(),
                                     method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def looked_up(code):
        try:
            with urllib.request.urlopen(f"{server.url}/api/v1/returns/lookup?code={code}",
                                        timeout=5) as r:
                return r.status == 200
        except urllib.error.HTTPError:
            return False

    try:
        for rma in demo_rmas():
            wait_until(lambda rma=rma: looked_up(rma["return_tracking"]), timeout=20,
                       what=f"{rma['rma_id']} on the demo's device")
            verdict = receive(lambda p, b: call("POST", p, b), lambda p, b: call("PUT", p, b), rma)
            assert verdict["qualifies"] is (rma["demo"] == "qualifies")
        admin = (tmp_path / "var" / "demo" / "admin_token").read_text().strip()

        def outcome(rma_id):
            req = urllib.request.Request(f"http://127.0.0.1:{hub_port}/api/v1/rmas/{rma_id}",
                                         headers={"Authorization": f"Bearer {admin}"})
            with urllib.request.urlopen(req, timeout=5) as r:
                return json.loads(r.read())["outcome"]

        got = wait_until(lambda: outcome("RMA-DEMO-2"), timeout=20, what="the verdict at the hub")
        assert got["qualifies"] is False
    finally:
        server.stop()
