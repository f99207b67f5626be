"""What a packing bench knows about an order beyond its counts: where it was packed, which gifts
a person confirmed, and which printed labels are void (an address changed after printing)."""

from __future__ import annotations

import sqlite_utils

from scanedge.edge.domain.labels import label_id
from scanedge.edge.domain.packing import PackState
from scanedge.edge.domain.print_gate import GateVerdict, print_gate
from scanedge.edge.domain.weighing import WeightCheck
from scanedge.edge.store import notes
from scanedge.edge.store.db import Migration, utc_now

COMPONENT = "bench"


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("""CREATE TABLE pack_stations (
        order_id TEXT PRIMARY KEY, station TEXT NOT NULL, updated_at TEXT NOT NULL)""")
    db.execute("""CREATE TABLE gift_checks (
        order_id TEXT NOT NULL, gift_no INTEGER NOT NULL, how TEXT NOT NULL,
        operator TEXT, confirmed_at TEXT NOT NULL, PRIMARY KEY (order_id, gift_no))""")
    db.execute("""CREATE TABLE void_labels (
        code TEXT NOT NULL, order_id TEXT NOT NULL, reason TEXT NOT NULL,
        voided_at TEXT NOT NULL, relabelled_at TEXT, PRIMARY KEY (code, order_id))""")


def _v2(db: sqlite_utils.Database) -> None:
    # every scan that opens or counts asks whether the order's label is void (by order, not code)
    db.execute("CREATE INDEX IF NOT EXISTS void_labels_order ON void_labels (order_id)")


MIGRATIONS = (Migration(1, "pack stations, gift checks, void labels", _v1),
              Migration(2, "void labels by order", _v2))


def gate(db: sqlite_utils.Database, state: PackState, station: str, policy: str,
         weight: WeightCheck | None = None) -> GateVerdict:
    """The print gate of ``state`` at ``station``, with what this device knows of the order
    (and ``weight``, the scale's check of the parcel, at a bench with a scale)."""
    order_id = state.order.order_id
    return gate_with(db, state, station, policy, gifts_confirmed(db, order_id),
                     notes.pending_note(db, order_id), weight)


def gate_with(db: sqlite_utils.Database, state: PackState, station: str, policy: str,
              gifts: frozenset[int], note: notes.Note | None,
              weight: WeightCheck | None = None) -> GateVerdict:
    """:func:`gate` with the order's confirmed gifts and pending note already loaded."""
    return print_gate(state, gifts, pack_station(db, state.order.order_id), station, policy,
                      note.text if note else None, weight)


def set_pack_station(db: sqlite_utils.Database, order_id: str, station: str) -> None:
    db.execute("INSERT INTO pack_stations (order_id, station, updated_at) VALUES (?, ?, ?)"
               " ON CONFLICT (order_id) DO UPDATE SET station = excluded.station,"
               " updated_at = excluded.updated_at", [order_id, station, utc_now()])


def pack_station(db: sqlite_utils.Database, order_id: str) -> str | None:
    row = db.execute("SELECT station FROM pack_stations WHERE order_id = ?", [order_id]).fetchone()
    return row[0] if row else None


def confirm_gift(db: sqlite_utils.Database, order_id: str, gift_no: int, *, how: str,
                 operator: str | None) -> bool:
    """Record a gift as confirmed (``how``: tap | scan); False if it already was."""
    cur = db.execute("INSERT INTO gift_checks (order_id, gift_no, how, operator, confirmed_at)"
                     " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                     [order_id, gift_no, how, operator, utc_now()])
    return cur.rowcount == 1


def gifts_confirmed(db: sqlite_utils.Database, order_id: str) -> frozenset[int]:
    return frozenset(r[0] for r in db.execute(
        "SELECT gift_no FROM gift_checks WHERE order_id = ?", [order_id]))


def void_label(db: sqlite_utils.Database, order_id: str, codes: list[str], reason: str) -> None:
    """The printed label(s) of ``order_id`` are void: scanning any of ``codes`` says so."""
    for code in codes:
        db.execute("INSERT INTO void_labels (code, order_id, reason, voided_at) VALUES (?, ?, ?, ?)"
                   " ON CONFLICT (code, order_id) DO UPDATE SET reason = excluded.reason,"
                   " voided_at = excluded.voided_at, relabelled_at = NULL",
                   [code, order_id, reason, utc_now()])


def voided(db: sqlite_utils.Database, order_id: str) -> str | None:
    """The reason the order's printed label is void and not yet replaced, or None."""
    row = db.execute("SELECT reason FROM void_labels WHERE order_id = ? AND relabelled_at IS NULL"
                     " LIMIT 1", [order_id]).fetchone()
    return row[0] if row else None


def label_generation(db: sqlite_utils.Database, order_id: str) -> int:
    """The generation of the order's current label: 1, plus one per label made void."""
    return 1 + db.execute("SELECT COUNT(*) FROM void_labels WHERE order_id = ?",
                          [order_id]).fetchone()[0]


def is_void(db: sqlite_utils.Database, code: str) -> bool:
    return db.execute("SELECT 1 FROM void_labels WHERE code = ?", [code]).fetchone() is not None


def void_printed_label(db: sqlite_utils.Database, order_id: str, reason: str) -> bool:
    """An address changed: if the order's current label was printed, it is void now (its
    replacement prints as the next generation, marked 改址重打). True if one was voided."""
    printed = db.execute("SELECT 1 FROM print_jobs WHERE order_id = ? AND state = 'printed'"
                         " LIMIT 1", [order_id]).fetchone() if _has_print_jobs(db) else None
    if printed is None or voided(db, order_id):
        return False
    void_label(db, order_id, [label_id(order_id, label_generation(db, order_id))], reason)
    return True


def _has_print_jobs(db: sqlite_utils.Database) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'print_jobs'"
                      ).fetchone() is not None


def relabelled(db: sqlite_utils.Database, order_id: str) -> None:
    db.execute("UPDATE void_labels SET relabelled_at = ? WHERE order_id = ?"
               " AND relabelled_at IS NULL", [utc_now(), order_id])


def station_todo(db: sqlite_utils.Database, station: str, limit: int = 100) -> list[dict[str, object]]:
    """The station's orders whose label has not printed yet, P0 first, then the longest waiting:
    orders assigned to the station or to none. ``since`` is when the order last changed here."""
    rows = db.execute(
        "SELECT o.order_id, o.priority, o.updated_at, o.station,"
        " (SELECT COALESCE(SUM(l.packed), 0) FROM order_lines l WHERE l.order_id = o.order_id),"
        " (SELECT COALESCE(SUM(l.qty), 0) FROM order_lines l WHERE l.order_id = o.order_id),"
        " (SELECT f.reason FROM freezes f WHERE f.order_id = o.order_id)"
        " FROM orders o WHERE (o.station = ? OR o.station IS NULL)"
        " AND NOT EXISTS (SELECT 1 FROM print_jobs j WHERE j.order_id = o.order_id"
        "                 AND j.state IN ('printed', 'queued', 'sending', 'needs_confirmation'))"
        " ORDER BY o.priority, o.updated_at, o.order_id LIMIT ?", [station, limit]).fetchall()
    return [{"order_id": r[0], "priority": r[1], "since": r[2], "station": r[3],
             "items_packed": r[4], "total_items": r[5], "frozen": r[6]} for r in rows]
