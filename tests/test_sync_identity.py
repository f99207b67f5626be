"""The cursor belongs to one hub (issue 13, item 3), and a device trusts only the hub key it was
enrolled with (item 2).

A device whose cursor is ahead of the hub, whose hub holds another change at the cursor, or that
meets another hub (database id, signing key) than the one it synced with, does not move its
cursor there: it resyncs from 0, raises a warning alarm for the supervisor, and says
``freeze_status: "unknown"`` until it has caught up. Checked against a fake hub on loopback, a
real hub restored from an older backup (``scanedge backup`` / ``scanedge restore``) and a real hub
whose database was replaced. Before this, a single answer with a huge cursor (or a restored hub)
made the device skip every later freeze while it said ``freeze_status: "known"``.
"""

from __future__ import annotations

import shutil

import pytest

from scanedge.edge.config import load_settings
from scanedge.edge.context import EdgeContext
from scanedge.edge.store.orders import load_freeze
from scanedge.edge.store.syncstate import get_cursor
from scanedge.sync import hubstate
from scanedge.sync.client import HubProtocolError
from tests.proxy import FaultyProxy
from tests.support import HubServer, run_cli, wait_until
from tests.test_hub_fleet import Hub
from tests.test_sync_misbehaving import FakeHub

ORDER = {"lines": [{"sku": "6901234567892", "qty": 1}]}


def open_edge(path, hub_url: str, token: str, key: str = "", **over) -> EdgeContext:
    settings = load_settings(env={}, data_dir=str(path), device_id="dev-1", station="bench-1",
                             hub_url=hub_url, hub_token=token, hub_public_key=key,
                             sync_poll_s=0.2, hub_timeout_s=2.0, **over)
    return EdgeContext.open(settings)


def quiet(ctx: EdgeContext) -> EdgeContext:
    """Stop the device's own threads: the test drives sync and the freeze-status watcher."""
    ctx.sync.stop()
    ctx.sync._stop.clear()  # its threads are gone; its methods run for the test
    ctx.freeze_status.stop()
    return ctx


def frozen(ctx: EdgeContext, order_id: str) -> bool:
    return load_freeze(ctx.store.read(), order_id) is not None


def events_of(ctx: EdgeContext, type_: str) -> list[dict]:
    import json

    return [json.loads(r[0]) for r in ctx.store.read().execute(
        "SELECT payload FROM events WHERE type = ? ORDER BY seq", [type_])]


def alarms_of(ctx: EdgeContext, type_: str) -> list:
    return [a for a in ctx.alarms.recent(200) if a.type == type_]


_APPS: dict[int, object] = {}


def health(ctx: EdgeContext) -> dict:
    """``GET /healthz`` of the device (its real Flask app)."""
    from scanedge.edge.web.app import create_app

    if id(ctx) not in _APPS:
        _APPS[id(ctx)] = create_app(ctx.settings, ctx).test_client()
    return _APPS[id(ctx)].get("/healthz").get_json()


def switch(proxy: FaultyProxy, port: int) -> None:
    """Point the device's hub address elsewhere; cut what was open."""
    proxy.target = ("127.0.0.1", port)
    proxy.set_mode("reset")
    proxy.set_mode("pass")


@pytest.fixture
def real(tmp_path):
    hub = Hub(str(tmp_path / "hub" / "hub.db"))
    yield hub
    hub.close()


