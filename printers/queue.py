"""The print queue in SQLite: jobs, their states, and the outbox event of every change.

Every function here runs inside a ``Store.write`` transaction (or reads a read connection), so
a job's state and its event commit together.

States: queued -> sending -> printed; sending -> queued (nothing was sent: retry with backoff);
sending -> needs_confirmation (bytes went out but the label may be incomplete: an operator says
whether it printed, so a label is never printed twice blindly); queued/needs_confirmation ->
cancelled; queued -> failed (the label cannot be made).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlite_utils
from ulid import ULID

from scanedge.edge.domain.orders import PRIORITIES, Order
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.store.db import Migration, utc_now
from scanedge.edge.store.orders import load_freeze
from scanedge.edge.store.outbox import append_event

COMPONENT = "print_queue"
STATES = ("queued", "sending", "printed", "failed", "cancelled", "needs_confirmation")
OPEN_STATES = ("queued", "sending", "needs_confirmation")
MAX_JOBS_LISTED = 500  # GET /print-jobs?limit=


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE print_jobs (
            id INTEGER PRIMARY KEY,              -- queue order within a priority
            job_id TEXT NOT NULL UNIQUE,         -- ULID, what the API shows
            order_id TEXT NOT NULL,
            idempotency_key TEXT UNIQUE,
            priority TEXT NOT NULL,
            rank INTEGER NOT NULL,               -- 0 for P0: P0 jumps the queue
            copies INTEGER NOT NULL CHECK (copies BETWEEN 1 AND 20),
            state TEXT NOT NULL CHECK (state IN ('queued', 'sending', 'printed', 'failed',
                                                 'cancelled', 'needs_confirmation')),
            reprint_no INTEGER NOT NULL DEFAULT 0,
            reprint_of TEXT,
            operator TEXT,
            reason TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,  -- unix time; backoff of retries
            bytes_total INTEGER,
            bytes_sent INTEGER NOT NULL DEFAULT 0,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            last_error TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            printed_at TEXT
        )""")
    db.execute("CREATE INDEX print_jobs_due ON print_jobs (state, rank, id)")
    db.execute("CREATE INDEX print_jobs_order ON print_jobs (order_id, state)")


def _v2(db: sqlite_utils.Database) -> None:
    # What a job prints: an order's packing label ('label', rendered from the order at print
    # time) or another kind whose content travels with the job as JSON (a returns sticker, an
    # e-waybill): those are rendered from ``payload``, not from an order row.
    db.execute("ALTER TABLE print_jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'label'")
    db.execute("ALTER TABLE print_jobs ADD COLUMN payload TEXT")


MIGRATIONS = (Migration(1, "print jobs", _v1), Migration(2, "job kind and payload", _v2))
LABEL = "label"  # the kind of an order's packing label
# Kinds that ship nothing: the order's freeze does not stop them (a returns sticker of a frozen
# order is still wanted on the returned goods; the RMA's own cancellation is checked on receipt;
# a dock manifest names no one order).
FREEZE_EXEMPT_KINDS = frozenset({"returns", "manifest"})

_COLUMNS = ("job_id", "order_id", "idempotency_key", "priority", "copies", "state", "reprint_no",
            "reprint_of", "operator", "reason", "attempts", "next_attempt_at", "bytes_total",
            "bytes_sent", "cancel_requested", "last_error", "created_at", "updated_at", "printed_at",
            "kind", "payload")


class QueueError(Refusal):
    """A request the print queue refuses."""


@dataclass(frozen=True)
class Job:
    job_id: str
    order_id: str
    idempotency_key: str | None
    priority: str
    copies: int
    state: str
    reprint_no: int
    reprint_of: str | None
    operator: str | None
    reason: str | None
    attempts: int
    next_attempt_at: float
    bytes_total: int | None
    bytes_sent: int
    cancel_requested: bool
    last_error: str | None
    created_at: str
    updated_at: str
    printed_at: str | None
    kind: str = LABEL
    payload: dict[str, Any] | None = None  # what a job of another kind prints

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id, "order_id": self.order_id, "state": self.state,
            "priority": self.priority, "copies": self.copies, "reprint_no": self.reprint_no,
            "reprint_of": self.reprint_of, "operator": self.operator, "reason": self.reason,
            "attempts": self.attempts, "bytes_total": self.bytes_total,
            "bytes_sent": self.bytes_sent, "cancel_requested": self.cancel_requested,
            "last_error": self.last_error, "idempotency_key": self.idempotency_key,
            "created_at": self.created_at, "updated_at": self.updated_at,
            "printed_at": self.printed_at, "kind": self.kind,
        }


