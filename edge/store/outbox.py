"""The events outbox: every state change writes its event here in the same transaction."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from ulid import ULID

from scanedge.edge.domain.hlc import Hlc, tick
from scanedge.edge.store.db import utc_now


@dataclass(frozen=True)
class Event:
    seq: int
    event_id: str
    device_id: str
    type: str
    order_id: str | None
    payload: dict[str, Any]
    device_time: str
    hlc: str = ""


_RETURNING = sqlite3.sqlite_version_info >= (3, 35)  # INSERT ... RETURNING: one statement


def next_counter(db: sqlite_utils.Database, name: str) -> int:
    upsert = ("INSERT INTO counters (name, value) VALUES (?, 1)"
              " ON CONFLICT (name) DO UPDATE SET value = value + 1")
    if _RETURNING:
        return db.execute(upsert + " RETURNING value", [name]).fetchall()[0][0]
    db.execute(upsert, [name])
    return db.execute("SELECT value FROM counters WHERE name = ?", [name]).fetchone()[0]


def append_event(
    db: sqlite_utils.Database,
    device_id: str,
    type_: str,
    payload: dict[str, Any],
    *,
    order_id: str | None = None,
) -> Event:
    """Add an event; call inside the transaction of the state change it records."""
    event = Event(
        seq=next_counter(db, "event_seq"),
        event_id=str(ULID()),
        device_id=device_id,
        type=type_,
        order_id=order_id,
        payload=payload,
        device_time=utc_now(),
        hlc=str(_next_hlc(db)),
    )
    db.execute(
        "INSERT INTO events (seq, event_id, device_id, type, order_id, payload, device_time, hlc)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [event.seq, event.event_id, device_id, type_, order_id,
         json.dumps(payload, ensure_ascii=False, separators=(",", ":")), event.device_time,
         event.hlc],
    )
    return event


def _next_hlc(db: sqlite_utils.Database) -> Hlc:
    """Persisted across restarts, so a clock that jumps back after a reboot cannot reorder."""
    row = db.execute("SELECT value FROM sync_state WHERE key = 'hlc'").fetchone()
    now = tick(Hlc.parse(row[0]) if row else None, int(time.time() * 1000))
    db.execute("INSERT INTO sync_state (key, value) VALUES ('hlc', ?)"
               " ON CONFLICT (key) DO UPDATE SET value = excluded.value", [str(now)])
    return now


def pending_batch(db: sqlite_utils.Database, max_events: int, max_bytes: int) -> list[dict[str, Any]]:
    """The oldest unsent events, as the hub takes them, within the batch limits (at least one)."""
    rows = db.execute(
        "SELECT seq, event_id, device_id, type, order_id, payload, device_time, hlc FROM events"
        " WHERE state = 'pending' ORDER BY seq LIMIT ?", [max_events]).fetchall()
    batch: list[dict[str, Any]] = []
    size = 0
    for seq, event_id, device_id, type_, order_id, payload, device_time, hlc in rows:
        size += len(payload) + 200
        if batch and size > max_bytes:
            break
        batch.append({"event_id": event_id, "device_id": device_id, "seq": seq, "type": type_,
                      "order_id": order_id, "payload": json.loads(payload),
                      "device_time": device_time, "hlc": hlc})
    return batch


def mark_results(db: sqlite_utils.Database, results: Sequence[tuple[str, str]]) -> tuple[int, int]:
    """Apply the hub's per-event answers: accepted/duplicate -> acked, rejected -> parked.

    Returns (acked, parked). Only events still pending change: marking twice is harmless.
    """
    acked = parked = 0
    now = utc_now()
    for event_id, status in results:
        if status.startswith("rejected"):
            parked += db.execute(
                "UPDATE events SET state = 'parked', error = ?, synced_at = ?"
                " WHERE event_id = ? AND state = 'pending'", [status, now, event_id]).rowcount
        else:
            acked += db.execute(
                "UPDATE events SET state = 'acked', synced_at = ?"
                " WHERE event_id = ? AND state = 'pending'", [now, event_id]).rowcount
    return acked, parked


def purge_acked(db: sqlite_utils.Database, older_than_iso: str) -> int:
    """Delete events the hub acknowledged before the given time; never pending or parked ones."""
    return db.execute("DELETE FROM events WHERE state = 'acked' AND synced_at < ?",
                      [older_than_iso]).rowcount


@dataclass(frozen=True)
class OutboxStatus:
    pending: int
    parked: int
    acked: int
    oldest_pending_seq: int | None
    oldest_pending_time: str | None
    last_seq: int


def outbox_status(db: sqlite_utils.Database) -> OutboxStatus:
    counts = dict(db.execute("SELECT state, COUNT(*) FROM events GROUP BY state").fetchall())
    oldest = db.execute(
        "SELECT seq, device_time FROM events WHERE state = 'pending' ORDER BY seq LIMIT 1"
    ).fetchone()
    last = db.execute("SELECT value FROM counters WHERE name = 'event_seq'").fetchone()
    return OutboxStatus(
        pending=counts.get("pending", 0),
        parked=counts.get("parked", 0),
        acked=counts.get("acked", 0),
        oldest_pending_seq=oldest[0] if oldest else None,
        oldest_pending_time=oldest[1] if oldest else None,
        last_seq=last[0] if last else 0,
    )
