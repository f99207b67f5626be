"""Multi-parcel orders (一单多件, docs/parcels.md): which items go in which parcel, counted per
parcel (pure).

A packer splits an order into N parcels. Items packed before the split are in parcel 1; after
it, each counted item goes into the *open* parcel, and the packer opens the next one when a box
is full. A split may carry a plan (which items go in which parcel, e.g. from the order system or
typed at the bench): then an item the open parcel has no room for is refused, naming a parcel
that still waits for it.

Each parcel gets its own label (``1/3, 2/3, 3/3``), its own weight and, where the order supplies
them, its own tracking number: parcel 1 ships under the order's ``tracking_number`` (the master
number, 母单号), parcel k under ``sub_tracking_numbers[k-2]`` (子单号), as carriers' 子母件 work.

A parcel's label may print when the parcel is verified (:func:`parcel_problems`): it holds an
item; with a plan, exactly its planned items; without one, the packer has moved on from it (opened
another parcel) or the whole order is packed. The order's other print rules (gifts, notes, the
station, the weight) apply to each parcel as to a single label.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from scanedge.edge.domain import orders
from scanedge.edge.domain.orders import SUB_TRACKING_KEY, Order

MAX_PARCELS = orders.MAX_SUB_TRACKING + 1  # more boxes than this is a pallet, not a parcel split


class ParcelError(ValueError):
    """A split that cannot be made; the message says why, for a person."""


@dataclass(frozen=True)
class Split:
    count: int
    packed: tuple[tuple[int, ...], ...]  # per parcel, items of each order line in it
    planned: tuple[tuple[int, ...], ...] | None = None  # per parcel, per line; None: no plan
    open_parcel: int = 1  # 1-based: where the next counted item goes
    closed: frozenset[int] = field(default_factory=frozenset)  # parcels the packer moved on from

    def items(self, parcel_no: int) -> int:
        return sum(self.packed[parcel_no - 1])

    def as_json(self) -> dict[str, Any]:
        return {"count": self.count, "packed": [list(p) for p in self.packed],
                "planned": None if self.planned is None else [list(p) for p in self.planned],
                "open_parcel": self.open_parcel, "closed": sorted(self.closed)}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Split:
        planned = doc.get("planned")
        return cls(int(doc["count"]), tuple(tuple(int(n) for n in p) for p in doc["packed"]),
                   None if planned is None else tuple(tuple(int(n) for n in p) for p in planned),
                   int(doc.get("open_parcel", 1)), frozenset(int(n) for n in doc.get("closed", ())))


@dataclass(frozen=True)
class Misplaced:
    """An item the open parcel has no room for under the plan."""

    parcel_no: int  # the open parcel
    wanted_in: int | None  # a parcel still waiting for this item (None: none is)


@dataclass(frozen=True)
class ParcelProblem:
    code: str  # parcel_empty | parcel_unpacked | parcel_open
    zh: str
    en: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "zh": self.zh, "en": self.en}


def _check_count(count: object) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_PARCELS:
        raise ParcelError(f"count: expected a whole number from 1 to {MAX_PARCELS}, got {count!r}")
    return count


def parse_plan(order: Order, count: int, plan: object) -> tuple[tuple[int, ...], ...] | None:
    """A plan as the API takes it: one list per parcel of how many items of each order line go
    in it (``[[2, 0], [0, 1]]``). Every item of the order in exactly one parcel, none empty."""
    if plan is None:
        return None
    lines = order.lines
    if not isinstance(plan, list) or len(plan) != count:
        raise ParcelError(f"plan: expected a list of {count} parcels")
    out = []
    for k, parcel in enumerate(plan, 1):
        if not isinstance(parcel, list) or len(parcel) != len(lines) or any(
                isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in parcel):
            raise ParcelError(f"plan[{k - 1}]: expected {len(lines)} whole numbers (items of each "
                              "order line in this parcel)")
        if not any(parcel):
            raise ParcelError(f"plan: parcel {k} holds nothing")
        out.append(tuple(parcel))
    for i, line in enumerate(lines):
        total = sum(p[i] for p in out)
        if total != line.qty:
            raise ParcelError(f"plan: line {i} ({line.name or line.sku}) has {line.qty} items, "
                              f"the plan puts {total} in parcels")
    return tuple(out)


def make_split(order: Order, count: object, packed: tuple[int, ...], *,
               plan: tuple[tuple[int, ...], ...] | None = None,
               previous: Split | None = None) -> Split:
    """The order split into ``count`` parcels, keeping what is in the parcels already
    (``previous``) or, on the first split, putting the items packed so far (``packed``, per line)
    in the first parcels with room (parcel 1 without a plan)."""
    n = _check_count(count)
    width = len(order.lines)
    if previous is not None:
        gone = [k for k in range(n + 1, previous.count + 1) if previous.items(k)]
        if gone:
            raise ParcelError(f"parcel {gone[0]} holds items already: it cannot be dropped")
        contents = [list(p) for p in previous.packed[:n]]
        contents += [[0] * width for _ in range(n - len(contents))]
        closed = frozenset(k for k in previous.closed if k <= n)
        open_parcel = min(previous.open_parcel, n)
    else:
        contents = [[0] * width for _ in range(n)]
        for i, qty in enumerate(packed):
            left = qty
            for k in range(n):
                room = left if plan is None else min(left, plan[k][i])
                contents[k][i] += room
                left -= room
            if left:
                raise ParcelError(f"plan: line {i} has {qty} packed already, the plan takes fewer")
        closed, open_parcel = frozenset(), 1
    if plan is not None:
        for k, (have, want) in enumerate(zip(contents, plan, strict=True), 1):
            over = [i for i in range(width) if have[i] > want[i]]
            if over:
                raise ParcelError(f"plan: parcel {k} holds more of line {over[0]} than planned")
    return Split(n, tuple(tuple(p) for p in contents), plan, open_parcel, closed)


def place(split: Split, line_no: int) -> Split | Misplaced:
    """One counted item of ``line_no`` into the open parcel (or where the plan wants it)."""
    k = split.open_parcel
    if split.planned is not None and split.packed[k - 1][line_no] >= split.planned[k - 1][line_no]:
        waiting = next((j for j in range(1, split.count + 1)
                        if split.packed[j - 1][line_no] < split.planned[j - 1][line_no]), None)
        return Misplaced(k, waiting)
    packed = [list(p) for p in split.packed]
    packed[k - 1][line_no] += 1
    return replace(split, packed=tuple(tuple(p) for p in packed))


def open_parcel(split: Split, parcel_no: object) -> Split:
    """The packer starts on ``parcel_no``; the parcel left, if it holds items, counts as closed."""
    if isinstance(parcel_no, bool) or not isinstance(parcel_no, int) \
            or not 1 <= parcel_no <= split.count:
        raise ParcelError(f"parcel: expected a number from 1 to {split.count}, got {parcel_no!r}")
    closed = split.closed
    if parcel_no != split.open_parcel and split.items(split.open_parcel):
        closed = closed | {split.open_parcel}
    return replace(split, open_parcel=parcel_no, closed=closed - {parcel_no})


def order_complete(order: Order, split: Split) -> bool:
    return all(sum(p[i] for p in split.packed) >= line.qty for i, line in enumerate(order.lines))


def parcel_problems(order: Order, split: Split, parcel_no: int) -> list[ParcelProblem]:
    """What stands between parcel ``parcel_no`` and its label (the rules of the module doc)."""
    label = f"{parcel_no}/{split.count}"
    if not split.items(parcel_no):
        return [ParcelProblem("parcel_empty", f"包裹 {label} 是空的", f"parcel {label} is empty")]
    have = split.packed[parcel_no - 1]
    if split.planned is not None:
        want = split.planned[parcel_no - 1]
        missing = [(line.name or line.sku, want[i] - have[i])
                   for i, line in enumerate(order.lines) if have[i] < want[i]]
        if missing:
            zh = "、".join(f"{name}×{n}" for name, n in missing)
            en = ", ".join(f"{name} x{n}" for name, n in missing)
            return [ParcelProblem("parcel_unpacked", f"包裹 {label} 还缺:{zh}",
                                  f"parcel {label} still lacks: {en}")]
        return []
    if parcel_no not in split.closed and not order_complete(order, split):
        return [ParcelProblem("parcel_open", f"包裹 {label} 还在装箱:先开始下一个包裹或装完全部商品",
                              f"parcel {label} is still being packed: start the next parcel or "
                              "pack every item first")]
    return []


def sub_tracking_numbers(order: Order) -> tuple[str, ...]:
    """The order's 子单号 (``sub_tracking_numbers``: a list of texts), normalized like its
    tracking number; ParcelError for a value that is not such a list."""
    raw = order.extra.get(SUB_TRACKING_KEY)
    if raw is None:
        return ()
    try:  # parse_order checked it; an order stored before that check may still hold anything
        return orders.sub_tracking_numbers(raw)
    except orders.OrderError as e:
        raise ParcelError(str(e)) from None


def tracking_number(order: Order, parcel_no: int) -> str | None:
    """Parcel 1: the order's number (母单号); parcel k: its 子单号 when the order has one."""
    if parcel_no == 1:
        return order.tracking_number
    subs = sub_tracking_numbers(order)
    return subs[parcel_no - 2] if parcel_no - 2 < len(subs) else None


