"""Handover from the pickers to the bench: which order a tote opens, what a short pick means for
packing (pure).

A tote scanned at a bench opens an order it holds (the scan service looks the tote up; a tote of
several orders opens them one after the other: ``open_from_tote``). If the
picker reported a short (not enough at the bin), the opening scan answers ``short_pick`` and says
what is missing, line by line: the order cannot be packed complete until someone brings it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scanedge.edge.domain.packing import Reason, ScanOutcome, Verdict

SHORT_PICK = "short_pick"
OPENING = (Reason.ORDER_OPENED, Reason.ORDER_ALREADY_OPEN)


def short_pick(outcome: ScanOutcome, shorts: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """``shorts``: the picker's reports ``{line_no, missing, location, reason}``. None if the
    scan is not an opening of an order that still misses items."""
    if (not shorts or outcome.verdict is not Verdict.OK or outcome.reason not in OPENING
            or outcome.state is None or outcome.state.complete):
        return None
    order, packed = outcome.state.order, outcome.state.packed
    missing = []
    for s in shorts:
        n = int(s["line_no"])
        if not 0 <= n < len(order.lines):
            continue
        line = order.lines[n]
        count = min(int(s["missing"]), line.qty - packed[n])
        if count > 0:
            missing.append({"line_no": n, "sku": line.sku, "name": line.name or line.sku,
                            "missing": count, "location": s.get("location"),
                            "reason": s.get("reason")})
    if not missing:
        return None
    zh = "；".join(f"{m['name']} ×{m['missing']}（库位 {m['location']}）" for m in missing)
    en = "; ".join(f"{m['name']} ×{m['missing']} (bin {m['location']})" for m in missing)
    oid = order.order_id
    return {"verdict": SHORT_PICK, "missing": missing, "message": {
        "zh": f"订单 {oid} 拣货缺货，不能完整打包：缺 {zh}",
        "en": f"order {oid} was picked short and cannot be packed complete: missing {en}"}}


# -- a tote that holds several orders ------------------------------------------------------------

@dataclass(frozen=True)
class InTote:
    """An order a picker put into the tote. ``packed``: packed complete at a bench (it has left
    the tote); ``frozen``: frozen now; ``stopped``: this freeze was already stopped at a bench
    (the packer saw its alarm)."""

    order_id: str
    packed: bool = False
    frozen: bool = False
    stopped: bool = False


@dataclass(frozen=True)
class ToteOpen:
    """What a tote scan at a bench opens, and what else the tote still holds."""

    tote: str
    order_id: str
    to_pack: tuple[str, ...] = ()  # the others still to pack, the next one first
    frozen: tuple[str, ...] = ()   # frozen ones no bench has stopped yet: their items come out

    def note(self) -> dict[str, str] | None:
        """What the bench adds to the scan's message; None for a tote of one order."""
        zh, en = [], []
        if self.to_pack:
            k, nxt = len(self.to_pack), self.to_pack[0]
            zh.append(f"周转箱 {self.tote} 还有 {k} 单待打包（下一单 {nxt}）：打包完再扫周转箱")
            en.append(f"tote {self.tote} holds {k} more order{'s' if k > 1 else ''} to pack "
                      f"(next {nxt}): scan the tote again for it")
        if self.frozen:
            ids = ", ".join(self.frozen)
            zh.append(f"周转箱内已冻结订单 {ids}：取出其商品")
            en.append(f"frozen order{'s' if len(self.frozen) > 1 else ''} {ids} in the tote: "
                      "take their items out")
        return {"zh": "；".join(zh), "en": "; ".join(en)} if zh else None

    def with_note(self, message: dict[str, str]) -> dict[str, str]:
        note = self.note()
        if note is None:
            return message
        return {k: f"{v} · {note[k]}" if k in note else v for k, v in message.items()}

    def as_json(self) -> dict[str, Any]:
        return {"tote": self.tote, "order_id": self.order_id, "to_pack": list(self.to_pack),
                "frozen": list(self.frozen)}


def open_from_tote(tote: str, held: Sequence[InTote], open_id: str | None) -> ToteOpen | None:
    """Which order a scan of ``tote`` opens at a bench whose open order is ``open_id``.

    ``held``: the orders put into the tote, in the order they went in. The rules, in order:

    1. A frozen order whose freeze no bench has stopped yet opens first: the bench refuses it
       and alarms, and the packer takes its items out. Once stopped, it counts as handled.
    2. Otherwise the next order still to pack after the open one (round the tote's list), or
       the first still to pack if the open order is not from this tote. So each tote scan after
       an order is packed opens the next; scanning the tote again while an order is open moves
       on to the next one (the open one keeps its progress), and a tote of one order stays on it.
    3. Nothing left to pack: the latest order, so the bench says it is packed already.
    """
    if not held:
        return None
    ids = [h.order_id for h in held]
    pending = [h for h in held if not h.packed and not h.frozen]
    alarm = next((h for h in held if h.frozen and not h.stopped), None)
    start = ids.index(open_id) + 1 if open_id in ids else 0
    rotated = [*held[start:], *held[:start]]
    if alarm is not None:
        chosen = alarm.order_id
    elif pending:
        chosen = next(h for h in rotated if h in pending).order_id
    else:
        chosen = ids[-1]
    at = ids.index(chosen)
    after = [*held[at + 1:], *held[:at]]
    return ToteOpen(tote, chosen,
                    to_pack=tuple(h.order_id for h in after if h in pending),
                    frozen=tuple(h.order_id for h in after if h.frozen and not h.stopped))