def test_a_fake_hub_cannot_poison_the_cursor(tmp_path, real):
    """Step by step (the device's threads stopped): the device syncs with the real hub, meets a
    fake one answering a change numbered 10^12, comes back, and still gets the real freeze."""
    token = real.storage.add_device("dev-1")
    real.ok("PUT", "/api/v1/orders/SO-1", body=ORDER)
    fake = FakeHub()
    proxy = FaultyProxy(real.port)
    ctx = quiet(open_edge(tmp_path / "dev", proxy.url, token,
                          real.storage.signer().public_b64))
    try:
        worker, status = ctx.sync, ctx.freeze_status
        worker.pull_once()
        assert get_cursor(ctx.store.read()) == 1 and status.state()["freeze_status"] == "known"
        info = real.storage.hub_info()
        assert worker.status()["hub_identity"] == info

        switch(proxy, fake.port)
        fake.pull = {"changes": [], "cursor": 10**12, "more": False}  # the old poison
        with pytest.raises(HubProtocolError):
            worker.pull_once()
        assert get_cursor(ctx.store.read()) == 1
        # a fake that copies the hub's identity and the mark of the change at the device's
        # cursor (all of it public), and is consistent, cannot be told apart ...
        mark = real.storage.change_marks([1])[1]
        fake.pull = {"changes": [{"seq": 10**12, "kind": "setting", "order_id": None,
                                  "payload": {"key": "x", "value": 1},
                                  "created_at": "2026-11-30T00:00:00.000Z", "site": "*"}],
                     "cursor": 10**12, "more": False,
                     "hub": {**info, "last_seq": 10**12, "from_mark": mark}}
        worker.pull_once()
        assert get_cursor(ctx.store.read()) == 10**12

        # ... but the real hub can: the cursor is ahead of its log
        switch(proxy, real.port)
        real.ok("POST", "/api/v1/orders/SO-1/freeze", body={"reason": "cancel"})
        answer = worker.client.pull(10**12)
        assert answer.changes == [] and answer.hub.last_seq == 2
        assert worker.check_hub(answer.hub, cursor=10**12) is True  # resync starts
        assert get_cursor(ctx.store.read()) == 0
        status.check()
        state = health(ctx)["freeze"]
        assert (state["freeze_status"], state["reason"]) == ("unknown", "resync")
        assert state["resync"]["reason"] == "cursor_ahead"
        assert [a.level for a in alarms_of(ctx, "hub_resync")] == ["warning"]
        assert not frozen(ctx, "SO-1")  # not caught up yet

        worker.pull_once()  # catches up
        assert frozen(ctx, "SO-1")
        assert get_cursor(ctx.store.read()) == 2
        status.check()
        assert health(ctx)["freeze"]["freeze_status"] == "known"
        assert worker.status()["resync"] is None
        assert [e["reason"] for e in events_of(ctx, "hub_resync")] == ["cursor_ahead"]
        assert len(alarms_of(ctx, "hub_resync")) == 1  # once, not at every check
        # re-reading the log applied nothing twice and refused nothing
        assert len(events_of(ctx, "freeze_applied")) == 1
        assert events_of(ctx, "command_rejected") == []
    finally:
        ctx.close()
        proxy.close()
        fake.close()


def test_another_hub_identity_means_a_resync_each_way(tmp_path, real):
    token = real.storage.add_device("dev-1")
    real.ok("PUT", "/api/v1/orders/SO-1", body=ORDER)
    real.ok("PUT", "/api/v1/orders/SO-2", body=ORDER)
    fake = FakeHub()
    proxy = FaultyProxy(real.port)
    ctx = quiet(open_edge(tmp_path / "dev", proxy.url, token,
                          real.storage.signer().public_b64))
    try:
        worker = ctx.sync
        worker.pull_once()
        assert get_cursor(ctx.store.read()) == 2
        switch(proxy, fake.port)  # another hub: its own database id, its own log
        fake.pull_for = lambda cursor: {  # as a hub with an empty log answers
            "changes": [], "cursor": cursor, "more": False,
            "hub": {"key_id": real.storage.hub_info()["key_id"], "database_id": "e" * 32,
                    "last_seq": 0}}
        worker.pull_once()
        assert get_cursor(ctx.store.read()) == 0
        assert worker.status()["hub_identity"]["database_id"] == "e" * 32
        switch(proxy, real.port)
        real.ok("POST", "/api/v1/orders/SO-2/freeze", body={"reason": "hold"})
        worker.pull_once()
        assert frozen(ctx, "SO-2") and get_cursor(ctx.store.read()) == 3
        assert [e["reason"] for e in events_of(ctx, "hub_resync")] == ["hub_identity"] * 2
        ctx.freeze_status.check()
        assert len(alarms_of(ctx, "hub_resync")) == 1  # the last resync (one alarm each)
        assert health(ctx)["freeze"]["freeze_status"] == "known"
    finally:
        ctx.close()
        proxy.close()
        fake.close()


