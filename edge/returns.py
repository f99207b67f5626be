"""Returns received at the bench (docs/returns.md): RMAs from the hub, receipts, the verdict.

``/api/v1/returns/...`` (edge/web/returns.py) calls :class:`ReturnsService`. The rules are pure,
in edge/domain/returns.py; this module keeps the state and writes the record:

- RMAs come from the hub as changes of kind ``rma`` (sync/apply.py -> :func:`apply_rma`), kept
  in ``rmas`` by version (an older copy is ignored). An RMA cancelled upstream is a freeze of
  its return: every later step on it is refused (409 ``rma_frozen``) and raises an alarm at the
  station, and a receipt open when the cancellation arrives raises one at once.
- A receipt is started by scanning the return's waybill, the RMA id or the original order; its
  lines are the RMA's; item scans count against them (codes classified as at the bench: GTIN,
  GS1 with lot/expiry, seller SKU), anything else is an extra (``not_on_rma``). A ``scan_id``
  replayed is answered again, not counted twice. Photos are kept content-addressed
  (edge/photos.py, ``<data_dir>/returns_photos``), with the limits and errors of waybill photos.
- Finishing judges the return and writes, in one transaction: the receipt's verdict, ONE outbox
  event ``return_received`` (the hub's ``GET /api/v1/rmas/{id}`` shows it) and the returns
  sticker's print job (kind ``returns``). A receipt with no RMA (an unannounced return) finishes
  with ``qualifies: false``, reason ``unannounced``, for a person to match.
- An RMA is received once: a second receipt is refused (409 ``rma_already_received``) with the
  first one shown.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils
from ulid import ULID

from scanedge.edge.domain import returns as rules
from scanedge.edge.domain.codes import ScannedCode, classify, same_item
from scanedge.edge.domain.interception_report import parse_time
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.photos import PhotoStore, check_photo
from scanedge.edge.store import Store
from scanedge.edge.store.db import Migration, utc_now
from scanedge.edge.store.orders import load_order
from scanedge.edge.store.outbox import append_event
from scanedge.printers import queue as print_queue

if TYPE_CHECKING:
    from scanedge.edge.alarms import Alarm, AlarmCenter
    from scanedge.edge.config import Settings
    from scanedge.printers.service import PrintService
    from scanedge.sync.apply import Applied

log = logging.getLogger(__name__)
COMPONENT = "returns"
PHOTO_DIR = "returns_photos"
MAX_PHOTOS = 20  # per receipt: the record of one parcel, not an album
MAX_LISTED = 200
STICKER_PRIORITY = "P3"  # a returns sticker never holds up a parcel's label
STATES = ("open", "finished", "unannounced")  # GET /returns/receipts?state=

_TABLES = (
    """CREATE TABLE IF NOT EXISTS rmas (
        rma_id TEXT PRIMARY KEY,
        order_id TEXT NOT NULL,
        return_tracking TEXT,          -- upper case, as scanned waybills are compared
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL,             -- the RMA as the hub sent it (edge/domain/returns.py)
        updated_at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS rmas_order ON rmas (order_id)",
    "CREATE INDEX IF NOT EXISTS rmas_tracking ON rmas (return_tracking)",
    """CREATE TABLE IF NOT EXISTS return_receipts (
        receipt_id TEXT PRIMARY KEY,
        rma_id TEXT,                   -- NULL: an unannounced return
        code TEXT,                     -- what was scanned to start it
        state TEXT NOT NULL CHECK (state IN ('open', 'finished')),
        station TEXT,
        operator TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        verdict TEXT,                  -- JSON, once finished
        label_job TEXT)""",
    # one receipt in progress per RMA: a reload or a second tab resumes it
    "CREATE UNIQUE INDEX IF NOT EXISTS return_receipts_open ON return_receipts (rma_id)"
    " WHERE state = 'open' AND rma_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS return_receipts_rma ON return_receipts (rma_id, started_at)",
    """CREATE TABLE IF NOT EXISTS return_lines (
        receipt_id TEXT NOT NULL,
        sku TEXT NOT NULL,
        name TEXT NOT NULL,
        expected INTEGER NOT NULL,
        received INTEGER NOT NULL DEFAULT 0,
        condition TEXT,
        bin TEXT,
        pos INTEGER NOT NULL,
        PRIMARY KEY (receipt_id, sku))""",
    """CREATE TABLE IF NOT EXISTS return_extras (
        receipt_id TEXT NOT NULL,
        code TEXT NOT NULL,
        qty INTEGER NOT NULL,
        condition TEXT,
        pos INTEGER NOT NULL,
        PRIMARY KEY (receipt_id, code))""",
    """CREATE TABLE IF NOT EXISTS return_photos (
        receipt_id TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        path TEXT,                     -- NULL once purged (the hash stays on the record)
        added_at TEXT NOT NULL,
        PRIMARY KEY (receipt_id, sha256))""",
    """CREATE TABLE IF NOT EXISTS return_scans (
        scan_id TEXT PRIMARY KEY,
        receipt_id TEXT NOT NULL,
        answer TEXT NOT NULL)""",
)


