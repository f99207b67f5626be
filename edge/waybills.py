"""Waybill capture at the edge: the photo, the read, the confirmation, the order's tracking number.

``POST /api/v1/waybills`` (``ocr/waybill_web.py``) calls :meth:`WaybillCaptures.capture`;
``POST /api/v1/waybills/<capture_id>/confirm`` calls :meth:`WaybillCaptures.confirm`.

- The photo is kept content-addressed (``<data_dir>/captures/<sha256[:2]>/<sha256>.<ext>``,
  edge/photos.py, shared with the returns' photos): the same photo sent twice is stored once.
  :meth:`WaybillCaptures.purge` removes photos older than
  ``waybill_retention_days`` and the oldest beyond ``waybill_captures_max_mb``; the rows stay.
- Each capture and each confirmation is a row of ``waybill_captures`` and an outbox event
  (``waybill_capture``, ``waybill_confirmed``) written in the same transaction.
- A number is attached to the order (``orders.tracking_number``/``carrier``) only when the
  reader accepted it with at least ``waybill_auto_attach`` confidence and nothing is in doubt
  (no flag, the distributor's rules pass, the number is on no other order, the carrier and an
  already known number of the order agree), or when a person confirms it. A frozen order
  refuses both (409) and records an interception.
- Per-distributor rules (config ``waybill_rules``, JSON): ``{"<distributor>" | "*": {"length":
  12 | [min, max], "min_letters": 1, "min_digits": 0, "pattern": "regex", "carriers": ["SF"]}}``.
  The rules' logic is pure, in ``edge/domain/distributor_rules.py``: a rule with a length or
  pattern is the distributor's own format (the carrier table need not know the number); a broken
  rule needs a person's confirmation as an exception (event ``waybill_rule_exception``).
- ``as_distributor``: a signed-in distributor's user id. It sees only orders whose
  ``distributor`` key is that id, and captures made for them: anything else is 404, like none.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils
from ulid import ULID

from scanedge.edge.config import Settings
from scanedge.edge.domain import waybill_confirm as confirming
from scanedge.edge.domain.carriers import carrier_by_code, identify, normalize_tracking
from scanedge.edge.domain.distributor_rules import Problem, check_number, parse_waybill_rules, rule_for
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.photos import PhotoStore
from scanedge.edge.store import Store
from scanedge.edge.store.db import Migration, utc_now
from scanedge.edge.store.orders import load_freeze
from scanedge.edge.store.outbox import append_event

CAPTURE_DIR = "captures"
# Flags of the reader that need a person's eye before a number goes on an order.
DOUBT_FLAGS = frozenset({"carrier_mismatch", "carrier_ambiguous", "reads_disagree",
                         "several_numbers", "unknown_format"})


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("""
        CREATE TABLE waybill_captures (
            capture_id TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            order_id TEXT,
            station TEXT,
            operator TEXT,
            distributor TEXT,
            photo_sha256 TEXT NOT NULL,
            photo_path TEXT,               -- NULL once purged
            photo_bytes INTEGER NOT NULL,
            result TEXT NOT NULL,          -- JSON: the reader's answer
            tracking_number TEXT,          -- what the reader accepted (may be NULL)
            carrier TEXT,
            status TEXT NOT NULL CHECK (status IN ('attached', 'needs_confirmation',
                                                   'confirmed')),
            confirmed_number TEXT,
            confirmed_carrier TEXT,
            confirmed_by TEXT,
            confirmed_at TEXT
        )""")
    db.execute("CREATE INDEX waybill_captures_order ON waybill_captures (order_id)")
    db.execute("CREATE INDEX waybill_captures_photo ON waybill_captures (photo_sha256)")


MIGRATIONS = (Migration(1, "waybill captures", _v1),)


class WaybillError(Refusal):
    """A waybill capture or confirmation refused."""


# ---------------------------------------------------------------------------------------------
# distributor rules (edge/domain/distributor_rules.py)


# ---------------------------------------------------------------------------------------------
# the service


class WaybillCaptures:
    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.root = Path(settings.data_dir) / CAPTURE_DIR
        self.photos = PhotoStore(self.root, store, retention_days=settings.waybill_retention_days,
                                 max_mb=settings.waybill_captures_max_mb)
        self.rules = parse_waybill_rules(settings.waybill_rules)
        store.ensure_schema("waybills", MIGRATIONS)

    # -- who may see which order --------------------------------------------------------------

    def _visible(self, db: sqlite_utils.Database, order_id: str,
                 as_distributor: str | None) -> bool:
        """Does the order exist for this caller? A distributor sees only its own orders (the
        order's ``distributor`` key is its user id); everyone else sees every order."""
        if not db.execute("SELECT 1 FROM orders WHERE order_id = ?", [order_id]).fetchone():
            return False
        return as_distributor is None or _distributor_of(db, order_id) == as_distributor

    def orders(self, *, as_distributor: str | None, limit: int = 200) -> list[dict[str, Any]]:
        """The orders a waybill may be captured for (a distributor: only its own), newest
        first, frozen ones marked (the page never offers them)."""
        db = self.store.read()
        sql = ("SELECT order_id, tracking_number, carrier, priority FROM orders"
               + (" WHERE json_extract(extra, '$.distributor') = ?" if as_distributor else "")
               + " ORDER BY updated_at DESC, order_id LIMIT ?")
        rows = db.execute(sql, [as_distributor, limit] if as_distributor else [limit]).fetchall()
        return [{"order_id": r[0], "tracking_number": r[1], "carrier": r[2], "priority": r[3],
                 "frozen": load_freeze(db, r[0]) is not None} for r in rows]

    # -- capture ----------------------------------------------------------------------------

    def check_order(self, order_id: str | None, *, station: str | None,
                    operator: str | None, as_distributor: str | None = None) -> None:
        """Refuse an unknown or frozen order before any work is done (a frozen one is logged).
        A distributor gets the same 404 for another distributor's order as for none."""
        if as_distributor is not None and not order_id:
            raise WaybillError("order_required", "a distributor names the order")
        if not order_id:
            return
        db = self.store.read()
        if not self._visible(db, order_id, as_distributor):
            raise WaybillError("unknown_order", f"no order {order_id}")
        if load_freeze(db, order_id) is not None:
            self._refuse_frozen(order_id, station=station, operator=operator)

    def capture(self, photo: bytes, result: dict[str, Any], *, order_id: str | None,
                station: str | None, operator: str | None,
                distributor: str | None, as_distributor: str | None = None) -> dict[str, Any]:
        """Store the photo and the read; attach the number when nothing is in doubt."""
        sha, path = self._store_photo(photo)
        capture_id = str(ULID())
        station = station or self.settings.station

        def tx(db: sqlite_utils.Database) -> dict[str, Any]:
            if order_id and not self._visible(db, order_id, as_distributor):
                raise WaybillError("unknown_order", f"no order {order_id}")
            freeze = load_freeze(db, order_id) if order_id else None
            if freeze is not None:  # frozen between the check and now
                return {"frozen": True}
            number, carrier = result.get("tracking_number"), result.get("carrier")
            dist = as_distributor or distributor or _distributor_of(db, order_id)
            problems = self._rule_problems(number, carrier, dist) if number else []
            checks = self._checks(db, order_id, number, carrier, problems) if number else []
            auto = (number is not None and order_id is not None and not checks
                    and float(result.get("confidence") or 0) >= self.settings.waybill_auto_attach
                    and not DOUBT_FLAGS & set(result.get("flags", [])))
            status = "attached" if auto else "needs_confirmation"
            db.execute(
                "INSERT INTO waybill_captures (capture_id, created_at, order_id, station,"
                " operator, distributor, photo_sha256, photo_path, photo_bytes, result,"
                " tracking_number, carrier, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [capture_id, utc_now(), order_id, station, operator, dist, sha,
                 str(path), len(photo), json.dumps(result, ensure_ascii=False), number,
                 carrier, status])
            if auto:
                _attach(db, order_id, number, carrier)
            rule_problems = [p.to_json() for p in problems]
            payload = {"capture_id": capture_id, "station": station, "operator": operator,
                       "distributor": dist, "photo_sha256": sha, "status": status,
                       "checks": checks, "rule_problems": rule_problems, **{k: result.get(k) for k in (
                           "tracking_number", "carrier", "source", "confidence", "flags",
                           "candidates", "elapsed_ms")}}
            event = append_event(db, self.settings.device_id, "waybill_capture", payload,
                                 order_id=order_id)
            return {"capture_id": capture_id, "order_id": order_id, "status": status,
                    "attached": auto, "checks": checks, "rule_problems": rule_problems,
                    "photo_sha256": sha, "event_id": event.event_id}

        out = self.store.write(tx)
        if out.get("frozen"):
            self._refuse_frozen(order_id, station=station, operator=operator)
        self.purge_if_due()
        return out

    # -- confirm ----------------------------------------------------------------------------

    def confirm(self, capture_id: str, *, tracking_number: str, carrier: str | None,
                operator: str, order_id: str | None = None, as_distributor: str | None = None,
                accept_rule_exception: bool = False) -> dict[str, Any]:
        """A person's one tap (the read number), pick (a candidate) or typed number.

        A number that breaks the distributor's rule answers 422 ``rule_failed`` with the
        problems, unless the person confirms it as an exception (``accept_rule_exception``):
        then it is taken and an event ``waybill_rule_exception`` records the rule and who."""
        number = normalize_tracking(tracking_number or "")
        named = None
        if carrier:
            c = carrier_by_code(carrier)
            if c is None:
                raise WaybillError("unknown_carrier", f"unknown carrier {carrier!r}")
            named = c.code
        fits = [m.carrier.code for m in identify(number)] if number else []

        request = confirming.Request(capture_id, number, order_id, as_distributor,
                                     accept_rule_exception)

        def tx(db: sqlite_utils.Database) -> dict[str, Any]:
            row = db.execute(
                "SELECT order_id, status, result, station, distributor FROM waybill_captures"
                " WHERE capture_id = ?", [capture_id]).fetchone()
            result = json.loads(row[2]) if row else {}
            capture = None if row is None else confirming.Capture(
                row[0], row[1], row[4], result.get("tracking_number"),
                tuple(c["tracking_number"] for c in result.get("candidates", [])))
            station = row[3] if row else None
            target = confirming.target_of(capture, request)
            prev_number, prev_carrier = _order_row(db, target) or (None, None)
            order = confirming.Order(
                visible=not target or self._visible(db, target, as_distributor),
                frozen=bool(target) and load_freeze(db, target) is not None,
                carrier=prev_carrier, tracking_number=prev_number,
                other_order_with_number=_other_order(db, target, number))
            target = confirming.check_capture(capture, request, order)
            assert capture is not None
            dist = as_distributor or capture.distributor or _distributor_of(db, target)
            applies = rule_for(self.rules, dist)
            check = check_number(number, fits=fits, named=named,
                                 rule=applies[1] if applies else None, order_carrier=prev_carrier)
            decision = confirming.decide(capture, request, order, check, distributor=dist,
                                         rule_name=applies[0] if applies else None)
            if decision.frozen:
                return {"frozen": target, "station": station}
            chosen, how, flags = decision.carrier, decision.how, list(decision.flags)
            problems = list(decision.problems)
            if target:
                _attach(db, target, number, chosen)
            db.execute(
                "UPDATE waybill_captures SET status = 'confirmed', confirmed_number = ?,"
                " confirmed_carrier = ?, confirmed_by = ?, confirmed_at = ?,"
                " order_id = COALESCE(order_id, ?) WHERE capture_id = ?",
                [number, chosen, operator, utc_now(), target, capture_id])
            if problems and applies:
                append_event(db, self.settings.device_id, "waybill_rule_exception", {
                    "capture_id": capture_id, "tracking_number": number, "carrier": chosen,
                    "distributor": dist, "rule_name": applies[0], "rule": applies[1].to_json(),
                    "problems": problems, "confirmed_by": operator, "station": station},
                    order_id=target)
            payload = {"capture_id": capture_id, "tracking_number": number, "carrier": chosen,
                       "operator": operator, "how": how, "flags": flags,
                       "read_number": result.get("tracking_number"),
                       "rule_problems": problems}
            event = append_event(db, self.settings.device_id, "waybill_confirmed", payload,
                                 order_id=target)
            return {"capture_id": capture_id, "order_id": target, "status": "confirmed",
                    "tracking_number": number, "carrier": chosen, "how": how, "flags": flags,
                    "rule_problems": problems, "attached": target is not None,
                    "event_id": event.event_id}

        out = self.store.write(tx)
        if out.get("frozen"):
            self._refuse_frozen(out["frozen"], station=out["station"], operator=operator)
        return out

    def get(self, capture_id: str, *, as_distributor: str | None = None) -> dict[str, Any] | None:
        row = self.store.read().execute(
            "SELECT capture_id, created_at, order_id, station, operator, distributor,"
            " photo_sha256, photo_path, result, status, confirmed_number, confirmed_carrier,"
            " confirmed_by, confirmed_at FROM waybill_captures WHERE capture_id = ?",
            [capture_id]).fetchone()
        if row is None or (as_distributor is not None and row[5] != as_distributor):
            return None
        keys = ("capture_id", "created_at", "order_id", "station", "operator", "distributor",
                "photo_sha256", "photo_path", "result", "status", "confirmed_number",
                "confirmed_carrier", "confirmed_by", "confirmed_at")
        out = dict(zip(keys, row, strict=True))
        out["result"] = json.loads(out["result"])
        out["photo_kept"] = bool(out.pop("photo_path"))
        return out

    # -- checks -----------------------------------------------------------------------------

    def _rule_problems(self, number: str, carrier: str | None, dist: str | None) -> list[Problem]:
        applies = rule_for(self.rules, dist)
        return applies[1].problems(number, carrier) if applies else []

    def _checks(self, db: sqlite_utils.Database, order_id: str | None, number: str,
                carrier: str | None, problems: list[Problem]) -> list[str]:
        """Why a read number must not go on the order by itself (empty: it may)."""
        out = []
        if problems:
            out.append("rule_failed")
        other = _other_order(db, order_id, number)
        if other:
            out.append("tracking_on_other_order")
        if order_id:
            prev_number, prev_carrier = _order_row(db, order_id) or (None, None)
            if prev_carrier and carrier and prev_carrier != carrier:
                out.append("carrier_differs_from_order")
            if prev_number and prev_number != number:
                out.append("differs_from_order")
        return out

    def _refuse_frozen(self, order_id: str, *, station: str | None,
                       operator: str | None) -> None:
        from scanedge.edge.freezes.interceptions import record_interception

        def tx(db: sqlite_utils.Database) -> Any:
            freeze = load_freeze(db, order_id)
            if freeze is not None:
                record_interception(db, self.settings.device_id, freeze, action="waybill",
                                    station=station or self.settings.station,
                                    operator=operator)
            return freeze

        freeze = self.store.write(tx, essential=True)
        reason = freeze.reason if freeze else "frozen"
        raise WaybillError("frozen", f"order {order_id} is frozen ({reason}): "
                           "no waybill may be attached", order_id=order_id, reason=reason)

    # -- photos (edge/photos.py) --------------------------------------------------------------

    def _store_photo(self, photo: bytes) -> tuple[str, Path]:
        return self.photos.put(photo)

    def purge_if_due(self) -> None:
        self.photos.purge_if_due(self._forget)

    def purge(self, now: datetime | None = None) -> dict[str, int]:
        """Delete photos past the retention, then the oldest beyond the size limit."""
        gone, kept = self.photos.purge(now)
        if gone:
            self._forget(gone)
        return {"deleted": len(gone), "kept_bytes": kept}

    def _forget(self, gone: list[Path]) -> None:
        def tx(db: sqlite_utils.Database) -> None:
            for p in gone:
                db.execute("UPDATE waybill_captures SET photo_path = NULL WHERE photo_path = ?",
                           [str(p)])

        self.store.write(tx, essential=True)  # freeing space must work on a full disk


