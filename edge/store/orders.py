"""Orders, their packing progress, freezes and the order open at each station."""

from __future__ import annotations

import json
from datetime import date, datetime

import sqlite_utils

from scanedge.edge.domain.orders import Gift, Order, OrderLine
from scanedge.edge.domain.packing import Freeze, PackState
from scanedge.edge.store import bench
from scanedge.edge.store.db import utc_now


def save_order(db: sqlite_utils.Database, order: Order) -> str:
    """Insert or replace an order, keeping packing progress of lines that stay the same.

    Returns ``"created"``, ``"updated"`` or ``"unchanged"`` (same content as stored).
    """
    old = load_pack_state(db, order.order_id)
    if old is not None and old.order == order:
        return "unchanged"
    # Progress follows a line by (sku, lot), so a re-sent order keeps what was already packed.
    done: dict[tuple[str, str | None], int] = {}
    if old is not None:
        for line, packed in zip(old.order.lines, old.packed, strict=True):
            done[(line.sku, line.lot)] = done.get((line.sku, line.lot), 0) + packed
    db.execute(
        "INSERT INTO orders (order_id, version, station, priority, tracking_number, carrier, lane,"
        " recipient, extra, updated_at, ship_by, category, expected_weight_kg)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (order_id) DO UPDATE SET version = excluded.version,"
        " station = excluded.station, priority = excluded.priority,"
        " tracking_number = excluded.tracking_number, carrier = excluded.carrier,"
        " lane = excluded.lane, recipient = excluded.recipient, extra = excluded.extra,"
        " updated_at = excluded.updated_at, ship_by = excluded.ship_by,"
        " category = excluded.category, expected_weight_kg = excluded.expected_weight_kg",
        [order.order_id, order.version, order.station, order.priority, order.tracking_number,
         order.carrier, order.lane, _dumps(order.recipient), _dumps(order.extra), utc_now(),
         order.ship_by.isoformat() if order.ship_by else None, order.category,
         order.expected_weight_kg],
    )
    db.execute("DELETE FROM order_lines WHERE order_id = ?", [order.order_id])
    db.execute("DELETE FROM order_gifts WHERE order_id = ?", [order.order_id])
    for i, line in enumerate(order.lines):
        key = (line.sku, line.lot)
        packed = min(done.get(key, 0), line.qty)
        done[key] = done.get(key, 0) - packed
        db.execute(
            "INSERT INTO order_lines (order_id, line_no, sku, name, qty, lot, expires, packed,"
            " location, unit_weight_kg) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [order.order_id, i, line.sku, line.name, line.qty, line.lot,
             line.expires.isoformat() if line.expires else None, packed, line.location,
             line.unit_weight_kg],
        )
    for i, gift in enumerate(order.gifts):
        db.execute(
            "INSERT INTO order_gifts (order_id, gift_no, name, qty, code) VALUES (?, ?, ?, ?, ?)",
            [order.order_id, i, gift.name, gift.qty, gift.code],
        )
    return "created" if old is None else "updated"


def stored_version(db: sqlite_utils.Database, order_id: str) -> int | None:
    row = db.execute("SELECT version FROM orders WHERE order_id = ?", [order_id]).fetchone()
    return row[0] if row else None


