"""The edge's sync worker: pushes the outbox, pulls and streams changes, never gives up.

Three daemon threads share one :class:`SyncWorker`:
- push: wakes when an event is written (or the link comes back), sends batches oldest first until
  the outbox is empty; on failure waits with exponential backoff and jitter, capped at 30 s.
- stream: holds the hub's Server-Sent Events open and applies each change as it arrives; every
  message (heartbeats included) proves the hub alive.
- poll: pulls by cursor every ``sync_poll_s`` while the stream is down (and now and then anyway).

Delivery is at-least-once on the wire and exactly-once in effect: the hub stores an event once
by its id, and the device marks an event acknowledged only after the hub's answer; a crash in
between re-sends it and the hub answers ``duplicate``.

The cursor belongs to one hub (docs/sync.md, "Whose cursor"): every answer names the hub
(signing key id, database id) and pulls and stream hellos its last change. A device whose cursor
is ahead of the hub, whose hub holds another change at the cursor, or that meets another hub
than the one it synced with, does not move its cursor there: it resyncs from 0
(sync/hubstate.py). Only a well-formed answer from a checked hub counts as contact; a
misbehaving hub (garbage, empty pages that say ``more``, huge answers) costs a backoff.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from scanedge.edge.bus import EventBus
from scanedge.edge.config import Settings
from scanedge.edge.store import Store
from scanedge.edge.store.outbox import mark_results, pending_batch, purge_acked
from scanedge.edge.store.syncstate import get_cursor, get_state, set_state
from scanedge.sync import faults, hubstate
from scanedge.sync.apply import Applied, apply_changes
from scanedge.sync.client import HubClient, HubInfo, HubProtocolError, HubRefused, HubUnavailable
from scanedge.sync.pinning import pin_configured_key, pinned_key
from scanedge.sync.protocol import (
    HEARTBEAT_S,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    OFFLINE_AFTER_S,
)
from scanedge.sync.signing import key_id

log = logging.getLogger(__name__)
BACKOFF_CAP_S = 30.0


def backoff_delay(attempt: int, rng: random.Random, base: float = 0.5,
                  cap: float = BACKOFF_CAP_S) -> float:
    """Exponential backoff with full jitter: uniform in [d/2, d], d = min(cap, base * 2^attempt)."""
    d = min(cap, base * (2 ** min(attempt, 16)))
    return rng.uniform(d / 2, d)


@dataclass
class PushResult:
    sent: int = 0
    acked: int = 0
    parked: int = 0


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class SyncWorker:
    def __init__(self, store: Store, settings: Settings, client: HubClient | None = None,
                 *, bus: EventBus | None = None, rng: random.Random | None = None,
                 heartbeat_s: float = HEARTBEAT_S, offline_after_s: float = OFFLINE_AFTER_S) -> None:
        if client is None and not settings.hub_url:
            raise ValueError("no hub_url: this device runs offline")
        self.store = store
        self.settings = settings
        pin_configured_key(store, settings.device_id, settings.hub_public_key)
        self.client = client or HubClient(settings.hub_url, settings.hub_token,
                                          timeout=settings.hub_timeout_s)
        self.offline_after_s = offline_after_s
        self.rng = rng or random.Random()
        self.heartbeat_s = heartbeat_s
        # after each commit of the hub's changes: bus signal "hub_applied" (sync.apply.Applied)
        self.bus = bus or EventBus()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._started_wall = _now_iso()
        self._last_contact: float | None = None  # monotonic
        self._last_contact_wall: str | None = None
        self.stream_connected = False
        self.push_failures = 0
        self.pull_failures = 0
        self.last_error: str | None = None
        # Applying changes and starting a resync exclude each other; a resync bumps the
        # generation, so a pull or a stream that began before it applies nothing after it.
        self._gate = threading.RLock()
        self._generation = 0
        self._poll_now = threading.Event()
        self._stream_healthy = False
        self.hub_key_id: str | None = None  # the signing key the hub says it has

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        if not self.settings.hub_public_key and not self.settings.hub_trust_first_key \
                and pinned_key(self.store.read())[0] is None:
            log.warning("no hub key: this device refuses every signed hub command (freeze, "
                        "unfreeze, expedite) until it is enrolled (`scanedge hub add-device` on "
                        "the hub, `scanedge enroll` here; docs/security.md)")
        for name, target in (("sync-push", self._push_loop), ("sync-stream", self._stream_loop),
                             ("sync-poll", self._poll_loop)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._poll_now.set()
        self.client.close_streams()  # the stream thread waits in a read for the next heartbeat
        for t in self._threads:
            t.join(timeout)

    def notify_new_event(self, *_: Any) -> None:
        """Something was written to the outbox: push now."""
        self._wake.set()

    # -- one step each (also used by `scanedge sync --once`) ------------------------------------
    def push_once(self) -> PushResult:
        batch = pending_batch(self.store.read(), MAX_BATCH_EVENTS, MAX_BATCH_BYTES)
        if not batch:
            return PushResult()
        faults.maybe_crash("before_send")
        results, hub = self.client.push_answer(batch)
        faults.maybe_crash("after_send")
        self.check_hub(hub)
        self._contact()
        acked, parked = self.store.write(lambda db: mark_results(db, results), essential=True)
        faults.maybe_crash("after_ack")
        if parked:
            log.error("%d events rejected by the hub and parked: %s", parked,
                      [s for _, s in results if s.startswith("rejected")][:3])
        self.store.write(lambda db: set_state(db, "last_push_ok", _now_iso()), essential=True)
        return PushResult(len(batch), acked, parked)

    def drain(self, progress: Callable[[int, int], None] | None = None) -> PushResult:
        """Push until the outbox is empty (raises HubUnavailable if the hub goes away)."""
        total = PushResult()
        while True:
            r = self.push_once()
            if r.sent == 0:
                return total
            total.sent += r.sent
            total.acked += r.acked
            total.parked += r.parked
            if progress is not None:
                progress(total.acked + total.parked, self._pending_count())
            if r.acked + r.parked == 0:  # all already marked by someone else: avoid spinning
                time.sleep(0.05)

    def pull_once(self) -> Applied:
        """Pull until the hub has nothing more. A resync (started here or by another thread)
        restarts from the new cursor; one that this pull catches up with ends here."""
        applied = Applied(cursor=get_cursor(self.store.read()))
        generation = self._generation
        restarts = 0
        while True:
            answer = self.client.pull(applied.cursor)
            if self.check_hub(answer.hub, cursor=applied.cursor, generation=generation):
                restarts += 1
                if restarts > 2:  # a "hub" whose identity changes at every answer
                    raise HubProtocolError("pull: the hub's identity keeps changing")
                generation = self._generation  # resyncing: from the new cursor (0)
                applied.cursor = get_cursor(self.store.read())
                continue
            self._contact()
            if answer.changes:
                step = self._apply(answer.changes, generation)
                if step is None:  # a resync began meanwhile
                    continue
                applied.cursor = step.cursor
                for name in ("orders", "freezes", "unfreezes", "expedites", "rejected"):
                    getattr(applied, name).extend(getattr(step, name))
                applied.ignored += step.ignored
            if not answer.more:
                break

        def done(db: Any) -> None:
            set_state(db, "last_pull_ok", _now_iso())
            if generation == self._generation:  # caught up with the hub's log
                hubstate.finish_resync(db)

        with self._gate:
            self.store.write(done, essential=True)
        return applied

    # -- which hub ------------------------------------------------------------------------------
    def check_hub(self, hub: HubInfo, *, cursor: int | None = None,
                  generation: int | None = None) -> bool:
        """Compare who answered with the hub this device synced with; start a resync (and return
        True) when the cursor cannot be trusted there. ``cursor``: the cursor the request sent
        (a pull, a stream); the hub's ``last_seq`` and ``from_mark`` are checked against it.
        ``generation``: when the request was made; if a resync began since, the answer is stale
        (True, nothing started: the caller goes on from the new cursor)."""
        self.hub_key_id = hub.key_id
        with self._gate:
            if generation is not None and generation != self._generation:
                return True
            db = self.store.read()
            known = hubstate.stored_identity(db)
            reason, detail = None, {}
            if known is not None and known != hub.identity:
                reason, detail = "hub_identity", {
                    "was": {"key_id": known[0], "database_id": known[1]},
                    "now": {"key_id": hub.key_id, "database_id": hub.database_id}}
            elif cursor is not None and hub.last_seq is not None and cursor > hub.last_seq:
                reason, detail = "cursor_ahead", {"cursor": cursor, "hub_last_seq": hub.last_seq}
            elif cursor and cursor == get_cursor(db) and hub.last_seq is not None:
                mark = get_state(db, hubstate.MARK)
                if mark and hub.from_mark != mark:
                    reason, detail = "history_changed", {"cursor": cursor}
            if reason is None:
                if known is None:
                    self.store.write(lambda w: hubstate.set_identity(w, hub.identity),
                                     essential=True)
                return False

            def write(w: Any) -> None:
                hubstate.set_identity(w, hub.identity)
                hubstate.start_resync(w, self.settings.device_id, reason, detail)

            self.store.write(write, essential=True)
            self._generation += 1
        self._poll_now.set()  # catch up now, not at the next poll
        return True

    @property
    def resyncing(self) -> dict[str, Any] | None:
        return hubstate.resync_state(self.store.read())

    def trust_problem(self) -> tuple[str, dict[str, Any]] | None:
        """Why this device cannot vouch for its freezes although the hub answers: a resync that
        has not caught up, no hub key to verify commands with, or a hub that signs with another
        key than the pinned one. None when there is nothing to say."""
        db = self.store.read()
        resync = hubstate.resync_state(db)
        if resync is not None:
            return "resync", resync
        pinned, source = pinned_key(db)
        if pinned is None:
            if self.settings.hub_trust_first_key:
                return None
            return "no_hub_key", {}
        if self.hub_key_id is not None and self.hub_key_id != key_id(pinned):
            return "hub_key_mismatch", {"pinned": key_id(pinned), "source": source,
                                        "hub": self.hub_key_id}
        return None

    def _apply(self, changes: list[dict[str, Any]], generation: int | None = None
               ) -> Applied | None:
        """Apply a batch (None, nothing applied: a resync began after the batch was asked for)."""
        device_id = self.settings.device_id
        trust_first_key = self.settings.hub_trust_first_key

        def write(db: Any) -> Applied:
            return apply_changes(db, device_id, changes, trust_first_key=trust_first_key,
                                 resync=hubstate.resync_state(db) is not None)

        with self._gate:
            if generation is not None and generation != self._generation:
                return None
            applied = self.store.write(write, essential=True)
        if applied.count:
            self._wake.set()  # freezes and acks write events: push them at once
            self.bus.signal("hub_applied", applied)
        return applied

    def purge(self) -> int:
        cutoff = datetime.now(UTC) - timedelta(days=self.settings.outbox_retention_days)
        iso = cutoff.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return self.store.write(lambda db: purge_acked(db, iso), essential=True)

    # -- status ---------------------------------------------------------------------------------
    def _contact(self) -> None:
        was_offline = not self.online
        with self._lock:
            self._last_contact = time.monotonic()
            self._last_contact_wall = _now_iso()
        if was_offline:
            self._wake.set()  # the link came back: push at once, do not wait for the backoff

    @property
    def contacted(self) -> bool:
        """The hub answered at least once since this process started."""
        return self._last_contact is not None

    @property
    def online(self) -> bool:
        last = self._last_contact
        return last is not None and time.monotonic() - last <= self.offline_after_s

    def status(self) -> dict[str, Any]:
        db = self.store.read()
        online = self.online
        return {
            "hub_url": self.settings.hub_url,
            "online": online,
            "offline_since": None if online else (self._last_contact_wall or self._started_wall),
            "stream_connected": self.stream_connected,
            "last_contact": self._last_contact_wall,
            "last_push_ok": get_state(db, "last_push_ok"),
            "last_pull_ok": get_state(db, "last_pull_ok"),
            "cursor": get_cursor(db),
            "push_failures": self.push_failures,
            "last_error": self.last_error,
            "hub_identity": dict(zip(("key_id", "database_id"), identity, strict=True))
            if (identity := hubstate.stored_identity(db)) else None,
            "resync": hubstate.resync_state(db),
        }

    def _pending_count(self) -> int:
        return self.store.read().execute(
            "SELECT COUNT(*) FROM events WHERE state = 'pending'").fetchone()[0]

    # -- loops ----------------------------------------------------------------------------------
    def _push_loop(self) -> None:
        delay = 0.0
        last_purge = 0.0
        while not self._stop.is_set():
            self._wake.wait(timeout=delay if delay > 0 else 5.0)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                while not self._stop.is_set() and self.push_once().sent:
                    pass
                self.push_failures = 0
                delay = 0.0
                if time.monotonic() - last_purge > 3600:
                    last_purge = time.monotonic()
                    self.purge()
            except (HubUnavailable, HubRefused) as e:
                self.push_failures += 1
                self.last_error = str(e)
                delay = backoff_delay(self.push_failures, self.rng)
                log.warning("push failed (%s); retrying in %.1f s", e, delay)
            except Exception as e:  # never let the thread die: the outbox must keep draining
                self.push_failures += 1
                self.last_error = f"{e.__class__.__name__}: {e}"
                delay = backoff_delay(self.push_failures, self.rng)
                log.exception("push failed unexpectedly; retrying in %.1f s", delay)

    def stream_once(self) -> None:
        """Hold the stream open and apply what it brings, until it breaks (raises) or a resync
        begins (returns: reconnect from the new cursor)."""
        generation = self._generation
        cursor = get_cursor(self.store.read())
        for msg in self.client.stream(cursor, read_timeout=self.heartbeat_s * 2 + 1):
            if self._stop.is_set() or generation != self._generation:
                return
            if msg.event == "hello":
                assert msg.hub is not None
                if self.check_hub(msg.hub, cursor=cursor, generation=generation):
                    return
            elif msg.event == "heartbeat":
                assert msg.hub is not None
                if self.check_hub(msg.hub):
                    return
                self._stream_healthy = True
            self.stream_connected = True
            self._contact()
            if msg.event == "change" and self._apply([msg.data], generation) is None:
                return

    def _stream_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._stream_healthy = False
            cap = 5.0
            try:
                self.stream_once()
            except HubProtocolError as e:  # a misbehaving hub: back off as for pushes
                self.last_error = str(e)
                cap = BACKOFF_CAP_S
            except (HubUnavailable, HubRefused) as e:
                self.last_error = str(e)
            except Exception:
                log.exception("stream failed unexpectedly")
            self.stream_connected = False
            attempt = 1 if self._stream_healthy else attempt + 1  # a heartbeat: it was sound
            self._stop.wait(backoff_delay(attempt, self.rng, base=0.25, cap=cap))

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            self._poll_now.clear()
            interval = self.settings.sync_poll_s
            try:
                self.pull_once()
                self.pull_failures = 0
                if self.stream_connected:
                    interval = 30.0
            except HubProtocolError as e:  # garbage, empty 'more' pages ...: back off
                self.pull_failures += 1
                self.last_error = str(e)
                interval = max(interval, backoff_delay(self.pull_failures, self.rng,
                                                       base=interval))
                log.warning("pull: %s; retrying in %.1f s", e, interval)
            except (HubUnavailable, HubRefused) as e:
                self.last_error = str(e)
            except Exception:
                log.exception("pull failed unexpectedly")
            self._poll_now.wait(interval)
