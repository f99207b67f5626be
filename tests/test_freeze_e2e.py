"""Freeze interception end to end: a real hub, two real edge services, virtual printers on TCP.

One hub and two edges (bench-1 and bench-2, each with its own virtual ESC/POS printer) serve the
whole module; every test uses its own orders. Commands are injected into the hub's change log
(as someone on the LAN or a restored backup would) to check what the devices refuse.
"""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from scanedge.printers.encode import buzzer_command
from scanedge.printers.models import get_model
from scanedge.printers.service import BUZZ_DURATION, BUZZ_TIMES
from scanedge.printers.sim import VirtualPrinter
from scanedge.sync.signing import HubSigner
from tests.proxy import FaultyProxy
from tests.support import EdgeServer, HubServer, run_cli, wait_until

pytestmark = pytest.mark.slow
BUZZ = buzzer_command(get_model("generic-80"), times=BUZZ_TIMES, duration=BUZZ_DURATION)


def get(server, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class Rig:
    def __init__(self, root: Path) -> None:
        self.hub_db = root / "hub" / "hub.db"
        self.hub = HubServer(root / "hub", str(self.hub_db), SCANEDGE_CONFLICT_WINDOW_S="2")
        self.printers = [VirtualPrinter(dots=576).start() for _ in range(2)]
        self.edges = []
        for i, printer in enumerate(self.printers, 1):
            token = self.hub.add_device(f"dev-{i}")
            self.edges.append(EdgeServer(
                root / f"edge{i}", SCANEDGE_DEVICE_ID=f"dev-{i}", SCANEDGE_STATION=f"bench-{i}",
                SCANEDGE_HUB_URL=self.hub.url, SCANEDGE_HUB_TOKEN=token,
                SCANEDGE_HUB_PUBLIC_KEY=self.hub.public_key,  # enrolled
                SCANEDGE_PRINTER=printer.address, SCANEDGE_PRINTER_MODEL="generic-80",
                SCANEDGE_SYNC_POLL_S="0.3", SCANEDGE_HUB_TIMEOUT_S="2"))
        self.hub.start()
        for edge in self.edges:
            edge.start()

    def close(self) -> None:
        for edge in self.edges:
            edge.stop()
        self.hub.stop()
        for printer in self.printers:
            printer.stop()

    def order(self, order_id: str, **doc) -> None:
        body = {"lines": [{"sku": "6901234567892", "qty": 2}], "priority": "P2", **doc}
        self.hub.admin("PUT", f"/api/v1/orders/{order_id}", body)
        for edge in self.edges:
            wait_until(lambda e=edge: get(e, f"/api/v1/orders/{order_id}")[0] == 200, timeout=10,
                       what=f"order {order_id} on {edge.url}")

    def command(self, order_id: str, kind: str, body: dict | None = None) -> dict:
        return self.hub.admin("POST", f"/api/v1/orders/{order_id}/{kind}", body or {})

    def inject(self, kind: str, order_id: str, payload: dict) -> None:
        """Append a change to the hub's log directly: its streams pick it up within a second."""
        db = sqlite3.connect(self.hub_db)
        with db:
            db.execute("INSERT INTO changes (kind, order_id, payload, created_at)"
                       " VALUES (?, ?, ?, '2026-01-01T00:00:00Z')",
                       [kind, order_id, json.dumps(payload)])
        db.close()

    def hub_signer(self) -> HubSigner:
        db = sqlite3.connect(self.hub_db)
        doc = json.loads(db.execute("SELECT value FROM hub_meta WHERE key = 'signing_key'")
                         .fetchone()[0])
        db.close()
        return HubSigner(doc["private"], doc["public"])


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    rig = Rig(tmp_path_factory.mktemp("freeze"))
    yield rig
    rig.close()


def scan(edge, code: str, **extra) -> dict:
    status, body = edge.post("/api/v1/scans", {"code": code, **extra})
    assert status == 200, body
    return body


def scan_seen(edge, code: str, **extra) -> dict:
    """A scan by the person at the station, who has seen its alarms: while one waits the scan
    is held (alarm_pending); sent again with their acks it is judged."""
    body = scan(edge, code, **extra)
    if body["verdict"] == "alarm_pending":
        body = scan(edge, code, acks=body["alarms"], **extra)
    return body


def verdict_becomes(edge, code: str, want: str, station: str, timeout: float = 10) -> dict:
    """Scan until the verdict is ``want`` (each try is a real scan at a station nobody uses)."""
    return wait_until(lambda: (r := scan_seen(edge, code, station=station))["verdict"] == want and r,
                      timeout=timeout, interval=0.05, what=f"{code} -> {want}")


def alarms(edge, **match) -> list[dict]:
    found = get(edge, "/api/v1/alarms")[1]["alarms"]
    return [a for a in found if all(a.get(k) == v for k, v in match.items())]


def sse_events(edge, kinds: set[str], count: int, timeout: float = 10) -> list[dict]:
    """Read the pages' stream from the start of the bus history until ``count`` matching events."""
    out: list[dict] = []
    with urllib.request.urlopen(edge.url + "/api/v1/stream?after=0&heartbeat=0.5",
                                timeout=timeout) as r:
        event, deadline = None, time.monotonic() + timeout
        while len(out) < count and time.monotonic() < deadline:
            line = r.readline().decode().rstrip("\r\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event in kinds:
                out.append({"event": event, "data": json.loads(line[6:])})
    return out


def hub_events(rig, order_id: str, type_: str) -> list[dict]:
    return [e for e in rig.hub.events(order_id=order_id) if e["type"] == type_]


def test_freeze_while_a_label_is_queued(rig):
    e1, e2 = rig.edges
    printer = rig.printers[0]
    rig.order("SO-Q1")
    assert scan(e1, "SO-Q1", operator="张三")["verdict"] == "ok"  # open at bench-1
    for _ in range(2):  # packed: the print gate lets its label through
        assert scan(e1, "6901234567892")["verdict"] == "ok"
    printer.set_mode("cover_open")  # the label waits in the queue
    try:
        status, job = e1.post("/api/v1/print-jobs", {"order_id": "SO-Q1"})
        assert status == 202
        wait_until(lambda: get(e1, "/api/v1/printer")[1]["hold"] == "cover_open", timeout=15,
                   what="the queue held by the open cover")
        command = rig.command("SO-Q1", "freeze", {"reason": "cancel"})
        wait_until(lambda: get(e1, f"/api/v1/print-jobs/{job['job_id']}")[1]["state"] == "cancelled",
                   timeout=5, what="the queued label cancelled")
        wait_until(lambda: BUZZ in bytes(printer.received), timeout=5, what="the printer buzzer")
    finally:
        printer.set_mode("ok")
    alarm = wait_until(lambda: alarms(e1, type="freeze", order_id="SO-Q1"), timeout=5)[0]
    assert alarm["station"] == "bench-1" and alarm["active"]
    assert alarm["message"]["zh"] == "订单 SO-Q1 已取消,请停止操作" == alarm["speak"]
    assert alarm["details"]["jobs_cancelled"] == [job["job_id"]]
    # the pages' stream carries it (from the bus history)
    streamed = sse_events(e1, {"alarm"}, 1)
    assert any(m["data"]["alarm_id"] == alarm["alarm_id"] for m in streamed)
    # bench-2 never touched the order: frozen there too, but nobody to alarm
    wait_until(lambda: get(e2, "/api/v1/orders/SO-Q1")[1]["freeze"], timeout=5, what="e2 frozen")
    assert scan(e2, "SO-Q1", station="bench-2")["freeze"]["reason"] == "cancel"
    assert alarms(e2, type="freeze", order_id="SO-Q1") == []
    # both devices acknowledged to the hub well within 3 s
    freezes = rig.hub.admin("GET", "/api/v1/freezes")["freezes"]
    mine = next(f for f in freezes if f["command_id"] == command["command_id"])
    acks = {a["device_id"]: a for a in mine["acks"]}
    assert set(acks) == {"dev-1", "dev-2"} and mine["late"] == []
    assert all(0 <= a["seconds"] < 3 for a in acks.values()), acks
    assert acks["dev-1"]["result"]["jobs_cancelled"] == 1
    unacked = rig.hub.admin("GET", "/api/v1/freezes?unacked=1")["freezes"]
    assert command["command_id"] not in {f["command_id"] for f in unacked}
    # the alarm waits for a person
    e1.post(f"/api/v1/alarms/{alarm['alarm_id']}/ack", {"operator": "李四"})
    assert alarms(e1, type="freeze", order_id="SO-Q1") == []
    # the label the freeze took out of the queue is a save before print in the hub's report
    since = urllib.parse.quote(command["issued_at"])

    def saved():
        report = rig.hub.admin("GET", f"/api/v1/reports/interceptions?since={since}")
        return report if report["total"]["intercepted_before_print"] == 1 else None

    report = wait_until(saved, timeout=20, what="the save in the hub's report")
    assert report["total"]["freezes"] == 1 and report["total"]["missed"] == 0
    assert {s["stage"]: s["interceptions"] for s in report["stages"]}["print"] >= 1


def test_every_later_action_is_refused_and_logged(rig):
    e1, _ = rig.edges
    rig.order("SO-F2", tracking_number="SF1385628716739", carrier="SF")
    assert scan(e1, "SO-F2", operator="王五")["verdict"] == "ok"
    assert scan(e1, "6901234567892", operator="王五")["verdict"] == "ok"
    rig.command("SO-F2", "freeze", {"reason": "address_change"})
    item = verdict_becomes(e1, "6901234567892", "frozen", "bench-1")  # item at the open station
    assert item["message"]["zh"] == "订单 SO-F2 地址已变更,请停止操作"
    # the station's alarm holds the next scan until the person acknowledges it
    assert scan(e1, "SF1385628716739")["verdict"] == "alarm_pending"
    assert scan_seen(e1, "SF1385628716739")["verdict"] == "frozen"  # tracking number
    assert scan_seen(e1, "SO-F2")["verdict"] == "frozen"
    status, body = e1.post("/api/v1/print-jobs", {"order_id": "SO-F2"})
    assert status == 409 and body["error"] == "frozen"
    got = wait_until(lambda: (x := hub_events(rig, "SO-F2", "interception")) and len(x) >= 4 and x,
                     timeout=10, what="the interceptions at the hub")
    assert {e["payload"]["action"] for e in got} == {"scan", "print"}
    assert all(e["device_id"] == "dev-1" and e["payload"]["station"] == "bench-1" for e in got)
    assert all(0 <= e["payload"]["seconds_since_freeze"] < 30 for e in got)
    assert all(e["payload"]["operator"] in ("local", None) for e in got)  # open mode's operator
    assert alarms(e1, type="frozen_print", order_id="SO-F2")
    # the hub's report counts them
    report = rig.hub.admin("GET", "/api/v1/reports/interceptions?since=2020-01-01")
    row = next(r for r in report["rows"] if r["device_id"] == "dev-1" and r["station"] == "bench-1")
    assert row["intercepted_before_print"] >= 1 and row["median_s"] is not None


def test_old_replayed_forged_and_unsigned_unfreezes_do_not_lift(rig):
    e1, _ = rig.edges
    rig.order("SO-F3")
    rig.command("SO-F3", "freeze", {"reason": "hold"})
    first_unfreeze = rig.command("SO-F3", "unfreeze")
    verdict_becomes(e1, "SO-F3", "ok", "probe-3")
    rig.command("SO-F3", "freeze", {"reason": "cancel"})
    verdict_becomes(e1, "SO-F3", "frozen", "probe-3")
    signer = rig.hub_signer()
    stored = {k: v for k, v in first_unfreeze.items() if k != "change_seq"}
    rig.inject("unfreeze", "SO-F3", stored)  # the same signed command again: a replay
    older = signer.sign({**stored, "command_id": "old-version-unfreeze"})  # genuine but old
    rig.inject("unfreeze", "SO-F3", older)
    forged = HubSigner.generate().sign({**stored, "command_id": "forged", "version": 999})
    rig.inject("unfreeze", "SO-F3", forged)
    unsigned = {k: v for k, v in stored.items() if k not in ("signature", "hub_key")}
    rig.inject("unfreeze", "SO-F3", {**unsigned, "command_id": "unsigned", "version": 999})
    tampered = {**stored, "command_id": "tampered", "version": 999}  # signature of another text
    rig.inject("unfreeze", "SO-F3", tampered)
    rejected = wait_until(lambda: (x := hub_events(rig, "SO-F3", "command_rejected"))
                          and {e["device_id"] for e in x} == {"dev-1", "dev-2"}
                          and len(x) == 8 and x, timeout=10, what="the rejections at the hub")
    problems = sorted(e["payload"]["problem"] for e in rejected if e["device_id"] == "dev-1")
    assert problems == ["bad_signature", "replayed", "unknown_key", "unsigned"]
    ignored = hub_events(rig, "SO-F3", "command_ignored")
    assert {e["payload"]["command_id"] for e in ignored} == {"old-version-unfreeze"}
    assert scan_seen(e1, "SO-F3", station="probe-3")["verdict"] == "frozen"
    warning = alarms(e1, type="command_rejected")
    assert warning and warning[0]["level"] == "warning"
    rig.command("SO-F3", "unfreeze")  # the real one lifts it
    verdict_becomes(e1, "SO-F3", "ok", "probe-3")


def test_expedite_and_cancel_within_the_window_need_a_decision(rig):
    e1, e2 = rig.edges
    rig.order("SO-C1")
    rig.order("SO-C2")
    expedite = rig.command("SO-C1", "expedite")
    cancel = rig.command("SO-C1", "freeze", {"reason": "cancel"})
    assert cancel["conflict"]["commands"] == [expedite["command_id"], cancel["command_id"]]
    for edge in (e1, e2):
        # The cancel freeze and the hub's needs_decision freeze arrive one after the other: the
        # order is blocked throughout, and ends up waiting for the supervisor.
        body = wait_until(
            lambda edge=edge: (r := scan_seen(edge, "SO-C1", station="probe-c"))["verdict"] == "frozen"
            and r["freeze"]["reason"] == "needs_decision" and r,
            timeout=10, interval=0.05, what="SO-C1 frozen for needs_decision")
        assert body["freeze"]["reason"] == "needs_decision"
    assert "待主管决定" in scan_seen(e1, "SO-C1", station="probe-c")["message"]["zh"]
    open_ = rig.hub.admin("GET", "/api/v1/conflicts?open=1")["conflicts"]
    assert [c["order_id"] for c in open_] == ["SO-C1"]
    decided = rig.hub.admin("POST", "/api/v1/orders/SO-C1/decide",
                            {"decision": "ship", "operator": "主管A"})
    assert decided["command"]["kind"] == "unfreeze" and decided["decided_by"] == "主管A"
    for edge in (e1, e2):
        verdict_becomes(edge, "SO-C1", "ok", "probe-c")
    assert get(e1, "/api/v1/orders/SO-C1")[1]["priority"] == "P0"  # the expedite stands
    with pytest.raises(urllib.error.HTTPError) as e:
        rig.hub.admin("POST", "/api/v1/orders/SO-C1/decide", {"decision": "ship", "operator": "x"})
    assert e.value.code == 409
    # outside the window (2 s in this rig): a plain cancel
    rig.command("SO-C2", "expedite")
    time.sleep(2.2)
    late_cancel = rig.command("SO-C2", "freeze", {"reason": "cancel"})
    assert "conflict" not in late_cancel
    assert verdict_becomes(e1, "SO-C2", "frozen", "probe-c")["freeze"]["reason"] == "cancel"


def test_offline_policy_holds_p0_labels_until_the_hub_answers(rig, tmp_path):
    """A device whose hub link is down: freeze status unknown, P0 labels wait (hold_p0)."""
    proxy = FaultyProxy(rig.hub.port)
    proxy.set_mode("blackhole")
    printer = VirtualPrinter(dots=576).start()
    token = rig.hub.add_device("dev-3")
    edge = EdgeServer(tmp_path / "edge3", SCANEDGE_DEVICE_ID="dev-3", SCANEDGE_STATION="bench-3",
                      SCANEDGE_HUB_URL=proxy.url, SCANEDGE_HUB_TOKEN=token,
                      SCANEDGE_HUB_PUBLIC_KEY=rig.hub.public_key,
                      SCANEDGE_PRINTER=printer.address, SCANEDGE_OFFLINE_PRINT="hold_p0",
                      SCANEDGE_PRINT_POLICY="off",  # the offline policy alone decides here
                      SCANEDGE_SYNC_POLL_S="0.3", SCANEDGE_HUB_TIMEOUT_S="1")
    run_cli("orders", "import", "--demo", data_dir=tmp_path / "edge3", SCANEDGE_DEVICE_ID="dev-3")
    try:
        edge.start()
        health = get(edge, "/healthz")[1]
        assert health["freeze"]["freeze_status"] == "unknown"
        assert health["freeze"]["held_priorities"] == ["P0"]
        p0 = edge.post("/api/v1/print-jobs", {"order_id": "SO-1001"})[1]  # P0: held
        p2 = edge.post("/api/v1/print-jobs", {"order_id": "SO-1002"})[1]  # P2: prints
        wait_until(lambda: get(edge, f"/api/v1/print-jobs/{p2['job_id']}")[1]["state"] == "printed",
                   timeout=15, what="the P2 label")
        assert get(edge, f"/api/v1/print-jobs/{p0['job_id']}")[1]["state"] == "queued"
        assert get(edge, "/healthz")[1]["freeze"]["print_held"] == 1
        with urllib.request.urlopen(edge.url + "/metrics", timeout=5) as r:
            assert "scanedge_freeze_status_unknown 1.0" in r.read().decode()
        sync = sse_events(edge, {"sync"}, 1)
        assert sync and sync[0]["data"]["freeze_status"] == "unknown"
        proxy.set_mode("pass")  # the hub answers: the held label prints
        wait_until(lambda: get(edge, f"/api/v1/print-jobs/{p0['job_id']}")[1]["state"] == "printed",
                   timeout=15, what="the held P0 label")
        assert get(edge, "/healthz")[1]["freeze"]["freeze_status"] == "known"
        assert printer.wait_labels(2)
    finally:
        edge.stop()
        proxy.close()
        printer.stop()