def _job(row: sqlite3.Row | tuple[Any, ...] | None) -> Job | None:
    if row is None:
        return None
    values = dict(zip(_COLUMNS, row, strict=True))
    values["cancel_requested"] = bool(values["cancel_requested"])
    values["payload"] = json.loads(values["payload"]) if values["payload"] else None
    return Job(**values)


# A job's priority is its order's priority *now*: an expedite (or any priority change) re-ranks
# the queued labels at once, with nothing to keep in step. A job whose order is gone keeps its own.
_PRIORITY = ("COALESCE((SELECT o.priority FROM orders o WHERE o.order_id = print_jobs.order_id),"
             " priority)")


def _select(where: str) -> str:
    columns = ", ".join(_PRIORITY if c == "priority" else c for c in _COLUMNS)  # as of now
    return f"SELECT {columns} FROM print_jobs WHERE {where}"


def get_job(db: sqlite_utils.Database, job_id: str) -> Job | None:
    return _job(db.execute(_select("job_id = ?"), [job_id]).fetchone())


def next_due(db: sqlite_utils.Database, now: float, held: Sequence[str] = ()) -> Job | None:
    """The queued job to print next: highest current priority first, then oldest; jobs of the
    ``held`` priorities stay queued."""
    skip = f" AND {_PRIORITY} NOT IN ({', '.join('?' for _ in held)})" if held else ""
    return _job(db.execute(
        _select(f"state = 'queued' AND next_attempt_at <= ?{skip} ORDER BY {_PRIORITY}, id"
                " LIMIT 1"), [now, *held]).fetchone())


def count_queued(db: sqlite_utils.Database, priorities: Sequence[str]) -> int:
    """Queued jobs whose order has one of ``priorities`` now."""
    if not priorities:
        return 0
    marks = ", ".join("?" for _ in priorities)
    return db.execute(f"SELECT COUNT(*) FROM print_jobs WHERE state = 'queued'"
                      f" AND {_PRIORITY} IN ({marks})", list(priorities)).fetchone()[0]


def p0_pending(db: sqlite_utils.Database) -> bool:
    """A P0 label is queued or printing (then the others wait: ``p0_blocks_others``)."""
    return db.execute(f"SELECT 1 FROM print_jobs WHERE state IN ('queued', 'sending')"
                      f" AND {_PRIORITY} = 'P0' LIMIT 1").fetchone() is not None


def next_wakeup(db: sqlite_utils.Database) -> float | None:
    row = db.execute("SELECT MIN(next_attempt_at) FROM print_jobs WHERE state = 'queued'").fetchone()
    return row[0] if row else None


def depth(db: sqlite_utils.Database) -> dict[str, int]:
    counts = dict(db.execute(
        "SELECT state, COUNT(*) FROM print_jobs WHERE state IN (?, ?, ?) GROUP BY state",
        list(OPEN_STATES),
    ).fetchall())
    return {s: counts.get(s, 0) for s in OPEN_STATES}


def order_jobs(db: sqlite_utils.Database, order_id: str) -> list[Job]:
    rows = db.execute(_select("order_id = ? ORDER BY id"), [order_id]).fetchall()
    return [j for j in map(_job, rows) if j is not None]


def recent_jobs(db: sqlite_utils.Database, *, state: str | None = None,
                order_id: str | None = None, limit: int = 50) -> list[Job]:
    """The newest jobs first, optionally of one state and/or one order (``GET /print-jobs``)."""
    where, params = [], []
    if state is not None:
        where.append("state = ?")
        params.append(state)
    if order_id is not None:
        where.append("order_id = ?")
        params.append(order_id)
    sql = _select(" AND ".join(where) or "1") + " ORDER BY id DESC LIMIT ?"
    return [_job(row) for row in db.execute(sql, [*params, limit]).fetchall()]


def _event(db: sqlite_utils.Database, device_id: str, type_: str, job: Job, **extra: Any) -> None:
    payload = {"job_id": job.job_id, "copies": job.copies, "reprint_no": job.reprint_no, **extra}
    if job.kind != LABEL:
        payload["kind"] = job.kind
    append_event(db, device_id, type_, payload, order_id=job.order_id)


