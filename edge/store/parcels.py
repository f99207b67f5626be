"""An order's split into parcels (docs/parcels.md): one row per split order, its parcels'
contents as JSON (edge/domain/parcels.py ``Split``), and which print job labelled which parcel."""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from scanedge.edge.domain.orders import SUB_TRACKING_KEY
from scanedge.edge.domain.parcels import Split
from scanedge.edge.store.db import Migration, utc_now

COMPONENT = "parcels"
PARCEL_JOB_KIND = "parcel"  # a print job of one parcel's label (printers/parcel_label.py)


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("""CREATE TABLE parcel_splits (
        order_id TEXT PRIMARY KEY, split TEXT NOT NULL, station TEXT NOT NULL,
        operator TEXT, updated_at TEXT NOT NULL)""")


MIGRATIONS = (Migration(1, "orders split into parcels", _v1),)


def load_split(db: sqlite_utils.Database, order_id: str) -> Split | None:
    row = db.execute("SELECT split FROM parcel_splits WHERE order_id = ?", [order_id]).fetchone()
    return Split.from_json(json.loads(row[0])) if row else None


def save_split(db: sqlite_utils.Database, order_id: str, split: Split, *, station: str,
               operator: str | None) -> None:
    db.execute("INSERT INTO parcel_splits (order_id, split, station, operator, updated_at)"
               " VALUES (?, ?, ?, ?, ?) ON CONFLICT (order_id) DO UPDATE SET"
               " split = excluded.split, station = excluded.station,"
               " operator = excluded.operator, updated_at = excluded.updated_at",
               [order_id, json.dumps(split.as_json()), station, operator, utc_now()])


def parcel_jobs(db: sqlite_utils.Database, order_id: str) -> dict[int, dict[str, Any]]:
    """The latest label job of each parcel of the order: {parcel_no: {job_id, state, weight_kg}}."""
    out: dict[int, dict[str, Any]] = {}
    for job_id, state, payload in db.execute(
            "SELECT job_id, state, payload FROM print_jobs WHERE order_id = ? AND kind = ?"
            " ORDER BY created_at, job_id", [order_id, PARCEL_JOB_KIND]):
        doc = json.loads(payload or "{}")
        if isinstance(doc.get("parcel_no"), int):
            out[doc["parcel_no"]] = {"job_id": job_id, "state": state,
                                     "weight_kg": doc.get("weight_kg"),
                                     "tracking_number": doc.get("tracking_number")}
    return out


def order_for_sub_tracking(db: sqlite_utils.Database, number: str) -> tuple[str, int] | None:
    """The order and parcel whose 子单号 ``number`` is (``sub_tracking_numbers`` of the order
    document: parcel k carries the (k-1)th), or None. Read from the orders' kept extra keys: only
    codes nothing else named reach here."""
    wanted = number.upper().replace(" ", "")
    if not wanted or '"' in wanted or "\\" in wanted:
        return None
    for order_id, extra in db.execute(
            "SELECT order_id, extra FROM orders WHERE instr(upper(extra), ?) > 0"
            " ORDER BY updated_at DESC", [f'"{wanted}"']):
        subs = json.loads(extra or "{}").get(SUB_TRACKING_KEY)
        if isinstance(subs, list):
            normal = [s.upper().replace(" ", "") if isinstance(s, str) else None for s in subs]
            if wanted in normal:
                return order_id, normal.index(wanted) + 2
    return None
