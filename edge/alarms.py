"""Alarms that stay until a person acknowledges them (a frozen order, a wrong item, a printer fault).

An alarm is a row (it survives a restart: a power cut must not silence a cancelled order), an
outbox event (the hub sees it), and a bus message ``alarm`` that every page shows; acknowledging
it writes ``alarm_ack``. Channels that make noise (printer buzzer, GPIO buzzer/LED, the pages'
vibration and voice) hear the bus topic ``alarm`` (its data is :meth:`Alarm.as_json`).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import sqlite_utils
from ulid import ULID

from scanedge.edge.bus import EventBus
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.store import Store
from scanedge.edge.store.db import Migration, utc_now
from scanedge.edge.store.outbox import append_event

log = logging.getLogger(__name__)
COMPONENT = "alarms"
LEVELS = ("alarm", "warning")


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE alarms (
            alarm_id TEXT PRIMARY KEY,
            type TEXT NOT NULL,          -- freeze | frozen_scan | wrong_item | printer | ...
            level TEXT NOT NULL CHECK (level IN ('alarm', 'warning')),
            order_id TEXT,
            station TEXT,
            message TEXT NOT NULL,       -- JSON {"zh": ..., "en": ...}
            details TEXT NOT NULL,       -- JSON
            created_at TEXT NOT NULL,
            acked_at TEXT,
            acked_by TEXT
        )""")
    db.execute("CREATE INDEX alarms_active ON alarms (acked_at, created_at)")


MIGRATIONS = (Migration(1, "alarms", _v1),)


@dataclass(frozen=True)
class Alarm:
    alarm_id: str
    type: str
    level: str
    order_id: str | None
    station: str | None
    message: dict[str, str]
    details: dict[str, Any]
    created_at: str
    acked_at: str | None = None
    acked_by: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "active": self.acked_at is None, "speak": self.message.get("zh")}


class AlarmError(Refusal, ValueError):
    """An acknowledgement that cannot be taken (unknown alarm, missing operator)."""


def _row_to_alarm(row: tuple) -> Alarm:
    return Alarm(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), json.loads(row[6]),
                 row[7], row[8], row[9])


_COLUMNS = ("alarm_id, type, level, order_id, station, message, details, created_at, acked_at,"
            " acked_by")


class AlarmCenter:
    def __init__(self, store: Store, device_id: str, bus: EventBus) -> None:
        self.store = store
        self.device_id = device_id
        self.bus = bus
        store.ensure_schema(COMPONENT, MIGRATIONS)

    def insert(self, db: sqlite_utils.Database, type_: str, message: dict[str, str], *,
               level: str = "alarm", order_id: str | None = None, station: str | None = None,
               **details: Any) -> Alarm:
        """Write an alarm inside the caller's transaction; call :meth:`announce` after commit."""
        if level not in LEVELS:
            raise ValueError(f"level {level!r}")
        alarm = Alarm(str(ULID()), type_, level, order_id, station, message, details, utc_now())
        db.execute(
            f"INSERT INTO alarms ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
            [alarm.alarm_id, type_, level, order_id, station,
             json.dumps(message, ensure_ascii=False), json.dumps(details, ensure_ascii=False),
             alarm.created_at])
        append_event(db, self.device_id, "alarm", {
            "alarm_id": alarm.alarm_id, "alarm_type": type_, "level": level, "station": station,
            "message": message, **details}, order_id=order_id)
        return alarm

    def announce(self, alarm: Alarm) -> None:
        """After the commit: tell the pages and the noise makers (bus topic ``alarm``)."""
        self.bus.publish("alarm", alarm.as_json())

    def raise_alarm(self, type_: str, message: dict[str, str], **kwargs: Any) -> Alarm:
        alarm = self.store.write(lambda db: self.insert(db, type_, message, **kwargs),
                                 essential=True)
        self.announce(alarm)
        return alarm

    def acknowledge(self, alarm_id: str, operator: str) -> Alarm:
        if not isinstance(operator, str) or not operator.strip() or len(operator) > 64:
            raise AlarmError("bad_request",
                             "operator: required (who acknowledged the alarm), 1-64 characters")

        def write(db: sqlite_utils.Database) -> Alarm:
            alarm = self.ack_in(db, alarm_id, operator)
            if alarm is None:
                raise AlarmError("not_found", f"no alarm {alarm_id}")
            return alarm

        alarm = self.store.write(write, essential=True)
        self.bus.publish("alarm_ack", alarm.as_json())
        return alarm

    def ack_in(self, db: sqlite_utils.Database, alarm_id: str, operator: str) -> Alarm | None:
        """Acknowledge inside the caller's transaction (publish ``alarm_ack`` after the commit);
        None if there is no such alarm. Acknowledging twice is harmless."""
        row = db.execute(f"SELECT {_COLUMNS} FROM alarms WHERE alarm_id = ?", [alarm_id]).fetchone()
        if row is None:
            return None
        alarm = _row_to_alarm(row)
        if alarm.acked_at is not None:
            return alarm
        now = utc_now()
        db.execute("UPDATE alarms SET acked_at = ?, acked_by = ? WHERE alarm_id = ?",
                   [now, operator, alarm_id])
        append_event(db, self.device_id, "alarm_ack", {
            "alarm_id": alarm_id, "operator": operator, "alarm_type": alarm.type,
            "raised_at": alarm.created_at}, order_id=alarm.order_id)
        return Alarm(**{**asdict(alarm), "acked_at": now, "acked_by": operator})

    @staticmethod
    def holding(db: sqlite_utils.Database, station: str) -> list[str]:
        """The unacknowledged level-``alarm`` alarms of ``station``: while there are any, the
        station's scans wait (docs/freeze.md, "Alarm holds")."""
        return [r[0] for r in db.execute(
            "SELECT alarm_id FROM alarms WHERE acked_at IS NULL AND level = 'alarm'"
            " AND station = ? ORDER BY created_at", [station])]

    def active(self, station: str | None = None) -> list[Alarm]:
        sql = f"SELECT {_COLUMNS} FROM alarms WHERE acked_at IS NULL"
        params: list[Any] = []
        if station:
            sql += " AND (station = ? OR station IS NULL)"
            params.append(station)
        rows = self.store.read().execute(sql + " ORDER BY created_at", params).fetchall()
        return [_row_to_alarm(r) for r in rows]

    def recent(self, limit: int = 50) -> list[Alarm]:
        rows = self.store.read().execute(
            f"SELECT {_COLUMNS} FROM alarms ORDER BY created_at DESC LIMIT ?", [limit]).fetchall()
        return [_row_to_alarm(r) for r in rows]
