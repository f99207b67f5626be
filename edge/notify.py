"""Webhook notifications (``notify_url``): a P0 order arrived at this device.

The product sends no SMS itself: it POSTs JSON to a URL the warehouse gives (its own messaging
gateway, a chat bot, an on-call tool). A notification is a row first (written when the order
arrives, unique by kind + order + version, so a replay notifies once), then a worker thread
delivers it with exponential backoff until the URL answers 2xx; a restart resumes.

Body: ``{"kind": "p0_order", "device_id", "station", "order_id", "priority", "version",
"created_at"}``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import sqlite_utils

from edge.bus import EventBus
from edge.store import Store
from edge.store.db import Migration, utc_now
from edge.webhook import backoff_s, post_json

log = logging.getLogger(__name__)
COMPONENT = "notify"


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("""CREATE TABLE notifications (
        id INTEGER PRIMARY KEY, dedup TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        payload TEXT NOT NULL, created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL DEFAULT 0, sent_at TEXT, last_error TEXT)""")


MIGRATIONS = (Migration(1, "webhook notifications", _v1),)


class Notifier:
    def __init__(self, store: Store, bus: EventBus, *, url: str, device_id: str, station: str,
                 timeout_s: float = 5.0, backoff_base_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        store.ensure_schema(COMPONENT, MIGRATIONS)
        self.store, self.bus, self.url = store, bus, url
        self.device_id, self.station = device_id, station
        self.timeout_s, self.backoff_base_s, self.clock = timeout_s, backoff_base_s, clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what raises a notification ------------------------------------------------------------
    def p0_orders(self, order_ids: Iterable[str]) -> int:
        """Orders that arrived or changed: notify the P0 ones (once per order version)."""
        def write(db: sqlite_utils.Database) -> list[dict[str, Any]]:
            made = []
            for order_id in set(order_ids):
                row = db.execute("SELECT priority, version, station FROM orders WHERE order_id = ?",
                                 [order_id]).fetchone()
                if row is None or row[0] != "P0":
                    continue
                payload = {"kind": "p0_order", "device_id": self.device_id,
                           "station": row[2] or self.station, "order_id": order_id,
                           "priority": "P0", "version": row[1], "created_at": utc_now()}
                cur = db.execute(  # kept even without a URL: the alert is said once
                    "INSERT INTO notifications (dedup, kind, payload, created_at, sent_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (dedup) DO NOTHING",
                    [f"p0_order:{order_id}:{row[1]}", "p0_order", json.dumps(payload, ensure_ascii=False),
                     payload["created_at"], None if self.url else "no notify_url"])
                if cur.rowcount == 1:
                    made.append(payload)
            return made

        made = self.store.write(write, essential=True)
        for payload in made:
            self.bus.publish("p0_order", payload)  # the supervisor page's alert
        if made:
            self._wake.set()
        return len(made)

    # -- delivery ----------------------------------------------------------------------------------
    def start(self) -> Notifier:
        if self.url and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def deliver_due(self) -> int:
        """Send every notification that is due; returns how many were delivered."""
        now = self.clock()
        rows = self.store.read().execute(
            "SELECT id, payload, attempts FROM notifications WHERE sent_at IS NULL AND next_at <= ?"
            " ORDER BY id LIMIT 50", [now]).fetchall()
        delivered = 0
        for row_id, payload, attempts in rows:
            error = self._post(payload)
            if error is None:
                delivered += 1
                self.store.write(lambda db, i=row_id: db.execute(
                    "UPDATE notifications SET sent_at = ?, attempts = attempts + 1 WHERE id = ?",
                    [utc_now(), i]), essential=True)
            else:
                delay = backoff_s(attempts, self.backoff_base_s)
                log.warning("notify %s failed (%s); retrying in %.0f s", self.url, error, delay)
                self.store.write(lambda db, i=row_id, e=error, d=delay: db.execute(
                    "UPDATE notifications SET attempts = attempts + 1, last_error = ?, next_at = ?"
                    " WHERE id = ?", [e, now + d, i]), essential=True)
        return delivered

    def pending(self) -> int:
        return self.store.read().execute(
            "SELECT COUNT(*) FROM notifications WHERE sent_at IS NULL").fetchone()[0]

    def _post(self, payload: str) -> str | None:
        return post_json(self.url, payload, self.timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception:  # the thread must survive: the rows wait for the next round
                log.exception("notify worker failed")
            row = self.store.read().execute(
                "SELECT MIN(next_at) FROM notifications WHERE sent_at IS NULL").fetchone()
            wait = 60.0 if row[0] is None else max(0.05, min(60.0, row[0] - self.clock()))
            self._wake.wait(wait)
            self._wake.clear()