def load_pack_state(db: sqlite_utils.Database, order_id: str) -> PackState | None:
    row = db.execute(
        "SELECT order_id, version, station, priority, tracking_number, carrier, lane, recipient,"
        " extra, ship_by, category, expected_weight_kg FROM orders WHERE order_id = ?",
        [order_id],
    ).fetchone()
    if row is None:
        return None
    lines = db.execute(
        "SELECT sku, name, qty, lot, expires, packed, location, unit_weight_kg FROM order_lines"
        " WHERE order_id = ? ORDER BY line_no",
        [order_id],
    ).fetchall()
    gifts = db.execute(
        "SELECT name, qty, code FROM order_gifts WHERE order_id = ? ORDER BY gift_no", [order_id]
    ).fetchall()
    order = Order(
        order_id=row[0], version=row[1], station=row[2], priority=row[3], tracking_number=row[4],
        carrier=row[5], lane=row[6],
        lines=tuple(
            OrderLine(sku=sku, name=name, qty=qty, lot=lot,
                      expires=date.fromisoformat(exp) if exp else None, location=loc,
                      unit_weight_kg=unit_kg)
            for sku, name, qty, lot, exp, _, loc, unit_kg in lines
        ),
        gifts=tuple(Gift(name=n, qty=q, code=c) for n, q, c in gifts),
        recipient=json.loads(row[7]),
        extra=json.loads(row[8]),
        ship_by=datetime.fromisoformat(row[9]) if row[9] else None,
        category=row[10],
        expected_weight_kg=row[11],
    )
    return PackState(order, tuple(line[5] for line in lines))


def load_order(db: sqlite_utils.Database, order_id: str) -> Order | None:
    state = load_pack_state(db, order_id)
    return state.order if state else None


def order_id_for_code(db: sqlite_utils.Database, text: str) -> str | None:
    """The order a scanned text names: its order id, or else its tracking number."""
    row = db.execute("SELECT order_id FROM orders WHERE order_id = ?", [text]).fetchone()
    if row is None:
        row = db.execute(
            "SELECT order_id FROM orders WHERE tracking_number = ? ORDER BY updated_at DESC LIMIT 1",
            [text.upper()],
        ).fetchone()
    return row[0] if row else None


def save_progress(db: sqlite_utils.Database, state: PackState,
                  before: PackState | None = None) -> None:
    """Store the packed counts; with ``before`` (the state as loaded), only the changed lines."""
    unchanged = before.packed if before is not None and before.order is state.order else None
    for line_no, packed in enumerate(state.packed):
        if unchanged is not None and unchanged[line_no] == packed:
            continue
        db.execute(
            "UPDATE order_lines SET packed = ? WHERE order_id = ? AND line_no = ?",
            [packed, state.order.order_id, line_no],
        )


def open_order_id(db: sqlite_utils.Database, station: str) -> str | None:
    row = db.execute("SELECT order_id FROM stations WHERE station = ?", [station]).fetchone()
    return row[0] if row else None


def set_open_order(
    db: sqlite_utils.Database, station: str, order_id: str | None, operator: str | None
) -> None:
    db.execute(
        "INSERT INTO stations (station, order_id, opened_at, operator) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (station) DO UPDATE SET order_id = excluded.order_id,"
        " opened_at = excluded.opened_at, operator = excluded.operator",
        [station, order_id, utc_now(), operator],
    )


def load_freeze(db: sqlite_utils.Database, order_id: str) -> Freeze | None:
    row = db.execute(
        "SELECT order_id, reason, issued_at, version FROM freezes WHERE order_id = ?", [order_id]
    ).fetchone()
    if row is None:
        return None
    return Freeze(row[0], row[1], datetime.fromisoformat(row[2].replace("Z", "+00:00")), row[3])


def save_freeze(db: sqlite_utils.Database, freeze: Freeze, *, source: str,
                command_id: str | None = None) -> None:
    db.execute(
        "INSERT INTO freezes (order_id, reason, issued_at, received_at, version, command_id, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id) DO UPDATE SET"
        " reason = excluded.reason, issued_at = excluded.issued_at,"
        " received_at = excluded.received_at, version = excluded.version,"
        " command_id = excluded.command_id, source = excluded.source",
        [freeze.order_id, freeze.reason,
         freeze.issued_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
         utc_now(), freeze.version, command_id, source],
    )
    if freeze.reason == "address_change":  # a printed label now carries the old address
        bench.void_printed_label(db, freeze.order_id, freeze.reason)


def delete_freeze(db: sqlite_utils.Database, order_id: str) -> bool:
    return db.execute("DELETE FROM freezes WHERE order_id = ?", [order_id]).rowcount > 0


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
