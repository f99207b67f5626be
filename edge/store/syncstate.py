"""The sync client's own small state (cursor, last contacts) as key/value rows."""

from __future__ import annotations

import sqlite_utils


def get_state(db: sqlite_utils.Database, key: str, default: str | None = None) -> str | None:
    row = db.execute("SELECT value FROM sync_state WHERE key = ?", [key]).fetchone()
    return row[0] if row else default


def set_state(db: sqlite_utils.Database, key: str, value: str) -> None:
    db.execute("INSERT INTO sync_state (key, value) VALUES (?, ?)"
               " ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key, value])


def get_cursor(db: sqlite_utils.Database) -> int:
    return int(get_state(db, "cursor", "0") or 0)
