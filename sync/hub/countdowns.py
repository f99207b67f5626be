"""The hub's side of 生效倒计时 and 熔断: each countdown command's row, the fuse check at expiry.

Rules are in edge/domain/countdown.py. Here: a ``countdowns`` row is written in the transaction
that appends the command (so no command is ever without its countdown), and :func:`sweep`
settles every row whose ``effective_by`` has passed: ``met``, or ``tripped`` with the devices
that were not in time, a ``fuse`` change to the site's devices (their supervisor hears it) and a
webhook notification row (sync/hub/webhooks.py delivers it).

Which devices are expected: every device registered at the order's site before the command was
issued. A site's devices all receive all of its orders (sync is per site), so each of them may be
the one packing the parcel; a device retired for good should be removed from the hub, or it
trips every fuse of its site.

Everything runs inside a :class:`~sync.hub.storage.Tx` (SQLite or PostgreSQL, ``?`` placeholders).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scanedge.edge.domain.countdown import RUNNING, TRIPPED, FuseCheck, check_fuse
from scanedge.edge.domain.interception_report import iso, parse_time

if TYPE_CHECKING:
    from scanedge.sync.hub.storage import AdminScope, HubStorage, Tx

NAMED = 100  # device ids listed per command; the counts count them all
SWEEP_BATCH = 500


def schema(tx: Tx, dialect: str) -> None:
    """Hub schema 5: countdowns and the hub's webhook notifications."""
    auto_pk = "BIGSERIAL PRIMARY KEY" if dialect == "postgresql" else \
        "INTEGER PRIMARY KEY AUTOINCREMENT"
    real = "DOUBLE PRECISION" if dialect == "postgresql" else "REAL"
    for stmt in (
        f"""CREATE TABLE IF NOT EXISTS countdowns (
            command_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, site TEXT NOT NULL,
            kind TEXT NOT NULL, reason TEXT, category TEXT, issued_at TEXT NOT NULL,
            effective_by TEXT NOT NULL, countdown_s {real} NOT NULL,
            state TEXT NOT NULL DEFAULT 'running', settled_at TEXT, not_in_time TEXT)""",
        "CREATE INDEX IF NOT EXISTS countdowns_due ON countdowns (state, effective_by)",
        "CREATE INDEX IF NOT EXISTS countdowns_site ON countdowns (site, issued_at)",
        f"""CREATE TABLE IF NOT EXISTS hub_notifications (
            id {auto_pk}, dedup TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, payload TEXT NOT NULL,
            created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            next_at {real} NOT NULL DEFAULT 0, sent_at TEXT, last_error TEXT)""",
    ):
        tx.execute(stmt)


def start(tx: Tx, payload: dict[str, Any], category: str | None) -> None:
    """The countdown row of a command just appended (its payload carries ``effective_by``)."""
    tx.execute(
        "INSERT INTO countdowns (command_id, order_id, site, kind, reason, category, issued_at,"
        " effective_by, countdown_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [payload["command_id"], payload["order_id"], payload["site"], payload["kind"],
         payload.get("reason"), category, payload["issued_at"], payload["effective_by"],
         payload["countdown_s"]])


_COLS = ("command_id", "order_id", "site", "kind", "reason", "category", "issued_at",
         "effective_by", "countdown_s", "state", "settled_at", "not_in_time")


def _check(tx: Tx, row: dict[str, Any], now: datetime) -> FuseCheck:
    expected = [r[0] for r in tx.all(
        "SELECT device_id FROM devices WHERE site = ? AND created_at <= ?",
        [row["site"], row["issued_at"]])]
    acks = {r[0]: parse_time(r[1]) for r in tx.all(
        "SELECT device_id, received_at FROM freeze_acks WHERE command_id = ?",
        [row["command_id"]])}
    return check_fuse(expected, acks, parse_time(row["effective_by"]), now)


