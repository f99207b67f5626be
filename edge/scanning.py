"""The scan service: loads what the rules need, applies them, commits state + event together.

The answer is built inside the same transaction and returned only after the commit, so a scan
the client saw answered is on disk; a scan the client did not see answered may be retried with
the same ``scan_id`` and is then answered from the stored response instead of counted twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import sqlite_utils

from scanedge.edge.alarms import Alarm, AlarmCenter
from scanedge.edge.bus import EventBus
from scanedge.edge.config import Settings
from scanedge.edge.domain import parcels as parcel_rules
from scanedge.edge.domain.codes import CodeKind, ScannedCode, classify, naming_order
from scanedge.edge.domain.handover import short_pick
from scanedge.edge.domain.labels import label_id, parse_label_id
from scanedge.edge.domain.messages import scan_message
from scanedge.edge.domain.packing import (
    PackState,
    Reason,
    ScanContext,
    ScanOutcome,
    Verdict,
    evaluate_scan,
)
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.freezes.interceptions import record_interception, seconds_since
from scanedge.edge.store import Store, bench, notes, parcels
from scanedge.edge.store.db import utc_now
from scanedge.edge.store.orders import (
    load_freeze,
    load_pack_state,
    open_order_id,
    order_id_for_code,
    save_progress,
    set_open_order,
)
from scanedge.edge.store.outbox import append_event

log = logging.getLogger(__name__)
MAX_SCAN_ID = 128
MAX_CODE = 4096  # characters (a GS1 string is under 100, a full 2D code ~3,000)



class ScanInputError(Refusal, ValueError):
    """A scan request that cannot be taken (bad station name, oversized scan id ...)."""


class ScanTooLarge(ScanInputError):
    """A code longer than ``MAX_CODE`` characters: no scanner types that (HTTP 413)."""


class ScanService:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        bus: EventBus | None = None,
        alarms: AlarmCenter | None = None,
        picking: Any = None,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.store = store
        self.settings = settings
        self.bus = bus or EventBus()  # after each commit: topic "scan" (pages, metrics, sync)
        self.alarms = alarms  # a frozen scan raises an alarm that waits for a person
        self.picking = picking  # edge.picking.PickService: totes and short picks (handover)
        store.ensure_schema(bench.COMPONENT, bench.MIGRATIONS)
        store.ensure_schema(notes.COMPONENT, notes.MIGRATIONS)  # scans ask for unread notes
        store.ensure_schema(parcels.COMPONENT, parcels.MIGRATIONS)  # and for a split order
        self._today = today

    def scan(self, code: str, **options: Any) -> dict[str, Any]:
        """One scan at ``station``, in one call (``options``: those of :meth:`begin`). While an
        alarm of the station waits for a person, the scan answers ``alarm_pending`` unless it
        carries those alarms' ids in ``acks`` (the person at the station saw them: they are
        acknowledged in the same transaction)."""
        pending = self.begin(code, **options)
        return pending.done(self.store.write(pending.apply))

    def begin(
        self,
        code: str,
        *,
        station: str | None = None,
        operator: str | None = None,
        scan_id: str | None = None,
        acks: list[str] | None = None,
    ) -> PendingScan:
        """:meth:`scan` in its three steps: this one checks the input (raising
        :class:`ScanInputError`), ``apply`` runs in the writer's transaction, ``done`` after the
        commit. The event loop runs them without a request thread (edge/web/scan_route.py)."""
        station = station or self.settings.station
        check_name("station", station, 64)
        if operator is not None:
            check_name("operator", operator, 64, strict=False)
        if scan_id is not None:
            check_name("scan_id", scan_id, MAX_SCAN_ID)
        if not isinstance(code, str):
            raise ScanInputError("bad_request", "code: expected text")
        if len(code) > MAX_CODE:
            raise ScanTooLarge("too_large", f"code: {len(code)} characters, at most {MAX_CODE}")
        if not _is_unicode(code):  # e.g. a command line in another encoding: no UTF-8 form
            raise ScanInputError("bad_request", "code: not valid Unicode text (a lone surrogate or bytes "
                                 "in another encoding)")
        return PendingScan(self, classify(code), station, operator, scan_id, acks or [])

    def _publish(self, response: dict[str, Any], alarm: Alarm | None, acked: list[Alarm]) -> None:
        if self.alarms is not None:
            for done in acked:
                self.alarms.bus.publish("alarm_ack", done.as_json())
            if alarm is not None:
                self.alarms.announce(alarm)
        self.bus.publish("scan", response)

    def _apply(
        self,
        db: sqlite_utils.Database,
        code: ScannedCode,
        station: str,
        operator: str | None,
        scan_id: str | None,
        acks: list[str],
        acked: list[Alarm],
    ) -> tuple[dict[str, Any], Alarm | None]:
        """The answer, and the alarm to announce once the transaction has committed."""
        if scan_id is not None:
            row = db.execute(
                "SELECT response FROM scan_requests WHERE scan_id = ?", [scan_id]
            ).fetchone()
            if row is not None:
                return {**json.loads(row[0]), "replayed": True}, None
        if self.alarms is not None:
            holding = self.alarms.holding(db, station)
            if holding and not set(holding) <= set(acks):
                return self._held(db, code, station, operator, holding), None
            for alarm_id in holding:  # the scan carries their acks: a person saw them
                done = self.alarms.ack_in(db, alarm_id, operator or "?")
                if done is not None:
                    acked.append(done)

        label = parse_label_id(code.text) if code.text else None
        # a parcel's label (SO-1001:L1:P2) is void with its generation's label
        if label is not None and bench.is_void(db, label_id(*label)):
            return self._void_label(db, code, station, operator, label[0]), None
        open_id = open_order_id(db, station)
        open_state = load_pack_state(db, open_id) if open_id else None
        # a label's QR names its order (SO-1001#L2): it opens the order like the order id
        named_id = order_id_for_code(db, label[0] if label else code.text) if code.text else None
        if named_id is None and code.kind is CodeKind.TRACKING and code.text:
            # a parcel's 子单号 names its order too (docs/parcels.md); only a tracking number that
            # named nothing else gets here
            sub = parcels.order_for_sub_tracking(db, code.text)
            named_id = sub[0] if sub else None
        tote = None  # a picker's tote: opens its orders one after the other (handover.py)
        if named_id is None and code.text and self.picking is not None:
            tote = self.picking.open_from_tote(db, code.text, open_id)
            named_id = tote.order_id if tote is not None else None
        named = open_state if named_id == open_id else (
            load_pack_state(db, named_id) if named_id else None
        )
        freezes = {
            oid: f for oid in {open_id, named_id} if oid and (f := load_freeze(db, oid)) is not None
        }
        pending = {oid: n for oid in {open_id, named_id} if oid
                   and (n := notes.unread_note(db, oid)) is not None}
        outcome = evaluate_scan(code, ScanContext(
            station, self._today(), open_state, named, freezes,
            {oid: n.text for oid, n in pending.items()}))
        if (outcome.verdict is Verdict.OK and outcome.reason in (Reason.ORDER_OPENED,
                Reason.ORDER_ALREADY_OPEN) and outcome.order_id
                and bench.voided(db, outcome.order_id)):
            # the address changed after the label printed: say so at the bench, at once
            outcome = replace(outcome, reason=Reason.LABEL_VOID)
        parcel_no = None
        if outcome.counted and outcome.line_no is not None and outcome.order_id is not None:
            outcome, parcel_no = _into_parcel(db, outcome, open_state, station, operator)
        if outcome.opens and outcome.state is not None:
            set_open_order(db, station, outcome.state.order.order_id, operator)
        if outcome.counted and outcome.state is not None:
            save_progress(db, outcome.state, before=open_state)
            bench.set_pack_station(db, outcome.state.order.order_id, station)
        if outcome.reason is Reason.GIFT_CONFIRMED and outcome.order_id is not None:
            bench.confirm_gift(db, outcome.order_id, int(outcome.details["gift_no"]), how="scan",
                               operator=operator)

        message = scan_message(outcome, code.text)
        payload: dict[str, Any] = {
            "code": code.text,
            "kind": code.kind.value,
            "verdict": outcome.verdict.value,
            "reason": outcome.reason.value,
            "station": station,
            "operator": operator,
            "line_no": outcome.line_no,
        }
        if code.lot or code.expiry:
            payload.update(lot=code.lot, expiry=code.expiry.isoformat() if code.expiry else None)
        if parcel_no is not None:  # an order split into parcels: the box the item went in
            payload["parcel_no"] = parcel_no
        note = pending.get(outcome.order_id or "") if outcome.verdict is Verdict.NOTE_PENDING \
            else None
        if note is not None:
            payload["note_command"] = note.command_id
        if outcome.freeze is not None:
            payload["freeze_reason"] = outcome.freeze.reason
            payload["seconds_since_freeze"] = seconds_since(outcome.freeze)
        event = append_event(
            db, self.settings.device_id, "scan", payload, order_id=outcome.order_id
        )
        short = (short_pick(outcome, self.picking.shorts(db, outcome.order_id))
                 if self.picking is not None and outcome.order_id else None)
        if short is not None:  # picked short: say what is missing (edge/domain/handover.py)
            message = short["message"]
            event = append_event(db, self.settings.device_id, "short_pick", {
                "station": station, "missing": short["missing"]}, order_id=outcome.order_id)
        if tote is not None:  # what else the tote holds: how many more to pack, frozen ones
            message = tote.with_note(message)
        info = None
        if outcome.state is not None:  # the note of an order it loaded is known already
            order_id = outcome.state.order.order_id
            info = _bench_view(db, outcome.state, station, self.settings.print_policy,
                               pending.get(order_id) if order_id in (open_id, named_id)
                               else notes.unread_note(db, order_id))
        response = _response(code, outcome, message, station, event.event_id, event.seq, info)
        if tote is not None:
            response["tote"] = tote.as_json()
        if note is not None:  # the page shows it in a dialog the packer taps away
            response["note"] = note.as_json()
        if short is not None:
            response.update(verdict=short["verdict"], short_pick=short["missing"])
        if info is not None:
            # ready to print: the print gate says so (all packed, gifts confirmed, this station)
            response["ready_to_print"] = (outcome.verdict is Verdict.OK
                                          and bool(info["print_gate"]["allowed"]))
        alarm = None
        if outcome.freeze is not None:
            record_interception(db, self.settings.device_id, outcome.freeze, action="scan",
                                station=station, operator=operator, code=code.text)
            if self.alarms is not None:
                alarm = self.alarms.insert(db, "frozen_scan", message, order_id=outcome.order_id,
                                           station=station, operator=operator, code=code.text)
                response["alarm_id"] = alarm.alarm_id
        if scan_id is not None:
            db.execute(
                "INSERT INTO scan_requests (scan_id, event_id, response, created_at)"
                " VALUES (?, ?, ?, ?)",
                [scan_id, event.event_id, json.dumps(response, ensure_ascii=False), utc_now()],
            )
        return response, alarm


    def _void_label(self, db: sqlite_utils.Database, code: ScannedCode, station: str,
                    operator: str | None, order_id: str) -> dict[str, Any]:
        """A label made void by an address change was scanned: it must not leave the building."""
        outcome = ScanOutcome(Verdict.VOID_LABEL, Reason.LABEL_VOID, order_id)
        message = scan_message(outcome, code.text)
        event = append_event(db, self.settings.device_id, "scan", {
            "code": code.text, "kind": code.kind.value, "verdict": outcome.verdict.value,
            "reason": outcome.reason.value, "station": station, "operator": operator},
            order_id=order_id)
        return _response(code, outcome, message, station, event.event_id, event.seq)

    def _held(self, db: sqlite_utils.Database, code: ScannedCode, station: str,
              operator: str | None, holding: list[str]) -> dict[str, Any]:
        """The answer to a scan made while an alarm of the station waits: recorded, not done."""
        message = scan_message(ScanOutcome(Verdict.ALARM_PENDING, Reason.ALARM_PENDING), code.text)
        event = append_event(db, self.settings.device_id, "scan", {
            "code": code.text, "kind": code.kind.value, "verdict": Verdict.ALARM_PENDING.value,
            "reason": Reason.ALARM_PENDING.value, "station": station, "operator": operator,
            "alarms": holding})
        return {"verdict": Verdict.ALARM_PENDING.value, "reason": Reason.ALARM_PENDING.value,
                "message": message, "alarm": True, "order_id": None, "station": station,
                "code": code.as_json(), "order": None, "complete": False,
                "ready_to_print": False, "freeze": None, "alarms": holding,
                "event_id": event.event_id, "seq": event.seq}


@dataclass(slots=True)
class PendingScan:
    """A checked scan on its way through the writer (:meth:`ScanService.begin`)."""

    service: ScanService
    code: ScannedCode
    station: str
    operator: str | None
    scan_id: str | None
    acks: list[str]
    acked: list[Alarm] = field(default_factory=list)  # acknowledged by the scan, announced after

    def apply(self, db: sqlite_utils.Database) -> tuple[dict[str, Any], Alarm | None]:
        """In the writer's transaction: the answer, and the alarm to announce after the commit."""
        return self.service._apply(db, self.code, self.station, self.operator, self.scan_id,
                                   self.acks, self.acked)

    def done(self, applied: tuple[dict[str, Any], Alarm | None]) -> dict[str, Any]:
        """After the commit: tell the pages and the services; the answer."""
        response, alarm = applied
        self.service._publish(response, alarm, self.acked)
        return response


