"""The hub's storage: one small interface, SQLite by default, PostgreSQL for fleets.

The SQL is written once with ``?`` placeholders; the PostgreSQL adapter translates them. Two
things keep "nothing lost, nothing doubled" true on both:
- an event is stored once, keyed by its event id (a unique constraint, for all time);
- the change log that devices pull by cursor is appended in commit order (SQLite has one writer;
  on PostgreSQL an advisory transaction lock serialises appends), so a cursor never skips a
  change that commits late. Events listed by ``after=`` get the same treatment.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.domain.orders import Order, parse_order
from sync.hub import freezes
from sync.protocol import ACCEPTED, DUPLICATE, event_problem, rejected
from sync.signing import HubSigner

CHANGES_LOCK = 735_001  # PostgreSQL advisory lock keys
EVENTS_LOCK = 735_002


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def token_hash(token: str) -> str:
    # Tokens are 256-bit random strings: a plain SHA-256 is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Change:
    seq: int
    kind: str
    order_id: str | None
    payload: dict[str, Any]
    created_at: str

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "order_id": self.order_id,
                "payload": self.payload, "created_at": self.created_at}


def _schema(auto_pk: str, big: str) -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS hub_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS devices (
            device_id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
            last_seen TEXT, last_push TEXT, last_seq {big})""",
        """CREATE TABLE IF NOT EXISTS orders (
            order_id TEXT PRIMARY KEY, version INTEGER NOT NULL, doc TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS changes (
            change_seq {auto_pk}, kind TEXT NOT NULL, order_id TEXT, payload TEXT NOT NULL,
            created_at TEXT NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS events (
            hub_seq {auto_pk}, event_id TEXT NOT NULL UNIQUE, device_id TEXT NOT NULL,
            seq {big} NOT NULL, type TEXT NOT NULL, order_id TEXT, payload TEXT NOT NULL,
            device_time TEXT NOT NULL, hlc TEXT, received_at TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS events_order ON events (order_id, hub_seq)",
        "CREATE INDEX IF NOT EXISTS events_device ON events (device_id, seq)",
        "CREATE INDEX IF NOT EXISTS changes_order ON changes (order_id)",
        # The one version counter of an order: upserts and commands both bump it, so a device
        # can tell an old unfreeze from a new one.
        """CREATE TABLE IF NOT EXISTS order_versions (
            order_id TEXT PRIMARY KEY, version INTEGER NOT NULL)""",
        *freezes.SCHEMA,  # freeze acks from the devices, expedite/cancel conflicts
    ]


class Tx:
    """A transaction: ``?``-placeholder SQL, whatever the database."""

    def __init__(self, cursor: Any, translate: Callable[[str], str]) -> None:
        self._cur = cursor
        self._translate = translate

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cur.execute(self._translate(sql), tuple(params))

    def one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.execute(sql, params).fetchall()


class HubStorage:
    """Base: the operations. Subclasses give ``transaction()``, ``lock()`` and ``notify()``."""

    dialect = "base"
    # Called (no arguments) after a transaction that appended changes has committed.
    on_change: Callable[[], None] | None = None
    # An expedite and a cancel for one order closer than this put it in needs_decision.
    conflict_window_s: float = 15.0
    _signer: HubSigner | None = None

    # -- plumbing (subclasses) ------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        raise NotImplementedError
        yield  # pragma: no cover

    def lock(self, tx: Tx, key: int) -> None:
        """Serialise appends to a log across hub processes (no-op with a single writer)."""

    def close(self) -> None:
        pass

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    # -- tokens ---------------------------------------------------------------------------
    def ensure_admin_token(self, configured: str) -> str | None:
        """Store the configured admin token's hash; with none configured and none stored,
        make one and return it (to print once)."""
        with self.transaction() as tx:
            if configured:
                self._set_meta(tx, "admin_token_hash", token_hash(configured))
                return None
            if tx.one("SELECT value FROM hub_meta WHERE key = 'admin_token_hash'"):
                return None
            token = secrets.token_urlsafe(32)
            self._set_meta(tx, "admin_token_hash", token_hash(token))
            return token

    def is_admin(self, token: str) -> bool:
        with self.transaction() as tx:
            row = tx.one("SELECT value FROM hub_meta WHERE key = 'admin_token_hash'")
        return row is not None and hmac.compare_digest(row[0], token_hash(token))

    def add_device(self, device_id: str) -> str:
        """Register a device (or re-issue its token); returns the new token."""
        token = secrets.token_urlsafe(32)
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO devices (device_id, token_hash, created_at) VALUES (?, ?, ?)"
                " ON CONFLICT (device_id) DO UPDATE SET token_hash = excluded.token_hash",
                [device_id, token_hash(token), now_iso()],
            )
        return token

    def device_for_token(self, token: str) -> str | None:
        with self.transaction() as tx:
            row = tx.one("SELECT device_id FROM devices WHERE token_hash = ?", [token_hash(token)])
            if row is not None:
                tx.execute("UPDATE devices SET last_seen = ? WHERE device_id = ?", [now_iso(), row[0]])
        return row[0] if row else None

    def devices(self) -> list[dict[str, Any]]:
        with self.transaction() as tx:
            rows = tx.all("SELECT device_id, created_at, last_seen, last_push, last_seq FROM devices"
                          " ORDER BY device_id")
        keys = ("device_id", "created_at", "last_seen", "last_push", "last_seq")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def _set_meta(self, tx: Tx, key: str, value: str) -> None:
        tx.execute("INSERT INTO hub_meta (key, value) VALUES (?, ?)"
                   " ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key, value])

    # -- orders and commands --------------------------------------------------------------
    def upsert_order(self, doc: dict[str, Any]) -> tuple[Order, bool]:
        """Store an order; a change bumps its version. Returns (stored order, changed)."""
        order = parse_order(doc)
        with self.transaction() as tx:
            self.lock(tx, CHANGES_LOCK)
            row = tx.one("SELECT doc FROM orders WHERE order_id = ?", [order.order_id])
            if row is not None:
                current = parse_order(json.loads(row[0]))
                if _same_content(current, order):
                    return current, False
            version = self._bump_version(tx, order.order_id,
                                         order.version if "version" in doc else 1)
            stored = parse_order({**order.to_json(), "version": version})
            text = json.dumps(stored.to_json(), ensure_ascii=False, sort_keys=True)
            tx.execute(
                "INSERT INTO orders (order_id, version, doc, updated_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (order_id) DO UPDATE SET version = excluded.version,"
                " doc = excluded.doc, updated_at = excluded.updated_at",
                [order.order_id, version, text, now_iso()],
            )
            self._append_change(tx, "order", order.order_id, stored.to_json())
        self._changed()
        return stored, True

    def order_version(self, order_id: str) -> int | None:
        with self.transaction() as tx:
            row = tx.one("SELECT version FROM order_versions WHERE order_id = ?", [order_id])
        return row[0] if row else None

    def _bump_version(self, tx: Tx, order_id: str, at_least: int) -> int:
        row = tx.one("SELECT version FROM order_versions WHERE order_id = ?", [order_id])
        version = max(at_least, (row[0] + 1) if row else 1)
        tx.execute("INSERT INTO order_versions (order_id, version) VALUES (?, ?)"
                   " ON CONFLICT (order_id) DO UPDATE SET version = excluded.version",
                   [order_id, version])
        return version

    def signer(self) -> HubSigner:
        """The hub's Ed25519 keypair, made at the first start and kept in hub_meta."""
        if self._signer is None:
            with self.transaction() as tx:
                row = tx.one("SELECT value FROM hub_meta WHERE key = 'signing_key'")
                if row is None:
                    new = HubSigner.generate()
                    # DO NOTHING + re-read: two hub processes starting at once agree on one key
                    tx.execute("INSERT INTO hub_meta (key, value) VALUES ('signing_key', ?)"
                               " ON CONFLICT (key) DO NOTHING",
                               [json.dumps({"private": new.private_b64, "public": new.public_b64})])
                    row = tx.one("SELECT value FROM hub_meta WHERE key = 'signing_key'")
            doc = json.loads(row[0])
            self._signer = HubSigner(doc["private"], doc["public"])
        return self._signer

    def add_command(self, kind: str, order_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Record a signed freeze/unfreeze/expedite command in the change log; returns its payload
        (with ``conflict`` when it put the order in needs_decision, see sync/hub/freezes.py)."""
        self.signer()  # loaded outside the transaction (it may need one of its own)
        with self.transaction() as tx:
            self.lock(tx, CHANGES_LOCK)
            payload = self.append_command(tx, kind, order_id, fields)
            conflict = freezes.detect_conflict(self, tx, payload, self.conflict_window_s)
        self._changed()
        return {**payload, "conflict": conflict} if conflict else payload

    def append_command(self, tx: Tx, kind: str, order_id: str,
                       fields: dict[str, Any]) -> dict[str, Any]:
        """Inside a transaction holding CHANGES_LOCK: bump the version, sign, append."""
        assert self._signer is not None, "call signer() before the transaction"
        payload = self._signer.sign({
            "command_id": secrets.token_hex(16),
            "order_id": order_id,
            "kind": kind,
            "issued_at": now_iso(),
            "version": self._bump_version(tx, order_id, 1),
            **fields,
        })
        payload["change_seq"] = self._append_change(tx, kind, order_id, payload)
        return payload

    def decide(self, order_id: str, decision: str, operator: str) -> dict[str, Any]:
        """Resolve an order's needs_decision conflict (raises freezes.ConflictError if none)."""
        self.signer()
        with self.transaction() as tx:
            self.lock(tx, CHANGES_LOCK)
            result = freezes.decide(self, tx, order_id, decision, operator)
        self._changed()
        return result

    def conflicts(self, *, open_only: bool = False, limit: int = 200) -> list[dict[str, Any]]:
        with self.transaction() as tx:
            return freezes.list_conflicts(tx, open_only=open_only, limit=limit)

    def store_freeze_acks(self, device_id: str, acks: list[dict[str, Any]]) -> int:
        with self.transaction() as tx:
            return freezes.store_acks(tx, device_id, acks, now_iso())

    def interception_report(self, since: datetime) -> Any:
        """The interception report (edge/interception_report.py) over the pushed events."""
        from edge.interception_report import DeviceEvent, FreezeRecord, build_report, parse_time

        since_iso = since.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self.transaction() as tx:
            commands = tx.all("SELECT kind, order_id, payload FROM changes WHERE kind IN"
                              " ('freeze', 'unfreeze') AND created_at >= ? ORDER BY change_seq",
                              [since_iso])
            rows = tx.all(
                "SELECT device_id, type, order_id, payload, device_time FROM events"
                " WHERE type IN ('freeze_applied', 'interception', 'print_printed')"
                " AND order_id IN (SELECT order_id FROM changes WHERE kind = 'freeze'"
                " AND created_at >= ?) ORDER BY hub_seq", [since_iso])
        freezes_, lifts = [], []
        for kind, order_id, text in commands:
            payload = json.loads(text)
            issued = parse_time(payload["issued_at"])
            if kind == "freeze":
                freezes_.append(FreezeRecord(payload["command_id"], order_id,
                                             payload.get("reason", "?"), issued))
            else:
                lifts.append((order_id, issued))
        events = [DeviceEvent(r[0], r[1], r[2], parse_time(r[4]), json.loads(r[3])) for r in rows]
        return build_report(since, freezes_, lifts, events)

    def list_freezes(self, *, within_s: float = 3.0, unacked: bool = False, since: str | None = None,
                limit: int = 200) -> list[dict[str, Any]]:
        with self.transaction() as tx:
            return freezes.list_freezes(tx, now=datetime.now(UTC), within_s=within_s,
                                        unacked=unacked, since=since, limit=limit)

    def put_setting(self, key: str, value: Any) -> int:
        with self.transaction() as tx:
            self.lock(tx, CHANGES_LOCK)
            seq = self._append_change(tx, "setting", None, {"key": key, "value": value})
        self._changed()
        return seq

    def _append_change(self, tx: Tx, kind: str, order_id: str | None,
                       payload: dict[str, Any]) -> int:
        row = tx.one(
            "INSERT INTO changes (kind, order_id, payload, created_at) VALUES (?, ?, ?, ?)"
            " RETURNING change_seq",
            [kind, order_id, json.dumps(payload, ensure_ascii=False), now_iso()],
        )
        self.notify_in_transaction(tx)
        return int(row[0])

    def notify_in_transaction(self, tx: Tx) -> None:
        """Tell other hub processes at commit (PostgreSQL NOTIFY); SQLite hubs poll."""

    def changes_since(self, cursor: int, limit: int = 500) -> list[Change]:
        with self.transaction() as tx:
            rows = tx.all(
                "SELECT change_seq, kind, order_id, payload, created_at FROM changes"
                " WHERE change_seq > ? ORDER BY change_seq LIMIT ?", [cursor, limit])
        return [Change(int(r[0]), r[1], r[2], json.loads(r[3]), r[4]) for r in rows]

    def last_change_seq(self) -> int:
        with self.transaction() as tx:
            row = tx.one("SELECT COALESCE(MAX(change_seq), 0) FROM changes")
        return int(row[0])

    # -- events ---------------------------------------------------------------------------
    def store_events(self, device_id: str, events: Sequence[Any]) -> list[dict[str, str]]:
        """Store a pushed batch: each event once, by id. One status per event, in order."""
        results: list[dict[str, str]] = []
        received = now_iso()
        with self.transaction() as tx:
            self.lock(tx, EVENTS_LOCK)
            last_seq = None
            for event in events:
                problem = event_problem(event, device_id)
                event_id = event.get("event_id") if isinstance(event, dict) else None
                if problem is not None:
                    results.append({"event_id": str(event_id), "status": rejected(problem)})
                    continue
                cur = tx.execute(
                    "INSERT INTO events (event_id, device_id, seq, type, order_id, payload,"
                    " device_time, hlc, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (event_id) DO NOTHING",
                    [event_id, device_id, event["seq"], event["type"], event.get("order_id"),
                     json.dumps(event["payload"], ensure_ascii=False), event["device_time"],
                     event.get("hlc"), received],
                )
                results.append({"event_id": event_id,
                                "status": ACCEPTED if cur.rowcount == 1 else DUPLICATE})
                last_seq = max(last_seq or 0, event["seq"])
            tx.execute("UPDATE devices SET last_push = ?, last_seq = COALESCE(?, last_seq)"
                       " WHERE device_id = ?", [received, last_seq, device_id])
        return results

    def list_events(self, *, order_id: str | None = None, device_id: str | None = None,
                    after: int = 0, limit: int = 500) -> list[dict[str, Any]]:
        where, params = ["hub_seq > ?"], [after]
        if order_id:
            where.append("order_id = ?")
            params.append(order_id)
        if device_id:
            where.append("device_id = ?")
            params.append(device_id)
        with self.transaction() as tx:
            rows = tx.all(
                "SELECT hub_seq, event_id, device_id, seq, type, order_id, payload, device_time,"
                " hlc, received_at FROM events WHERE " + " AND ".join(where)
                + " ORDER BY hub_seq LIMIT ?", [*params, limit])
        return rows_as_dicts(rows, ("hub_seq", "event_id", "device_id", "seq", "type", "order_id",
                                    "payload", "device_time", "hlc", "received_at"),
                             json_keys=("payload",))

    def count_events(self) -> int:
        with self.transaction() as tx:
            return int(tx.one("SELECT COUNT(*) FROM events")[0])


def rows_as_dicts(rows: Sequence[Any], keys: Sequence[str], *,
                  json_keys: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Query rows as dicts, the JSON text columns parsed."""
    out = []
    for r in rows:
        item = dict(zip(keys, r, strict=True))
        for key in json_keys:
            item[key] = json.loads(item[key])
        out.append(item)
    return out


def _same_content(a: Order, b: Order) -> bool:
    strip = {"version"}
    ja = {k: v for k, v in a.to_json().items() if k not in strip}
    jb = {k: v for k, v in b.to_json().items() if k not in strip}
    return ja == jb


class SqliteHubStorage(HubStorage):
    """One connection, one lock: a hub for a site serves tens of devices, not thousands."""

    dialect = "sqlite"

    def __init__(self, path: str | Path) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                                     timeout=30)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._lock = threading.RLock()
        with self.transaction() as tx:
            for stmt in _schema("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER"):
                tx.execute(stmt)

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield Tx(cur, lambda sql: sql)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def close(self) -> None:
        self._conn.close()


class PostgresHubStorage(HubStorage):
    """A connection per thread; several hub processes may share the database."""

    dialect = "postgresql"
    CHANNEL = "scanedge_changes"

    def __init__(self, url: str) -> None:
        import psycopg

        self._psycopg = psycopg
        self._url = url
        self._local = threading.local()
        self._all: list[Any] = []
        self._guard = threading.Lock()
        with self.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(735000)")  # one migrator at a time
            for stmt in _schema("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BIGINT"):
                tx.execute(stmt)

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._psycopg.connect(self._url)
            self._local.conn = conn
            with self._guard:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        conn = self._connection()
        try:
            with conn.transaction():
                yield Tx(conn.cursor(), lambda sql: sql.replace("?", "%s"))
        except self._psycopg.OperationalError:
            conn.close()  # a broken connection is replaced on next use
            raise

    def lock(self, tx: Tx, key: int) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(?)", [key])

    def notify_in_transaction(self, tx: Tx) -> None:
        # Delivered at commit to every hub process that LISTENs (sync.hub.notify).
        tx.execute(f"NOTIFY {self.CHANNEL}")

    def close(self) -> None:
        with self._guard:
            for conn in self._all:
                conn.close()
            self._all.clear()


def open_storage(database: str) -> HubStorage:
    if database.startswith(("postgresql://", "postgres://")):
        return PostgresHubStorage(database)
    return SqliteHubStorage(database)
