"""When a label may print: the order is verified at this station (pure rules).

A label is the point of no return: once it is on the parcel, the parcel ships. So it prints only
for an order whose lines are all packed and whose gifts are confirmed, at the station where it
was packed (docs/printing.md, "The print gate"). ``print_policy`` decides what a problem does:
``strict`` refuses, ``warn`` prints and records the problems, ``off`` does not look. A signed-in
supervisor may override with a reason (an audit event). Reprints of a printed label are not
gated: the order was verified when it first printed. At a bench with a scale the parcel's weight
is part of the gate (edge/domain/weighing.py, docs/scale.md).
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass

from scanedge.edge.domain.packing import PackState
from scanedge.edge.domain.weighing import WeightCheck, weight_words

POLICIES = ("strict", "warn", "off")


@dataclass(frozen=True)
class GateProblem:
    code: str  # lines_unpacked | gifts_unconfirmed | other_station | note_unread | weight_missing
    # | weight_off
    zh: str
    en: str

    def as_json(self) -> dict[str, str]:
        return {"code": self.code, "zh": self.zh, "en": self.en}


@dataclass(frozen=True)
class GateVerdict:
    allowed: bool
    problems: tuple[GateProblem, ...] = ()

    @property
    def codes(self) -> list[str]:
        return [p.code for p in self.problems]

    def as_json(self) -> dict[str, object]:
        return {"allowed": self.allowed, "problems": [p.as_json() for p in self.problems]}


def gate_problems(state: PackState, gifts_confirmed: Set[int], packed_at: str | None,
                  station: str, note: str | None = None,
                  weight: WeightCheck | None = None) -> tuple[GateProblem, ...]:
    """What stands between this order and its label at ``station`` (``note``: the text of a
    note from the hub nobody has read yet; ``weight``: the scale's check, at a bench with one)."""
    problems = []
    if note is not None:
        problems.append(GateProblem("note_unread", f"有未读备注:{note}",
                                    f"a note nobody has read yet: {note}"))
    missing = [(line.name or line.sku, line.qty - packed)
               for line, packed in zip(state.order.lines, state.packed, strict=True)
               if packed < line.qty]
    if missing:
        zh = "、".join(f"{name}×{n}" for name, n in missing)
        en = ", ".join(f"{name} x{n}" for name, n in missing)
        problems.append(GateProblem("lines_unpacked", f"还有商品未装箱:{zh}",
                                    f"not packed yet: {en}"))
    gifts = [(g.name, g.qty) for i, g in enumerate(state.order.gifts) if i not in gifts_confirmed]
    if gifts:
        zh = "、".join(f"{name}×{n}" for name, n in gifts)
        en = ", ".join(f"{name} x{n}" for name, n in gifts)
        problems.append(GateProblem("gifts_unconfirmed", f"赠品未确认:{zh}",
                                    f"gift not confirmed: {en}"))
    if packed_at is not None and packed_at != station:
        problems.append(GateProblem("other_station", f"此单在 {packed_at} 装箱,请在该工位打印",
                                    f"packed at {packed_at}: print it there"))
    if weight is not None and not weight.passes:
        zh, en = weight_words(weight)
        off = weight.verdict in ("too_light", "too_heavy")
        problems.append(GateProblem("weight_off" if off else "weight_missing", zh, en))
    return tuple(problems)


def print_gate(state: PackState, gifts_confirmed: Set[int], packed_at: str | None,
               station: str, policy: str, note: str | None = None,
               weight: WeightCheck | None = None) -> GateVerdict:
    """May the label of ``state`` print at ``station`` under ``policy``?"""
    if policy == "off":
        return GateVerdict(True)
    problems = gate_problems(state, gifts_confirmed, packed_at, station, note, weight)
    return GateVerdict(policy == "warn" or not problems, problems)