def _order_row(db: sqlite_utils.Database, order_id: str | None) -> tuple[Any, Any] | None:
    """(tracking_number, carrier) of the order, or None when there is no such order."""
    row = db.execute("SELECT tracking_number, carrier FROM orders WHERE order_id = ?",
                     [order_id]).fetchone() if order_id else None
    return (row[0], row[1]) if row else None


def _other_order(db: sqlite_utils.Database, order_id: str | None, number: str) -> str | None:
    row = db.execute("SELECT order_id FROM orders WHERE tracking_number = ? AND order_id IS NOT ?"
                     " LIMIT 1", [number, order_id]).fetchone()
    return row[0] if row else None


def _distributor_of(db: sqlite_utils.Database, order_id: str | None) -> str | None:
    """The order's distributor (an order system's extra key ``distributor``), if any."""
    if not order_id:
        return None
    row = db.execute("SELECT extra FROM orders WHERE order_id = ?", [order_id]).fetchone()
    try:
        extra = json.loads(row[0]) if row and row[0] else {}
    except json.JSONDecodeError:
        return None
    value = extra.get("distributor") if isinstance(extra, dict) else None
    return str(value) if value else None


def _attach(db: sqlite_utils.Database, order_id: str, number: str, carrier: str | None) -> None:
    db.execute("UPDATE orders SET tracking_number = ?, carrier = COALESCE(?, carrier),"
               " updated_at = ? WHERE order_id = ?", [number, carrier, utc_now(), order_id])