def parcel_order(order: Order, split: Split, parcel_no: int) -> Order:
    """The order as parcel ``parcel_no`` ships it: its lines with the items in this parcel, its
    own tracking number. The order's ``expected_weight_kg`` is for all its parcels together, so a
    parcel of several is weighed against its lines' unit weights only."""
    have = split.packed[parcel_no - 1]
    lines = tuple(replace(line, qty=have[i]) for i, line in enumerate(order.lines) if have[i])
    return replace(order, lines=lines or order.lines[:0],
                   tracking_number=tracking_number(order, parcel_no) or order.tracking_number,
                   expected_weight_kg=order.expected_weight_kg if split.count == 1 else None,
                   gifts=order.gifts if parcel_no == 1 else ())


def _shown_number(order: Order, parcel_no: int) -> str | None:
    try:
        return tracking_number(order, parcel_no)
    except ParcelError:  # the order changed since its split: the label step says so
        return None


def view(order: Order, split: Split) -> list[dict[str, Any]]:
    """Each parcel as the bench shows it: its lines, counts, whether it may be labelled."""
    out = []
    for k in range(1, split.count + 1):
        have = split.packed[k - 1]
        want = split.planned[k - 1] if split.planned is not None else None
        out.append({
            "parcel_no": k, "label": f"{k}/{split.count}", "open": k == split.open_parcel,
            "items": sum(have), "planned_items": sum(want) if want is not None else None,
            "tracking_number": _shown_number(order, k),
            "lines": [{"line_no": i, "sku": line.sku, "name": line.name, "packed": have[i],
                       "planned": want[i] if want is not None else None}
                      for i, line in enumerate(order.lines) if have[i] or (want and want[i])],
            "problems": [p.as_json() for p in parcel_problems(order, split, k)],
        })
    return out
