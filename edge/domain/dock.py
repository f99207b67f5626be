"""The dock handover (装车交接, docs/dock.md): which parcel a loader may put on the truck, and what
a closed batch says (pure).

A loader scans parcels into a handover batch, one per truck: a carrier's (``carrier`` set) or a
mixed one (``carrier`` None: a consolidator taking several carriers). The dock is the last place
a cancelled parcel can be pulled, so the rules, in order, for one scan (:func:`judge`):

1. a code that names no order here: refused (``unknown``);
2. the order is frozen (cancelled, address change, hold): refused with the station's alarm,
   "pull it" (``frozen``), also when it was scanned into this batch earlier;
3. its printed label is void (the address changed after printing): refused with the alarm, pull
   it for a new label (``label_void``);
4. already loaded (in a closed batch): refused (``already_loaded``);
5. already in this batch: flagged, counted once (``duplicate``);
6. in another open batch: refused (``in_other_batch``);
7. the order's carrier is not the truck's: refused (``wrong_carrier``);
8. else accepted; flagged ``no_label_here`` when no label of it printed on this device (another
   bench of the site may have printed it).

Closing (:func:`manifest`) lists the parcels and counts them per carrier, and says which labels
printed here for this truck were never scanned at the dock (``not_scanned``) and which of those
are frozen (``to_pull``: someone must find the parcel before it ships). A batch holding a parcel
frozen since its scan cannot close until the parcel is taken out (:func:`close_blockers`).

An order split into parcels (docs/parcels.md) is one handover item per parcel (``parcel_no``
1..N of ``parcels``; 0 for an order's single label): each is scanned, counted, flagged and expected
on its own, and the order counts as loaded only once all its parcels are on this truck or an
earlier one (:func:`order_completion`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class DockVerdict(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"
    FROZEN = "frozen"
    LABEL_VOID = "label_void"
    ALREADY_LOADED = "already_loaded"
    IN_OTHER_BATCH = "in_other_batch"
    WRONG_CARRIER = "wrong_carrier"


# The refusal code of each verdict that refuses (edge/domain/refusal.py STATUS); the others are
# answered 200.
REFUSAL_CODE = {
    DockVerdict.UNKNOWN: "parcel_unknown",
    DockVerdict.FROZEN: "parcel_frozen",
    DockVerdict.LABEL_VOID: "label_void",
    DockVerdict.ALREADY_LOADED: "already_loaded",
    DockVerdict.IN_OTHER_BATCH: "in_other_batch",
    DockVerdict.WRONG_CARRIER: "wrong_carrier",
}
ALARMING = frozenset({DockVerdict.FROZEN, DockVerdict.LABEL_VOID})  # the parcel must be pulled
NO_LABEL_HERE = "no_label_here"


def carrier_key(carrier: str | None) -> str | None:
    """Carriers compare by code, whatever case the order system wrote (``sf`` is ``SF``)."""
    return carrier.strip().upper() or None if carrier else None


@dataclass(frozen=True)
class Batch:
    batch_id: str
    carrier: str | None  # None: a mixed truck
    state: str = "open"  # open | closed


@dataclass(frozen=True)
class Parcel:
    """What the device knows of the parcel a code names, when it is scanned."""

    code: str
    order_id: str | None  # None: the code names no order on this device
    carrier: str | None = None
    tracking_number: str | None = None
    freeze_reason: str | None = None  # the order is frozen now
    void_reason: str | None = None    # its printed label is void and not replaced
    printed: bool = False             # a label of it printed on this device
    in_this_batch: bool = False
    open_batch: str | None = None     # another open batch holding it
    loaded_in: str | None = None      # the closed batch it left in
    parcel_no: int = 0                # which parcel of a split order (0: the order's one label)
    parcels: int = 0                  # how many the order was split into (0: not split)


@dataclass(frozen=True)
class Decision:
    verdict: DockVerdict
    counted: bool = False  # a new parcel of the batch
    flags: tuple[str, ...] = ()
    message: dict[str, str] = field(default_factory=dict)

    @property
    def refused(self) -> bool:
        return self.verdict in REFUSAL_CODE

    @property
    def alarm(self) -> bool:
        return self.verdict in ALARMING

    @property
    def refusal_code(self) -> str | None:
        return REFUSAL_CODE.get(self.verdict)


FREEZE_WORDS = {"cancel": ("已取消", "cancelled"), "address_change": ("地址变更", "address changed"),
                "hold": ("暂停发货", "on hold"), "needs_decision": ("待决定", "waiting for a decision")}


def _names(order_id: str, parcel_no: int, parcels: int) -> tuple[str, str]:
    """How the messages name the item: the order, and its parcel when it is split."""
    if not parcel_no:
        return order_id, order_id
    return f"{order_id} 包裹 {parcel_no}/{parcels}", f"{order_id} parcel {parcel_no}/{parcels}"


def judge(batch: Batch, parcel: Parcel) -> Decision:
    """The rules of the module docstring, in order."""
    if parcel.order_id is None:
        return Decision(DockVerdict.UNKNOWN, message={
            "zh": f"{parcel.code[:64]} 不是本设备的包裹",
            "en": f"{parcel.code[:64]} names no parcel on this device"})
    oid, eid = _names(parcel.order_id, parcel.parcel_no, parcel.parcels)
    if parcel.freeze_reason is not None:
        zh, en = FREEZE_WORDS.get(parcel.freeze_reason, (parcel.freeze_reason,) * 2)
        return Decision(DockVerdict.FROZEN, message={
            "zh": f"订单 {oid} 已冻结（{zh}）：拦截！把包裹拿下来，不要装车",
            "en": f"order {eid} is frozen ({en}): pull it, do not load it"})
    if parcel.void_reason is not None:
        return Decision(DockVerdict.LABEL_VOID, message={
            "zh": f"订单 {oid} 的面单已作废：拿下来，重新打印面单",
            "en": f"the label of order {eid} is void: pull it for a new label"})
    if parcel.loaded_in is not None:
        return Decision(DockVerdict.ALREADY_LOADED, message={
            "zh": f"订单 {oid} 已在交接批次 {parcel.loaded_in} 装车",
            "en": f"order {eid} was loaded already (batch {parcel.loaded_in})"})
    if parcel.in_this_batch:
        return Decision(DockVerdict.DUPLICATE, flags=("scanned_twice",), message={
            "zh": f"订单 {oid} 重复扫描：已在本批次，不重复计数",
            "en": f"order {eid} scanned twice: already in this batch, counted once"})
    if parcel.open_batch is not None:
        return Decision(DockVerdict.IN_OTHER_BATCH, message={
            "zh": f"订单 {oid} 已在另一个交接批次 {parcel.open_batch}",
            "en": f"order {eid} is in another handover batch ({parcel.open_batch})"})
    want, have = carrier_key(batch.carrier), carrier_key(parcel.carrier)
    if want is not None and have is not None and want != have:
        return Decision(DockVerdict.WRONG_CARRIER, message={
            "zh": f"订单 {oid} 是 {have} 的包裹，不是 {want}：不要装这辆车",
            "en": f"order {eid} goes with {have}, not {want}: not on this truck"})
    flags = () if parcel.printed else (NO_LABEL_HERE,)
    return Decision(DockVerdict.ACCEPTED, counted=True, flags=flags, message={
        "zh": f"订单 {oid} 已扫入" + ("（本设备未打印其面单）" if flags else ""),
        "en": f"order {eid} scanned in" + (" (its label was not printed on this device)"
                                           if flags else "")})


# -- closing ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Loaded:
    """A parcel of the batch when it closes."""

    order_id: str
    carrier: str | None
    tracking_number: str | None
    scans: int = 1  # more than one: scanned twice
    scanned_at: str = ""
    frozen: bool = False  # frozen since it was scanned in
    parcel_no: int = 0  # of a split order (0: the order's single label)
    parcels: int = 0


@dataclass(frozen=True)
class Printed:
    """A label printed on this device that the dock expects: an order of the batch's carrier (any
    carrier for a mixed batch) not in any batch."""

    order_id: str
    carrier: str | None
    tracking_number: str | None
    printed_at: str
    frozen: bool = False
    parcel_no: int = 0  # a parcel's label of a split order
    parcels: int = 0


def close_blockers(parcels: Sequence[Loaded]) -> list[str]:
    """Parcels frozen since they were scanned in: the truck must not leave with them."""
    return [p.order_id for p in parcels if p.frozen]


def order_completion(parcels: Sequence[Loaded], loaded_before: Mapping[str, Set[int]]
                     ) -> tuple[list[str], dict[str, list[int]]]:
    """The orders of a closing batch loaded whole (every parcel on this truck or in
    ``loaded_before``, the parcels of each order that left in closed batches) and, for the rest,
    the parcels still missing: (order ids, {order id: missing parcel numbers})."""
    on_truck: dict[str, set[int]] = {}
    count: dict[str, int] = {}
    for p in parcels:
        on_truck.setdefault(p.order_id, set()).add(p.parcel_no)
        count[p.order_id] = max(count.get(p.order_id, 0), p.parcels)
    whole, missing = [], {}
    for oid, here in on_truck.items():
        gone = [k for k in range(1, count[oid] + 1)
                if k not in here and k not in loaded_before.get(oid, ())]
        if gone:
            missing[oid] = gone
        else:
            whole.append(oid)
    return whole, missing


def expected(batch: Batch, printed: Sequence[Printed]) -> list[Printed]:
    want = carrier_key(batch.carrier)
    return [p for p in printed if want is None or carrier_key(p.carrier) in (want, None)]


def manifest(batch: Batch, parcels: Sequence[Loaded], printed: Sequence[Printed], *,
             station: str, operator: str, opened_at: str, closed_at: str,
             incomplete: Mapping[str, Sequence[int]] | None = None) -> dict[str, Any]:
    """The batch's manifest: its parcels, counts per carrier, what was printed and not scanned,
    and the split orders whose other parcels are not loaded yet (``incomplete``, from
    :func:`order_completion`). ``parcels`` must not hold a frozen one (:func:`close_blockers`)."""
    by_carrier = Counter(carrier_key(p.carrier) or "-" for p in parcels)
    missing = expected(batch, printed)
    return {
        "batch_id": batch.batch_id, "carrier": batch.carrier, "station": station,
        "operator": operator, "opened_at": opened_at, "closed_at": closed_at,
        "parcels": [{"order_id": p.order_id, "carrier": p.carrier,
                     "tracking_number": p.tracking_number, "scanned_at": p.scanned_at,
                     "scans": p.scans, **_parcel_json(p.parcel_no, p.parcels)}
                    for p in parcels],
        "counts": {"parcels": len(parcels), "by_carrier": dict(sorted(by_carrier.items())),
                   # with split orders, parcels are not orders: say both
                   **({"orders": len({p.order_id for p in parcels}),
                       "incomplete": len(incomplete or {})}
                      if any(p.parcel_no for p in parcels) else {}),
                   "scanned_twice": sum(1 for p in parcels if p.scans > 1),
                   "not_scanned": sum(1 for p in missing if not p.frozen),
                   "to_pull": sum(1 for p in missing if p.frozen)},
        "not_scanned": [printed_json(p) for p in missing if not p.frozen],
        "to_pull": [printed_json(p) for p in missing if p.frozen],
        **({"incomplete": [{"order_id": oid, "missing": list(gone)}
                           for oid, gone in incomplete.items()]} if incomplete else {}),
    }


def _parcel_json(parcel_no: int, parcels: int) -> dict[str, Any]:
    return {"parcel_no": parcel_no, "parcel": f"{parcel_no}/{parcels}"} if parcel_no else {}


def printed_json(p: Printed) -> dict[str, Any]:
    return {"order_id": p.order_id, "carrier": p.carrier, "tracking_number": p.tracking_number,
            "printed_at": p.printed_at, **_parcel_json(p.parcel_no, p.parcels)}


CSV_COLUMNS = ("batch_id", "carrier", "order_id", "tracking_number", "scanned_at", "scans",
               "parcel")  # parcel: 2/3 for a split order's parcel, else empty


def manifest_rows(doc: dict[str, Any]) -> list[list[str]]:
    """The manifest as CSV rows (a header, one row per parcel), for the carrier's driver."""
    rows = [list(CSV_COLUMNS)]
    for p in doc["parcels"]:
        rows.append([doc["batch_id"], p["carrier"] or "", p["order_id"],
                     p["tracking_number"] or "", p["scanned_at"], str(p["scans"]),
                     p.get("parcel") or ""])
    return rows
