"""Offline-first sync with real processes on 127.0.0.1, against SQLite and PostgreSQL hubs.

The edge runs in-process (its store, scan service and sync worker threads, as `scanedge serve`
runs them); the hub is a real `scanedge hub` process, killed and restarted at will; a TCP proxy
between them blackholes, resets and delays the link.
"""

import sqlite3
import time

import pytest

from scanedge.edge.config import load_settings
from scanedge.edge.context import EdgeContext
from scanedge.edge.store.orders import load_freeze
from scanedge.edge.store.outbox import outbox_status
from scanedge.edge.store.syncstate import get_cursor
from tests.proxy import FaultyProxy
from tests.support import HubServer, wait_until

pytestmark = pytest.mark.slow
ORDER = {"lines": [{"sku": "6901234567892", "qty": 1}]}


@pytest.fixture
def hub(tmp_path, hub_database):
    server = HubServer(tmp_path / "hubdata", hub_database)
    yield server
    server.stop()


def open_edge(tmp_path, hub_url, token, device_id="dev-1", key="", **over):
    """An enrolled device: ``key`` is the hub's public key (HubServer.public_key)."""
    settings = load_settings(env={}, data_dir=str(tmp_path / device_id), device_id=device_id,
                             hub_url=hub_url, hub_token=token, hub_public_key=key,
                             sync_poll_s=0.3, hub_timeout_s=2.0, **over)
    return EdgeContext.open(settings)


def device_events(ctx):
    return ctx.store.read().execute("SELECT event_id, seq FROM events ORDER BY seq").fetchall()


def assert_hub_has_each_once(hub, ctx, device_id="dev-1"):
    mine = device_events(ctx)
    theirs = hub.events(device_id=device_id)
    ids = [e["event_id"] for e in theirs]
    assert len(ids) == len(set(ids)), "the hub holds an event twice"
    assert sorted(ids) == sorted(eid for eid, _ in mine), "lost or foreign events"
    # per device, the hub received them in sequence order
    assert [e["seq"] for e in theirs] == sorted(e["seq"] for e in theirs)


def is_frozen(ctx, order_id: str) -> bool:
    return load_freeze(ctx.store.read(), order_id) is not None


def drained(ctx):
    return outbox_status(ctx.store.read()).pending == 0


def test_backlog_taken_while_hub_down_arrives_once(tmp_path, hub):
    token = hub.add_device("dev-1")
    ctx = open_edge(tmp_path, hub.url, token, key=hub.public_key)  # hub not started: offline
    try:
        for i in range(10_000):
            result = ctx.scans.scan("SO-X" if i % 10 == 0 else f"69012345678{i % 10}2")
            assert result["event_id"]
        assert outbox_status(ctx.store.read()).pending == 10_001  # and hub_key_pinned
        assert ctx.sync.online is False
        hub.start()
        wait_until(lambda: drained(ctx), timeout=120, what="the backlog to drain")
        assert_hub_has_each_once(hub, ctx)
        assert ctx.sync.online
    finally:
        ctx.close()


def test_changes_arrive_by_stream_within_a_second(tmp_path, hub):
    token = hub.add_device("dev-1")
    hub.start()
    ctx = open_edge(tmp_path, hub.url, token, key=hub.public_key)
    try:
        hub.admin("PUT", "/api/v1/orders/SO-1", ORDER)
        wait_until(lambda: ctx.sync.stream_connected, timeout=10, what="the stream")
        db = ctx.store.read()
        wait_until(lambda: db.execute("SELECT 1 FROM orders WHERE order_id='SO-1'").fetchone(),
                   timeout=5, what="the order")
        ctx.scans.scan("SO-1")
        t0 = time.monotonic()
        hub.admin("POST", "/api/v1/orders/SO-1/freeze", {"reason": "cancel"})
        # refused: "frozen", or "alarm_pending" once the freeze's alarm waits at the station
        wait_until(lambda: ctx.scans.scan("SO-1")["verdict"] in ("frozen", "alarm_pending"),
                   timeout=5, interval=0.02, what="the freeze")
        assert time.monotonic() - t0 < 1.5
        # the freeze_applied event reaches the hub
        wait_until(lambda: any(e["type"] == "freeze_applied" for e in hub.events(order_id="SO-1")),
                   timeout=10, what="the freeze ack event")
    finally:
        ctx.close()


def test_hub_killed_mid_batch_and_mid_stream(tmp_path, hub):
    token = hub.add_device("dev-1")
    ctx = open_edge(tmp_path, hub.url, token, key=hub.public_key)
    try:
        for i in range(3000):
            ctx.scans.scan(f"CODE-{i}")
        hub.start()
        wait_until(lambda: outbox_status(ctx.store.read()).acked > 0, timeout=30,
                   interval=0.005, what="the first acknowledged batch")
        hub.kill()  # mid-drain, and the stream breaks
        time.sleep(0.5)
        hub.start()
        hub.admin("PUT", "/api/v1/orders/SO-9", ORDER)
        hub.admin("POST", "/api/v1/orders/SO-9/freeze", {"reason": "address_change"})
        wait_until(lambda: drained(ctx), timeout=60, what="the drain after the restart")
        wait_until(lambda: ctx.store.read().execute(
            "SELECT reason FROM freezes WHERE order_id='SO-9'").fetchone(), timeout=15,
            what="the freeze after the restart")
        wait_until(lambda: drained(ctx), timeout=30, what="the freeze event")
        assert_hub_has_each_once(hub, ctx)
    finally:
        ctx.close()