def _into_parcel(db: sqlite_utils.Database, outcome: ScanOutcome, before: PackState | None,
                 station: str, operator: str | None) -> tuple[ScanOutcome, int | None]:
    """A counted item of a split order goes into its open parcel (saved), or is refused when
    the split's plan has no room for it there: (the outcome, the parcel it went in)."""
    assert outcome.order_id is not None and outcome.line_no is not None
    split = parcels.load_split(db, outcome.order_id)
    if split is None:
        return outcome, None
    placed = parcel_rules.place(split, outcome.line_no)
    if isinstance(placed, parcel_rules.Misplaced):
        return ScanOutcome(Verdict.OVER_SCAN, Reason.PARCEL_FULL, outcome.order_id,
                           outcome.line_no, state=before, details={
                               "parcel": f"{placed.parcel_no}/{split.count}",
                               "wanted_in": f"{placed.wanted_in}/{split.count}"
                               if placed.wanted_in else "?"}), None
    parcels.save_split(db, outcome.order_id, placed, station=station, operator=operator)
    return outcome, split.open_parcel


def _parcels_view(db: sqlite_utils.Database, state: PackState) -> dict[str, Any] | None:
    split = parcels.load_split(db, state.order.order_id)
    if split is None:
        return None
    return {"count": split.count, "open_parcel": split.open_parcel,
            "planned": split.planned is not None,
            "parcels": parcel_rules.view(state.order, split)}