def test_a_fake_stream_hello_that_puts_the_cursor_ahead_starts_a_resync(tmp_path, real):
    token = real.storage.add_device("dev-1")
    real.ok("PUT", "/api/v1/orders/SO-1", body=ORDER)
    ctx = quiet(open_edge(tmp_path / "dev", real.server.url, token,
                          real.storage.signer().public_b64))
    try:
        worker = ctx.sync
        worker.pull_once()
        ctx.store.write(lambda db: db.execute(
            "UPDATE sync_state SET value = '999' WHERE key = 'cursor'"))  # as a fake left it
        worker.stream_once()  # the real hub's hello says last_seq 1: resync, stream returns
        assert worker.resyncing["reason"] == "cursor_ahead"
        assert get_cursor(ctx.store.read()) == 0
        worker.pull_once()
        assert get_cursor(ctx.store.read()) == 1 and worker.resyncing is None
    finally:
        ctx.close()


# -- real hubs: restored from a backup, replaced --------------------------------------------------
@pytest.fixture
def hub_proc(tmp_path):
    data = tmp_path / "hubdata"
    server = HubServer(data, str(data / "hub.db"))  # the default place: `scanedge backup` sees it
    yield server
    server.stop()


@pytest.mark.slow
def test_a_hub_restored_from_an_older_backup(tmp_path, hub_proc):
    """Backup of hub.db, more changes (the device applies them), the older file restored: the
    device's cursor is ahead of the hub. A freeze issued on the restored hub must still arrive."""
    enrolment = hub_proc.enroll("dev-1")
    hub_proc.start()
    ctx = open_edge(tmp_path / "dev", hub_proc.url, enrolment["hub_token"],
                    enrolment["hub_public_key"])
    try:
        hub_proc.admin("PUT", "/api/v1/orders/SO-1", ORDER)
        wait_until(lambda: get_cursor(ctx.store.read()) == 1, timeout=20, what="SO-1")
        out = run_cli("backup", data_dir=hub_proc.data_dir).stdout
        backup = next(line for line in out.split() if "/hub-" in line)
        for order_id in ("SO-2", "SO-3", "SO-4"):  # lost with the restore
            hub_proc.admin("PUT", f"/api/v1/orders/{order_id}", ORDER)
        wait_until(lambda: get_cursor(ctx.store.read()) == 4, timeout=20, what="SO-4")
        hub_proc.stop()
        run_cli("restore", backup, data_dir=hub_proc.data_dir)
        hub_proc.start()
        hub_proc.admin("POST", "/api/v1/orders/SO-1/freeze", {"reason": "cancel"})  # seq 2 < 4
        wait_until(lambda: frozen(ctx, "SO-1"), timeout=30,
                   what="the freeze of the restored hub")
        reasons = [e["reason"] for e in events_of(ctx, "hub_resync")]
        assert reasons and set(reasons) <= {"cursor_ahead", "history_changed"}
        wait_until(lambda: alarms_of(ctx, "hub_resync"), timeout=10, what="the alarm")
        wait_until(lambda: health(ctx)["freeze"]["freeze_status"] == "known", timeout=20,
                   what="caught up")
        assert get_cursor(ctx.store.read()) == 2
    finally:
        ctx.close()