def _v1(db: sqlite_utils.Database) -> None:
    for stmt in _TABLES:
        db.execute(stmt)


MIGRATIONS = (Migration(1, "returns: RMAs, receipts, lines, extras, photos, scans", _v1),)


def ensure_tables(db: sqlite_utils.Database) -> None:
    """For the hub's changes applied before the service ever ran here (``scanedge sync``)."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'rmas'").fetchone() is None:
        _v1(db)


# ---------------------------------------------------------------------------------------------
# RMAs from the hub (sync/apply.py)


def apply_rma(db: sqlite_utils.Database, payload: dict[str, Any]) -> tuple[str, bool] | None:
    """Store an RMA change unless an equal or newer version is here; (rma_id, newly
    cancelled) when it took effect, None when it changed nothing. Raises RmaError."""
    rma = rules.parse_rma(payload)
    row = db.execute("SELECT version, status FROM rmas WHERE rma_id = ?", [rma.rma_id]).fetchone()
    if row is not None and row[0] >= rma.version:
        return None
    db.execute(
        "INSERT INTO rmas (rma_id, order_id, return_tracking, status, version, doc, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rma_id) DO UPDATE SET"
        " order_id = excluded.order_id, return_tracking = excluded.return_tracking,"
        " status = excluded.status, version = excluded.version, doc = excluded.doc,"
        " updated_at = excluded.updated_at",
        [rma.rma_id, rma.order_id, (rma.return_tracking or "").upper() or None, rma.status,
         rma.version, json.dumps(rma.to_json(), ensure_ascii=False), utc_now()])
    return rma.rma_id, rma.status == "cancelled" and (row is None or row[1] != "cancelled")


def load_rma(db: sqlite_utils.Database, rma_id: str) -> rules.Rma | None:
    row = db.execute("SELECT doc FROM rmas WHERE rma_id = ?", [rma_id]).fetchone()
    return rules.parse_rma(json.loads(row[0])) if row else None


# ---------------------------------------------------------------------------------------------
# reading receipts


def _rma_json(db: sqlite_utils.Database, rma: rules.Rma) -> dict[str, Any]:
    """The RMA as the page sees it: ``received`` once a receipt of it finished here."""
    doc = rma.to_json()
    if rma.status == "open" and db.execute(
            "SELECT 1 FROM return_receipts WHERE rma_id = ? AND state = 'finished' LIMIT 1",
            [rma.rma_id]).fetchone():
        doc["status"] = "received"
    return doc


def receipt_json(db: sqlite_utils.Database, receipt_id: str) -> dict[str, Any] | None:
    row = db.execute(
        "SELECT receipt_id, rma_id, code, state, station, operator, started_at, finished_at,"
        " verdict, label_job FROM return_receipts WHERE receipt_id = ?", [receipt_id]).fetchone()
    if row is None:
        return None
    lines = [{"sku": r[0], "name": r[1], "expected": r[2], "received": r[3], "condition": r[4],
              "bin": r[5]} for r in db.execute(
        "SELECT sku, name, expected, received, condition, bin FROM return_lines"
        " WHERE receipt_id = ? ORDER BY pos", [receipt_id])]
    extras = [{"code": r[0], "qty": r[1], "kind": "not_on_rma", "condition": r[2]}
              for r in db.execute("SELECT code, qty, condition FROM return_extras"
                                  " WHERE receipt_id = ? ORDER BY pos", [receipt_id])]
    photos = [{"sha256": r[0], "bytes": r[1], "kept": r[2] is not None} for r in db.execute(
        "SELECT sha256, bytes, path FROM return_photos WHERE receipt_id = ? ORDER BY added_at,"
        " sha256", [receipt_id])]
    order = db.execute("SELECT order_id FROM rmas WHERE rma_id = ?", [row[1]]).fetchone() \
        if row[1] else None
    return {"receipt_id": row[0], "rma_id": row[1], "order_id": order[0] if order else None,
            "unannounced": row[1] is None, "code": row[2], "state": row[3], "station": row[4],
            "operator": row[5], "started_at": row[6], "finished_at": row[7], "lines": lines,
            "extras": extras, "photos": photos,
            "verdict": json.loads(row[8]) if row[8] else None, "label_job": row[9]}


def _first_finished(db: sqlite_utils.Database, rma_id: str) -> dict[str, Any] | None:
    row = db.execute("SELECT receipt_id FROM return_receipts WHERE rma_id = ? AND"
                     " state = 'finished' ORDER BY finished_at, receipt_id LIMIT 1",
                     [rma_id]).fetchone()
    return receipt_json(db, row[0]) if row else None


def _open_receipt(db: sqlite_utils.Database, rma_id: str) -> str | None:
    row = db.execute("SELECT receipt_id FROM return_receipts WHERE rma_id = ? AND state = 'open'",
                     [rma_id]).fetchone()
    return row[0] if row else None


def find_rma(db: sqlite_utils.Database, code: str) -> rules.Rma | None:
    """The RMA a scanned code names: its id, its return waybill, or its original order (the
    open RMA first, then the newest)."""
    for sql, value in (
            ("SELECT doc FROM rmas WHERE rma_id = ?", code),
            ("SELECT doc FROM rmas WHERE return_tracking = ?", code.upper()),
            ("SELECT doc FROM rmas WHERE order_id = ? ORDER BY status = 'open' DESC,"
             " updated_at DESC LIMIT 1", code)):
        row = db.execute(sql, [value]).fetchone()
        if row is not None:
            return rules.parse_rma(json.loads(row[0]))
    return None


# ---------------------------------------------------------------------------------------------
# the service


@dataclass(frozen=True)
class _Frozen:
    """A step refused inside the transaction: the alarm commits, then the refusal is raised."""

    rma_id: str
    alarm: Alarm | None


class ReturnsService:
    def __init__(self, settings: Settings, store: Store, *, alarms: AlarmCenter,
                 printing: PrintService | None = None) -> None:
        self.settings = settings
        self.store = store
        self.alarms = alarms
        self.printing = printing
        self.photos = PhotoStore(Path(settings.data_dir) / PHOTO_DIR, store,
                                 retention_days=settings.returns_photo_retention_days,
                                 max_mb=settings.returns_photos_max_mb)
        store.ensure_schema(COMPONENT, MIGRATIONS)
        store.ensure_schema(print_queue.COMPONENT, print_queue.MIGRATIONS)

    # -- lookup and lists ------------------------------------------------------------------

    def lookup(self, code: str) -> dict[str, Any]:
        db = self.store.read()
        rma = find_rma(db, code.strip())
        if rma is None:
            raise Refusal("rma_unknown", f"no RMA for {code.strip()[:64]!r} on this device: an "
                          "unannounced return?", scanned=code.strip()[:64])
        open_id = _open_receipt(db, rma.rma_id)
        receipt = receipt_json(db, open_id) if open_id else _first_finished(db, rma.rma_id)
        return {"rma": _rma_json(db, rma), "receipt": receipt}

    def receipts(self, state: str) -> list[dict[str, Any]]:
        where = {"open": "state = 'open'", "finished": "state = 'finished'",
                 "unannounced": "rma_id IS NULL"}[state]
        db = self.store.read()
        ids = [r[0] for r in db.execute(
            f"SELECT receipt_id FROM return_receipts WHERE {where}"
            " ORDER BY started_at DESC, receipt_id DESC LIMIT ?", [MAX_LISTED])]
        return [r for r in (receipt_json(db, i) for i in ids) if r is not None]

    def get(self, receipt_id: str) -> dict[str, Any]:
        found = receipt_json(self.store.read(), receipt_id)
        if found is None:
            raise Refusal("receipt_unknown", f"no return receipt {receipt_id}")
        return found

    # -- start -----------------------------------------------------------------------------

    def start(self, *, rma_id: str | None, code: str | None, station: str,
              operator: str) -> tuple[dict[str, Any], bool]:
        """Start (or resume) the receipt of an RMA, or an unannounced one; (receipt, created)."""
        now = utc_now()

        def tx(db: sqlite_utils.Database) -> tuple[dict[str, Any], bool] | _Frozen:
            if rma_id is None:
                receipt_id = str(ULID())
                db.execute("INSERT INTO return_receipts (receipt_id, rma_id, code, state, station,"
                           " operator, started_at) VALUES (?, NULL, ?, 'open', ?, ?, ?)",
                           [receipt_id, code, station, operator, now])
                return self._json(db, receipt_id), True
            rma = load_rma(db, rma_id)
            if rma is None:
                raise Refusal("rma_unknown", f"no RMA {rma_id} on this device", scanned=rma_id)
            first = _first_finished(db, rma_id)
            if first is not None:
                raise Refusal("rma_already_received", f"RMA {rma_id} was received already "
                              f"({first['finished_at']}, {first['station']})", receipt=first)
            if rma.status == "received":  # received on another device of the site
                raise Refusal("rma_already_received", f"RMA {rma_id} was received already "
                              "(on another device)", receipt=None)
            if rma.status == "cancelled":
                return self._frozen(db, rma, station, operator, "start")
            open_id = _open_receipt(db, rma_id)
            if open_id is not None:
                return self._json(db, open_id), False
            receipt_id = str(ULID())
            db.execute("INSERT INTO return_receipts (receipt_id, rma_id, code, state, station,"
                       " operator, started_at) VALUES (?, ?, ?, 'open', ?, ?, ?)",
                       [receipt_id, rma_id, code or rma_id, station, operator, now])
            order = load_order(db, rma.order_id)
            locations = {ln.sku: ln.location for ln in order.lines} if order else {}
            for pos, line in enumerate(rma.lines):
                db.execute("INSERT INTO return_lines (receipt_id, sku, name, expected, bin, pos)"
                           " VALUES (?, ?, ?, ?, ?, ?)",
                           [receipt_id, line.sku, line.name, line.qty,
                            line.bin or locations.get(line.sku), pos])
            return self._json(db, receipt_id), True

        return self._run(tx)

    # -- items, photos, conditions ----------------------------------------------------------

    def scan_item(self, receipt_id: str, raw: str, *, scan_id: str | None,
                  operator: str) -> dict[str, Any]:
        code = classify(raw)
        if code.problem is not None:
            raise Refusal("bad_request", f"code {code.text[:64]!r}: {code.problem.value}",
                          problem=code.problem.value)

        def tx(db: sqlite_utils.Database) -> dict[str, Any] | _Frozen:
            if scan_id is not None:
                row = db.execute("SELECT receipt_id, answer FROM return_scans WHERE scan_id = ?",
                                 [scan_id]).fetchone()
                if row is not None and row[0] == receipt_id:
                    return {**json.loads(row[1]), "receipt": self._json(db, receipt_id),
                            "replayed": True}
            frozen = self._open_or_refuse(db, receipt_id, operator, "item")
            if frozen is not None:
                return frozen
            answer = _count(db, receipt_id, code)
            if scan_id is not None:
                db.execute("INSERT INTO return_scans (scan_id, receipt_id, answer) VALUES (?, ?, ?)"
                           " ON CONFLICT (scan_id) DO NOTHING",
                           [scan_id, receipt_id, json.dumps(answer, ensure_ascii=False)])
            return {**answer, "receipt": self._json(db, receipt_id)}

        return self._run(tx)

    def add_photo(self, receipt_id: str, photo: bytes, *, operator: str) -> dict[str, Any]:
        self._open_or_refuse(self.store.read(), receipt_id, None, None)  # before any work
        check_photo(photo, self.settings)
        sha, path = self.photos.put(photo)

        def tx(db: sqlite_utils.Database) -> dict[str, Any] | _Frozen:
            frozen = self._open_or_refuse(db, receipt_id, operator, "photo")
            if frozen is not None:
                return frozen
            count = db.execute("SELECT COUNT(*) FROM return_photos WHERE receipt_id = ?",
                               [receipt_id]).fetchone()[0]
            if count >= MAX_PHOTOS:
                raise Refusal("too_large", f"at most {MAX_PHOTOS} photos per return")
            db.execute("INSERT INTO return_photos (receipt_id, sha256, bytes, path, added_at)"
                       " VALUES (?, ?, ?, ?, ?) ON CONFLICT (receipt_id, sha256) DO UPDATE SET"
                       " path = excluded.path", [receipt_id, sha, len(photo), str(path), utc_now()])
            return {"sha256": sha, "bytes": len(photo), "receipt": self._json(db, receipt_id)}

        out = self._run(tx)
        self.photos.purge_if_due(self._forget_photos)
        return out

    def set_condition(self, receipt_id: str, sku: str, condition: str | None, *,
                      operator: str) -> dict[str, Any]:
        if condition is not None and condition not in rules.CONDITIONS:
            raise Refusal("bad_condition", "condition: expected one of "
                          f"{', '.join(rules.CONDITIONS)} (or null)")

        def tx(db: sqlite_utils.Database) -> dict[str, Any] | _Frozen:
            frozen = self._open_or_refuse(db, receipt_id, operator, "condition")
            if frozen is not None:
                return frozen
            changed = db.execute("UPDATE return_lines SET condition = ? WHERE receipt_id = ?"
                                 " AND sku = ?", [condition, receipt_id, sku]).rowcount
            if not changed:
                changed = db.execute("UPDATE return_extras SET condition = ? WHERE receipt_id = ?"
                                     " AND code = ?", [condition, receipt_id, sku]).rowcount
            if not changed:
                raise Refusal("not_found", f"{sku!r} is neither a line nor an extra of this return")
            return self._json(db, receipt_id)

        return self._run(tx)

    # -- finish ----------------------------------------------------------------------------

    def finish(self, receipt_id: str, *, operator: str) -> dict[str, Any]:
        device = self.settings.device_id

        def tx(db: sqlite_utils.Database) -> dict[str, Any] | _Frozen:
            receipt = self._json(db, receipt_id)
            if receipt["state"] == "finished":  # a retried finish: the same answer, no event
                return {"receipt": receipt, "verdict": receipt["verdict"],
                        "label_job": receipt["label_job"], "replayed": True}
            rma = load_rma(db, receipt["rma_id"]) if receipt["rma_id"] else None
            if rma is not None and rma.status == "cancelled":
                return self._frozen(db, rma, receipt["station"], operator, "finish")
            now = datetime.now(UTC)
            verdict = self._judge(rma, receipt, now)
            doc = verdict.to_json()
            payload = {
                "receipt_id": receipt_id, "rma_id": receipt["rma_id"],
                "unannounced": rma is None, "code": receipt["code"],
                "reason": rma.reason if rma else None, "station": receipt["station"],
                "operator": receipt["operator"], "finished_by": operator,
                "started_at": receipt["started_at"], "verdict": doc,
                "lines": [{k: ln[k] for k in ("sku", "expected", "received", "condition")}
                          for ln in receipt["lines"]],
                "extras": [{k: x[k] for k in ("code", "qty", "condition")}
                           for x in receipt["extras"]],
                "photos": [{"sha256": p["sha256"], "bytes": p["bytes"]}
                           for p in receipt["photos"]]}
            event = append_event(db, device, "return_received", payload,
                                 order_id=rma.order_id if rma else None)
            job, _ = print_queue.enqueue_job(
                db, device, rma.order_id if rma else "", STICKER_PRIORITY, kind="returns",
                payload=_sticker(receipt, rma, doc), idempotency_key=f"returns:{receipt_id}",
                operator=operator)
            db.execute("UPDATE return_receipts SET state = 'finished', finished_at = ?,"
                       " verdict = ?, label_job = ? WHERE receipt_id = ?",
                       [doc["decided_at"], json.dumps(doc, ensure_ascii=False), job.job_id,
                        receipt_id])
            return {"receipt": self._json(db, receipt_id), "verdict": doc,
                    "label_job": job.job_id, "event_id": event.event_id, "_job": job}

        out = self._run(tx)
        job = out.pop("_job", None)
        if job is not None and self.printing is not None:
            self.printing.queued(job)
        return out

    def _judge(self, rma: rules.Rma | None, receipt: dict[str, Any],
               now: datetime) -> rules.Verdict:
        if rma is None:
            return rules.judge_unannounced(
                [(x["code"], x["qty"], x["condition"]) for x in receipt["extras"]], decided_at=now)
        lines = [rules.ReceivedLine(ln["sku"], ln["expected"], ln["received"], ln["condition"],
                                    ln["bin"]) for ln in receipt["lines"]]
        try:
            return rules.judge(rma, lines, [(x["code"], x["qty"]) for x in receipt["extras"]],
                               received_at=parse_time(receipt["started_at"]), decided_at=now)
        except rules.MissingCondition as e:
            raise Refusal("bad_condition", f"{e}: resaleable, damaged, used or missing_parts",
                          skus=e.skus) from None

    # -- a cancellation from the hub ----------------------------------------------------------

    def on_applied(self, applied: Applied | None = None) -> int:
        """After the hub's changes committed (bus ``hub_applied``) and once at start: each open
        receipt of an RMA cancelled upstream raises an alarm at its station, once per version
        of the cancellation. The stored state decides, not the change that was applied, so a
        crash between the hub's commit and the alarm's loses nothing: the next start raises it.
        Returns how many alarms were raised."""
        if applied is not None and not applied.rmas_cancelled:
            return 0  # nothing newly cancelled: the start's pass covered the rest

        def tx(db: sqlite_utils.Database) -> list[Alarm]:
            raised = []
            for rma_id, station, version in db.execute(
                    "SELECT r.rma_id, r.station, m.version FROM return_receipts r"
                    " JOIN rmas m ON m.rma_id = r.rma_id"
                    " WHERE r.state = 'open' AND m.status = 'cancelled' AND NOT EXISTS ("
                    "  SELECT 1 FROM alarms a WHERE a.type = 'rma_frozen'"
                    "  AND json_extract(a.details, '$.rma_id') = r.rma_id"
                    "  AND json_extract(a.details, '$.action') = 'cancelled_on_bench'"
                    "  AND json_extract(a.details, '$.version') = m.version)").fetchall():
                rma = load_rma(db, rma_id)
                if rma is not None:
                    raised.append(self._alarm(db, rma, station, None, "cancelled_on_bench",
                                              version=version))
            return raised

        alarms = self.store.write(tx, essential=True)
        for alarm in alarms:
            self.alarms.announce(alarm)
        return len(alarms)

    # -- helpers ---------------------------------------------------------------------------

    def _run(self, tx: Any) -> Any:
        out = self.store.write(tx)
        if isinstance(out, _Frozen):
            if out.alarm is not None:
                self.alarms.announce(out.alarm)
            raise Refusal("rma_frozen", f"RMA {out.rma_id} was cancelled upstream: do not "
                          "receive it (an alarm is raised)", rma_id=out.rma_id)
        return out

    def _json(self, db: sqlite_utils.Database, receipt_id: str) -> dict[str, Any]:
        found = receipt_json(db, receipt_id)
        if found is None:
            raise Refusal("receipt_unknown", f"no return receipt {receipt_id}")
        return found

    def _open_or_refuse(self, db: sqlite_utils.Database, receipt_id: str, operator: str | None,
                        action: str | None) -> _Frozen | None:
        """Refuse a step on an unknown or finished receipt; with ``action``, one on a cancelled
        RMA too (its alarm is written in ``db``)."""
        row = db.execute("SELECT state, rma_id, station FROM return_receipts"
                         " WHERE receipt_id = ?", [receipt_id]).fetchone()
        if row is None:
            raise Refusal("receipt_unknown", f"no return receipt {receipt_id}")
        if row[0] != "open":
            raise Refusal("receipt_finished", f"return receipt {receipt_id} is finished",
                          receipt=receipt_json(db, receipt_id))
        rma = load_rma(db, row[1]) if row[1] else None
        if action is not None and rma is not None and rma.status == "cancelled":
            return self._frozen(db, rma, row[2], operator, action)
        return None

    def _frozen(self, db: sqlite_utils.Database, rma: rules.Rma, station: str | None,
                operator: str | None, action: str) -> _Frozen:
        return _Frozen(rma.rma_id, self._alarm(db, rma, station, operator, action))

    def _alarm(self, db: sqlite_utils.Database, rma: rules.Rma, station: str | None,
               operator: str | None, action: str, **details: Any) -> Alarm:
        message = {"zh": f"退货单 {rma.rma_id} 已被取消:不要收货,交给主管",
                   "en": f"RMA {rma.rma_id} was cancelled upstream: do not receive it, "
                         "call the supervisor"}
        return self.alarms.insert(db, "rma_frozen", message, order_id=rma.order_id,
                                  station=station or self.settings.station, rma_id=rma.rma_id,
                                  action=action, operator=operator, **details)

    def _forget_photos(self, gone: list[Path]) -> None:
        def tx(db: sqlite_utils.Database) -> None:
            for p in gone:
                db.execute("UPDATE return_photos SET path = NULL WHERE path = ?", [str(p)])

        self.store.write(tx, essential=True)


def _count(db: sqlite_utils.Database, receipt_id: str, code: ScannedCode) -> dict[str, Any]:
    """Count one scanned item against the receipt's lines, else as an extra."""
    for sku, expected, received in db.execute(
            "SELECT sku, expected, received FROM return_lines WHERE receipt_id = ? ORDER BY pos",
            [receipt_id]).fetchall():
        if same_item(code, sku):
            db.execute("UPDATE return_lines SET received = received + 1 WHERE receipt_id = ?"
                       " AND sku = ?", [receipt_id, sku])
            flag = "over_quantity" if received + 1 > expected else None
            return {"matched": {"sku": sku}, "flag": flag, "code": code.as_json()}
    key = code.gtin if code.gtin and code.kind.value == "gs1" else code.text
    pos = db.execute("SELECT COUNT(*) FROM return_extras WHERE receipt_id = ?",
                     [receipt_id]).fetchone()[0]
    db.execute("INSERT INTO return_extras (receipt_id, code, qty, pos) VALUES (?, ?, 1, ?)"
               " ON CONFLICT (receipt_id, code) DO UPDATE SET qty = qty + 1",
               [receipt_id, key, pos])
    return {"matched": None, "flag": "not_on_rma", "code": code.as_json()}


def _sticker(receipt: dict[str, Any], rma: rules.Rma | None,
             verdict: dict[str, Any]) -> dict[str, Any]:
    """What the returns sticker prints (printers/returns_label.py)."""
    names = {ln["sku"]: ln["name"] for ln in receipt["lines"]}
    return {"rma_id": rma.rma_id if rma else None, "order_id": rma.order_id if rma else None,
            "receipt_id": receipt["receipt_id"], "code": receipt["code"],
            "reason": rma.reason if rma else None, "qualifies": verdict["qualifies"],
            "station": receipt["station"], "decided_at": verdict["decided_at"],
            "lines": [{"sku": ln["sku"], "name": names.get(ln["sku"], ""), "qty": ln["qty"],
                       "disposition": ln["disposition"], "bin": ln["bin"]}
                      for ln in verdict["lines"]]}
