"""The hub's side of freezes: its signing key, expedite/cancel conflicts, the devices' acks.

Everything here runs inside a :class:`~sync.hub.storage.Tx` of the storage (SQLite or
PostgreSQL, ``?`` placeholders), so a command, the conflict it causes and the ``needs_decision``
freeze that follows commit together.

Conflict rule (docs/interfaces.md): an ``expedite`` and a ``freeze`` with reason ``cancel`` for one
order, issued within ``conflict_window_s`` of each other (either order), put the order in
``needs_decision``: the hub records a conflict and issues a signed freeze with reason
``needs_decision`` right after the second command, so every device blocks the order as frozen.
Only a decision (``cancel`` -> a cancel freeze; ``ship`` -> an unfreeze) closes it: the order
system's (admin API) or a supervisor's on a device the hub allows to decide (``can_decide``);
commands before a decision never conflict again.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scanedge.edge.domain.interception_report import parse_time
from scanedge.edge.domain.refusal import Refusal
from scanedge.sync.hub.rows import rows_as_dicts

if TYPE_CHECKING:
    from scanedge.sync.hub.storage import AdminScope, HubStorage, Tx

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS freeze_acks (
        command_id TEXT NOT NULL, device_id TEXT NOT NULL, order_id TEXT,
        applied_at TEXT, effects_at TEXT, received_at TEXT NOT NULL, result TEXT NOT NULL,
        PRIMARY KEY (command_id, device_id))""",
    """CREATE TABLE IF NOT EXISTS order_conflicts (
        conflict_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, commands TEXT NOT NULL,
        freeze_command TEXT NOT NULL, detected_at TEXT NOT NULL, window_s REAL NOT NULL,
        decision TEXT, decided_at TEXT, decided_by TEXT, decision_command TEXT,
        decision_seq BIGINT)""",
    "CREATE INDEX IF NOT EXISTS order_conflicts_order ON order_conflicts (order_id, decided_at)",
)
DECISIONS = ("cancel", "ship")


class ConflictError(Refusal, LookupError):
    """No open conflict to decide."""


def _is_cancel(kind: str, payload: dict[str, Any]) -> bool:
    return kind == "freeze" and payload.get("reason") == "cancel"


def open_conflict(tx: Tx, order_id: str) -> dict[str, Any] | None:
    row = tx.one("SELECT conflict_id, commands, freeze_command, detected_at, window_s"
                 " FROM order_conflicts WHERE order_id = ? AND decided_at IS NULL", [order_id])
    if row is None:
        return None
    return {"conflict_id": row[0], "commands": json.loads(row[1]), "freeze_command": row[2],
            "detected_at": row[3], "window_s": row[4]}


