"""Pack verification at a station: what a scan does to the order being packed.

An order scan (its order id or its tracking number) opens the order at the station; item scans
count against its lines. A wrong item, an over-scan, a wrong or missing lot, an expired item are
refused with an alarm. A frozen order refuses every scan of it, and every item scan while it is
open. Pure code: the scan service loads a :class:`ScanContext` and saves what comes back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from enum import StrEnum
from functools import cached_property

from scanedge.edge.domain.codes import CodeKind, CodeProblem, ScannedCode, same_item
from scanedge.edge.domain.orders import Order


class Verdict(StrEnum):
    OK = "ok"
    FROZEN = "frozen"
    WRONG_ITEM = "wrong_item"
    OVER_SCAN = "over_scan"
    WRONG_LOT = "wrong_lot"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    # Answered by the scan service, not these rules: an alarm of the station waits for a person
    # (nothing counted, nothing opened) -- docs/freeze.md, "Alarm holds".
    ALARM_PENDING = "alarm_pending"
    VOID_LABEL = "void_label"  # a label made void (address changed after printing) was scanned
    # A note (备注) from the hub waits to be read at the bench: nothing counted, nothing opened
    # until a person taps it away (docs/freeze.md, "Notes").
    NOTE_PENDING = "note_pending"


class Reason(StrEnum):
    ORDER_OPENED = "order_opened"
    ORDER_ALREADY_OPEN = "order_already_open"
    ITEM_COUNTED = "item_counted"
    ORDER_COMPLETE = "order_complete"
    ORDER_FROZEN = "order_frozen"
    NOT_IN_ORDER = "not_in_order"
    LINE_FULL = "line_full"
    LOT_MISMATCH = "lot_mismatch"
    LOT_MISSING = "lot_missing"
    EXPIRED = "expired"
    EXPIRES_TOO_SOON = "expires_too_soon"
    NO_OPEN_ORDER = "no_open_order"
    UNKNOWN_TRACKING = "unknown_tracking"
    BAD_CHECK_DIGIT = "bad_check_digit"
    UNRECOGNIZED = "unrecognized"
    EMPTY = "empty"
    GIFT_CONFIRMED = "gift_confirmed"
    ALARM_PENDING = "alarm_pending"
    LABEL_VOID = "label_void"  # the order's printed label is void: print it again
    VOID_LABEL = "void_label"  # a label made void (address changed after printing) was scanned
    NOTE_PENDING = "note_pending"
    # an order split into parcels with a plan: this item does not go in the open parcel
    # (edge/domain/parcels.py)
    PARCEL_FULL = "parcel_full"


# What an operator or the order system may freeze an order for; the hub itself adds
# "needs_decision" when an expedite and a cancel collide.
FREEZE_REASONS = ("cancel", "address_change", "hold")

# Verdicts that must stop the packer: buzzer, red screen.
ALARM_VERDICTS = frozenset({
    Verdict.FROZEN, Verdict.VOID_LABEL, Verdict.WRONG_ITEM, Verdict.OVER_SCAN, Verdict.WRONG_LOT,
    Verdict.EXPIRED,
})


@dataclass(frozen=True)
class Freeze:
    order_id: str
    reason: str  # cancel | address_change | hold | needs_decision
    issued_at: datetime
    version: int | None = None


@dataclass(frozen=True)
class PackState:
    """An order with how many items of each line have been packed."""

    order: Order
    packed: tuple[int, ...]

    @classmethod
    def fresh(cls, order: Order) -> PackState:
        return cls(order, tuple(0 for _ in order.lines))

    # cached: a scan asks several times (the rule, the print gate, the answer) of a state that
    # never changes (frozen; a scan makes a new one)
    @cached_property
    def complete(self) -> bool:
        return all(p >= line.qty for p, line in zip(self.packed, self.order.lines, strict=True))

    @cached_property
    def items_packed(self) -> int:
        return sum(self.packed)

    def with_one_more(self, line_no: int) -> PackState:
        packed = list(self.packed)
        packed[line_no] += 1
        return replace(self, packed=tuple(packed))


@dataclass(frozen=True)
class ScanContext:
    station: str
    today: date
    open: PackState | None = None  # the order open at this station
    named: PackState | None = None  # the order the code names (its id or tracking number)
    freezes: Mapping[str, Freeze] = field(default_factory=dict)  # of the orders above
    notes: Mapping[str, str] = field(default_factory=dict)  # unread note text, by order id


@dataclass(frozen=True)
class ScanOutcome:
    verdict: Verdict
    reason: Reason
    order_id: str | None = None
    line_no: int | None = None
    state: PackState | None = None  # the order state after the scan (to save if changed)
    opens: bool = False  # the station's open order becomes ``state.order``
    counted: bool = False  # ``state`` has one more item packed
    freeze: Freeze | None = None
    details: dict[str, object] = field(default_factory=dict)

    @property
    def alarm(self) -> bool:
        return self.verdict in ALARM_VERDICTS

    @property
    def complete(self) -> bool:
        return self.state is not None and self.state.complete


def evaluate_scan(code: ScannedCode, ctx: ScanContext) -> ScanOutcome:
    if code.problem is CodeProblem.EMPTY:
        return ScanOutcome(Verdict.UNKNOWN, Reason.EMPTY)
    if ctx.named is not None:
        return _order_scan(ctx.named, ctx)
    if ctx.open is None:
        return ScanOutcome(Verdict.UNKNOWN, _unknown_reason(code, no_open_order=True))
    return _item_scan(code, ctx.open, ctx)


def _order_scan(named: PackState, ctx: ScanContext) -> ScanOutcome:
    order_id = named.order.order_id
    freeze = ctx.freezes.get(order_id)
    if freeze is not None:
        return ScanOutcome(Verdict.FROZEN, Reason.ORDER_FROZEN, order_id, state=named, freeze=freeze)
    if order_id in ctx.notes:
        return _note_pending(named, ctx)
    already = ctx.open is not None and ctx.open.order.order_id == order_id
    reason = Reason.ORDER_ALREADY_OPEN if already else Reason.ORDER_OPENED
    return ScanOutcome(Verdict.OK, reason, order_id, state=named, opens=not already)


def _item_scan(code: ScannedCode, open_: PackState, ctx: ScanContext) -> ScanOutcome:
    order = open_.order
    order_id = order.order_id
    freeze = ctx.freezes.get(order_id)
    if freeze is not None:
        return ScanOutcome(Verdict.FROZEN, Reason.ORDER_FROZEN, order_id, state=open_, freeze=freeze)
    if order_id in ctx.notes:
        return _note_pending(open_, ctx)

    same_sku = [i for i, line in enumerate(order.lines) if same_item(code, line.sku)]
    gift = next((i for i, g in enumerate(order.gifts) if g.code and same_item(code, g.code)), None)
    if not same_sku and gift is not None:  # the gift's own code: it is in the box
        return ScanOutcome(Verdict.OK, Reason.GIFT_CONFIRMED, order_id, state=open_,
                           details={"gift_no": gift, "gift": order.gifts[gift].name})
    if not same_sku:
        reason = _unknown_reason(code, no_open_order=False)
        if reason in (Reason.BAD_CHECK_DIGIT, Reason.UNKNOWN_TRACKING):
            return ScanOutcome(Verdict.UNKNOWN, reason, order_id, state=open_)
        return ScanOutcome(Verdict.WRONG_ITEM, Reason.NOT_IN_ORDER, order_id, state=open_)

    if code.expiry is not None and code.expiry < ctx.today:
        return ScanOutcome(Verdict.EXPIRED, Reason.EXPIRED, order_id, same_sku[0], state=open_,
                           details={"expiry": code.expiry.isoformat()})

    lot_ok = [i for i in same_sku if order.lines[i].lot is None or order.lines[i].lot == code.lot]
    if not lot_ok:
        required = order.lines[same_sku[0]].lot
        reason = Reason.LOT_MISSING if code.lot is None else Reason.LOT_MISMATCH
        return ScanOutcome(Verdict.WRONG_LOT, reason, order_id, same_sku[0], state=open_,
                           details={"lot": code.lot, "required_lot": required})

    # A line's `expires` is the earliest acceptable expiry; checked when the scan carries one.
    fresh_ok = [i for i in lot_ok if _fresh_enough(code, order.lines[i].expires)]
    if not fresh_ok:
        need = order.lines[lot_ok[0]].expires
        return ScanOutcome(Verdict.EXPIRED, Reason.EXPIRES_TOO_SOON, order_id, lot_ok[0],
                           state=open_, details={
                               "expiry": code.expiry.isoformat() if code.expiry else None,
                               "required_expiry": need.isoformat() if need else None})

    room = [i for i in fresh_ok if open_.packed[i] < order.lines[i].qty]
    if not room:
        return ScanOutcome(Verdict.OVER_SCAN, Reason.LINE_FULL, order_id, fresh_ok[0], state=open_)
    line_no = room[0]
    after = open_.with_one_more(line_no)
    reason = Reason.ORDER_COMPLETE if after.complete else Reason.ITEM_COUNTED
    return ScanOutcome(Verdict.OK, reason, order_id, line_no, state=after, counted=True)


def _note_pending(state: PackState, ctx: ScanContext) -> ScanOutcome:
    """A freeze outranks a note; a note outranks everything else until it is read."""
    order_id = state.order.order_id
    return ScanOutcome(Verdict.NOTE_PENDING, Reason.NOTE_PENDING, order_id, state=state,
                       details={"note": ctx.notes[order_id]})


def _fresh_enough(code: ScannedCode, earliest: date | None) -> bool:
    return earliest is None or code.expiry is None or code.expiry >= earliest


def _unknown_reason(code: ScannedCode, *, no_open_order: bool) -> Reason:
    if code.problem is CodeProblem.BAD_CHECK_DIGIT:
        return Reason.BAD_CHECK_DIGIT
    if code.kind is CodeKind.TRACKING:
        return Reason.UNKNOWN_TRACKING
    if no_open_order:
        return Reason.NO_OPEN_ORDER
    return Reason.UNRECOGNIZED
