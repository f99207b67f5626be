"""The device's record of hub commands: which ones it saw (replays are refused) and what is still
to be done after an applied freeze (cancel the labels, alarm, acknowledge to the hub).

Both tables are written in the transaction that applies the hub's changes (sync/apply.py), so a
crash after that commit still finds every freeze whose follow-up did not run, and runs it at the
next start.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from scanedge.edge.store import Store
from scanedge.edge.store.db import Migration, utc_now

COMPONENT = "hub_commands"


def _v1(db: sqlite_utils.Database) -> None:
    # IF NOT EXISTS: apply_changes creates them on the fly in a store nobody migrated yet
    # (a bare SyncWorker, `scanedge sync --once`); the migration then only records the version.
    db.execute("""
        CREATE TABLE IF NOT EXISTS command_log (
            id INTEGER PRIMARY KEY,
            command_id TEXT,
            change_seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            order_id TEXT,
            version INTEGER,
            outcome TEXT NOT NULL CHECK (outcome IN ('applied', 'ignored', 'rejected')),
            problem TEXT,
            received_at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX IF NOT EXISTS command_log_id ON command_log (command_id, outcome)")
    db.execute("""
        CREATE TABLE IF NOT EXISTS freeze_followups (
            command_id TEXT PRIMARY KEY,
            order_id TEXT NOT NULL,
            reason TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            version INTEGER,
            applied_at TEXT NOT NULL,
            effects_at TEXT,          -- labels cancelled, alarm raised (or found superseded)
            result TEXT,              -- JSON: what the follow-up did
            acked_at TEXT             -- the hub took the acknowledgement
        )""")
    db.execute("CREATE INDEX IF NOT EXISTS freeze_followups_open ON freeze_followups (acked_at)")


def _v2(db: sqlite_utils.Database) -> None:
    # a note command has a follow-up too (show it at the stations, acknowledge it to the hub)
    columns = {r[1] for r in db.execute("PRAGMA table_info(freeze_followups)")}
    if "kind" not in columns:
        db.execute("ALTER TABLE freeze_followups ADD COLUMN kind TEXT NOT NULL DEFAULT 'freeze'")


MIGRATIONS = (Migration(1, "hub command log, freeze follow-ups", _v1),
              Migration(2, "follow-ups of note commands", _v2))


def ensure_schema(store: Store) -> None:
    store.ensure_schema(COMPONENT, MIGRATIONS)


def ensure_tables(db: sqlite_utils.Database) -> None:
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'freeze_followups'").fetchone() is None:
        _v1(db)
    _v2(db)


def seen(db: sqlite_utils.Database, command_id: str) -> bool:
    """A command that already took effect (or was found too old) here: a second copy is a replay."""
    return db.execute("SELECT 1 FROM command_log WHERE command_id = ? AND outcome != 'rejected'",
                      [command_id]).fetchone() is not None


def log_command(db: sqlite_utils.Database, change: dict[str, Any], outcome: str,
                problem: str | None = None) -> None:
    payload = change.get("payload") if isinstance(change.get("payload"), dict) else {}
    command_id = payload.get("command_id")
    version = payload.get("version")
    db.execute(
        "INSERT INTO command_log (command_id, change_seq, kind, order_id, version, outcome, problem,"
        " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [command_id if isinstance(command_id, str) else None, int(change["seq"]),
         str(change.get("kind")), change.get("order_id"),
         version if isinstance(version, int) else None, outcome, problem, utc_now()])


def add_followup(db: sqlite_utils.Database, payload: dict[str, Any], kind: str = "freeze") -> None:
    """``kind``: freeze (``reason`` is the freeze's) or note (``reason`` is "note")."""
    db.execute(
        "INSERT INTO freeze_followups (command_id, order_id, reason, issued_at, version,"
        " applied_at, kind) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (command_id) DO NOTHING",
        [payload["command_id"], payload["order_id"], payload.get("reason") or kind,
         payload["issued_at"], payload.get("version"), utc_now(), kind])


@dataclass(frozen=True)
class Followup:
    command_id: str
    order_id: str
    reason: str
    issued_at: str
    version: int | None
    applied_at: str
    effects_at: str | None
    result: dict[str, Any]
    kind: str = "freeze"


_COLS = "command_id, order_id, reason, issued_at, version, applied_at, effects_at, result, kind"


def _followup(row: tuple) -> Followup:
    return Followup(*row[:7], json.loads(row[7]) if row[7] else {}, row[8])


def pending_effects(db: sqlite_utils.Database) -> list[Followup]:
    rows = db.execute(f"SELECT {_COLS} FROM freeze_followups WHERE effects_at IS NULL"
                      " ORDER BY applied_at").fetchall()
    return [_followup(r) for r in rows]


def pending_acks(db: sqlite_utils.Database, limit: int = 200) -> list[Followup]:
    rows = db.execute(f"SELECT {_COLS} FROM freeze_followups WHERE effects_at IS NOT NULL"
                      " AND acked_at IS NULL ORDER BY effects_at LIMIT ?", [limit]).fetchall()
    return [_followup(r) for r in rows]


def mark_effects(db: sqlite_utils.Database, command_id: str, result: dict[str, Any]) -> None:
    db.execute("UPDATE freeze_followups SET effects_at = ?, result = ? WHERE command_id = ?",
               [utc_now(), json.dumps(result, ensure_ascii=False), command_id])


def mark_acked(db: sqlite_utils.Database, command_ids: list[str]) -> None:
    now = utc_now()
    for command_id in command_ids:
        db.execute("UPDATE freeze_followups SET acked_at = ? WHERE command_id = ?", [now, command_id])
