"""Pack evidence on the device (docs/evidence.md): which clips and photos each order has, where
the file is, and whether the hub holds it yet.

A row per (order, sha256): the same recording sent twice for an order is one row and one event.
The file is content-addressed (edge/photos.py), so one blob serves every row naming it; the
upload is per blob (``uploaded_at`` set on every row of that sha256 at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlite_utils
from ulid import ULID

from scanedge.edge.domain.evidence import Evidence, evidence_problems
from scanedge.edge.domain.print_gate import GateProblem
from scanedge.edge.store.db import Migration, utc_now

COMPONENT = "evidence"


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("""CREATE TABLE pack_evidence (
        evidence_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, kind TEXT NOT NULL,
        sha256 TEXT NOT NULL, size INTEGER NOT NULL, duration_s REAL, mime TEXT NOT NULL,
        path TEXT, station TEXT, operator TEXT, recorded_at TEXT NOT NULL, uploaded_at TEXT,
        UNIQUE (order_id, sha256))""")
    db.execute("CREATE INDEX pack_evidence_order ON pack_evidence (order_id)")
    db.execute("CREATE INDEX pack_evidence_sha ON pack_evidence (sha256)")


MIGRATIONS = (Migration(1, "pack evidence: videos and photos per order", _v1),)
COLUMNS = ("evidence_id", "order_id", "kind", "sha256", "size", "duration_s", "mime", "path",
           "station", "operator", "recorded_at", "uploaded_at")


@dataclass(frozen=True)
class Blob:
    """A stored file the hub does not hold yet."""

    sha256: str
    size: int
    path: str
    mime: str


def record(db: sqlite_utils.Database, order_id: str, evidence: Evidence, *, mime: str,
           path: str, station: str, operator: str | None) -> tuple[dict[str, Any], bool]:
    """The row of this clip for the order: (row, True) when new, (the existing row, False)."""
    known = by_sha(db, order_id, evidence.sha256)
    if known is not None:
        if known["path"] is None:  # purged since, sent again: the file is back
            db.execute("UPDATE pack_evidence SET path = ? WHERE sha256 = ?", [path, evidence.sha256])
            known["path"] = path
        return known, False
    uploaded = db.execute("SELECT uploaded_at FROM pack_evidence WHERE sha256 = ? AND uploaded_at"
                          " IS NOT NULL LIMIT 1", [evidence.sha256]).fetchone()
    row = {"evidence_id": str(ULID()), "order_id": order_id, "kind": evidence.kind,
           "sha256": evidence.sha256, "size": evidence.size, "duration_s": evidence.duration_s,
           "mime": mime, "path": path, "station": station, "operator": operator,
           "recorded_at": utc_now(), "uploaded_at": uploaded[0] if uploaded else None}
    db.execute(f"INSERT INTO pack_evidence ({', '.join(COLUMNS)}) VALUES"
               f" ({', '.join('?' for _ in COLUMNS)})", [row[c] for c in COLUMNS])
    return row, True


def by_sha(db: sqlite_utils.Database, order_id: str, sha256: str) -> dict[str, Any] | None:
    row = db.execute(f"SELECT {', '.join(COLUMNS)} FROM pack_evidence WHERE order_id = ? AND"
                     " sha256 = ?", [order_id, sha256]).fetchone()
    return dict(zip(COLUMNS, row, strict=True)) if row else None


def for_order(db: sqlite_utils.Database, order_id: str) -> list[dict[str, Any]]:
    """The order's evidence, oldest first."""
    rows = db.execute(f"SELECT {', '.join(COLUMNS)} FROM pack_evidence WHERE order_id = ?"
                      " ORDER BY recorded_at, evidence_id", [order_id]).fetchall()
    return [dict(zip(COLUMNS, r, strict=True)) for r in rows]


def stored(db: sqlite_utils.Database, order_id: str) -> list[Evidence]:
    """What counts for the policy: the evidence whose file is on this device (or was, before the
    retention removed it: it was stored, and the hub has or had it)."""
    return [Evidence(r["kind"], r["sha256"], r["size"], r["duration_s"])
            for r in for_order(db, order_id)]


def policy_problems(db: sqlite_utils.Database, order_id: str, policy: str,
                    min_video_s: float) -> tuple[GateProblem, ...]:
    """What ``evidence_policy`` still asks of the order before its label or waybill (nothing
    under ``off``, without a look at the table)."""
    if policy == "off":
        return ()
    return evidence_problems(policy, stored(db, order_id), min_video_s)


def pending_uploads(db: sqlite_utils.Database, limit: int = 20) -> list[Blob]:
    """Blobs on this device the hub does not hold yet, oldest first."""
    rows = db.execute("SELECT sha256, MAX(size), MAX(path), MAX(mime) FROM pack_evidence"
                      " WHERE uploaded_at IS NULL AND path IS NOT NULL GROUP BY sha256"
                      " ORDER BY MIN(recorded_at) LIMIT ?", [limit]).fetchall()
    return [Blob(r[0], r[1], r[2], r[3]) for r in rows]


def mark_uploaded(db: sqlite_utils.Database, sha256: str) -> None:
    db.execute("UPDATE pack_evidence SET uploaded_at = ? WHERE sha256 = ? AND uploaded_at IS NULL",
               [utc_now(), sha256])


def forget_paths(db: sqlite_utils.Database, paths: list[str]) -> None:
    """The retention removed these files: the rows stay (the record), without a file."""
    for path in paths:
        db.execute("UPDATE pack_evidence SET path = NULL WHERE path = ?", [path])


def pending_paths(db: sqlite_utils.Database) -> set[str]:
    """Files not uploaded yet: the retention keeps them."""
    return {r[0] for r in db.execute("SELECT DISTINCT path FROM pack_evidence WHERE uploaded_at"
                                     " IS NULL AND path IS NOT NULL").fetchall()}


def upload_backlog(db: sqlite_utils.Database) -> tuple[int, int]:
    """(blobs, bytes) waiting for the hub."""
    row = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM (SELECT sha256, MAX(size) AS"
                     " size FROM pack_evidence WHERE uploaded_at IS NULL AND path IS NOT NULL"
                     " GROUP BY sha256)").fetchone()
    return int(row[0]), int(row[1])
