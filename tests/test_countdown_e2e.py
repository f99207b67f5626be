"""生效倒计时, 熔断 and 备注 end to end: a real hub, a real edge service, a real webhook receiver.

Two devices are registered at the site; only dev-1 runs. So every countdown command misses
dev-2 and its fuse trips: deterministically, whatever the machine's load (how fast dev-1 applies
is reported, never asserted against the clock).
"""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.support import EdgeServer, HubServer, WebhookReceiver, wait_until

pytestmark = pytest.mark.slow
ITEM = "6901234567892"


class Rig:
    def __init__(self, root) -> None:
        self.hook = WebhookReceiver()
        self.hub = HubServer(root / "hub", str(root / "hub" / "hub.db"),
                             SCANEDGE_COUNTDOWN_BY_CATEGORY='{"express": 1}',
                             SCANEDGE_NOTIFY_URL=self.hook.url)
        token = self.hub.add_device("dev-1")
        self.hub.add_device("dev-2")  # registered, never runs: it misses every command
        self.edge = EdgeServer(root / "edge", SCANEDGE_DEVICE_ID="dev-1",
                               SCANEDGE_STATION="bench-1", SCANEDGE_HUB_URL=self.hub.url,
                               SCANEDGE_HUB_TOKEN=token,
                               SCANEDGE_HUB_PUBLIC_KEY=self.hub.public_key,
                               SCANEDGE_PRINTER="dummy://", SCANEDGE_SYNC_POLL_S="0.3")
        self.hub.start()
        self.edge.start()

    def close(self) -> None:
        self.edge.stop()
        self.hub.stop()
        self.hook.close()

    def order(self, order_id: str, **doc) -> None:
        self.hub.admin("PUT", f"/api/v1/orders/{order_id}",
                       {"lines": [{"sku": ITEM, "qty": 2}], "station": "bench-1", **doc})
        wait_until(lambda: self.get(f"/api/v1/orders/{order_id}")[0] == 200, timeout=15,
                   what=f"order {order_id} on the device")

    def get(self, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.edge.url + path, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def scan(self, code: str) -> dict:
        status, body = self.edge.post("/api/v1/scans", {"code": code, "station": "bench-1"})
        assert status == 200, body
        if body["verdict"] == "alarm_pending":  # the person at the bench saw the alarms
            status, body = self.edge.post("/api/v1/scans", {
                "code": code, "station": "bench-1", "acks": body["alarms"]})
        return body

    def countdown(self, command_id: str) -> dict | None:
        rows = self.hub.admin("GET", "/api/v1/countdowns?limit=50")["countdowns"]
        return next((r for r in rows if r["command_id"] == command_id), None)


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    rig = Rig(tmp_path_factory.mktemp("countdown"))
    yield rig
    rig.close()


def test_a_cancel_nobody_else_applied_in_time_trips_the_fuse(rig):
    rig.order("SO-F1", category="express")
    assert rig.scan("SO-F1")["verdict"] == "ok"
    cancel = rig.hub.admin("POST", "/api/v1/orders/SO-F1/freeze", {"reason": "cancel"})
    assert cancel["countdown_s"] == 1.0 and cancel["effective_by"] > cancel["issued_at"]

    row = wait_until(lambda: (r := rig.countdown(cancel["command_id"])) and
                     r["state"] == "tripped" and r, timeout=20, what="the fuse")
    assert "dev-2" in row["not_in_time"] and row["expected"] == 2
    # dev-1 applied it (in time or late, as this machine allowed): it is never "missing"
    row = wait_until(lambda: (r := rig.countdown(cancel["command_id"])) and
                     "dev-1" not in r["missing"] and r, timeout=20, what="dev-1's ack")
    assert row["missing"] == ["dev-2"]

    # the order system hears it by webhook, the device's supervisor by a warning
    body = wait_until(lambda: next((g for g in rig.hook.got
                                    if g.get("command_id") == cancel["command_id"]), None),
                      timeout=20, what="the webhook")
    assert body["type"] == "fuse_tripped" and body["order_id"] == "SO-F1"
    alarm = wait_until(lambda: next((a for a in rig.get("/api/v1/alarms")[1]["alarms"]
                                     if a["type"] == "fuse_tripped"
                                     and a["order_id"] == "SO-F1"), None),
                       timeout=20, what="the device's fuse warning")
    assert alarm["level"] == "warning" and "dev-2" in alarm["message"]["en"]
    # the supervisor page's read: the hub's view through the device, and what it applied
    status, view = rig.get("/api/v1/countdowns")
    assert status == 200 and view["hub_error"] is None
    assert [r["state"] for r in view["countdowns"]
            if r["command_id"] == cancel["command_id"]] == ["tripped"]
    assert cancel["command_id"] in [a["command_id"] for a in view["applied_here"]]
    report = rig.hub.admin("GET", "/api/v1/reports/interceptions?since=2026-01-01")
    assert report["total"]["fuse_tripped"] >= 1


def test_a_note_reaches_the_bench_blocks_the_order_until_read_and_is_reported(rig):
    rig.order("SO-N1")
    assert rig.scan("SO-N1")["verdict"] == "ok"
    note = rig.hub.admin("POST", "/api/v1/orders/SO-N1/note", {"note": "客户要求:不要放发票"})
    assert note["countdown_s"] == 15.0
    shown = wait_until(lambda: rig.get("/api/v1/orders/SO-N1")[1].get("note"), timeout=15,
                       what="the note on the device")
    assert shown["note"] == "客户要求:不要放发票"
    r = rig.scan(ITEM)
    assert r["verdict"] == "note_pending" and r["note"]["command_id"] == note["command_id"]
    status, _ = rig.edge.post(f"/api/v1/orders/SO-N1/notes/{note['command_id']}/read",
                              {"station": "bench-1"})
    assert status == 200
    assert rig.scan(ITEM)["reason"] == "item_counted"
    # the hub has the device's ack (applied) and the read, with who and where
    wait_until(lambda: "dev-1" not in rig.countdown(note["command_id"])["missing"],
               timeout=15, what="the note's ack at the hub")
    read = wait_until(lambda: [e for e in rig.hub.events(order_id="SO-N1")
                               if e["type"] == "note_read"], timeout=20, what="note_read")
    assert read[0]["payload"]["station"] == "bench-1"


def test_a_bad_note_is_refused_by_the_hub(rig):
    for body in ({}, {"note": ""}, {"note": "x" * 501}, {"note": 5}):
        req = urllib.request.Request(
            rig.hub.url + "/api/v1/orders/SO-N1/note", method="POST",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {rig.hub.ADMIN}",
                     "Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 400
        assert "note" in json.loads(e.value.read())["message"]
