"""Connections, transactions and forward migrations.

Why raw SQL for writes: sqlite-utils' ``table.insert`` wraps itself in ``with conn:``, which
commits whatever transaction is open. A state change and its outbox row must commit together, so
writes inside :func:`transaction` use ``db.execute``; sqlite-utils serves schema work and queries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils


class StoreError(RuntimeError):
    """The store cannot take the write (disk full, read-only, corrupt): nothing was recorded."""


class DiskFull(StoreError):
    """Free disk space is below the configured reserve: new work is refused, nothing written."""


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def connect(path: str | Path, *, readonly: bool = False) -> sqlite_utils.Database:
    """Open the database in WAL mode with foreign keys on and fsync on every commit."""
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (see transaction()).
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA foreign_keys = ON")
    if not readonly:
        conn.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit reaches the disk before the scan is answered (power cuts lose nothing).
    conn.execute("PRAGMA synchronous = FULL")
    return sqlite_utils.Database(conn)


@contextmanager
def transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    try:
        db.execute("COMMIT")
    except sqlite3.Error as e:
        db.execute("ROLLBACK")
        raise StoreError(f"commit failed: {e}") from e


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    apply: Callable[[sqlite_utils.Database], object]  # what it returns is ignored


def migrate(db: sqlite_utils.Database, component: str, steps: Sequence[Migration]) -> int:
    """Apply the missing forward migrations of one component; return its schema version.

    Each component (edge, print queue, sync, ...) numbers its own migrations, so areas of the
    code can evolve their tables independently. Each step commits with its version row.
    """
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version ("
        " component TEXT NOT NULL, version INTEGER NOT NULL, description TEXT NOT NULL,"
        " applied_at TEXT NOT NULL, PRIMARY KEY (component, version))"
    )
    versions = [m.version for m in steps]
    if versions != sorted(set(versions)):
        raise ValueError(f"{component}: migration versions must be unique and increasing")
    current = db.execute(
        "SELECT COALESCE(MAX(version), 0) FROM schema_version WHERE component = ?", [component]
    ).fetchone()[0]
    if versions and current > versions[-1]:
        raise StoreError(
            f"the {component} schema is version {current}, newer than this program knows "
            f"({versions[-1]}): upgrade scanedge or restore a backup"
        )
    for step in steps:
        if step.version <= current:
            continue
        with transaction(db):
            step.apply(db)
            db.execute(
                "INSERT INTO schema_version VALUES (?, ?, ?, ?)",
                [component, step.version, step.description, utc_now()],
            )
        current = step.version
    return current


def schema_versions(db: sqlite_utils.Database) -> dict[str, int]:
    """Each component's schema version in this database (``GET /api/v1/version``)."""
    rows = db.execute(
        "SELECT component, MAX(version) FROM schema_version GROUP BY component ORDER BY component"
    ).fetchall()
    return {str(component): int(version) for component, version in rows}