def _update(db: sqlite_utils.Database, job_id: str, **values: Any) -> Job:
    values["updated_at"] = utc_now()
    sets = ", ".join(f"{k} = ?" for k in values)
    db.execute(f"UPDATE print_jobs SET {sets} WHERE job_id = ?", [*values.values(), job_id])
    job = get_job(db, job_id)
    assert job is not None
    return job


def blocked_by_freeze(db: sqlite_utils.Database, device_id: str, order_id: str,
                      what: str) -> str | None:
    """The freeze reason if the order is frozen (and the interception logged), else None."""
    freeze = load_freeze(db, order_id)
    if freeze is None:
        return None
    append_event(db, device_id, "print_blocked", {"reason": freeze.reason, "what": what},
                 order_id=order_id)
    return freeze.reason


def enqueue(
    db: sqlite_utils.Database,
    device_id: str,
    order: Order,
    *,
    copies: int = 1,
    idempotency_key: str | None = None,
    reprint_of: Job | None = None,
    operator: str | None = None,
    reason: str | None = None,
) -> tuple[Job, bool]:
    """Queue an order's label; (job, created). A known idempotency key returns its job unchanged."""
    return enqueue_job(db, device_id, order.order_id, order.priority, copies=copies,
                       idempotency_key=idempotency_key, reprint_of=reprint_of,
                       operator=operator, reason=reason)


def enqueue_job(
    db: sqlite_utils.Database,
    device_id: str,
    order_id: str,
    priority: str,
    *,
    kind: str = LABEL,
    payload: dict[str, Any] | None = None,
    copies: int = 1,
    idempotency_key: str | None = None,
    reprint_of: Job | None = None,
    operator: str | None = None,
    reason: str | None = None,
) -> tuple[Job, bool]:
    """Queue a job of any ``kind`` (``payload``: what a non-label kind prints); (job, created).
    A known idempotency key returns its job unchanged."""
    if idempotency_key is not None:
        row = db.execute(_select("idempotency_key = ?"), [idempotency_key]).fetchone()
        if row is not None:
            job = _job(row)
            assert job is not None
            if job.order_id != order_id or job.kind != kind:
                raise QueueError("idempotency_conflict",
                                 f"idempotency_key {idempotency_key!r} was used for order {job.order_id}")
            return job, False
    if priority not in PRIORITIES:
        raise QueueError("bad_request", f"priority {priority!r}")
    reprint_no = 0
    if reprint_of is not None:
        reprint_no = 1 + db.execute(
            "SELECT COALESCE(MAX(reprint_no), 0) FROM print_jobs WHERE order_id = ? AND kind = ?",
            [order_id, kind]).fetchone()[0]
    now = utc_now()
    job_id = str(ULID())
    db.execute(
        "INSERT INTO print_jobs (job_id, order_id, idempotency_key, priority, rank, copies, state,"
        " reprint_no, reprint_of, operator, reason, created_at, updated_at, kind, payload)"
        " VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
        [job_id, order_id, idempotency_key, priority, PRIORITIES.index(priority),
         copies, reprint_no, reprint_of.job_id if reprint_of else None, operator, reason, now, now,
         kind, json.dumps(payload, ensure_ascii=False) if payload is not None else None],
    )
    job = get_job(db, job_id)
    assert job is not None
    if reprint_of is not None:
        _event(db, device_id, "print_reprint", job, reprint_of=reprint_of.job_id,
               operator=operator, reason=reason)
    _event(db, device_id, "print_queued", job, priority=job.priority)
    return job, True


def start_sending(db: sqlite_utils.Database, device_id: str, job_id: str,
                  bytes_total: int) -> Job | None:
    """Claim a queued job right before its first byte; None if it must not print now.

    The freeze is checked here, in the same transaction that marks the job as sending, so a
    freeze that committed before this point always stops the label.
    """
    job = get_job(db, job_id)
    if job is None or job.state != "queued":
        return None
    if job.cancel_requested or (job.kind not in FREEZE_EXEMPT_KINDS and blocked_by_freeze(
            db, device_id, job.order_id, "print_job")):
        job = _update(db, job_id, state="cancelled", last_error="order frozen")
        _event(db, device_id, "print_cancelled", job, reason="frozen")
        return None
    return _update(db, job_id, state="sending", attempts=job.attempts + 1, bytes_total=bytes_total,
                   bytes_sent=0)


