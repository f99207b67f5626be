"""The edge device's tables and their forward migrations."""

from __future__ import annotations

import sqlite_utils

from scanedge.edge.store.db import Migration


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE orders (
            order_id TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            station TEXT,
            priority TEXT NOT NULL CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
            tracking_number TEXT,
            carrier TEXT,
            lane TEXT,
            recipient TEXT NOT NULL DEFAULT '{}',  -- JSON
            extra TEXT NOT NULL DEFAULT '{}',      -- JSON: unknown keys, kept
            updated_at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX orders_tracking ON orders (tracking_number)")
    db.execute("""
        CREATE TABLE order_lines (
            order_id TEXT NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
            line_no INTEGER NOT NULL,
            sku TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            qty INTEGER NOT NULL CHECK (qty > 0),
            lot TEXT,
            expires TEXT,
            packed INTEGER NOT NULL DEFAULT 0 CHECK (packed >= 0),
            PRIMARY KEY (order_id, line_no)
        )""")
    db.execute("CREATE INDEX order_lines_sku ON order_lines (sku)")
    db.execute("""
        CREATE TABLE order_gifts (
            order_id TEXT NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
            gift_no INTEGER NOT NULL,
            name TEXT NOT NULL,
            qty INTEGER NOT NULL CHECK (qty > 0),
            PRIMARY KEY (order_id, gift_no)
        )""")
    # A freeze may arrive before its order does: no foreign key to orders.
    db.execute("""
        CREATE TABLE freezes (
            order_id TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            issued_at TEXT NOT NULL,
            received_at TEXT NOT NULL,
            version INTEGER,
            command_id TEXT,
            source TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE stations (
            station TEXT PRIMARY KEY,
            order_id TEXT REFERENCES orders (order_id) ON DELETE SET NULL,
            opened_at TEXT,
            operator TEXT
        )""")
    db.execute("""
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,         -- the per-device sequence number, never reused
            event_id TEXT NOT NULL UNIQUE,   -- ULID made on the device
            device_id TEXT NOT NULL,
            type TEXT NOT NULL,
            order_id TEXT,
            payload TEXT NOT NULL,           -- JSON
            device_time TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'acked', 'parked')),
            synced_at TEXT,
            error TEXT
        )""")
    db.execute("CREATE INDEX events_state ON events (state, seq)")
    db.execute("CREATE INDEX events_order ON events (order_id)")
    db.execute("CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)")
    # A client may retry a scan whose answer it lost; the scan_id makes the retry harmless.
    db.execute("""
        CREATE TABLE scan_requests (
            scan_id TEXT PRIMARY KEY,
            event_id TEXT NOT NULL,
            response TEXT NOT NULL,
            created_at TEXT NOT NULL
        )""")


def _v2(db: sqlite_utils.Database) -> None:
    # Sync: the hybrid-logical-clock time of each event, and the client's own state
    # (cursor of applied hub changes, last contacts) as key/value rows.
    db.execute("ALTER TABLE events ADD COLUMN hlc TEXT")
    db.execute("CREATE TABLE sync_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


EDGE_MIGRATIONS = (
    Migration(1, "orders, freezes, stations, events outbox", _v1),
    Migration(2, "sync state, event HLC", _v2),
    Migration(3, "gift codes", lambda db: db.execute("ALTER TABLE order_gifts ADD COLUMN code TEXT")),
    Migration(4, "picking: line locations, ship_by, category", lambda db: (
        db.execute("ALTER TABLE order_lines ADD COLUMN location TEXT"),
        db.execute("ALTER TABLE orders ADD COLUMN ship_by TEXT"),
        db.execute("ALTER TABLE orders ADD COLUMN category TEXT"))),
    Migration(5, "weights: the parcel's expected weight, each line's unit weight", lambda db: (
        db.execute("ALTER TABLE orders ADD COLUMN expected_weight_kg REAL"),
        db.execute("ALTER TABLE order_lines ADD COLUMN unit_weight_kg REAL"))),
)
