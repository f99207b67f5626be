"""Applying the hub's changes on the device: orders, freezes, unfreezes, expedites, settings.

The new cursor is saved in the same transaction as the changes it covers, so a crash between the
two cannot skip a change or apply one twice. Rules:
- an order is replaced only by a higher version (a late, older copy is ignored);
- a freeze is kept until an unfreeze with a higher version arrives (a replayed old unfreeze is
  ignored); every applied freeze/unfreeze writes an outbox event (edge/freezes/apply.py);
- a command (freeze, unfreeze, expedite, note) takes effect only with a valid signature by the pinned
  hub key and a command id never seen before (sync/signing.py); anything else is rejected: an
  outbox event ``command_rejected`` now, an alarm for the supervisor after the commit;
- an applied freeze leaves a follow-up row (cancel labels, alarm, ack to the hub) that the
  listeners run after the commit (edge/freezes/effects.py); so does an applied note (show it at
  the stations, ack), which blocks its order's scans until read (edge/store/notes.py);
- an ``rma`` change (an RMA to receive, or its cancellation) is kept by version like an order;
  a cancellation raises an alarm after the commit where its parcel is on a bench
  (edge/returns.py);
- a ``fuse`` change (the hub's countdown ran out before every device applied a command) is news
  for the supervisor, not a command: it raises a warning after the commit.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from scanedge.edge import returns
from scanedge.edge.domain.orders import OrderError, parse_order
from scanedge.edge.domain.returns import RmaError
from scanedge.edge.freezes.apply import apply_freeze, apply_unfreeze
from scanedge.edge.store import notes
from scanedge.edge.store.orders import save_order, stored_version
from scanedge.edge.store.outbox import append_event
from scanedge.edge.store.syncstate import get_cursor, set_state
from scanedge.sync import command_log
from scanedge.sync.pinning import verify_command
from scanedge.sync.protocol import CURSOR_MARK, change_mark
from scanedge.sync.signing import SIGNED_KINDS

log = logging.getLogger(__name__)


@dataclass
class Applied:
    """What one batch of changes did (for the listeners that run after the commit)."""

    cursor: int = 0
    orders: list[str] = field(default_factory=list)
    freezes: list[dict[str, Any]] = field(default_factory=list)
    unfreezes: list[dict[str, Any]] = field(default_factory=list)
    expedites: list[dict[str, Any]] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    fuses: list[dict[str, Any]] = field(default_factory=list)  # the hub's fuse_tripped news
    rmas: list[str] = field(default_factory=list)  # RMAs stored (edge/returns.py)
    rmas_cancelled: list[str] = field(default_factory=list)  # of those, newly cancelled
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {change_seq, kind, problem...}
    ignored: int = 0

    @property
    def count(self) -> int:
        return (len(self.orders) + len(self.freezes) + len(self.unfreezes) + len(self.expedites)
                + len(self.notes) + len(self.fuses) + len(self.rmas) + len(self.rejected)
                + self.ignored)


def apply_changes(db: sqlite_utils.Database, device_id: str,
                  changes: Sequence[dict[str, Any]], *, trust_first_key: bool = False,
                  resync: bool = False) -> Applied:
    """Apply changes newer than the stored cursor, then store the new cursor. In a transaction.

    ``trust_first_key``: with no hub key pinned, pin the first signed command's (else such
    commands are refused, ``no_hub_key``). ``resync``: the device is reading the hub's log again
    from 0 (sync/hubstate.py): a command that already took effect here is skipped quietly, not
    refused as a replay."""
    cursor = get_cursor(db)
    applied = Applied(cursor=cursor)
    command_log.ensure_tables(db)
    notes.ensure_table(db)
    returns.ensure_tables(db)
    last = None
    for change in changes:
        seq = int(change["seq"])
        if seq <= cursor:
            continue  # already applied (a replay after a reconnect)
        _apply_one(db, device_id, change, applied, trust_first_key, resync)
        cursor, last = seq, change
    if last is not None:
        set_state(db, "cursor", str(cursor))
        # which change the cursor stands on: a hub with another change there is another log
        set_state(db, CURSOR_MARK, change_mark(cursor, last.get("kind"), last.get("order_id"),
                                               last.get("created_at")))
        applied.cursor = cursor
    return applied


def _apply_one(db: sqlite_utils.Database, device_id: str, change: dict[str, Any],
               applied: Applied, trust_first_key: bool = False, resync: bool = False) -> None:
    kind, payload = change.get("kind"), change.get("payload") or {}
    if kind in SIGNED_KINDS:
        problem = verify_command(db, device_id, change, trust_first_key)
        if problem is None and command_log.seen(db, payload["command_id"]):
            if resync:  # the same command read again from the same log: it took effect already
                applied.ignored += 1
                return
            problem = "replayed"
        if problem is not None:
            _reject(db, device_id, change, problem, applied)
            return
        ignored_before = applied.ignored
        _apply_command(db, device_id, change, applied)
        command_log.log_command(db, change,
                                "ignored" if applied.ignored > ignored_before else "applied")
        return
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
    elif kind == "rma":  # an RMA to receive, or its cancellation (docs/returns.md)
        try:
            took = returns.apply_rma(db, payload)
        except RmaError as e:
            log.warning("hub change %s: RMA rejected: %s", change.get("seq"), e)
            applied.ignored += 1
            return
        if took is None:
            applied.ignored += 1
            return
        applied.rmas.append(took[0])
        if took[1]:
            applied.rmas_cancelled.append(took[0])
    elif kind == "setting":
        set_state(db, f"setting:{payload.get('key')}", json.dumps(payload.get("value")))
    elif kind == "fuse":
        append_event(db, device_id, "fuse_heard", {
            "command_id": payload.get("command_id"), "kind": payload.get("kind"),
            "tripped_at": payload.get("tripped_at"), "change_seq": change["seq"]},
            order_id=change.get("order_id"))
        applied.fuses.append({**payload, "order_id": change.get("order_id")})
    else:
        log.warning("hub change %s: unknown kind %r ignored", change.get("seq"), kind)
        applied.ignored += 1


def _reject(db: sqlite_utils.Database, device_id: str, change: dict[str, Any], problem: str,
            applied: Applied) -> None:
    payload = change.get("payload") if isinstance(change.get("payload"), dict) else {}
    command_id = payload.get("command_id")
    item = {"change_seq": change["seq"], "kind": change.get("kind"),
            "order_id": change.get("order_id"), "problem": problem,
            "command_id": command_id if isinstance(command_id, str) else None,
            "version": payload.get("version")}
    log.error("hub change %s: %s command for %s rejected: %s", change.get("seq"),
              change.get("kind"), change.get("order_id"), problem)
    append_event(db, device_id, "command_rejected", item, order_id=change.get("order_id"))
    command_log.log_command(db, change, "rejected", problem)
    applied.rejected.append(item)


def _apply_command(db: sqlite_utils.Database, device_id: str, change: dict[str, Any],
                   applied: Applied) -> None:
    kind, payload = change.get("kind"), change["payload"]
    order_id = change.get("order_id")
    if kind in ("freeze", "unfreeze"):  # edge/freezes/apply.py
        why = (apply_freeze if kind == "freeze" else apply_unfreeze)(db, device_id, change)
        if why is not None:
            _ignored(db, device_id, change, applied, why)
        elif kind == "freeze":
            applied.freezes.append({**payload, "change_seq": change["seq"]})
        else:
            applied.unfreezes.append(payload)
    elif kind == "note":
        note = notes.Note(payload["command_id"], order_id, str(payload.get("note") or ""),
                          payload["issued_at"], payload.get("effective_by"))
        notes.save_note(db, note)
        append_event(db, device_id, "note_applied", {
            "command_id": note.command_id, "note": note.text, "issued_at": note.issued_at,
            "effective_by": note.effective_by, "version": payload.get("version"),
            "change_seq": change["seq"]}, order_id=order_id)
        command_log.add_followup(db, {**payload, "order_id": order_id}, kind="note")
        applied.notes.append({**payload, "change_seq": change["seq"]})
    elif kind == "expedite":
        db.execute("UPDATE orders SET priority = 'P0' WHERE order_id = ?", [order_id])
        append_event(db, device_id, "expedite_applied", {
            "command_id": payload.get("command_id"), "version": payload.get("version"),
            "change_seq": change["seq"]}, order_id=order_id)
        applied.expedites.append(payload)


def _ignored(db: sqlite_utils.Database, device_id: str, change: dict[str, Any], applied: Applied,
             why: str) -> None:
    """A genuine command that changes nothing here (an unfreeze older than the freeze)."""
    applied.ignored += 1
    if why == "old_version":
        payload = change["payload"]
        append_event(db, device_id, "command_ignored", {
            "command_id": payload.get("command_id"), "kind": change.get("kind"),
            "version": payload.get("version"), "why": why, "change_seq": change["seq"]},
            order_id=change.get("order_id"))