def bench_view(db: sqlite_utils.Database, state: PackState, station: str,
               policy: str) -> dict[str, Any]:
    """What the bench shows beside an order's counts: gifts confirmed, the print gate."""
    return _bench_view(db, state, station, policy, notes.pending_note(db, state.order.order_id))


def _bench_view(db: sqlite_utils.Database, state: PackState, station: str, policy: str,
                note: notes.Note | None) -> dict[str, Any]:
    order_id = state.order.order_id
    gifts = bench.gifts_confirmed(db, order_id)
    return {"gifts_confirmed": sorted(gifts),
            "print_gate": bench.gate_with(db, state, station, policy, gifts, note).as_json(),
            "label_void": bench.voided(db, order_id),
            "parcels": _parcels_view(db, state),  # an order split into boxes (docs/parcels.md)
            "note": note.as_json() if note else None}  # a page shows it until read


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_name(field: str, value: object, max_len: int, *, strict: bool = True) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise ScanInputError("bad_request", f"{field}: expected 1-{max_len} characters")
    if not _is_unicode(value):
        raise ScanInputError("bad_request", f"{field}: not valid Unicode text")
    if strict and not all(ch.isalnum() or ch in "-_.:" for ch in value):
        raise ScanInputError("bad_request",
                             f"{field}: only letters, digits, '-', '_', '.', ':' are allowed")