def test_link_blackholed_reset_and_delayed(tmp_path, hub):
    token = hub.add_device("dev-1")
    hub.start()
    proxy = FaultyProxy(hub.port)
    ctx = open_edge(tmp_path, proxy.url, token, key=hub.public_key)
    try:
        for mode in ("blackhole", "reset", "delay", "pass"):
            proxy.set_mode(mode)
            for i in range(300):
                ctx.scans.scan(f"{mode}-{i}")
            time.sleep(1.0)
        hub.admin("PUT", "/api/v1/orders/SO-7", ORDER)
        wait_until(lambda: drained(ctx), timeout=90, what="the drain once the link is sound")
        wait_until(lambda: ctx.store.read().execute(
            "SELECT 1 FROM orders WHERE order_id='SO-7'").fetchone(), timeout=15, what="pull")
        assert_hub_has_each_once(hub, ctx)
    finally:
        ctx.close()
        proxy.close()


def test_offline_since_is_shown_and_cleared(tmp_path, hub):
    token = hub.add_device("dev-1")
    hub.start()
    ctx = open_edge(tmp_path, hub.url, token, key=hub.public_key)
    ctx.sync.offline_after_s = 1.5  # 15 s in production; the rule, not the number, is tested
    try:
        wait_until(lambda: ctx.sync.online, timeout=10, what="online")
        assert ctx.sync.status()["offline_since"] is None
        hub.kill()
        wait_until(lambda: not ctx.sync.online, timeout=10, what="offline")
        status = ctx.sync.status()
        assert status["offline_since"] is not None and status["online"] is False
        hub.start()
        wait_until(lambda: ctx.sync.online, timeout=15, what="online again")
    finally:
        ctx.close()


def test_two_devices_and_the_events_listing(tmp_path, hub):
    tokens = {d: hub.add_device(d) for d in ("dev-1", "dev-2")}
    hub.start()
    ctxs = {d: open_edge(tmp_path, hub.url, t, device_id=d, key=hub.public_key)
            for d, t in tokens.items()}
    try:
        for i in range(200):
            for ctx in ctxs.values():
                ctx.scans.scan(f"C-{i}")
        for d, ctx in ctxs.items():
            wait_until(lambda ctx=ctx: drained(ctx), timeout=30, what=f"{d} drained")
            assert_hub_has_each_once(hub, ctx, device_id=d)
        assert len(hub.events()) == 400 + 2  # and each device's hub_key_pinned
    finally:
        for ctx in ctxs.values():
            ctx.close()


def test_wrong_token_keeps_events_and_retries(tmp_path, hub):
    hub.add_device("dev-1")
    hub.start()
    ctx = open_edge(tmp_path, hub.url, "not-the-token", key=hub.public_key)
    try:
        ctx.scans.scan("A")
        wait_until(lambda: ctx.sync.push_failures > 0, timeout=10, what="a refused push")
        assert outbox_status(ctx.store.read()).pending == 2  # the scan, hub_key_pinned
        assert "403" in ctx.sync.status()["last_error"]
    finally:
        ctx.close()
    db = sqlite3.connect(tmp_path / "dev-1" / "edge.db")
    assert db.execute("SELECT type, state FROM events ORDER BY seq").fetchall() == [
        ("hub_key_pinned", "pending"), ("scan", "pending")]


def test_two_hub_processes_over_one_postgresql_fan_out(tmp_path, postgres_url):
    """A freeze written through hub B reaches a device streaming from hub A, woken by
    LISTEN/NOTIFY: A re-reads the log on its own only every 10 minutes here, so nothing else
    could bring it. Then the device moves to B and resumes from its cursor (nothing applied
    twice, nothing missed while it moved). Speed is measured in benchmarks/fleet.py."""
    slow_reread = {"SCANEDGE_HUB_REREAD_S": "600"}
    hub_a = HubServer(tmp_path / "a", postgres_url, **slow_reread)
    hub_b = HubServer(tmp_path / "b", postgres_url, **slow_reread)
    token = hub_a.add_device("dev-1")
    hub_a.start()
    hub_b.start()
    ctx = open_edge(tmp_path, hub_a.url, token, key=hub_a.public_key)
    try:
        hub_b.admin("PUT", "/api/v1/orders/SO-1", ORDER)
        wait_until(lambda: ctx.sync.stream_connected and ctx.store.read().execute(
            "SELECT 1 FROM orders WHERE order_id='SO-1'").fetchone(), timeout=15, what="order")
        for i in range(4):
            kind = "freeze" if i % 2 == 0 else "unfreeze"
            body = {"reason": "cancel"} if kind == "freeze" else {}
            hub_b.admin("POST", f"/api/v1/orders/SO-1/{kind}", body)
            want = kind == "freeze"
            wait_until(lambda want=want: is_frozen(ctx, "SO-1") is want, timeout=30,
                       interval=0.01, what=kind)
        cursor = get_cursor(ctx.store.read())
    finally:
        ctx.close()
    hub_a.admin("POST", "/api/v1/orders/SO-1/freeze", {"reason": "hold"})  # while it moves
    ctx = open_edge(tmp_path, hub_b.url, token, key=hub_a.public_key)  # same store, process B
    try:
        wait_until(lambda: is_frozen(ctx, "SO-1"), timeout=30, interval=0.05,
                   what="the freeze issued while moving")
        applied = ctx.store.read().execute(
            "SELECT COUNT(*) FROM events WHERE type IN ('freeze_applied', 'freeze_lifted')"
        ).fetchone()[0]
        assert applied == 5  # 4 before the move, 1 after: none twice
        assert get_cursor(ctx.store.read()) > cursor
    finally:
        ctx.close()
        hub_a.stop()
        hub_b.stop()
