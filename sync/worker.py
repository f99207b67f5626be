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

from edge.config import Settings
from edge.store import Store
from edge.store.outbox import mark_results, pending_batch, purge_acked
from edge.store.syncstate import get_cursor, get_state, set_state
from sync import faults
from sync.apply import Applied, apply_changes
from sync.client import HubClient, HubRefused, HubUnavailable
from sync.protocol import HEARTBEAT_S, MAX_BATCH_BYTES, MAX_BATCH_EVENTS, OFFLINE_AFTER_S

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
                 *, rng: random.Random | None = None, heartbeat_s: float = HEARTBEAT_S,
                 offline_after_s: float = OFFLINE_AFTER_S) -> None:
        if client is None and not settings.hub_url:
            raise ValueError("no hub_url: this device runs offline")
        self.store = store
        self.settings = settings
        self.client = client or HubClient(settings.hub_url, settings.hub_token,
                                          timeout=settings.hub_timeout_s)
        self.offline_after_s = offline_after_s
        self.rng = rng or random.Random()
        self.heartbeat_s = heartbeat_s
        self.on_applied: list[Callable[[Applied], None]] = []  # after commit: alarms, pages
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._started_wall = _now_iso()
        self._last_contact: float | None = None  # monotonic
        self._last_contact_wall: str | None = None
        self.stream_connected = False
        self.push_failures = 0
        self.last_error: str | None = None

    # -- life cycle -------------------------------------------------------------------------
    def start(self) -> None:
        for name, target in (("sync-push", self._push_loop), ("sync-stream", self._stream_loop),
                             ("sync-poll", self._poll_loop)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
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
        results = self.client.push(batch)
        faults.maybe_crash("after_send")
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
        applied = Applied(cursor=get_cursor(self.store.read()))
        while True:
            changes, _, more = self.client.pull(applied.cursor)
            self._contact()
            if changes:
                step = self._apply(changes)
                applied.cursor = step.cursor
                for name in ("orders", "freezes", "unfreezes", "expedites"):
                    getattr(applied, name).extend(getattr(step, name))
                applied.ignored += step.ignored
            if not more:
                break
        self.store.write(lambda db: set_state(db, "last_pull_ok", _now_iso()), essential=True)
        return applied

    def _apply(self, changes: list[dict[str, Any]]) -> Applied:
        device_id = self.settings.device_id
        applied = self.store.write(lambda db: apply_changes(db, device_id, changes), essential=True)
        if applied.count:
            self._wake.set()  # freezes and acks write events: push them at once
            for listener in self.on_applied:
                try:
                    listener(applied)
                except Exception:
                    log.exception("sync listener failed")
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

    def _stream_loop(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                cursor = get_cursor(self.store.read())
                for msg in self.client.stream(cursor, read_timeout=self.heartbeat_s * 2 + 1):
                    if self._stop.is_set():
                        return
                    self.stream_connected = True
                    attempt = 0
                    self._contact()
                    if msg.event == "change":
                        self._apply([msg.data])
            except (HubUnavailable, HubRefused) as e:
                self.last_error = str(e)
            except Exception:
                log.exception("stream failed unexpectedly")
            self.stream_connected = False
            attempt += 1
            self._stop.wait(backoff_delay(attempt, self.rng, base=0.25, cap=5.0))

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.pull_once()
            except (HubUnavailable, HubRefused) as e:
                self.last_error = str(e)
            except Exception:
                log.exception("pull failed unexpectedly")
            interval = 30.0 if self.stream_connected else self.settings.sync_poll_s
            self._stop.wait(interval)