def _item(row: dict[str, Any], check: FuseCheck) -> dict[str, Any]:
    # A settled row keeps its state. An unsettled one shows what the sweep will decide: acks
    # received after effective_by count as late, so that answer no longer changes.
    state = row["state"] if row["state"] != RUNNING else check.state
    return {
        **{k: row[k] for k in _COLS if k != "not_in_time"},
        "state": state, "remaining_s": check.remaining_s, "expected": check.expected,
        "applied": len(check.applied), "missing": list(check.missing[:NAMED]),
        "missing_count": len(check.missing),
        "late": [{"device_id": d, "seconds_late": s} for d, s in check.late[:NAMED]],
        "not_in_time": json.loads(row["not_in_time"]) if row["not_in_time"] else
        list(check.not_in_time[:NAMED]) if state == TRIPPED else [],
    }


def list_countdowns(tx: Tx, *, now: datetime, scope: AdminScope | None = None,
                    site: str | None = None, state: str | None = None,
                    since: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Countdowns, newest first: running ones with the seconds left and who applied so far;
    settled ones with who was not in time. Limited to ``scope``'s sites or one ``site``."""
    where, params = ("1 = 1", []) if scope is None else scope.where()
    if site is not None:
        where += " AND site = ?"
        params.append(site)
    if state is not None:
        where += " AND state = ?"
        params.append(state)
    if since is not None:
        where += " AND issued_at >= ?"
        params.append(since)
    rows = tx.all(f"SELECT {', '.join(_COLS)} FROM countdowns WHERE {where}"
                  " ORDER BY issued_at DESC, command_id LIMIT ?", [*params, limit])
    out = []
    for r in rows:
        row = dict(zip(_COLS, r, strict=True))
        out.append(_item(row, _check(tx, row, now)))
    return out


def sweep(storage: HubStorage, tx: Tx, now: datetime) -> list[dict[str, Any]]:
    """Settle every running countdown whose ``effective_by`` has passed (the caller holds the
    changes lock: the ``fuse`` changes it appends). Returns the fuses that tripped."""
    rows = tx.all(f"SELECT {', '.join(_COLS)} FROM countdowns WHERE state = ?"
                  " AND effective_by <= ? ORDER BY effective_by LIMIT ?",
                  [RUNNING, iso(now), SWEEP_BATCH])
    trips = []
    for r in rows:
        row = dict(zip(_COLS, r, strict=True))
        check = _check(tx, row, now)
        who = list(check.not_in_time)
        tx.execute("UPDATE countdowns SET state = ?, settled_at = ?, not_in_time = ?"
                   " WHERE command_id = ?",
                   [check.state, iso(now), json.dumps(who), row["command_id"]])
        if check.state != TRIPPED:
            continue
        trip = {"type": "fuse_tripped", "command_id": row["command_id"],
                "order_id": row["order_id"], "site": row["site"], "kind": row["kind"],
                "reason": row["reason"], "category": row["category"],
                "issued_at": row["issued_at"], "effective_by": row["effective_by"],
                "countdown_s": row["countdown_s"], "tripped_at": iso(now),
                "expected": check.expected, "applied": len(check.applied),
                "not_in_time": who[:NAMED], "not_in_time_count": len(who)}
        # the site's devices hear it (their supervisor's alarm); the order system by webhook
        storage.append_change(tx, "fuse", row["order_id"], trip, row["site"])
        tx.execute("INSERT INTO hub_notifications (dedup, kind, payload, created_at)"
                   " VALUES (?, ?, ?, ?) ON CONFLICT (dedup) DO NOTHING",
                   [f"fuse:{row['command_id']}", "fuse_tripped",
                    json.dumps(trip, ensure_ascii=False), iso(now)])
        trips.append(trip)
    return trips


def tripped_ids(tx: Tx, since: str, scope: AdminScope) -> list[str]:
    """Command ids whose fuse tripped, of commands issued from ``since`` (the report's column)."""
    sites, params = scope.where()
    return [r[0] for r in tx.all(
        f"SELECT command_id FROM countdowns WHERE state = ? AND issued_at >= ? AND {sites}",
        [TRIPPED, since, *params])]
