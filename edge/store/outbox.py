"""The events outbox: every state change writes its event here in the same transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from ulid import ULID

from edge.store.db import utc_now


@dataclass(frozen=True)
class Event:
    seq: int
    event_id: str
    device_id: str
    type: str
    order_id: str | None
    payload: dict[str, Any]
    device_time: str


def next_counter(db: sqlite_utils.Database, name: str) -> int:
    db.execute(
        "INSERT INTO counters (name, value) VALUES (?, 1)"
        " ON CONFLICT (name) DO UPDATE SET value = value + 1",
        [name],
    )
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
    )
    db.execute(
        "INSERT INTO events (seq, event_id, device_id, type, order_id, payload, device_time)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        [event.seq, event.event_id, device_id, type_, order_id,
         json.dumps(payload, ensure_ascii=False, separators=(",", ":")), event.device_time],
    )
    return event


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
