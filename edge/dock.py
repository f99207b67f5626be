"""The dock handover (装车交接, docs/dock.md): batches of parcels scanned onto a truck.

``/api/v1/dock/...`` (edge/web/dock.py) calls :class:`DockService`; the rules are pure, in
edge/domain/dock.py. This module keeps the batches and writes the record:

- A scan is judged in one writer transaction with what it needs (the order, its freeze, a void
  label, the batches holding it, whether a label of it printed here). A refused frozen parcel
  records an ``interception`` (action ``dock``, stage ``dock`` of the interception report) and,
  like a void label, raises the station's alarm ("pull it") in the same transaction; the refusal
  is raised after the commit. A ``scan_id`` replayed gets the stored answer (or refusal) again
  and writes nothing, so a retried scan never doubles a parcel, an alarm or an event.
- Closing (装车完成) writes, in one transaction: the manifest, ONE ``handover_closed`` event for
  the batch and ONE ``loaded`` event per parcel (the hub shows the order as loaded). A retried
  close answers the same manifest and writes nothing. A batch holding a parcel frozen since its
  scan does not close until that parcel is taken out (``DELETE .../parcels/<order>``).
- The manifest prints on the bench printer as a print job of kind ``manifest``
  (printers/manifest_label.py) and downloads as CSV.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlite_utils
from ulid import ULID

from scanedge.edge.domain import dock as rules
from scanedge.edge.domain import parcels as parcel_rules
from scanedge.edge.domain.interception_report import iso
from scanedge.edge.domain.labels import label_id, parcel_of, parse_label_id
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.freezes.interceptions import record_interception
from scanedge.edge.store import Store, bench
from scanedge.edge.store import parcels as parcels_store
from scanedge.edge.store.db import Migration, utc_now
from scanedge.edge.store.orders import load_freeze, load_order, order_id_for_code
from scanedge.edge.store.outbox import append_event
from scanedge.printers import queue as print_queue

if TYPE_CHECKING:
    from scanedge.edge.alarms import Alarm, AlarmCenter
    from scanedge.edge.config import Settings
    from scanedge.printers.service import PrintService

COMPONENT = "dock"
STATES = ("open", "closed")
MAX_LISTED = 200
MANIFEST_KIND = "manifest"
MANIFEST_PRIORITY = "P2"
ORDER_LABEL_KINDS = ("label", "ewaybill")  # jobs that put an order's shipping label on it
PARCEL_KIND = parcels_store.PARCEL_JOB_KIND  # one parcel's label of a split order
LABEL_KINDS = (*ORDER_LABEL_KINDS, PARCEL_KIND)

_TABLES = (
    """CREATE TABLE IF NOT EXISTS dock_batches (
        batch_id TEXT PRIMARY KEY,
        carrier TEXT,                  -- upper case; NULL: a mixed truck
        station TEXT NOT NULL,
        operator TEXT,
        state TEXT NOT NULL CHECK (state IN ('open', 'closed')),
        opened_at TEXT NOT NULL,
        closed_at TEXT,
        closed_by TEXT,
        manifest TEXT,                 -- JSON, once closed (edge/domain/dock.py manifest)
        manifest_job TEXT)""",
    "CREATE INDEX IF NOT EXISTS dock_batches_state ON dock_batches (state, opened_at)",
    """CREATE TABLE IF NOT EXISTS dock_parcels (
        batch_id TEXT NOT NULL,
        order_id TEXT NOT NULL,
        code TEXT NOT NULL,            -- what was scanned first
        scans INTEGER NOT NULL DEFAULT 1,
        scanned_at TEXT NOT NULL,
        operator TEXT,
        PRIMARY KEY (batch_id, order_id))""",
    "CREATE INDEX IF NOT EXISTS dock_parcels_order ON dock_parcels (order_id)",
    """CREATE TABLE IF NOT EXISTS dock_scans (
        scan_id TEXT PRIMARY KEY,
        batch_id TEXT NOT NULL,
        answer TEXT NOT NULL)          -- JSON: the answer, or {"refusal": {...}}""",
)


def _v1(db: sqlite_utils.Database) -> None:
    for stmt in _TABLES:
        db.execute(stmt)


def _v2(db: sqlite_utils.Database) -> None:
    # an order split into parcels is one handover item per parcel (docs/parcels.md): parcel_no
    # 1..N, 0 for an order's single label; tracking: the parcel's own number (子单号) if any
    db.execute("""CREATE TABLE dock_parcels_v2 (
        batch_id TEXT NOT NULL,
        order_id TEXT NOT NULL,
        parcel_no INTEGER NOT NULL DEFAULT 0,
        parcels INTEGER NOT NULL DEFAULT 0,
        tracking TEXT,
        code TEXT NOT NULL,
        scans INTEGER NOT NULL DEFAULT 1,
        scanned_at TEXT NOT NULL,
        operator TEXT,
        PRIMARY KEY (batch_id, order_id, parcel_no))""")
    db.execute("INSERT INTO dock_parcels_v2 (batch_id, order_id, code, scans, scanned_at,"
               " operator) SELECT batch_id, order_id, code, scans, scanned_at, operator"
               " FROM dock_parcels")
    db.execute("DROP TABLE dock_parcels")
    db.execute("ALTER TABLE dock_parcels_v2 RENAME TO dock_parcels")
    db.execute("CREATE INDEX IF NOT EXISTS dock_parcels_order ON dock_parcels (order_id)")


MIGRATIONS = (Migration(1, "dock: handover batches, their parcels, scans", _v1),
              Migration(2, "dock: one item per parcel of a split order", _v2))


# ---------------------------------------------------------------------------------------------
# reading


def batch_json(db: sqlite_utils.Database, batch_id: str) -> dict[str, Any] | None:
    row = db.execute("SELECT batch_id, carrier, station, operator, state, opened_at, closed_at,"
                     " closed_by, manifest, manifest_job FROM dock_batches WHERE batch_id = ?",
                     [batch_id]).fetchone()
    if row is None:
        return None
    # one query, not a load per parcel: every scan answers the whole batch from the writer
    parcels = [{"order_id": r[0], "code": r[1], "scans": r[2], "scanned_at": r[3],
                "operator": r[4], "carrier": r[5], "tracking_number": r[6], "frozen": bool(r[7]),
                "parcel_no": r[8], "parcels": r[9]}
               for r in db.execute(
        "SELECT p.order_id, p.code, p.scans, p.scanned_at, p.operator, o.carrier,"
        " COALESCE(p.tracking, o.tracking_number), f.order_id IS NOT NULL, p.parcel_no,"
        " p.parcels FROM dock_parcels p"
        " LEFT JOIN orders o USING (order_id) LEFT JOIN freezes f USING (order_id)"
        " WHERE p.batch_id = ? ORDER BY p.scanned_at, p.order_id, p.parcel_no",
        [batch_id]).fetchall()]
    return {"batch_id": row[0], "carrier": row[1], "station": row[2], "operator": row[3],
            "state": row[4], "opened_at": row[5], "closed_at": row[6], "closed_by": row[7],
            "parcels": parcels, "count": len(parcels),
            "scanned_twice": sum(1 for p in parcels if p["scans"] > 1),
            "frozen": [p["order_id"] for p in parcels if p["frozen"]],
            "manifest": json.loads(row[8]) if row[8] else None, "manifest_job": row[9]}


def _printed(db: sqlite_utils.Database, since: str) -> list[rules.Printed]:
    """Labels printed here since ``since`` whose order (a split order: whose parcel) is in no
    batch (the dock expects them)."""
    rows = db.execute(
        "SELECT j.order_id, MAX(j.printed_at), o.carrier, o.tracking_number,"
        " f.order_id IS NOT NULL FROM print_jobs j LEFT JOIN orders o USING (order_id)"
        " LEFT JOIN freezes f USING (order_id) WHERE j.state = 'printed' AND j.kind IN"
        f" ({', '.join('?' for _ in ORDER_LABEL_KINDS)}) AND j.printed_at >= ? AND j.order_id"
        " NOT IN (SELECT order_id FROM dock_parcels) GROUP BY j.order_id"
        " ORDER BY MAX(j.printed_at)", [*ORDER_LABEL_KINDS, since]).fetchall()
    printed = [rules.Printed(r[0], r[2], r[3], r[1], frozen=bool(r[4])) for r in rows]
    rows = db.execute(
        "SELECT j.order_id, MAX(j.printed_at), o.carrier, j.parcel_no, j.parcels,"
        " MAX(j.tracking), f.order_id IS NOT NULL FROM (SELECT order_id, printed_at,"
        " json_extract(payload, '$.parcel_no') AS parcel_no,"
        " json_extract(payload, '$.count') AS parcels,"
        " json_extract(payload, '$.tracking_number') AS tracking FROM print_jobs"
        " WHERE state = 'printed' AND kind = ? AND printed_at >= ?) j"
        " LEFT JOIN orders o USING (order_id) LEFT JOIN freezes f USING (order_id)"
        " WHERE NOT EXISTS (SELECT 1 FROM dock_parcels d WHERE d.order_id = j.order_id"
        " AND d.parcel_no = j.parcel_no) GROUP BY j.order_id, j.parcel_no"
        " ORDER BY MAX(j.printed_at)", [PARCEL_KIND, since]).fetchall()
    printed += [rules.Printed(r[0], r[2], r[5], r[1], frozen=bool(r[6]), parcel_no=int(r[3]),
                              parcels=int(r[4])) for r in rows if isinstance(r[3], int)]
    return sorted(printed, key=lambda p: p.printed_at)


def _label_printed(db: sqlite_utils.Database, order_id: str, parcel_no: int = 0) -> bool:
    if parcel_no:  # this parcel's own label
        return db.execute(
            "SELECT 1 FROM print_jobs WHERE order_id = ? AND state = 'printed' AND kind = ?"
            " AND json_extract(payload, '$.parcel_no') = ? LIMIT 1",
            [order_id, PARCEL_KIND, parcel_no]).fetchone() is not None
    return db.execute(
        "SELECT 1 FROM print_jobs WHERE order_id = ? AND state = 'printed' AND kind IN"
        f" ({', '.join('?' for _ in LABEL_KINDS)}) LIMIT 1", [order_id, *LABEL_KINDS]
    ).fetchone() is not None


def _which_parcel(db: sqlite_utils.Database, code: str) -> tuple[str | None, int, int,
                                                                   str | None]:
    """The order ``code`` names and, for a split order, which of its parcels: (order id,
    parcel no, parcels, the parcel's own tracking number). A parcel's label names its parcel;
    a 子单号 its parcel; the order's id or master number parcel 1 (which carries it)."""
    label = parse_label_id(code)
    order_id = order_id_for_code(db, label[0] if label else code)
    sub = None
    if order_id is None and label is None:
        sub = parcels_store.order_for_sub_tracking(db, code)
        order_id = sub[0] if sub else None
    if order_id is None:
        return None, 0, 0, None
    split = parcels_store.load_split(db, order_id)
    if split is None:
        return order_id, 0, 0, None
    parcel_no = parcel_of(code) or (sub[1] if sub else 1)
    if parcel_no > split.count:  # a label of a parcel the order no longer has
        return None, 0, 0, None
    order = load_order(db, order_id)
    try:
        tracking = parcel_rules.tracking_number(order, parcel_no) if order else None
    except parcel_rules.ParcelError:
        tracking = None
    return order_id, parcel_no, split.count, tracking


def _parcel(db: sqlite_utils.Database, batch_id: str, code: str) -> rules.Parcel:
    """What the rules need to know of the parcel ``code`` names."""
    label = parse_label_id(code)
    order_id, parcel_no, count, tracking = _which_parcel(db, code)
    if order_id is None:
        return rules.Parcel(code, None)
    order = load_order(db, order_id)
    freeze = load_freeze(db, order_id)
    void = bench.voided(db, order_id)
    if void is None and label is not None and bench.is_void(db, label_id(*label)):
        void = "old_label"  # the first label of a relabelled parcel: it must not ship
    held = db.execute("SELECT p.batch_id, b.state FROM dock_parcels p JOIN dock_batches b"
                      " USING (batch_id) WHERE p.order_id = ? AND p.parcel_no = ?",
                      [order_id, parcel_no]).fetchall()
    return rules.Parcel(
        code, order_id, carrier=order.carrier if order else None,
        tracking_number=tracking or (order.tracking_number if order else None),
        parcel_no=parcel_no, parcels=count,
        freeze_reason=freeze.reason if freeze else None, void_reason=void,
        printed=_label_printed(db, order_id, parcel_no),
        in_this_batch=any(b == batch_id for b, _ in held),
        open_batch=next((b for b, s in held if s == "open" and b != batch_id), None),
        loaded_in=next((b for b, s in held if s == "closed"), None))


def _loaded_before(db: sqlite_utils.Database, parcels: list[rules.Loaded]
                  ) -> dict[str, set[int]]:
    """The parcels of the split orders in ``parcels`` that left in closed batches already."""
    out: dict[str, set[int]] = {}
    for order_id in {p.order_id for p in parcels if p.parcel_no}:
        out[order_id] = {r[0] for r in db.execute(
            "SELECT p.parcel_no FROM dock_parcels p JOIN dock_batches b USING (batch_id)"
            " WHERE p.order_id = ? AND b.state = 'closed'", [order_id])}
    return out


def manifest_csv(doc: dict[str, Any]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rules.manifest_rows(doc))
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# the service


@dataclass(frozen=True)
class _Refused:
    """A scan refused inside the transaction: its record commits, then the refusal is raised."""

    refusal: dict[str, Any]
    alarm: Alarm | None


class DockService:
    def __init__(self, settings: Settings, store: Store, *, alarms: AlarmCenter,
                 printing: PrintService | None = None) -> None:
        self.settings = settings
        self.store = store
        self.alarms = alarms
        self.printing = printing
        store.ensure_schema(print_queue.COMPONENT, print_queue.MIGRATIONS)  # labels printed
        store.ensure_schema(parcels_store.COMPONENT, parcels_store.MIGRATIONS)  # split orders
        store.ensure_schema(COMPONENT, MIGRATIONS)

    # -- batches -----------------------------------------------------------------------------

    def open_batch(self, *, carrier: str | None, station: str,
                   operator: str) -> tuple[dict[str, Any], bool]:
        """A new batch, or the station's open one for the same truck; (batch, created)."""
        key = rules.carrier_key(carrier)

        def tx(db: sqlite_utils.Database) -> tuple[dict[str, Any], bool]:
            row = db.execute("SELECT batch_id FROM dock_batches WHERE state = 'open' AND"
                             " station = ? AND carrier IS ? ORDER BY opened_at LIMIT 1",
                             [station, key]).fetchone()
            if row is not None:
                return self._json(db, row[0]), False
            batch_id = str(ULID())
            db.execute("INSERT INTO dock_batches (batch_id, carrier, station, operator, state,"
                       " opened_at) VALUES (?, ?, ?, ?, 'open', ?)",
                       [batch_id, key, station, operator, utc_now()])
            return self._json(db, batch_id), True

        out: tuple[dict[str, Any], bool] = self.store.write(tx)
        return out

    def batches(self, state: str) -> list[dict[str, Any]]:
        db = self.store.read()
        ids = [r[0] for r in db.execute(
            "SELECT batch_id FROM dock_batches WHERE state = ? ORDER BY opened_at DESC,"
            " batch_id DESC LIMIT ?", [state, MAX_LISTED])]
        return [b for b in (batch_json(db, i) for i in ids) if b is not None]

    def get(self, batch_id: str) -> dict[str, Any]:
        db = self.store.read()
        batch = self._json(db, batch_id)
        if batch["state"] == "open":  # what the loader still waits for
            found = rules.expected(self._batch(batch), _printed(db, self._since()))
            batch["not_scanned"] = [rules.printed_json(p) for p in found if not p.frozen]
            batch["to_pull"] = [rules.printed_json(p) for p in found if p.frozen]
        return batch

    # -- scans -------------------------------------------------------------------------------

    def scan(self, batch_id: str, code: str, *, scan_id: str | None,
             operator: str) -> dict[str, Any]:
        code = code.strip()
        device = self.settings.device_id

        def tx(db: sqlite_utils.Database) -> dict[str, Any] | _Refused:
            if scan_id is not None:
                row = db.execute("SELECT batch_id, answer FROM dock_scans WHERE scan_id = ?",
                                 [scan_id]).fetchone()
                if row is not None and row[0] == batch_id:
                    stored = json.loads(row[1])
                    if "refusal" in stored:
                        return _Refused({**stored["refusal"], "replayed": True}, None)
                    return {**stored, "batch": self._json(db, batch_id), "replayed": True}
            batch = self._json(db, batch_id)
            if batch["state"] != "open":
                raise Refusal("batch_closed", f"handover batch {batch_id} is closed",
                              batch_id=batch_id)
            parcel = _parcel(db, batch_id, code)
            decision = rules.judge(self._batch(batch), parcel)
            answer: dict[str, Any] = {
                "verdict": decision.verdict.value, "order_id": parcel.order_id, "code": code,
                "parcel_no": parcel.parcel_no or None, "parcels": parcel.parcels or None,
                "flags": list(decision.flags), "message": decision.message,
                "carrier": parcel.carrier, "tracking_number": parcel.tracking_number}
            alarm = None
            if decision.verdict is rules.DockVerdict.FROZEN and parcel.order_id is not None:
                freeze = load_freeze(db, parcel.order_id)
                if freeze is not None:
                    record_interception(db, device, freeze, action="dock",
                                        station=batch["station"], operator=operator, code=code,
                                        batch_id=batch_id)
            if decision.alarm:
                alarm = self.alarms.insert(
                    db, "dock_pull", decision.message, order_id=parcel.order_id,
                    station=batch["station"], code=code, batch_id=batch_id,
                    verdict=decision.verdict.value, operator=operator)
                answer["alarm_id"] = alarm.alarm_id
            if decision.counted and parcel.order_id is not None:
                db.execute("INSERT INTO dock_parcels (batch_id, order_id, parcel_no, parcels,"
                           " tracking, code, scanned_at, operator) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [batch_id, parcel.order_id, parcel.parcel_no, parcel.parcels,
                            parcel.tracking_number if parcel.parcel_no else None, code,
                            utc_now(), operator])
            elif decision.verdict is rules.DockVerdict.DUPLICATE:
                db.execute("UPDATE dock_parcels SET scans = scans + 1 WHERE batch_id = ? AND"
                           " order_id = ? AND parcel_no = ?",
                           [batch_id, parcel.order_id, parcel.parcel_no])
            if decision.refused:
                refusal = {**{k: v for k, v in answer.items() if k not in ("message", "code")},
                           "scanned": code[:64],
                           "error": decision.refusal_code, "message": decision.message["en"],
                           "words": decision.message, "batch_id": batch_id}
                if scan_id is not None:
                    self._remember(db, scan_id, batch_id, {"refusal": refusal})
                return _Refused(refusal, alarm)
            if scan_id is not None:
                self._remember(db, scan_id, batch_id, answer)
            return {**answer, "batch": self._json(db, batch_id)}

        out = self.store.write(tx)
        if isinstance(out, _Refused):
            if out.alarm is not None:
                self.alarms.announce(out.alarm)
            details = {k: v for k, v in out.refusal.items() if k not in ("error", "message")}
            raise Refusal(out.refusal["error"], out.refusal["message"], **details)
        return out

    def remove(self, batch_id: str, order_id: str, *, operator: str) -> dict[str, Any]:
        """A parcel taken off the truck (pulled: frozen since its scan, or put on another)."""

        def tx(db: sqlite_utils.Database) -> dict[str, Any]:
            batch = self._json(db, batch_id)
            if batch["state"] != "open":
                raise Refusal("batch_closed", f"handover batch {batch_id} is closed",
                              batch_id=batch_id)
            gone = db.execute("DELETE FROM dock_parcels WHERE batch_id = ? AND order_id = ?",
                              [batch_id, order_id]).rowcount
            if not gone:
                raise Refusal("not_found", f"order {order_id} is not in batch {batch_id}")
            append_event(db, self.settings.device_id, "dock_removed", {
                "batch_id": batch_id, "station": batch["station"], "operator": operator,
                "frozen": load_freeze(db, order_id) is not None}, order_id=order_id)
            return self._json(db, batch_id)

        out: dict[str, Any] = self.store.write(tx)
        return out

    # -- closing -----------------------------------------------------------------------------

    def close(self, batch_id: str, *, operator: str) -> dict[str, Any]:
        device = self.settings.device_id
        since = self._since()

        def tx(db: sqlite_utils.Database) -> dict[str, Any]:
            batch = self._json(db, batch_id)
            if batch["state"] == "closed":  # a retried close: the same manifest, no event
                return {"batch": batch, "manifest": batch["manifest"], "replayed": True}
            parcels = [rules.Loaded(p["order_id"], p["carrier"], p["tracking_number"],
                                    p["scans"], p["scanned_at"], p["frozen"], p["parcel_no"],
                                    p["parcels"])
                       for p in batch["parcels"]]
            blockers = rules.close_blockers(parcels)
            if blockers:
                raise Refusal("frozen_in_batch", "frozen since they were scanned in: take them "
                              f"off the truck first ({', '.join(blockers)})", orders=blockers)
            if not parcels:
                raise Refusal("bad_state", f"handover batch {batch_id} has no parcels")
            now = utc_now()
            _, incomplete = rules.order_completion(parcels, _loaded_before(db, parcels))
            doc = rules.manifest(self._batch(batch), parcels, _printed(db, since),
                                 station=batch["station"], operator=batch["operator"] or "",
                                 opened_at=batch["opened_at"], closed_at=now,
                                 incomplete=incomplete)
            doc["closed_by"] = operator
            event = append_event(db, device, "handover_closed", {
                **{k: doc[k] for k in ("batch_id", "carrier", "station", "opened_at",
                                       "closed_at", "counts")},
                "operator": operator,
                "parcels": [{k: p[k] for k in ("order_id", "tracking_number", "carrier",
                                               "parcel_no") if k in p}
                            for p in doc["parcels"]],
                "incomplete": doc.get("incomplete", []),
                "not_scanned": [p["order_id"] for p in doc["not_scanned"]],
                "to_pull": [p["order_id"] for p in doc["to_pull"]]})
            # one loaded per order, and only once all its parcels are on a truck; a split
            # order's parcels that left without the rest: parcels_loaded (docs/parcels.md)
            first = {p["order_id"]: p for p in reversed(doc["parcels"])}
            for p in doc["parcels"]:
                order_id = p["order_id"]
                if first.get(order_id) is not p:
                    continue
                on_truck = [q["parcel_no"] for q in doc["parcels"]
                            if q["order_id"] == order_id and q.get("parcel_no")]
                if order_id in incomplete:
                    append_event(db, device, "parcels_loaded", {
                        "batch_id": batch_id, "parcel_nos": on_truck,
                        "missing": incomplete[order_id], "station": batch["station"],
                        "operator": operator, "loaded_at": now}, order_id=order_id)
                    continue
                append_event(db, device, "loaded", {
                    "batch_id": batch_id, "carrier": p["carrier"],
                    "tracking_number": p["tracking_number"], "station": batch["station"],
                    "operator": operator, "loaded_at": now,
                    **({"parcels": p["parcel"].split("/")[1], "parcel_nos": on_truck}
                       if p.get("parcel") else {})}, order_id=order_id)
            db.execute("UPDATE dock_batches SET state = 'closed', closed_at = ?, closed_by = ?,"
                       " manifest = ? WHERE batch_id = ?",
                       [now, operator, json.dumps(doc, ensure_ascii=False), batch_id])
            return {"batch": self._json(db, batch_id), "manifest": doc,
                    "event_id": event.event_id}

        out: dict[str, Any] = self.store.write(tx)
        return out

    def manifest(self, batch_id: str) -> dict[str, Any]:
        batch = self._json(self.store.read(), batch_id)
        if batch["manifest"] is None:
            raise Refusal("not_open", f"handover batch {batch_id} is not closed yet: no "
                          "manifest", batch_id=batch_id)
        doc: dict[str, Any] = batch["manifest"]
        return doc

    def print_manifest(self, batch_id: str, *, operator: str) -> dict[str, Any]:
        """Queue the manifest on this device's printer (one job per batch: asking again answers
        the same job; a reprint goes through the print queue's reprint)."""
        doc = self.manifest(batch_id)

        def tx(db: sqlite_utils.Database) -> tuple[print_queue.Job, bool]:
            job, created = print_queue.enqueue_job(
                db, self.settings.device_id, "", MANIFEST_PRIORITY, kind=MANIFEST_KIND,
                payload=doc, idempotency_key=f"manifest:{batch_id}", operator=operator)
            db.execute("UPDATE dock_batches SET manifest_job = ? WHERE batch_id = ?",
                       [job.job_id, batch_id])
            return job, created

        job, created = self.store.write(tx)
        if created and self.printing is not None:
            self.printing.queued(job)
        return {"job": job.to_json(), "created": created}

    # -- helpers -----------------------------------------------------------------------------

    def _since(self) -> str:
        return iso(datetime.now(UTC) - timedelta(hours=self.settings.dock_lookback_hours))

    @staticmethod
    def _batch(batch: dict[str, Any]) -> rules.Batch:
        return rules.Batch(batch["batch_id"], batch["carrier"], batch["state"])

    @staticmethod
    def _json(db: sqlite_utils.Database, batch_id: str) -> dict[str, Any]:
        found = batch_json(db, batch_id)
        if found is None:
            raise Refusal("batch_unknown", f"no handover batch {batch_id}")
        return found

    @staticmethod
    def _remember(db: sqlite_utils.Database, scan_id: str, batch_id: str,
                  answer: dict[str, Any]) -> None:
        db.execute("INSERT INTO dock_scans (scan_id, batch_id, answer) VALUES (?, ?, ?)"
                   " ON CONFLICT (scan_id) DO NOTHING",
                   [scan_id, batch_id, json.dumps(answer, ensure_ascii=False)])
