"""Freezing an order on this device: the freeze row and its event commit together."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlite_utils

from scanedge.edge.domain.packing import FREEZE_REASONS, Freeze
from scanedge.edge.store import Store
from scanedge.edge.store.orders import delete_freeze, save_freeze
from scanedge.edge.store.outbox import append_event


def freeze_order(
    store: Store, device_id: str, order_id: str, reason: str, *, source: str,
    issued_at: datetime | None = None, version: int | None = None,
) -> Freeze:
    if reason not in FREEZE_REASONS:
        raise ValueError(f"reason {reason!r}: expected one of {', '.join(FREEZE_REASONS)}")
    freeze = Freeze(order_id, reason, issued_at or datetime.now(UTC), version)

    def write(db: sqlite_utils.Database) -> Freeze:
        save_freeze(db, freeze, source=source)
        append_event(db, device_id, "freeze_applied",
                     {"reason": reason, "issued_at": freeze.issued_at.isoformat(),
                      "version": version, "source": source}, order_id=order_id)
        return freeze

    # essential: a freeze must stop work even on a full disk (docs/sync.md, "Limits")
    return store.write(write, essential=True)


def unfreeze_order(store: Store, device_id: str, order_id: str, *, source: str) -> bool:
    def write(db: sqlite_utils.Database) -> bool:
        if not delete_freeze(db, order_id):
            return False
        append_event(db, device_id, "freeze_lifted", {"source": source}, order_id=order_id)
        return True

    # essential too: as small as a freeze, and it gives the order's work back
    return store.write(write, essential=True)