def finish_printed(db: sqlite_utils.Database, device_id: str, job_id: str, sent: int) -> Job:
    job = _update(db, job_id, state="printed", bytes_sent=sent, printed_at=utc_now(),
                  last_error=None)
    _event(db, device_id, "print_printed", job, bytes=sent, attempts=job.attempts,
           cancel_requested=job.cancel_requested)
    return job


def retry_later(db: sqlite_utils.Database, job_id: str, error: str, at: float) -> Job:
    """Nothing reached the printer: back to the queue, not before ``at``."""
    return _update(db, job_id, state="queued", next_attempt_at=at, last_error=error, bytes_sent=0)


def defer(db: sqlite_utils.Database, job_id: str, error: str, at: float) -> Job | None:
    """A queued job that was not even started (printer fault): count the attempt, keep it."""
    job = get_job(db, job_id)
    if job is None or job.state != "queued":
        return job
    return _update(db, job_id, attempts=job.attempts + 1, next_attempt_at=at, last_error=error)


def needs_confirmation(db: sqlite_utils.Database, device_id: str, job_id: str, sent: int,
                       error: str) -> Job:
    job = _update(db, job_id, state="needs_confirmation", bytes_sent=sent, last_error=error)
    _event(db, device_id, "print_needs_confirmation", job, bytes_sent=sent,
           bytes_total=job.bytes_total, error=error)
    return job


def fail(db: sqlite_utils.Database, device_id: str, job_id: str, error: str) -> Job:
    job = _update(db, job_id, state="failed", last_error=error)
    _event(db, device_id, "print_failed", job, error=error)
    return job


def confirm(db: sqlite_utils.Database, device_id: str, job_id: str, outcome: str,
            operator: str) -> Job:
    """The operator's word on a job that needs confirmation: printed, resend or cancel."""
    job = get_job(db, job_id)
    if job is None:
        raise QueueError("not_found", f"print job {job_id} does not exist")
    if job.state != "needs_confirmation":
        raise QueueError("bad_state", f"print job {job_id} is {job.state}, not needs_confirmation")
    if outcome == "printed":
        job = _update(db, job_id, state="printed", printed_at=utc_now(), operator=operator)
    elif outcome == "resend":
        if job.kind not in FREEZE_EXEMPT_KINDS and blocked_by_freeze(db, device_id, job.order_id,
                                                                     "print_resend"):
            raise QueueError("frozen", f"order {job.order_id} is frozen")
        job = _update(db, job_id, state="queued", next_attempt_at=0, bytes_sent=0, operator=operator)
    elif outcome == "cancel":
        job = _update(db, job_id, state="cancelled", operator=operator)
    else:
        raise QueueError("bad_request", "outcome: expected printed, resend or cancel")
    _event(db, device_id, "print_confirmed", job, outcome=outcome, operator=operator)
    return job


def cancel_order_jobs(db: sqlite_utils.Database, device_id: str, order_id: str,
                      reason: str = "freeze") -> dict[str, list[str]]:
    """Cancel every pending job of an order in this transaction (the freeze calls this).

    Queued and needs_confirmation jobs are cancelled. A job already sending cannot be called
    back from the wire: it is flagged, and the worker reports its label as printed after the
    cancel so a person can pull it.
    """
    cancelled: list[str] = []
    flagged: list[str] = []
    for job in order_jobs(db, order_id):
        if job.kind in FREEZE_EXEMPT_KINDS:
            continue
        if job.state in ("queued", "needs_confirmation"):
            job = _update(db, job.job_id, state="cancelled", cancel_requested=1, last_error=reason)
            _event(db, device_id, "print_cancelled", job, reason=reason)
            cancelled.append(job.job_id)
        elif job.state == "sending":
            _update(db, job.job_id, cancel_requested=1)
            flagged.append(job.job_id)
    return {"cancelled": cancelled, "sending": flagged}


def release_backoff(db: sqlite_utils.Database) -> None:
    """The printer is back: queued jobs need not wait out their backoff."""
    db.execute("UPDATE print_jobs SET next_attempt_at = 0 WHERE state = 'queued'")


def recover_after_crash(db: sqlite_utils.Database, device_id: str) -> list[str]:
    """A job left 'sending' by a crash may have printed: ask the operator, never resend blindly."""
    ids = [r[0] for r in db.execute("SELECT job_id FROM print_jobs WHERE state = 'sending'")]
    for job_id in ids:
        needs_confirmation(db, device_id, job_id, 0,
                           "the service stopped while sending (bytes sent unknown)")
    return ids