def detect_conflict(storage: HubStorage, tx: Tx, payload: dict[str, Any],
                    window_s: float) -> dict[str, Any] | None:
    """After a command was appended: a conflict it causes (or joins), with the needs_decision
    freeze issued in this transaction; None when it causes none."""
    kind, order_id = payload["kind"], payload["order_id"]
    if kind != "expedite" and not _is_cancel(kind, payload):
        return None
    current = open_conflict(tx, order_id)
    if current is not None:
        # Another cancel or expedite while undecided: log it with the conflict and put a fresh
        # needs_decision freeze on top (a newer cancel freeze must not hide the open question).
        commands = [*current["commands"], payload["command_id"]]
        freeze = storage.append_command(tx, "freeze", order_id, {
            "reason": "needs_decision", "conflict_id": current["conflict_id"]})
        tx.execute("UPDATE order_conflicts SET commands = ?, freeze_command = ?"
                   " WHERE conflict_id = ?",
                   [json.dumps(commands), freeze["command_id"], current["conflict_id"]])
        return {**current, "commands": commands, "freeze_command": freeze["command_id"]}
    row = tx.one("SELECT COALESCE(MAX(decision_seq), 0) FROM order_conflicts WHERE order_id = ?",
                 [order_id])
    decided_seq = int(row[0] or 0)
    want = "freeze" if kind == "expedite" else "expedite"
    issued = parse_time(payload["issued_at"])
    rows = tx.all("SELECT change_seq, payload FROM changes WHERE order_id = ? AND kind = ?"
                  " AND change_seq > ? AND change_seq < ? ORDER BY change_seq DESC LIMIT 20",
                  [order_id, want, decided_seq, payload["change_seq"]])
    for _, text in rows:
        other = json.loads(text)
        if want == "freeze" and not _is_cancel("freeze", other):
            continue
        if abs((issued - parse_time(other["issued_at"])).total_seconds()) > window_s:
            break  # older ones are further away still
        conflict_id = secrets.token_hex(8)
        freeze = storage.append_command(tx, "freeze", order_id, {
            "reason": "needs_decision", "conflict_id": conflict_id})
        commands = [other["command_id"], payload["command_id"]]
        tx.execute(
            "INSERT INTO order_conflicts (conflict_id, order_id, commands, freeze_command,"
            " detected_at, window_s) VALUES (?, ?, ?, ?, ?, ?)",
            [conflict_id, order_id, json.dumps(commands), freeze["command_id"],
             freeze["issued_at"], window_s])
        return {"conflict_id": conflict_id, "commands": commands,
                "freeze_command": freeze["command_id"], "detected_at": freeze["issued_at"],
                "window_s": window_s}
    return None


def decide(storage: HubStorage, tx: Tx, order_id: str, decision: str,
           operator: str, device: str | None = None) -> dict[str, Any]:
    """Close the open conflict of ``order_id``: a cancel freeze or an unfreeze, signed.
    ``device``: the device a supervisor decided on (signed in as ``decided_device``)."""
    current = open_conflict(tx, order_id)
    if current is None:
        raise ConflictError("no_conflict", f"order {order_id} has no open conflict to decide")
    who = {"conflict_id": current["conflict_id"], "decided_by": operator,
           **({"decided_device": device} if device else {})}
    if decision == "cancel":
        command = storage.append_command(tx, "freeze", order_id, {"reason": "cancel", **who})
    else:
        command = storage.append_command(tx, "unfreeze", order_id, who)
    tx.execute("UPDATE order_conflicts SET decision = ?, decided_at = ?, decided_by = ?,"
               " decided_device = ?, decision_command = ?, decision_seq = ?"
               " WHERE conflict_id = ?",
               [decision, command["issued_at"], operator, device, command["command_id"],
                command["change_seq"], current["conflict_id"]])
    return {**current, "decision": decision, "decided_by": operator, "decided_device": device,
            "command": command}


def list_conflicts(tx: Tx, *, open_only: bool, limit: int, scope: AdminScope,
                   details: bool = False) -> list[dict[str, Any]]:
    """Conflicts, newest first; ``details``: with ``command_details``, what each of the
    conflict's commands was (kind, reason, issued_at), for a person deciding."""
    # a conflict belongs to its order's site (an order the hub never saw: the default site)
    sites, params = scope.where("COALESCE(o.site, 'default')")
    sql = ("SELECT c.conflict_id, c.order_id, c.commands, c.freeze_command, c.detected_at,"
           " c.window_s, c.decision, c.decided_at, c.decided_by, c.decided_device,"
           " c.decision_command"
           f" FROM order_conflicts c LEFT JOIN orders o ON o.order_id = c.order_id WHERE {sites}")
    if open_only:
        sql += " AND c.decided_at IS NULL"
    rows = tx.all(sql + " ORDER BY c.detected_at DESC LIMIT ?", [*params, limit])
    out = rows_as_dicts(rows, ("conflict_id", "order_id", "commands", "freeze_command",
                               "detected_at", "window_s", "decision", "decided_at", "decided_by",
                               "decided_device", "decision_command"), json_keys=("commands",))
    for conflict in out if details else ():
        wanted = set(conflict["commands"])
        found = {}
        for kind, text in tx.all("SELECT kind, payload FROM changes WHERE order_id = ?"
                                 " AND kind IN ('freeze', 'expedite')", [conflict["order_id"]]):
            payload = json.loads(text)
            if payload.get("command_id") in wanted:
                found[payload["command_id"]] = {
                    "command_id": payload["command_id"], "kind": kind,
                    "reason": payload.get("reason"), "issued_at": payload.get("issued_at")}
        conflict["command_details"] = [found[c] for c in conflict["commands"] if c in found]
    return out


