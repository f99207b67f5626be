"""The hub's storage: one small interface, SQLite by default, PostgreSQL for fleets.

The SQL is written once with ``?`` placeholders; the PostgreSQL adapter translates them. Two
things keep "nothing lost, nothing doubled" true on both:
- an event is stored once, keyed by its device and its event id (a unique constraint, for all
  time: another device's event with the same id is another event);
- the change log that devices pull by cursor is appended in commit order (SQLite has one writer;
  on PostgreSQL an advisory transaction lock serialises appends), so a cursor never skips a
  change that commits late;
- pushed events are inserted without any lock shared between devices, then *published*: a
  publisher numbers every committed, unnumbered event (``pub_seq``) in one short transaction
  under a lock. ``GET /events?after=`` lists published events only, so a reader always sees a
  gap-free prefix (docs/scaling.md, "Event ingest"). SQLite publishes inside the push.

Sites: every device, order, change and event belongs to one site; a device pulls and streams
only its site's changes (and the ``*`` ones, settings for all); an admin token may be limited to
sites (:class:`AdminScope`).
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scanedge.edge.domain.countdown import CountdownPolicy, has_countdown, parse_by_category
from scanedge.edge.domain.interception_report import iso
from scanedge.edge.domain.orders import DEFAULT_SITE, Order, parse_order
from scanedge.sync.hub import countdowns, ewaybills, freezes
from scanedge.sync.hub.notify import ChangeNotifier
from scanedge.sync.hub.rows import rows_as_dicts
from scanedge.sync.protocol import ACCEPTED, DUPLICATE, change_mark, event_problem, rejected
from scanedge.sync.signing import HubSigner, key_id

CHANGES_LOCK = 735_001  # PostgreSQL advisory lock keys
PUBLISH_LOCK = 735_002
FUSE_LOCK = 735_003
MIGRATE_LOCK = 735_000
ALL_SITES = "*"  # the site of a change meant for every device (settings)
PUBLISH_BATCH = 20_000
EVENT_COLUMNS = ("event_id", "device_id", "seq", "type", "order_id", "payload", "device_time",
                 "hlc", "received_at", "site")


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
    site: str = DEFAULT_SITE

    def as_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "order_id": self.order_id,
                "payload": self.payload, "created_at": self.created_at, "site": self.site}

    def for_site(self, site: str) -> bool:
        return self.site == site or self.site == ALL_SITES


@dataclass(frozen=True)
class Device:
    device_id: str
    site: str
    can_decide: bool = False  # may decide its site's expedite/cancel conflicts (migration 4)


@dataclass(frozen=True)
class AdminScope:
    """Who an admin token speaks for: every site (``sites is None``) or the ones listed."""

    name: str
    sites: frozenset[str] | None = None

    def allows(self, site: str) -> bool:
        return self.sites is None or site in self.sites

    @property
    def default_site(self) -> str:
        """The site of a new order that names none: the token's only site, else the default."""
        if self.sites is not None and len(self.sites) == 1:
            return next(iter(self.sites))
        return DEFAULT_SITE

    def where(self, column: str = "site") -> tuple[str, list[Any]]:
        """An SQL condition (``?`` placeholders) limiting rows to the scope's sites."""
        if self.sites is None:
            return "1 = 1", []
        return (f"{column} IN ({', '.join('?' * len(self.sites))})", sorted(self.sites))


FULL_SCOPE = AdminScope("admin")


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


def _events_unique_per_device(tx: Tx, dialect: str) -> None:
    """Schema 3: an event id is unique per device, not across the fleet (a device's ids are its
    own: another device's event with the same id must not be taken for a duplicate and lost).

    SQLite cannot drop a UNIQUE column constraint in place: the events table is rebuilt with its
    rows, numbers (``hub_seq``, ``pub_seq``) and indexes. PostgreSQL drops the constraint in
    place (no copy of the table) and adds the new one."""
    if dialect == "postgresql":
        for (name,) in tx.all(
                "SELECT c.conname FROM pg_constraint c JOIN pg_attribute a"
                " ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]"
                " WHERE c.conrelid = 'events'::regclass AND c.contype = 'u'"
                " AND array_length(c.conkey, 1) = 1 AND a.attname = 'event_id'"):
            tx.execute(f'ALTER TABLE events DROP CONSTRAINT "{name}"')
        tx.execute("ALTER TABLE events ADD CONSTRAINT events_device_event"
                   " UNIQUE (device_id, event_id)")
        return
    columns = ("hub_seq, event_id, device_id, seq, type, order_id, payload, device_time, hlc,"
               " received_at, site, pub_seq")
    tx.execute(f"""CREATE TABLE events_v3 (
        hub_seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL,
        device_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, order_id TEXT,
        payload TEXT NOT NULL, device_time TEXT NOT NULL, hlc TEXT, received_at TEXT NOT NULL,
        site TEXT NOT NULL DEFAULT '{DEFAULT_SITE}', pub_seq BIGINT,
        CONSTRAINT events_device_event UNIQUE (device_id, event_id))""")
    tx.execute(f"INSERT INTO events_v3 ({columns}) SELECT {columns} FROM events ORDER BY hub_seq")
    tx.execute("DROP TABLE events")  # and its indexes
    tx.execute("ALTER TABLE events_v3 RENAME TO events")  # sqlite_sequence follows the rename
    for stmt in (
            "CREATE INDEX events_order ON events (order_id, hub_seq)",
            "CREATE INDEX events_device ON events (device_id, seq)",
            "CREATE UNIQUE INDEX events_pub ON events (pub_seq)",
            "CREATE INDEX events_unpublished ON events (hub_seq) WHERE pub_seq IS NULL",
            "CREATE INDEX events_site ON events (site, pub_seq)"):
        tx.execute(stmt)


