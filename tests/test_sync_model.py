"""A hypothesis state machine over push, pull, crashes and replays: no loss, no double effect.

The hub is the real app on a real loopback HTTP server (SQLite and PostgreSQL storage); the device
is a real store driven step by step. A "crash" drops the device's in-memory state and reopens its
database, at the points where a real process could die.
"""

import itertools

import pytest
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from scanedge.edge.config import load_settings
from scanedge.edge.lifecycle import BackgroundServer
from scanedge.edge.store import Store
from scanedge.edge.store.outbox import append_event, mark_results, pending_batch
from scanedge.edge.store.syncstate import get_cursor
from scanedge.sync.apply import apply_changes
from scanedge.sync.client import HubClient
from scanedge.sync.hub.app import HubOptions
from scanedge.sync.hub.asgi import create_hub_asgi
from scanedge.sync.hub.limits import Rate
from scanedge.sync.hub.storage import open_storage
from scanedge.sync.worker import SyncWorker

pytestmark = pytest.mark.slow
ORDERS = ["SO-1", "SO-2", "SO-3"]


class LiveHub:
    def __init__(self, database: str) -> None:
        self.storage = open_storage(database)
        self.storage.ensure_admin_token("admin")
        # no rate limits: a generated run may pull 25 times in a fraction of a second, and the
        # model is about sync, not about 429s (tests/test_hub_fleet.py tests those)
        unlimited = {kind: Rate(1e6, 1e6) for kind in ("pull", "push", "ack", "stream")}
        self.server = BackgroundServer(create_hub_asgi(
            self.storage, HubOptions(rates=unlimited))).start()
        self.url = self.server.url

    def close(self) -> None:
        self.server.stop()
        self.storage.close()


class SyncModel(RuleBasedStateMachine):
    hub: LiveHub
    tmp: object
    counter = itertools.count()

    def __init__(self) -> None:
        super().__init__()
        n = next(self.counter)
        self.device_id = f"model-{n}"
        self.token = self.hub.storage.add_device(self.device_id)
        self.settings = load_settings(env={}, data_dir=str(self.tmp / self.device_id),
                                      device_id=self.device_id, hub_url=self.hub.url,
                                      hub_token=self.token,
                                      hub_public_key=self.hub.storage.signer().public_b64)
        self.written: set[str] = set()
        self._open()

    def _open(self) -> None:
        self.store = Store(self.settings.edge_db_path)
        self.worker = SyncWorker(self.store, self.settings,
                                 HubClient(self.hub.url, self.token, timeout=5))

    def crash(self) -> None:
        self.store.close()
        self._open()

    def device_event_ids(self) -> set[str]:
        return {r[0] for r in self.store.read().execute("SELECT event_id FROM events")}

    def hub_event_ids(self) -> list[str]:
        return [e["event_id"] for e in self.hub.storage.list_events(device_id=self.device_id,
                                                                     limit=100_000)]

    # -- rules ----------------------------------------------------------------------------------
    @rule(n=st.integers(1, 40))
    def write_events(self, n):
        for _ in range(n):
            ev = self.store.write(lambda db: append_event(db, self.device_id, "scan", {}))
            self.written.add(ev.event_id)

    @rule()
    def push(self):
        self.worker.push_once()

    @rule(fraction=st.floats(0, 1))
    def crash_after_send(self, fraction):
        """The hub stored the batch; the device died before (or while) marking it."""
        batch = pending_batch(self.store.read(), 200, 256 * 1024)
        if not batch:
            return
        results = self.worker.client.push(batch)
        keep = results[: int(len(results) * fraction)]
        self.store.write(lambda db: mark_results(db, keep))
        self.crash()

    @rule()
    def crash_before_send(self):
        pending_batch(self.store.read(), 200, 256 * 1024)
        self.crash()

    @rule()
    def replay_acknowledged_batch(self):
        rows = self.store.read().execute(
            "SELECT event_id, device_id, seq, type, order_id, payload, device_time, hlc"
            " FROM events WHERE state = 'acked' ORDER BY seq LIMIT 50").fetchall()
        batch = [{"event_id": r[0], "device_id": r[1], "seq": r[2], "type": r[3],
                  "order_id": r[4], "payload": {}, "device_time": r[6], "hlc": r[7]}
                 for r in rows]
        if batch:
            assert {s for _, s in self.worker.client.push(batch)} == {"duplicate"}

    @rule(order=st.sampled_from(ORDERS), kind=st.sampled_from(["freeze", "unfreeze", "order"]))
    def hub_command(self, order, kind):
        if kind == "order":
            self.hub.storage.upsert_order({"order_id": order, "lines": [
                {"sku": "6901234567892", "qty": 1 + len(self.written) % 5}]})
            return
        fields = {"reason": "cancel"} if kind == "freeze" else {}
        self.hub.storage.add_command(kind, order, fields)

    @rule()
    def pull(self):
        self.worker.pull_once()

    @rule()
    def crash_mid_pull(self):
        changes = self.worker.client.pull(get_cursor(self.store.read())).changes
        if changes:  # applied in a transaction that never commits
            def apply_then_die(db):
                apply_changes(db, self.device_id, changes)
                raise RuntimeError("power cut")
            with pytest.raises(RuntimeError):
                self.store.write(apply_then_die)
        self.crash()

    @precondition(lambda self: True)
    @rule(times=st.integers(2, 3))
    def duplicate_pull(self, times):
        cursor = get_cursor(self.store.read())
        changes = self.worker.client.pull(cursor).changes
        for _ in range(times):  # the same changes applied again: no double effect
            self.store.write(lambda db: apply_changes(db, self.device_id, changes))
        self.store.write(lambda db: apply_changes(db, self.device_id, changes))

    # -- invariants -------------------------------------------------------------------------------
    @invariant()
    def hub_holds_each_event_at_most_once_and_only_ours(self):
        ids = self.hub_event_ids()
        assert len(ids) == len(set(ids))
        device = self.device_event_ids()
        assert set(ids) <= device  # nothing at the hub the device did not commit
        assert self.written <= device  # nothing written was lost by a crash

    @invariant()
    def acknowledged_means_at_the_hub(self):
        acked = {r[0] for r in self.store.read().execute(
            "SELECT event_id FROM events WHERE state = 'acked'")}
        assert acked <= set(self.hub_event_ids())

    @invariant()
    def each_command_takes_effect_once(self):
        rows = self.store.read().execute(
            "SELECT json_extract(payload, '$.command_id') FROM events"
            " WHERE type IN ('freeze_applied', 'freeze_lifted')").fetchall()
        ids = [r[0] for r in rows]
        assert len(ids) == len(set(ids)), "a hub command took effect twice"

    def teardown(self):
        self.worker.pull_once()  # applied changes write events too: pull, then drain
        self.worker.drain()
        assert sorted(self.hub_event_ids()) == sorted(self.device_event_ids())
        # the device's freezes are what the hub's last command per order says
        last: dict[str, str] = {}
        for change in self.hub.storage.changes_since(0, 100_000):
            if change.kind in ("freeze", "unfreeze"):
                last[change.order_id] = change.kind
        frozen = {r[0] for r in self.store.read().execute("SELECT order_id FROM freezes")}
        assert frozen == {o for o, k in last.items() if k == "freeze"}
        self.store.close()


def test_sync_state_machine(tmp_path, hub_database):
    hub = LiveHub(hub_database)
    SyncModel.hub = hub
    SyncModel.tmp = tmp_path
    try:
        run_state_machine_as_test(SyncModel, settings=hsettings(
            max_examples=25, stateful_step_count=25, deadline=None, derandomize=True))
    finally:
        hub.close()
