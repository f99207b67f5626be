"""A supervisor decides an expedite/cancel conflict on the device, through the hub: a real hub and
a real ``scanedge serve`` with people signed in by badge (docs/freeze.md, "Deciding on the
device"). The hub's own side (permission, site scope, what it stores and signs) is in
tests/test_sync_hub_api.py."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import SCANEDGE, EdgeServer, HubServer, run_cli, wait_until

pytestmark = pytest.mark.slow
DEVICE = "dec-1"
BADGES = {"supervisor": "BADGE-SUPER-1", "packer": "BADGE-PACKER-1"}


class DecideRig:
    """A hub and one device at its default site; a supervisor (s1) and a packer (k1) on it."""

    def __init__(self, root: Path) -> None:
        self.hub = HubServer(root / "hub", str(root / "hub" / "hub.db")).start()
        token = self.hub.add_device(DEVICE)  # not allowed to decide yet
        self.data = root / "edge"
        for user, name, role in (("s1", "李四", "supervisor"), ("k1", "张三", "packer")):
            run_cli("user", "add", user, "--name", name, "--role", role, "--badge", BADGES[role],
                    data_dir=self.data, SCANEDGE_DEVICE_ID=DEVICE)
        self.edge = EdgeServer(self.data, SCANEDGE_DEVICE_ID=DEVICE, SCANEDGE_HUB_URL=self.hub.url,
                               SCANEDGE_HUB_TOKEN=token, SCANEDGE_HUB_PUBLIC_KEY=self.hub.public_key,
                               SCANEDGE_PRINTER="dummy://", SCANEDGE_SYNC_POLL_S="0.3",
                               SCANEDGE_HUB_TIMEOUT_S="2").start()
        self.cookies = {role: self.sign_in(badge) for role, badge in BADGES.items()}

    def close(self) -> None:
        self.edge.kill()
        self.hub.kill()

    def sign_in(self, badge: str) -> str:
        req = urllib.request.Request(self.edge.url + "/api/v1/session", method="POST",
                                     data=json.dumps({"badge": badge}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.headers["Set-Cookie"].split(";", 1)[0]

    def call(self, method: str, path: str, body: dict | None = None,
             as_: str | None = "supervisor") -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"}
        if as_:
            headers["Cookie"] = self.cookies[as_]
        req = urllib.request.Request(self.edge.url + path, method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def hub_cli(self, *args: str) -> None:
        subprocess.run([SCANEDGE, "hub", *args], env=self.hub.env, capture_output=True, text=True,
                       timeout=60, check=True)

    def conflict(self, order_id: str) -> None:
        """An order on the device, then an expedite and a cancel: needs_decision there."""
        self.hub.admin("PUT", f"/api/v1/orders/{order_id}",
                       {"lines": [{"sku": "6901234567892", "qty": 1}], "priority": "P2"})
        self.hub.admin("POST", f"/api/v1/orders/{order_id}/expedite", {})
        assert self.hub.admin("POST", f"/api/v1/orders/{order_id}/freeze",
                              {"reason": "cancel"})["conflict"]
        self.freeze_becomes(order_id, "needs_decision")

    def freeze_becomes(self, order_id: str, reason: str | None) -> dict:
        def current():
            status, order = self.call("GET", f"/api/v1/orders/{order_id}")
            found = order.get("freeze") and order["freeze"]["reason"]
            return status == 200 and found == reason and order
        return wait_until(current, timeout=10, what=f"{order_id} frozen for {reason}")

    def audit(self, order_id: str) -> list[dict]:
        db = sqlite3.connect(self.data / "edge.db")
        try:
            return [json.loads(p) for (p,) in db.execute(
                "SELECT payload FROM events WHERE type = 'conflict_decided' AND order_id = ?"
                " ORDER BY seq", [order_id])]
        finally:
            db.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory) -> Iterator[DecideRig]:
    rig = DecideRig(tmp_path_factory.mktemp("decide"))
    yield rig
    rig.close()


def test_a_supervisor_decides_ship_once_the_hub_allows_this_device(rig):
    rig.conflict("SO-D1")
    ship = {"decision": "ship", "operator": "mallory"}  # the body's operator is never used
    for as_, status in ((None, 401), ("packer", 403)):
        assert rig.call("GET", "/api/v1/conflicts", as_=as_)[0] == status
        assert rig.call("POST", "/api/v1/orders/SO-D1/decide", ship, as_=as_)[0] == status
    status, listed = rig.call("GET", "/api/v1/conflicts")
    assert status == 200 and (listed["can_decide"], listed["may_decide"]) == (False, True)
    assert [c["order_id"] for c in listed["conflicts"]] == ["SO-D1"]
    status, refused = rig.call("POST", "/api/v1/orders/SO-D1/decide", ship)
    assert (status, refused["error"]) == (403, "cannot_decide")
    assert f"scanedge hub device {DEVICE} --can-decide" in refused["message"]
    rig.hub_cli("device", DEVICE, "--can-decide")  # granted; the device's token stays
    assert rig.call("GET", "/api/v1/conflicts")[1]["can_decide"] is True
    status, decided = rig.call("POST", "/api/v1/orders/SO-D1/decide", ship)
    assert status == 200, decided
    assert (decided["operator"], decided["command"]["kind"]) == ("s1", "unfreeze")
    stored = rig.hub.admin("GET", "/api/v1/conflicts")["conflicts"]
    row = next(c for c in stored if c["order_id"] == "SO-D1")
    assert (row["decision"], row["decided_by"], row["decided_device"]) == ("ship", "s1", DEVICE)
    order = rig.freeze_becomes("SO-D1", None)  # lifted on the device once the unfreeze synced
    assert order["priority"] == "P0"  # the expedite stands
    assert rig.call("GET", "/api/v1/conflicts")[1]["conflicts"] == []
    status, again = rig.call("POST", "/api/v1/orders/SO-D1/decide", ship)
    assert (status, again["error"]) == (409, "no_conflict")
    audit = rig.audit("SO-D1")
    assert [(a["operator"], a["ok"], a["hub_error"]) for a in audit] == [
        ("s1", False, "cannot_decide"), ("s1", True, None), ("s1", False, "no_conflict")]
    assert audit[1]["command_id"] == decided["command"]["command_id"]


def test_a_cancel_decision_becomes_a_cancel_freeze_on_the_device(rig):
    rig.hub_cli("device", DEVICE, "--can-decide")
    rig.conflict("SO-D2")
    status, decided = rig.call("POST", "/api/v1/orders/SO-D2/decide", {"decision": "cancel"})
    assert status == 200 and decided["command"]["reason"] == "cancel"
    rig.freeze_becomes("SO-D2", "cancel")
    assert rig.call("POST", "/api/v1/orders/SO-D2/decide", {"decision": "later"})[0] == 400


def test_hub_down_is_a_clear_503(rig):
    rig.hub.kill()
    try:
        for method, path, body in (("GET", "/api/v1/conflicts", None),
                                   ("POST", "/api/v1/orders/SO-D1/decide", {"decision": "ship"})):
            status, answer = rig.call(method, path, body)
            assert (status, answer["error"]) == (503, "hub_unavailable")
            assert "hub cannot be reached" in answer["message"]
    finally:
        rig.hub.start()
