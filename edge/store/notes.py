"""Notes (备注) from the hub, per order: shown at the bench until a person has read them.

A note command is applied in the transaction that applies the hub's changes (sync/apply.py);
until it is marked read, every scan of its order answers ``note_pending`` (edge/domain/packing.py).
A newer note of the same order supersedes an unread older one: the packer reads the latest.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from scanedge.edge.store.db import Migration, utc_now

COMPONENT = "notes"


def _v1(db: sqlite_utils.Database) -> None:
    # IF NOT EXISTS: apply_changes creates it on the fly in a store nobody migrated yet
    db.execute("""CREATE TABLE IF NOT EXISTS order_notes (
        command_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, note TEXT NOT NULL,
        issued_at TEXT NOT NULL, effective_by TEXT, applied_at TEXT NOT NULL,
        read_at TEXT, read_by TEXT, read_station TEXT, superseded_by TEXT)""")
    db.execute("CREATE INDEX IF NOT EXISTS order_notes_open ON order_notes (order_id, read_at)")


MIGRATIONS = (Migration(1, "notes from the hub", _v1),)


def ensure_table(db: sqlite_utils.Database) -> None:
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'order_notes'").fetchone() is None:
        _v1(db)


@dataclass(frozen=True)
class Note:
    command_id: str
    order_id: str
    text: str
    issued_at: str
    effective_by: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"command_id": self.command_id, "order_id": self.order_id, "note": self.text,
                "issued_at": self.issued_at, "effective_by": self.effective_by}


def save_note(db: sqlite_utils.Database, note: Note) -> None:
    """Store a note; an unread older note of the order is superseded by it."""
    db.execute("UPDATE order_notes SET superseded_by = ? WHERE order_id = ? AND read_at IS NULL"
               " AND superseded_by IS NULL", [note.command_id, note.order_id])
    db.execute("INSERT INTO order_notes (command_id, order_id, note, issued_at, effective_by,"
               " applied_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (command_id) DO NOTHING",
               [note.command_id, note.order_id, note.text, note.issued_at, note.effective_by,
                utc_now()])


def pending_note(db: sqlite_utils.Database, order_id: str) -> Note | None:
    """The order's note nobody has read yet (the latest), or None."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'order_notes'").fetchone() is None:
        return None  # a store that never had a note
    return unread_note(db, order_id)


def unread_note(db: sqlite_utils.Database, order_id: str) -> Note | None:
    """:func:`pending_note` in a store known to have the table (migrated: the scan service's)."""
    row = db.execute("SELECT command_id, order_id, note, issued_at, effective_by FROM order_notes"
                     " WHERE order_id = ? AND read_at IS NULL AND superseded_by IS NULL"
                     " ORDER BY issued_at DESC LIMIT 1", [order_id]).fetchone()
    return Note(*row) if row else None


def mark_read(db: sqlite_utils.Database, order_id: str, command_id: str, *, operator: str,
              station: str) -> tuple[Note, str] | None:
    """A person read the note: (the note, when it was read), or None if it is not the order's
    pending note (read already, superseded, or unknown). The older notes it superseded are
    read with it."""
    note = pending_note(db, order_id)
    if note is None or note.command_id != command_id:
        return None
    now = utc_now()
    db.execute("UPDATE order_notes SET read_at = ?, read_by = ?, read_station = ?"
               " WHERE order_id = ? AND read_at IS NULL", [now, operator, station, order_id])
    return note, now
