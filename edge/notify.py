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
import time
from collections.abc import Callable, Iterable
from typing import Any

import sqlite_utils

from scanedge.edge.bus import EventBus
from scanedge.edge.store import Store
from scanedge.edge.store.db import Migration, utc_now
from scanedge.edge.webhook import WebhookSender

log = logging.getLogger(__name__)
COMPONENT = "notify"


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("""CREATE TABLE notifications (
        id INTEGER PRIMARY KEY, dedup TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,
        payload TEXT NOT NULL, created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_at REAL NOT NULL DEFAULT 0, sent_at TEXT, last_error TEXT)""")


MIGRATIONS = (Migration(1, "webhook notifications", _v1),)


class Notifier(WebhookSender):
    thread_name = "notify"

    def __init__(self, store: Store, bus: EventBus, *, url: str, device_id: str, station: str,
                 timeout_s: float = 5.0, backoff_base_s: float = 2.0,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(url, timeout_s=timeout_s, backoff_base_s=backoff_base_s, clock=clock)
        store.ensure_schema(COMPONENT, MIGRATIONS)
        self.store, self.bus = store, bus
        self.device_id, self.station = device_id, station

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
            self.wake()
        return len(made)

    # -- the rows (edge/webhook.py delivers them) -------------------------------------------------
    def due_rows(self, now: float) -> list[tuple[Any, str, int]]:
        return self.store.read().execute(
            "SELECT id, payload, attempts FROM notifications WHERE sent_at IS NULL AND next_at <= ?"
            " ORDER BY id LIMIT 50", [now]).fetchall()

    def mark_sent(self, row_id: Any) -> None:
        self.store.write(lambda db: db.execute(
            "UPDATE notifications SET sent_at = ?, attempts = attempts + 1 WHERE id = ?",
            [utc_now(), row_id]), essential=True)

    def mark_failed(self, row_id: Any, error: str, next_at: float) -> None:
        self.store.write(lambda db: db.execute(
            "UPDATE notifications SET attempts = attempts + 1, last_error = ?, next_at = ?"
            " WHERE id = ?", [error, next_at, row_id]), essential=True)

    def next_due(self) -> float | None:
        return self.store.read().execute(
            "SELECT MIN(next_at) FROM notifications WHERE sent_at IS NULL").fetchone()[0]

    def pending(self) -> int:
        return self.store.read().execute(
            "SELECT COUNT(*) FROM notifications WHERE sent_at IS NULL").fetchone()[0]
