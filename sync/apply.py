"""Applying the hub's changes on the device: orders, freezes, unfreezes, expedites, settings.

The new cursor is saved in the same transaction as the changes it covers, so a crash between the
two cannot skip a change or apply one twice. Rules:
- an order is replaced only by a higher version (a late, older copy is ignored);
- a freeze is kept until an unfreeze with a higher version arrives (a replayed old unfreeze is
  ignored); every applied freeze/unfreeze writes an outbox event.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlite_utils

from edge.domain.orders import OrderError, parse_order
from edge.domain.packing import Freeze
from edge.store.orders import delete_freeze, load_freeze, save_freeze, save_order, stored_version
from edge.store.outbox import append_event
from edge.store.syncstate import get_cursor, set_state

log = logging.getLogger(__name__)


@dataclass
class Applied:
    """What one batch of changes did (for the listeners that run after the commit)."""

    cursor: int = 0
    orders: list[str] = field(default_factory=list)
    freezes: list[dict[str, Any]] = field(default_factory=list)
    unfreezes: list[dict[str, Any]] = field(default_factory=list)
    expedites: list[dict[str, Any]] = field(default_factory=list)
    ignored: int = 0

    @property
    def count(self) -> int:
        return (len(self.orders) + len(self.freezes) + len(self.unfreezes) + len(self.expedites)
                + self.ignored)


def apply_changes(db: sqlite_utils.Database, device_id: str,
                  changes: Sequence[dict[str, Any]]) -> Applied:
    """Apply changes newer than the stored cursor, then store the new cursor. In a transaction."""
    cursor = get_cursor(db)
    applied = Applied(cursor=cursor)
    for change in changes:
        seq = int(change["seq"])
        if seq <= cursor:
            continue  # already applied (a replay after a reconnect)
        _apply_one(db, device_id, change, applied)
        cursor = seq
    if cursor != applied.cursor:
        set_state(db, "cursor", str(cursor))
        applied.cursor = cursor
    return applied


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _apply_one(db: sqlite_utils.Database, device_id: str, change: dict[str, Any],
               applied: Applied) -> None:
    kind, payload = change.get("kind"), change.get("payload") or {}
    order_id = change.get("order_id")
    if kind == "order":
        try:
            order = parse_order(payload)
        except OrderError as e:
            log.warning("hub change %s: order rejected: %s", change.get("seq"), e)
            applied.ignored += 1
            return
        current = stored_version(db, order.order_id)
        if current is not None and order.version <= current:
            applied.ignored += 1
            return
        save_order(db, order)
        applied.orders.append(order.order_id)
    elif kind == "freeze":
        version = int(payload.get("version") or 0)
        existing = load_freeze(db, order_id)
        if existing is not None and (existing.version or 0) >= version:
            applied.ignored += 1
            return
        freeze = Freeze(order_id, payload["reason"], _parse_time(payload["issued_at"]), version)
        save_freeze(db, freeze, source="hub", command_id=payload.get("command_id"))
        append_event(db, device_id, "freeze_applied", {
            "command_id": payload.get("command_id"), "reason": freeze.reason,
            "issued_at": payload["issued_at"], "version": version,
            "change_seq": change["seq"]}, order_id=order_id)
        applied.freezes.append(payload)
    elif kind == "unfreeze":
        version = int(payload.get("version") or 0)
        existing = load_freeze(db, order_id)
        if existing is None or (existing.version or 0) >= version:
            applied.ignored += 1
            return
        delete_freeze(db, order_id)
        append_event(db, device_id, "freeze_lifted", {
            "command_id": payload.get("command_id"), "version": version,
            "change_seq": change["seq"]}, order_id=order_id)
        applied.unfreezes.append(payload)
    elif kind == "expedite":
        db.execute("UPDATE orders SET priority = 'P0' WHERE order_id = ?", [order_id])
        append_event(db, device_id, "expedite_applied", {
            "command_id": payload.get("command_id"), "version": payload.get("version"),
            "change_seq": change["seq"]}, order_id=order_id)
        applied.expedites.append(payload)
    elif kind == "setting":
        set_state(db, f"setting:{payload.get('key')}", json.dumps(payload.get("value")))
    else:
        log.warning("hub change %s: unknown kind %r ignored", change.get("seq"), kind)
        applied.ignored += 1