@pytest.mark.slow
def test_a_hub_restored_and_written_past_the_devices_cursor(tmp_path, hub_proc):
    """The restored hub gets more changes than it lost before the device is back: no cursor is
    ahead, but the change at the device's cursor is another one (its mark differs)."""
    enrolment = hub_proc.enroll("dev-1")
    hub_proc.start()
    path = tmp_path / "dev"
    ctx = open_edge(path, hub_proc.url, enrolment["hub_token"], enrolment["hub_public_key"])
    try:
        hub_proc.admin("PUT", "/api/v1/orders/SO-1", ORDER)
        wait_until(lambda: get_cursor(ctx.store.read()) == 1, timeout=20, what="SO-1")
        out = run_cli("backup", data_dir=hub_proc.data_dir).stdout
        backup = next(line for line in out.split() if "/hub-" in line)
        hub_proc.admin("PUT", "/api/v1/orders/SO-2", ORDER)
        wait_until(lambda: get_cursor(ctx.store.read()) == 2, timeout=20, what="SO-2")
    finally:
        ctx.close()  # the device is away while the hub is restored and written again
    hub_proc.stop()
    run_cli("restore", backup, data_dir=hub_proc.data_dir)
    hub_proc.start()
    hub_proc.admin("PUT", "/api/v1/orders/SO-5", ORDER)  # seq 2 again, another change
    hub_proc.admin("POST", "/api/v1/orders/SO-5/freeze", {"reason": "hold"})  # seq 3
    ctx = open_edge(path, hub_proc.url, enrolment["hub_token"], enrolment["hub_public_key"])
    try:
        wait_until(lambda: frozen(ctx, "SO-5"), timeout=30, what="SO-5 frozen")
        assert [e["reason"] for e in events_of(ctx, "hub_resync")] == ["history_changed"]
    finally:
        ctx.close()


@pytest.mark.slow
def test_a_hub_whose_database_was_replaced(tmp_path, hub_proc):
    """A new, empty hub.db: another database id and another signing key. The device's token is
    unknown there; given a new token by hand but not the key, it refuses the new hub's commands
    and says why; enrolled again, it resyncs from 0 and applies them."""
    enrolment = hub_proc.enroll("dev-1")
    hub_proc.start()
    path = tmp_path / "dev"
    ctx = open_edge(path, hub_proc.url, enrolment["hub_token"], enrolment["hub_public_key"])
    try:
        for order_id in ("SO-1", "SO-2", "SO-3"):
            hub_proc.admin("PUT", f"/api/v1/orders/{order_id}", ORDER)
        wait_until(lambda: get_cursor(ctx.store.read()) == 3, timeout=20, what="3 orders")
    finally:
        ctx.close()
    hub_proc.stop()
    shutil.rmtree(hub_proc.data_dir)  # hub.db, its -wal, its key: gone
    new = hub_proc.enroll("dev-1")  # makes the new database
    assert new["hub_public_key"] != enrolment["hub_public_key"]
    hub_proc.start()
    hub_proc.admin("PUT", "/api/v1/orders/NEW-1", ORDER)
    hub_proc.admin("POST", "/api/v1/orders/NEW-1/freeze", {"reason": "cancel"})  # seq 2 < 3

    ctx = open_edge(path, hub_proc.url, new["hub_token"], enrolment["hub_public_key"])
    try:  # the new token, the old key: commands refused, and the device says why
        wait_until(lambda: ctx.store.read().execute(
            "SELECT 1 FROM orders WHERE order_id = 'NEW-1'").fetchone(), timeout=20,
            what="NEW-1 after the resync")
        assert [e["reason"] for e in events_of(ctx, "hub_resync")] == ["hub_identity"]
        assert [e["problem"] for e in events_of(ctx, "command_rejected")] == ["unknown_key"]
        assert not frozen(ctx, "NEW-1")
        wait_until(lambda: health(ctx)["freeze"]["reason"] == "hub_key_mismatch", timeout=10,
                   what="the key mismatch in /healthz")
        assert health(ctx)["freeze"]["freeze_status"] == "unknown"
        wait_until(lambda: alarms_of(ctx, "hub_key"), timeout=10, what="the key alarm")
    finally:
        ctx.close()
    ctx = open_edge(path, hub_proc.url, new["hub_token"], new["hub_public_key"])
    try:  # enrolled with the new hub: its key pinned, its log read again
        wait_until(lambda: frozen(ctx, "NEW-1"), timeout=30, what="NEW-1 frozen")
        wait_until(lambda: health(ctx)["freeze"]["freeze_status"] == "known", timeout=20,
                   what="known")
        assert events_of(ctx, "hub_resync")[-1]["reason"] == "hub_key_configured"
    finally:
        ctx.close()


