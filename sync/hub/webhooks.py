"""The hub's webhook (``notify_url``): tripped fuses (熔断) are POSTed to the order system.

Like the device's (edge/notify.py), a notification is a row first, written in the transaction
that trips the fuse (sync/hub/countdowns.py, unique per command, so two hub processes or a
restart notify once), then delivered with exponential backoff until the URL answers 2xx.

Body: the fuse record, ``{"type": "fuse_tripped", "command_id", "order_id", "site", "kind",
"reason", "issued_at", "effective_by", "countdown_s", "tripped_at", "expected", "applied",
"not_in_time": [device ids], "not_in_time_count"}``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from edge.webhook import backoff_s, post_json
from sync.hub.storage import HubStorage, now_iso

log = logging.getLogger(__name__)


class HubWebhooks:
    def __init__(self, storage: HubStorage, url: str, *, timeout_s: float = 5.0,
                 backoff_base_s: float = 2.0, clock: Callable[[], float] = time.time) -> None:
        self.storage, self.url = storage, url
        self.timeout_s, self.backoff_base_s, self.clock = timeout_s, backoff_base_s, clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> HubWebhooks:
        if self.url and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hub-webhooks", daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def deliver_due(self) -> int:
        """Send every notification that is due; returns how many were delivered."""
        now = self.clock()
        with self.storage.transaction() as tx:
            rows = tx.all("SELECT id, payload, attempts FROM hub_notifications WHERE sent_at IS NULL"
                          " AND next_at <= ? ORDER BY id LIMIT 50", [now])
        delivered = 0
        for row_id, payload, attempts in rows:
            error = post_json(self.url, payload, self.timeout_s)
            with self.storage.transaction() as tx:
                if error is None:
                    delivered += 1
                    tx.execute("UPDATE hub_notifications SET sent_at = ?, attempts = attempts + 1"
                               " WHERE id = ?", [now_iso(), row_id])
                else:
                    delay = backoff_s(attempts, self.backoff_base_s)
                    log.warning("notify %s failed (%s); retrying in %.0f s", self.url, error, delay)
                    tx.execute("UPDATE hub_notifications SET attempts = attempts + 1,"
                               " last_error = ?, next_at = ? WHERE id = ?",
                               [error, now + delay, row_id])
        return delivered

    def pending(self) -> int:
        with self.storage.transaction() as tx:
            return int(tx.one("SELECT COUNT(*) FROM hub_notifications WHERE sent_at IS NULL")[0])

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
                with self.storage.transaction() as tx:
                    row = tx.one("SELECT MIN(next_at) FROM hub_notifications WHERE sent_at IS NULL")
                wait = 60.0 if row[0] is None else max(0.05, min(60.0, row[0] - self.clock()))
            except Exception:  # the database may be away: the rows wait for the next round
                log.exception("hub webhook delivery failed")
                wait = 5.0
            self._wake.wait(wait)
            self._wake.clear()