def order_view(state: PackState, bench_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The order as the pages and the API show it: lines with their packed counts (and, with
    ``bench_info`` from :func:`bench_view`, gift confirmations and the print gate)."""
    order = state.order
    confirmed = set(bench_info["gifts_confirmed"]) if bench_info else set()
    return {**(bench_info or {}),
        "order_id": order.order_id,
        "version": order.version,
        "priority": order.priority,
        "tracking_number": order.tracking_number,
        "carrier": order.carrier,
        "lane": order.lane,
        "station": order.station,
        "lines": [
            {"line_no": i, "sku": line.sku, "name": line.name, "qty": line.qty,
             "packed": state.packed[i], "lot": line.lot,
             "expires": line.expires.isoformat() if line.expires else None}
            for i, line in enumerate(order.lines)
        ],
        "gifts": [{"gift_no": i, "name": g.name, "qty": g.qty, "code": g.code,
                   "confirmed": i in confirmed} for i, g in enumerate(order.gifts)],
        "items_packed": state.items_packed,
        "total_items": order.total_items,
        "complete": state.complete,
    }


def _response(
    code: ScannedCode,
    outcome: ScanOutcome,
    message: dict[str, str],
    station: str,
    event_id: str,
    seq: int,
    bench_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    freeze = outcome.freeze
    order = outcome.state.order if outcome.state is not None else None
    return {
        "verdict": outcome.verdict.value,
        "reason": outcome.reason.value,
        "message": message,
        "alarm": outcome.alarm,
        "order_id": outcome.order_id,
        "station": station,
        "code": naming_order(code, outcome.order_id,  # "order" / "tracking" when it named one
                             order.tracking_number if order is not None else None).as_json(),
        "order": order_view(outcome.state, bench_info) if outcome.state is not None else None,
        "complete": outcome.complete,
        "ready_to_print": outcome.complete and outcome.verdict is Verdict.OK,
        "freeze": None if freeze is None else {
            "reason": freeze.reason,
            "issued_at": freeze.issued_at.isoformat(),
        },
        "event_id": event_id,
        "seq": seq,
    }
