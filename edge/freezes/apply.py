"""A hub freeze or unfreeze command, applied in the transaction that applies the hub's changes
(sync/apply.py verified its signature and that it was never seen before).

Version rules: a freeze is kept until a freeze or an unfreeze with a higher version arrives (a
replayed old unfreeze is ignored). An applied freeze writes ``freeze_applied`` and leaves a
follow-up row (sync/command_log.py) that :mod:`edge.freezes.effects` runs after the commit.
"""

from __future__ import annotations

from typing import Any

import sqlite_utils

from scanedge.edge.domain.interception_report import parse_time
from scanedge.edge.domain.packing import Freeze
from scanedge.edge.store.orders import delete_freeze, load_freeze, save_freeze
from scanedge.edge.store.outbox import append_event
from scanedge.sync import command_log


def apply_freeze(db: sqlite_utils.Database, device_id: str, change: dict[str, Any]) -> str | None:
    """None when the freeze took effect, else why it changed nothing (``old_version``)."""
    payload, order_id = change["payload"], change.get("order_id")
    version = int(payload.get("version") or 0)
    existing = load_freeze(db, order_id)
    if existing is not None and (existing.version or 0) >= version:
        return "old_version"
    freeze = Freeze(order_id, payload["reason"], parse_time(payload["issued_at"]), version)
    save_freeze(db, freeze, source="hub", command_id=payload.get("command_id"))
    append_event(db, device_id, "freeze_applied", {
        "command_id": payload.get("command_id"), "reason": freeze.reason,
        "issued_at": payload["issued_at"], "version": version,
        "effective_by": payload.get("effective_by"), "change_seq": change["seq"]},
        order_id=order_id)
    command_log.add_followup(db, {**payload, "order_id": order_id, "version": version})
    return None


def apply_unfreeze(db: sqlite_utils.Database, device_id: str,
                   change: dict[str, Any]) -> str | None:
    """None when the freeze was lifted, else why not (``not_frozen``, ``old_version``)."""
    payload, order_id = change["payload"], change.get("order_id")
    version = int(payload.get("version") or 0)
    existing = load_freeze(db, order_id)
    if existing is None:
        return "not_frozen"
    if (existing.version or 0) >= version:
        return "old_version"
    delete_freeze(db, order_id)
    append_event(db, device_id, "freeze_lifted", {
        "command_id": payload.get("command_id"), "version": version,
        "change_seq": change["seq"]}, order_id=order_id)
    return None