# -- acknowledgements ---------------------------------------------------------------------------
def store_acks(tx: Tx, device_id: str, acks: list[dict[str, Any]], received_at: str) -> int:
    stored = 0
    for ack in acks:
        tx.execute(
            "INSERT INTO freeze_acks (command_id, device_id, order_id, applied_at, effects_at,"
            " received_at, result) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (command_id, device_id) DO NOTHING",
            [ack["command_id"], device_id, ack.get("order_id"), ack.get("applied_at"),
             ack.get("effects_at"), received_at,
             json.dumps(ack.get("result") or {}, ensure_ascii=False)])
        stored += 1
    return stored


LATE_LISTED = 100  # device ids named in ``late``; ``late_count`` counts them all


def list_freezes(tx: Tx, *, now: datetime, within_s: float, unacked: bool, since: str | None,
                 limit: int, scope: AdminScope, all_devices: bool = False) -> list[dict[str, Any]]:
    """Freeze commands, newest first, with each registered device's acknowledgement.

    ``late`` lists the devices (registered before the freeze) whose ack did not reach the hub
    within ``within_s`` of the issue; a freeze younger than that is not late yet.
    ``unacked``: only freezes with a late device. ``acks`` lists the devices that acknowledged;
    with ``all_devices``, every expected device too (a fleet's thousands: ask for it when needed).
    """
    sites, params = scope.where()
    where = f"kind = 'freeze' AND {sites}"
    if since:
        where += " AND created_at >= ?"
        params.append(since)
    rows = tx.all(f"SELECT change_seq, order_id, payload, site FROM changes WHERE {where}"
                  " ORDER BY change_seq DESC LIMIT ?", [*params, limit])
    by_site: dict[str, list[tuple[str, str]]] = {}
    for device_id, created, site in tx.all(
            "SELECT device_id, created_at, site FROM devices ORDER BY device_id"):
        by_site.setdefault(site, []).append((device_id, created))
    out = []
    for seq, order_id, text, site in rows:
        devices = by_site.get(site, [])
        payload = json.loads(text)
        issued = parse_time(payload["issued_at"])
        acks = {r[0]: r for r in tx.all(
            "SELECT device_id, received_at, applied_at, effects_at, result FROM freeze_acks"
            " WHERE command_id = ?", [payload["command_id"]])}
        expected = [d for d, created in devices if parse_time(created) <= issued]
        items, late = [], []
        for device_id in sorted(set(expected) | set(acks)):
            ack = acks.get(device_id)
            overdue = (now - issued).total_seconds() > within_s
            seconds = None if ack is None else round(
                (parse_time(ack[1]) - issued).total_seconds(), 3)
            if ack is not None or all_devices:
                items.append({"device_id": device_id, "received_at": ack[1] if ack else None,
                              "seconds": seconds, "applied_at": ack[2] if ack else None,
                              "effects_at": ack[3] if ack else None,
                              "result": json.loads(ack[4]) if ack else None})
            if (seconds is None and overdue) or (seconds is not None and seconds > within_s):
                late.append(device_id)
        if unacked and not late:
            continue
        out.append({"change_seq": seq, "command_id": payload["command_id"], "order_id": order_id,
                    "reason": payload.get("reason"), "version": payload.get("version"),
                    "issued_at": payload["issued_at"], "site": site, "expected": len(expected),
                    "acked": len(acks), "acks": items, "late": late[:LATE_LISTED],
                    "late_count": len(late)})
    return out
