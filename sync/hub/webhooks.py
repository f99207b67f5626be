"""The hub's webhook (``notify_url``): tripped fuses (熔断) are POSTed to the order system.

The rows are written in the transaction that trips the fuse (sync/hub/countdowns.py, unique per
command, so two hub processes or a restart notify once); edge/webhook.py delivers them.

Body: the fuse record, ``{"type": "fuse_tripped", "command_id", "order_id", "site", "kind",
"reason", "issued_at", "effective_by", "countdown_s", "tripped_at", "expected", "applied",
"not_in_time": [device ids], "not_in_time_count"}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from scanedge.edge.webhook import WebhookSender
from scanedge.sync.hub.storage import HubStorage, now_iso


class HubWebhooks(WebhookSender):
    thread_name = "hub-webhooks"

    def __init__(self, storage: HubStorage, url: str, *, timeout_s: float = 5.0,
                 backoff_base_s: float = 2.0, clock: Callable[[], float] = time.time) -> None:
        super().__init__(url, timeout_s=timeout_s, backoff_base_s=backoff_base_s, clock=clock)
        self.storage = storage

    def due_rows(self, now: float) -> list[tuple[Any, str, int]]:
        with self.storage.transaction() as tx:
            return [tuple(r) for r in tx.all(
                "SELECT id, payload, attempts FROM hub_notifications WHERE sent_at IS NULL"
                " AND next_at <= ? ORDER BY id LIMIT 50", [now])]

    def mark_sent(self, row_id: Any) -> None:
        with self.storage.transaction() as tx:
            tx.execute("UPDATE hub_notifications SET sent_at = ?, attempts = attempts + 1"
                       " WHERE id = ?", [now_iso(), row_id])

    def mark_failed(self, row_id: Any, error: str, next_at: float) -> None:
        with self.storage.transaction() as tx:
            tx.execute("UPDATE hub_notifications SET attempts = attempts + 1, last_error = ?,"
                       " next_at = ? WHERE id = ?", [error, next_at, row_id])

    def next_due(self) -> float | None:
        with self.storage.transaction() as tx:
            row = tx.one("SELECT MIN(next_at) FROM hub_notifications WHERE sent_at IS NULL")
        return None if row[0] is None else float(row[0])

    def pending(self) -> int:
        with self.storage.transaction() as tx:
            return int(tx.one("SELECT COUNT(*) FROM hub_notifications WHERE sent_at IS NULL")[0])