# Forward migrations after the first schema, by version (hub_meta 'schema_version'): SQL, or a
# function of (transaction, dialect). A new hub runs them all, so old and new databases end in
# the same shape.
MIGRATIONS: dict[int, tuple[str | Callable[[Tx, str], None], ...]] = {
    2: (  # sites, admin tokens per site, event publishing (issue: a hub for a real fleet)
        f"ALTER TABLE devices ADD COLUMN site TEXT NOT NULL DEFAULT '{DEFAULT_SITE}'",
        f"ALTER TABLE orders ADD COLUMN site TEXT NOT NULL DEFAULT '{DEFAULT_SITE}'",
        f"ALTER TABLE changes ADD COLUMN site TEXT NOT NULL DEFAULT '{DEFAULT_SITE}'",
        f"UPDATE changes SET site = '{ALL_SITES}' WHERE kind = 'setting'",
        "CREATE INDEX IF NOT EXISTS changes_site ON changes (site, change_seq)",
        f"ALTER TABLE events ADD COLUMN site TEXT NOT NULL DEFAULT '{DEFAULT_SITE}'",
        "ALTER TABLE events ADD COLUMN pub_seq BIGINT",
        "UPDATE events SET pub_seq = hub_seq",
        "CREATE UNIQUE INDEX IF NOT EXISTS events_pub ON events (pub_seq)",
        "CREATE INDEX IF NOT EXISTS events_unpublished ON events (hub_seq) WHERE pub_seq IS NULL",
        "CREATE INDEX IF NOT EXISTS events_site ON events (site, pub_seq)",
        """CREATE TABLE IF NOT EXISTS admin_tokens (
            token_hash TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, sites TEXT NOT NULL,
            created_at TEXT NOT NULL)""",
    ),
    3: (_events_unique_per_device,),  # issue 13: event ids unique per device
    4: (  # issue 14: supervisors decide conflicts through a device the hub allows to
        "ALTER TABLE devices ADD COLUMN can_decide INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE order_conflicts ADD COLUMN decided_device TEXT",
    ),
    5: (countdowns.schema,),  # issue 14: countdowns, fuses, the hub's webhook notifications
    6: (  # issue 17: RMAs (sync/hub/rmas.py); their outcome is the devices' return_received
        """CREATE TABLE IF NOT EXISTS rmas (
            rma_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, site TEXT NOT NULL,
            version INTEGER NOT NULL, status TEXT NOT NULL, doc TEXT NOT NULL,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS rmas_order ON rmas (order_id)",
    ),
    7: (ewaybills.schema,),  # issue 19: carrier e-waybills
}
SCHEMA_VERSION = max(MIGRATIONS)


def migrate(tx: Tx, auto_pk: str, big: str, dialect: str = "sqlite") -> int:
    """Create or upgrade the schema inside ``tx``; returns the version it started from (0: a
    new database). Also gives the database its id (hub_meta ``database_id``), once: a random
    id that tells devices this database from any other (docs/sync.md, "Whose cursor")."""
    for stmt in _schema(auto_pk, big):
        tx.execute(stmt)
    row = tx.one("SELECT value FROM hub_meta WHERE key = 'schema_version'")
    start = int(row[0]) if row else 1
    new = row is None and not any(tx.one(f"SELECT 1 FROM {table} LIMIT 1")
                                  for table in ("hub_meta", "devices", "changes", "events"))
    # Which migrations ran, by number, not only the highest: numbers are handed out to features
    # in flight, so 7 can land before 6 and a database at 7 must still run 6 when it comes.
    # A database from before this list ran every migration up to its schema_version.
    listed = tx.one("SELECT value FROM hub_meta WHERE key = 'migrations'")
    applied = set(json.loads(listed[0])) if listed else set(range(2, start + 1))
    pending = sorted(v for v in MIGRATIONS if v not in applied)
    for version in pending:
        for stmt in MIGRATIONS[version]:
            if callable(stmt):
                stmt(tx, dialect)
            else:
                tx.execute(stmt)
    if pending or listed is None:
        tx.execute("INSERT INTO hub_meta (key, value) VALUES ('migrations', ?)"
                   " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                   [json.dumps(sorted(applied | set(pending)))])
    if start < SCHEMA_VERSION or row is None:
        tx.execute("INSERT INTO hub_meta (key, value) VALUES ('schema_version', ?)"
                   " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                   [str(max(start, SCHEMA_VERSION))])
    tx.execute("INSERT INTO hub_meta (key, value) VALUES ('database_id', ?)"
               " ON CONFLICT (key) DO NOTHING", [secrets.token_hex(16)])
    return 0 if new else start


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


@dataclass(frozen=True)
class HubPolicy:
    """The hub's rules for commands (settings ``conflict_window_s``, ``countdown_*``)."""

    # An expedite and a cancel for one order closer than this put it in needs_decision.
    conflict_window_s: float = 15.0
    # How long a cancel, address change or note has to reach every device (edge/domain/countdown.py)
    countdown: CountdownPolicy = field(default_factory=CountdownPolicy)

    @classmethod
    def from_settings(cls, settings: Any) -> HubPolicy:
        return cls(settings.conflict_window_s, CountdownPolicy(
            settings.countdown_s, parse_by_category(settings.countdown_by_category)))


class HubStorage:
    """Base: the operations. Subclasses give ``transaction()``, ``lock()`` and ``notify()``.

    After-commit signals (sync/hub/notify.py), for whoever serves: ``changes`` when a transaction
    appended to the change log (the device streams wake), ``pushed`` when a push committed events
    that still need numbering (PostgreSQL): with a subscriber there, it must then call
    :meth:`publish`; with none, the push publishes before it returns."""

    dialect = "base"
    _signer: HubSigner | None = None
    _info: dict[str, str] | None = None

    def __init__(self, policy: HubPolicy | None = None) -> None:
        self.policy = policy or HubPolicy()
        self.changes = ChangeNotifier()
        self.pushed = ChangeNotifier()

    # -- plumbing (subclasses) ------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        raise NotImplementedError
        yield  # pragma: no cover

    def lock(self, tx: Tx, key: int) -> None:
        """Serialise appends to a log across hub processes (no-op with a single writer)."""

    def try_lock(self, tx: Tx, key: int) -> bool:
        """Take the lock if nobody holds it (always, with a single writer)."""
        return True

    def close(self) -> None:
        pass

    def _changed(self) -> None:
        self.changes.notify()

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

    def admin_scope(self, token: str) -> AdminScope | None:
        """The scope of an admin token: the hub's own admin token speaks for every site, a token
        from ``scanedge hub add-token`` for its sites; None for anything else."""
        digest = token_hash(token)
        with self.transaction() as tx:
            row = tx.one("SELECT value FROM hub_meta WHERE key = 'admin_token_hash'")
            if row is not None and hmac.compare_digest(row[0], digest):
                return FULL_SCOPE
            row = tx.one("SELECT name, sites FROM admin_tokens WHERE token_hash = ?", [digest])
        if row is None:
            return None
        sites = json.loads(row[1])
        return AdminScope(row[0], None if sites is None else frozenset(sites))

    def is_admin(self, token: str) -> bool:
        return self.admin_scope(token) is not None

    def add_admin_token(self, name: str, sites: Sequence[str] | None) -> str:
        """A token for an order system, limited to ``sites`` (None: all); re-issued by name.
        Returns the token (stored hashed: shown once)."""
        token = secrets.token_urlsafe(32)
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO admin_tokens (token_hash, name, sites, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash,"
                " sites = excluded.sites",
                [token_hash(token), name, json.dumps(None if sites is None else sorted(set(sites))),
                 now_iso()])
        return token

    def admin_tokens(self) -> list[dict[str, Any]]:
        with self.transaction() as tx:
            rows = tx.all("SELECT name, sites, created_at FROM admin_tokens ORDER BY name")
        return rows_as_dicts(rows, ("name", "sites", "created_at"), json_keys=("sites",))

    def add_device(self, device_id: str, site: str = DEFAULT_SITE,
                   can_decide: bool | None = None) -> str:
        """Register a device at a site (or re-issue its token, moving it); returns the token.
        ``can_decide``: grant or revoke deciding conflicts (None: a new device may not, a
        re-issued one keeps what it had)."""
        token = secrets.token_urlsafe(32)
        with self.transaction() as tx:
            tx.execute(
                "INSERT INTO devices (device_id, token_hash, created_at, site) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (device_id) DO UPDATE SET token_hash = excluded.token_hash,"
                " site = excluded.site",
                [device_id, token_hash(token), now_iso(), site],
            )
            if can_decide is not None:
                tx.execute("UPDATE devices SET can_decide = ? WHERE device_id = ?",
                           [int(can_decide), device_id])
        return token

    def set_can_decide(self, device_id: str, allowed: bool) -> bool:
        """Grant or revoke a registered device's permission to decide conflicts (its token
        stays); False when no such device."""
        with self.transaction() as tx:
            found = tx.one("SELECT 1 FROM devices WHERE device_id = ?", [device_id]) is not None
            tx.execute("UPDATE devices SET can_decide = ? WHERE device_id = ?",
                       [int(allowed), device_id])
        return found

    def device_for_token(self, token: str) -> Device | None:
        now = now_iso()
        with self.transaction() as tx:
            row = tx.one("SELECT device_id, site, last_seen, can_decide FROM devices"
                         " WHERE token_hash = ?", [token_hash(token)])
            # last_seen to the second: a device's every request need not be a write
            if row is not None and (row[2] or "")[:19] != now[:19]:
                tx.execute("UPDATE devices SET last_seen = ? WHERE device_id = ?", [now, row[0]])
        return Device(row[0], row[1], bool(row[3])) if row else None

    def devices(self, scope: AdminScope = FULL_SCOPE) -> list[dict[str, Any]]:
        where, params = scope.where()
        with self.transaction() as tx:
            rows = tx.all("SELECT device_id, site, created_at, last_seen, last_push, last_seq,"
                          f" can_decide FROM devices WHERE {where} ORDER BY device_id", params)
        keys = ("device_id", "site", "created_at", "last_seen", "last_push", "last_seq")
        return [{**dict(zip(keys, r[:6], strict=True)), "can_decide": bool(r[6])} for r in rows]

    def order_site(self, order_id: str) -> str | None:
        """The site of a known order (None: the hub has not seen it)."""
        with self.transaction() as tx:
            row = tx.one("SELECT site FROM orders WHERE order_id = ?", [order_id])
        return row[0] if row else None

    def _set_meta(self, tx: Tx, key: str, value: str) -> None:
        tx.execute("INSERT INTO hub_meta (key, value) VALUES (?, ?)"
                   " ON CONFLICT (key) DO UPDATE SET value = excluded.value", [key, value])

    # -- orders and commands --------------------------------------------------------------
    def upsert_order(self, doc: dict[str, Any]) -> tuple[Order, bool]:
        """Store an order; a change bumps its version. Returns (stored order, changed).
        Raises :class:`SiteChange` when the order exists at another site."""
        order = parse_order(doc)
        with self.transaction() as tx:
            self.lock(tx, CHANGES_LOCK)
            order = ewaybills.overlay(tx, order)  # a live waybill's number stays the order's
            row = tx.one("SELECT doc, site FROM orders WHERE order_id = ?", [order.order_id])
            if row is not None:
                if row[1] != order.site:
                    raise SiteChange(f"order {order.order_id} belongs to site {row[1]!r}; an "
                                     f"order cannot move to {order.site!r} (cancel it there and "
                                     "create a new one)")
                current = parse_order(json.loads(row[0]))
                if _same_content(current, order):
                    return current, False
            version = self._bump_version(tx, order.order_id,
                                         order.version if "version" in doc else 1)
            stored = parse_order({**order.to_json(), "version": version})
            text = json.dumps(stored.to_json(), ensure_ascii=False, sort_keys=True)
            tx.execute(
                "INSERT INTO orders (order_id, version, doc, updated_at, site) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (order_id) DO UPDATE SET version = excluded.version,"
                " doc = excluded.doc, updated_at = excluded.updated_at",
                [order.order_id, version, text, now_iso(), order.site],
            )
            self.append_change(tx, "order", order.order_id, stored.to_json(), order.site)
        self._changed()
        return stored, True

    def upsert_order_doc(self, order_id: str) -> None:
        """Store the order again as the hub keeps it (a new live waybill's number on it)."""
        with self.transaction() as tx:
            row = tx.one("SELECT doc FROM orders WHERE order_id = ?", [order_id])
        if row is not None:
            self.upsert_order(json.loads(row[0]))

    def order_doc(self, order_id: str) -> dict[str, Any] | None:
        with self.transaction() as tx:
            row = tx.one("SELECT doc FROM orders WHERE order_id = ?", [order_id])
        return json.loads(row[0]) if row else None

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

    def add_command(self, kind: str, order_id: str, fields: dict[str, Any],
                    site: str | None = None) -> dict[str, Any]:
        """Record a signed freeze/unfreeze/expedite command in the change log; returns its payload
        (with ``conflict`` when it put the order in needs_decision, see sync/hub/freezes.py).
        The command goes to the order's site; ``site`` is used for an order the hub has not
        seen (default: the default site)."""
        self.signer()  # loaded outside the transaction (it may need one of its own)
        with self.transaction() as tx:
            self.lock(tx, CHANGES_LOCK)
            payload = self.append_command(tx, kind, order_id, fields, site)
            conflict = freezes.detect_conflict(self, tx, payload, self.policy.conflict_window_s)
        self._changed()
        return {**payload, "conflict": conflict} if conflict else payload

    def append_command(self, tx: Tx, kind: str, order_id: str, fields: dict[str, Any],
                       site: str | None = None) -> dict[str, Any]:
        """Inside a transaction holding CHANGES_LOCK: bump the version, sign, append."""
        assert self._signer is not None, "call signer() before the transaction"
        row = tx.one("SELECT site, doc FROM orders WHERE order_id = ?", [order_id])
        site = row[0] if row else (site or DEFAULT_SITE)
        issued = datetime.now(UTC)
        category = None
        if has_countdown(kind, fields):  # signed in: the device shows the same deadline
            category = json.loads(row[1]).get("category") if row else None
            countdown = self.policy.countdown
            fields = {**fields, "countdown_s": countdown.seconds_for(category),
                      "effective_by": iso(countdown.effective_by(issued, category))}
        payload = self._signer.sign({
            "command_id": secrets.token_hex(16),
            "order_id": order_id,
            "kind": kind,
            "issued_at": iso(issued),
            "version": self._bump_version(tx, order_id, 1),
            "site": site,
            **fields,
        })
        payload["change_seq"] = self.append_change(tx, kind, order_id, payload, site)
        if "effective_by" in fields:
            countdowns.start(tx, payload, category)
        return payload

    def decide(self, order_id: str, decision: str, operator: str,
               device: str | None = None) -> dict[str, Any]:
        """Resolve an order's needs_decision conflict (raises freezes.ConflictError if none);
        ``device``: the device the operator decided on (None: the order system's API)."""
        self.signer()
        with self.transaction() as tx:
            self.lock(tx, CHANGES_LOCK)
            result = freezes.decide(self, tx, order_id, decision, operator, device)
        self._changed()
        return result

    def conflicts(self, *, open_only: bool = False, limit: int = 200,
                  scope: AdminScope = FULL_SCOPE, details: bool = False) -> list[dict[str, Any]]:
        with self.transaction() as tx:
            return freezes.list_conflicts(tx, open_only=open_only, limit=limit, scope=scope,
                                          details=details)

    def store_freeze_acks(self, device: Device, acks: list[dict[str, Any]]) -> int:
        """A device's acks of freezes. An ack naming an order with no command at the device's
        site is not stored: a device cannot write into another site's freeze record."""
        with self.transaction() as tx:
            orders = {o for a in acks if isinstance(o := a.get("order_id"), str)}
            known = {o for o in orders if tx.one(
                "SELECT 1 FROM changes WHERE order_id = ? AND site IN (?, ?)"
                " AND kind IN ('freeze', 'unfreeze', 'expedite', 'note') LIMIT 1",
                [o, device.site, ALL_SITES])}
            return freezes.store_acks(tx, device.device_id,
                                      [a for a in acks if a.get("order_id") in known], now_iso())

    def interception_report(self, since: datetime, scope: AdminScope = FULL_SCOPE) -> Any:
        """The interception report (edge/domain/interception_report.py) over the pushed events."""
        from scanedge.edge.domain.interception_report import (
            DeviceEvent,
            FreezeRecord,
            build_report,
            parse_time,
        )

        since_iso = since.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        sites, site_params = scope.where()
        with self.transaction() as tx:
            commands = tx.all("SELECT kind, order_id, payload FROM changes WHERE kind IN"
                              f" ('freeze', 'unfreeze') AND created_at >= ? AND {sites}"
                              " ORDER BY change_seq", [since_iso, *site_params])
            rows = tx.all(
                "SELECT device_id, type, order_id, payload, device_time FROM events"
                " WHERE type IN ('freeze_applied', 'interception', 'print_printed')"
                f" AND {sites} AND order_id IN (SELECT order_id FROM changes WHERE kind = 'freeze'"
                " AND created_at >= ?) ORDER BY hub_seq", [*site_params, since_iso])
            fuses = countdowns.tripped_ids(tx, since_iso, scope)
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
        return build_report(since, freezes_, lifts, events, fuses_tripped=fuses)

    def list_countdowns(self, *, scope: AdminScope | None = None, site: str | None = None,
                        state: str | None = None, since: str | None = None,
                        limit: int = 200) -> list[dict[str, Any]]:
        with self.transaction() as tx:
            return countdowns.list_countdowns(tx, now=datetime.now(UTC), scope=scope, site=site,
                                              state=state, since=since, limit=limit)

    def sweep_fuses(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """Settle the countdowns that ran out by ``now``: the fuses that tripped (one hub process
        at a time does it; another finds nothing left)."""
        now = now or datetime.now(UTC)
        with self.transaction() as tx:  # the usual answer, twice a second: nothing due
            if tx.one("SELECT 1 FROM countdowns WHERE state = 'running' AND effective_by <= ?"
                      " LIMIT 1", [iso(now)]) is None:
                return []
        self.signer()
        with self.transaction() as tx:
            if not self.try_lock(tx, FUSE_LOCK):
                return []
            self.lock(tx, CHANGES_LOCK)
            trips = countdowns.sweep(self, tx, now)
        if trips:
            self._changed()
        return trips

    def list_freezes(self, *, within_s: float = 3.0, unacked: bool = False, since: str | None = None,
                     limit: int = 200, scope: AdminScope = FULL_SCOPE,
                     all_devices: bool = False) -> list[dict[str, Any]]:
        with self.transaction() as tx:
            return freezes.list_freezes(tx, now=datetime.now(UTC), within_s=within_s,
                                        unacked=unacked, since=since, limit=limit, scope=scope,
                                        all_devices=all_devices)

    def put_setting(self, key: str, value: Any) -> int:
        with self.transaction() as tx:
            self.lock(tx, CHANGES_LOCK)
            seq = self.append_change(tx, "setting", None, {"key": key, "value": value}, ALL_SITES)
        self._changed()
        return seq

    def append_change(self, tx: Tx, kind: str, order_id: str | None,
                       payload: dict[str, Any], site: str) -> int:
        row = tx.one(
            "INSERT INTO changes (kind, order_id, payload, created_at, site) VALUES (?, ?, ?, ?, ?)"
            " RETURNING change_seq",
            [kind, order_id, json.dumps(payload, ensure_ascii=False), now_iso(), site],
        )
        self.notify_in_transaction(tx)
        return int(row[0])

    def notify_in_transaction(self, tx: Tx) -> None:
        """Tell other hub processes at commit (PostgreSQL NOTIFY); SQLite hubs poll."""

    def changes_since(self, cursor: int, limit: int = 500, *, site: str | None = None,
                      upto: int | None = None) -> list[Change]:
        """Changes after ``cursor`` in order: all of them, or a site's (with the ``*`` ones);
        with ``upto``, none after it."""
        where, params = ["change_seq > ?"], [cursor]
        if site is not None:
            where.append("site IN (?, ?)")
            params += [site, ALL_SITES]
        if upto is not None:
            where.append("change_seq <= ?")
            params.append(upto)
        with self.transaction() as tx:
            rows = tx.all(
                "SELECT change_seq, kind, order_id, payload, created_at, site FROM changes"
                f" WHERE {' AND '.join(where)} ORDER BY change_seq LIMIT ?", [*params, limit])
        return [Change(int(r[0]), r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    def pull(self, site: str, cursor: int, limit: int) -> tuple[list[Change], int, bool]:
        """A device's pull: its site's changes after ``cursor``, the cursor to resume from (past
        other sites' changes too, so a quiet site does not re-read them) and whether more wait."""
        changes, new_cursor, more, _ = self._pull(site, cursor, limit)
        return changes, new_cursor, more

    def _pull(self, site: str, cursor: int, limit: int) -> tuple[list[Change], int, bool, int]:
        last = self.last_change_seq()  # read first: every change up to it has committed
        changes = self.changes_since(cursor, limit + 1, site=site, upto=last)
        more = len(changes) > limit
        changes = changes[:limit]
        if more:
            return changes, changes[-1].seq, True, last
        return changes, max(cursor, last), False, last

    def pull_answer(self, site: str, cursor: int, limit: int) -> dict[str, Any]:
        """The JSON answer of ``GET /sync/pull``: the changes, the cursor to resume from, and
        which hub answers (:meth:`hub_info`), its last change and the mark of the change at
        ``cursor`` (the device compares it with the mark it kept)."""
        changes, new_cursor, more, last = self._pull(site, cursor, limit)
        return {"changes": [c.as_json() for c in changes], "cursor": new_cursor, "more": more,
                "hub": {**self.hub_info(), "last_seq": last,
                        "from_mark": self.change_marks([cursor]).get(cursor)}}

    def hub_info(self) -> dict[str, str]:
        """Who this hub is, for the devices: its signing key's id and its database's id."""
        if self._info is None:
            with self.transaction() as tx:
                row = tx.one("SELECT value FROM hub_meta WHERE key = 'database_id'")
            self._info = {"key_id": key_id(self.signer().public_b64), "database_id": row[0]}
        return dict(self._info)

    def change_marks(self, seqs: Sequence[int]) -> dict[int, str]:
        """:func:`sync.protocol.change_mark` of the changes numbered ``seqs`` (those that exist)."""
        wanted = sorted({s for s in seqs if s > 0})
        if not wanted:
            return {}
        with self.transaction() as tx:
            rows = tx.all("SELECT change_seq, kind, order_id, created_at FROM changes WHERE"
                          f" change_seq IN ({', '.join('?' * len(wanted))})", wanted)
        return {int(r[0]): change_mark(int(r[0]), r[1], r[2], r[3]) for r in rows}

    def last_change_seq(self) -> int:
        with self.transaction() as tx:
            row = tx.one("SELECT COALESCE(MAX(change_seq), 0) FROM changes")
        return int(row[0])

    # -- events ---------------------------------------------------------------------------
    def store_events(self, device: Device, events: Sequence[Any]) -> list[dict[str, str]]:
        """Store a pushed batch: each event once, by id. One status per event, in order.

        No lock is shared with other devices: the rows go in with one statement per chunk, and
        are numbered for ``events?after=`` by :meth:`publish` once committed."""
        results: list[dict[str, str]] = [{} for _ in events]
        received = now_iso()
        rows: list[tuple[int, dict[str, Any]]] = []  # (index in the batch, the row)
        seen: set[str] = set()
        last_seq = None
        for i, event in enumerate(events):
            problem = event_problem(event, device.device_id)
            event_id = event.get("event_id") if isinstance(event, dict) else None
            if problem is not None:
                echo = event_id if isinstance(event_id, str) else str(event_id)
                results[i] = {"event_id": echo[:64], "status": rejected(problem)}
            elif event_id in seen:  # twice in one batch: the second is the duplicate
                results[i] = {"event_id": event_id, "status": DUPLICATE}
            else:
                seen.add(event_id)
                rows.append((i, {
                    "event_id": event_id, "device_id": device.device_id, "seq": event["seq"],
                    "type": event["type"], "order_id": event.get("order_id"),
                    "payload": event["payload"], "device_time": event["device_time"],
                    "hlc": event.get("hlc"), "received_at": received, "site": device.site}))
                last_seq = max(last_seq or 0, event["seq"])
        with self.transaction() as tx:
            inserted = self._insert_events(tx, [row for _, row in rows]) if rows else set()
            if rows:
                tx.execute("UPDATE devices SET last_push = ?, last_seq = COALESCE(?, last_seq)"
                           " WHERE device_id = ?", [received, last_seq, device.device_id])
                if self.publish_inline:
                    self._publish(tx)
        for i, row in rows:
            event_id = row["event_id"]
            results[i] = {"event_id": event_id,
                          "status": ACCEPTED if event_id in inserted else DUPLICATE}
        if rows and not self.publish_inline:
            if self.pushed:
                self.pushed.notify()  # the serving process publishes in the background
            else:
                self.publish()
        return results

    def _insert_events(self, tx: Tx, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Insert event rows (EVENT_COLUMNS; the payload an object) unless their id is stored;
        returns the ids inserted."""
        inserted: set[str] = set()
        for chunk in _chunks(rows, 200):
            values = ", ".join([f"({', '.join('?' * len(EVENT_COLUMNS))})"] * len(chunk))
            cur = tx.execute(f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES {values}"
                             " ON CONFLICT (device_id, event_id) DO NOTHING RETURNING event_id",
                             [json.dumps(row[c], ensure_ascii=False) if c == "payload" else row[c]
                              for row in chunk for c in EVENT_COLUMNS])
            inserted.update(r[0] for r in cur.fetchall())
        return inserted

    # SQLite has one writer: numbering inside the push transaction costs nothing. PostgreSQL
    # numbers after the commit (publish()), so pushes of different devices never wait in line.
    publish_inline = True

    def _publish(self, tx: Tx) -> int:
        """Number the committed, unnumbered events after the highest number, in insertion order."""
        cur = tx.execute(
            "WITH base AS (SELECT COALESCE(MAX(pub_seq), 0) AS b FROM events),"
            " todo AS (SELECT hub_seq, ROW_NUMBER() OVER (ORDER BY hub_seq) AS n FROM events"
            " WHERE pub_seq IS NULL ORDER BY hub_seq LIMIT ?)"
            " UPDATE events SET pub_seq = (SELECT b FROM base) + todo.n FROM todo"
            " WHERE events.hub_seq = todo.hub_seq", [PUBLISH_BATCH])
        return max(cur.rowcount, 0)

    def publish(self, *, wait: bool = False) -> int:
        """Number every committed event that has no number yet; returns how many.

        Several processes may call this at once: one holds the lock and the others return at
        once. The holder looks again after releasing the lock, so an event committed before a
        caller found the lock taken is numbered by the holder's next round (docs/scaling.md).
        ``wait``: wait for the lock instead, so that every event committed before the call is
        numbered when it returns (a listing then shows every push answered before it)."""
        total = 0
        while True:
            with self.transaction() as tx:
                if wait:
                    self.lock(tx, PUBLISH_LOCK)
                    wait = False
                elif not self.try_lock(tx, PUBLISH_LOCK):
                    return total
                done = self._publish(tx)
            total += done
            if done == 0 and not self.unpublished():
                return total

    def unpublished(self) -> bool:
        with self.transaction() as tx:
            return tx.one("SELECT 1 FROM events WHERE pub_seq IS NULL LIMIT 1") is not None

    def list_events(self, *, order_id: str | None = None, device_id: str | None = None,
                    after: int = 0, limit: int = 500,
                    scope: AdminScope = FULL_SCOPE) -> list[dict[str, Any]]:
        """Published events after ``after`` in order (``hub_seq`` is the published number).
        Every push answered before this call is in it."""
        if not self.publish_inline:
            self.publish(wait=True)
        where, params = ["pub_seq > ?"], [after]
        if order_id:
            where.append("order_id = ?")
            params.append(order_id)
        if device_id:
            where.append("device_id = ?")
            params.append(device_id)
        site_where, site_params = scope.where()
        where.append(site_where)
        params += site_params
        with self.transaction() as tx:
            rows = tx.all(
                "SELECT pub_seq, event_id, device_id, seq, type, order_id, payload, device_time,"
                " hlc, received_at, site FROM events WHERE " + " AND ".join(where)
                + " ORDER BY pub_seq LIMIT ?", [*params, limit])
        return rows_as_dicts(rows, ("hub_seq", "event_id", "device_id", "seq", "type", "order_id",
                                    "payload", "device_time", "hlc", "received_at", "site"),
                             json_keys=("payload",))

    def count_events(self) -> int:
        with self.transaction() as tx:
            return int(tx.one("SELECT COUNT(*) FROM events")[0])


class SiteChange(ValueError):
    """An order was sent again with another site."""


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _same_content(a: Order, b: Order) -> bool:
    strip = {"version"}
    ja = {k: v for k, v in a.to_json().items() if k not in strip}
    jb = {k: v for k, v in b.to_json().items() if k not in strip}
    return ja == jb


class SqliteHubStorage(HubStorage):
    """One connection, one lock: a hub for a site serves tens of devices, not thousands."""

    dialect = "sqlite"

    def __init__(self, path: str | Path, policy: HubPolicy | None = None) -> None:
        super().__init__(policy)
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False,
                                     timeout=30)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.execute("PRAGMA busy_timeout = 30000")
        self._lock = threading.RLock()
        with self.transaction() as tx:
            self.migrated_from = migrate(tx, "INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER",
                                         "sqlite")

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

    def __init__(self, url: str, policy: HubPolicy | None = None) -> None:
        import psycopg

        super().__init__(policy)
        self._psycopg = psycopg
        self._url = url
        self._local = threading.local()
        self._all: list[Any] = []
        self._guard = threading.Lock()
        with self.transaction() as tx:
            self.lock(tx, MIGRATE_LOCK)  # one migrator at a time
            self.migrated_from = migrate(tx, "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
                                         "BIGINT", "postgresql")

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

    publish_inline = False

    def _insert_events(self, tx: Tx, rows: Sequence[dict[str, Any]]) -> set[str]:
        # The batch goes as one JSON parameter that PostgreSQL unpacks (in C): a statement of
        # fixed text, prepared once, with no per-value quoting in Python.
        cur = tx.execute(
            f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) SELECT r.event_id, r.device_id,"
            " r.seq, r.type, r.order_id, r.payload::text, r.device_time, r.hlc, r.received_at,"
            " r.site FROM json_to_recordset(?::json) AS r(event_id text, device_id text,"
            " seq bigint, type text, order_id text, payload json, device_time text, hlc text,"
            " received_at text, site text)"
            " ON CONFLICT (device_id, event_id) DO NOTHING RETURNING event_id",
            [json.dumps(rows, ensure_ascii=False)])
        return {r[0] for r in cur.fetchall()}

    def lock(self, tx: Tx, key: int) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(?)", [key])

    def try_lock(self, tx: Tx, key: int) -> bool:
        return bool(tx.one("SELECT pg_try_advisory_xact_lock(?)", [key])[0])

    def notify_in_transaction(self, tx: Tx) -> None:
        # Delivered at commit to every hub process that LISTENs (sync.hub.notify).
        tx.execute(f"NOTIFY {self.CHANNEL}")

    def close(self) -> None:
        with self._guard:
            for conn in self._all:
                conn.close()
            self._all.clear()


def open_storage(database: str, policy: HubPolicy | None = None) -> HubStorage:
    if database.startswith(("postgresql://", "postgres://")):
        return PostgresHubStorage(database, policy)
    return SqliteHubStorage(database, policy)
