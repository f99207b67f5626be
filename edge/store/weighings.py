"""Every weighing of a parcel at a bench (docs/scale.md): the label prints the latest one, the lane
rule reads it, and the history says who weighed what when a parcel is disputed."""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from scanedge.edge.domain.weighing import WeightCheck
from scanedge.edge.store.db import Migration, utc_now

COMPONENT = "weighings"


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("""CREATE TABLE weighings (
        id INTEGER PRIMARY KEY, order_id TEXT NOT NULL, verdict TEXT NOT NULL,
        weight_kg REAL, expected_kg REAL, allowed_kg REAL,
        station TEXT NOT NULL, operator TEXT, weighed_at TEXT NOT NULL)""")
    db.execute("CREATE INDEX weighings_order ON weighings (order_id, id)")


MIGRATIONS = (Migration(1, "weighings", _v1),)


@dataclass(frozen=True)
class Weighing:
    order_id: str
    check: WeightCheck
    station: str
    operator: str | None
    weighed_at: str


def record(db: sqlite_utils.Database, order_id: str, check: WeightCheck, *, station: str,
           operator: str | None) -> Weighing:
    weighing = Weighing(order_id, check, station, operator, utc_now())
    db.execute("INSERT INTO weighings (order_id, verdict, weight_kg, expected_kg, allowed_kg,"
               " station, operator, weighed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
               [order_id, check.verdict, check.measured_kg, check.expected_kg, check.allowed_kg,
                station, operator, weighing.weighed_at])
    return weighing


def latest_weight(db: sqlite_utils.Database, order_id: str) -> float | None:
    """The weight the parcel last showed on a scale (what its label says), or None."""
    row = db.execute("SELECT weight_kg FROM weighings WHERE order_id = ? AND weight_kg IS NOT NULL"
                     " ORDER BY id DESC LIMIT 1", [order_id]).fetchone()
    return float(row[0]) if row else None


def history(db: sqlite_utils.Database, order_id: str) -> list[Weighing]:
    rows = db.execute("SELECT verdict, weight_kg, expected_kg, allowed_kg, station, operator,"
                      " weighed_at FROM weighings WHERE order_id = ? ORDER BY id", [order_id])
    return [Weighing(order_id, WeightCheck(v, w, e, a), s, op, at) for v, w, e, a, s, op, at in rows]