# -- the hub key: enrolled, or trusted on first use only when asked -------------------------------
def test_without_a_hub_key_commands_are_refused_and_health_says_why(tmp_path, real):
    token = real.storage.add_device("dev-1")
    real.ok("PUT", "/api/v1/orders/SO-1", body=ORDER)
    real.ok("POST", "/api/v1/orders/SO-1/freeze", body={"reason": "cancel"})
    ctx = quiet(open_edge(tmp_path / "dev", real.server.url, token))  # not enrolled
    try:
        ctx.sync.pull_once()
        assert not frozen(ctx, "SO-1")
        assert [e["problem"] for e in events_of(ctx, "command_rejected")] == ["no_hub_key"]
        state = health(ctx)["freeze"]
        assert (state["freeze_status"], state["reason"]) == ("unknown", "no_hub_key")
        assert "enroll" in state["message"]["en"]
        assert alarms_of(ctx, "command_rejected")  # raised by the listener after the commit
    finally:
        ctx.close()
    # enrolled now (the key configured): the refused freeze is applied by a resync
    ctx = quiet(open_edge(tmp_path / "dev", real.server.url, token,
                          real.storage.signer().public_b64))
    try:
        assert [e["reason"] for e in events_of(ctx, "hub_resync")] == ["hub_key_configured"]
        ctx.sync.pull_once()
        assert frozen(ctx, "SO-1")
        ctx.freeze_status.check()
        assert health(ctx)["freeze"]["freeze_status"] == "known"
        assert alarms_of(ctx, "hub_resync") == []  # a person configured it: no alarm
    finally:
        ctx.close()


def test_trust_on_first_use_only_when_asked(tmp_path, real):
    token = real.storage.add_device("dev-1")
    real.ok("PUT", "/api/v1/orders/SO-1", body=ORDER)
    real.ok("POST", "/api/v1/orders/SO-1/freeze", body={"reason": "cancel"})
    ctx = quiet(open_edge(tmp_path / "dev", real.server.url, token, hub_trust_first_key=True))
    try:
        ctx.sync.pull_once()
        assert frozen(ctx, "SO-1")
        assert [e["source"] for e in events_of(ctx, "hub_key_pinned")] == ["tofu"]
        assert health(ctx)["freeze"]["freeze_status"] == "known"
    finally:
        ctx.close()


def test_the_resync_state_survives_a_restart(tmp_path, real):
    """A resync interrupted by a restart goes on: the device stays "unknown" until it caught up."""
    token = real.storage.add_device("dev-1")
    real.ok("PUT", "/api/v1/orders/SO-1", body=ORDER)
    key = real.storage.signer().public_b64
    ctx = quiet(open_edge(tmp_path / "dev", real.server.url, token, key))
    try:
        ctx.sync.pull_once()
        ctx.store.write(lambda db: hubstate.start_resync(db, "dev-1", "cursor_ahead", {}))
    finally:
        ctx.close()
    ctx = quiet(open_edge(tmp_path / "dev", real.server.url, token, key))
    try:
        ctx.sync.pull_once()  # contact, and the resync catches up
        assert ctx.sync.resyncing is None
        ctx.freeze_status.check()
        assert health(ctx)["freeze"]["freeze_status"] == "known"
        assert len(alarms_of(ctx, "hub_resync")) == 1
    finally:
        ctx.close()
