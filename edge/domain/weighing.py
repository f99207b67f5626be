"""The weight check at the bench (称重核对): what the parcel should weigh, how far off it may be,
and the verdict on what the scale measured (pure rules, docs/scale.md).

The expected weight is the order's ``expected_weight_kg`` (the parcel as shipped, box included)
when it has one, else the sum of its lines' ``unit_weight_kg`` x qty plus the bench's packaging
weight, when every line has one; else nothing is expected and the weight is only recorded.
The tolerance is an absolute part and a percentage of the expected weight, whichever allows
more: the absolute part keeps a light parcel from failing on the scale's last digit, the
percentage keeps a heavy one from failing on the box.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from scanedge.edge.domain.orders import Order

# ok and unchecked may print; the rest is a problem for the print gate
VERDICTS = ("ok", "too_light", "too_heavy", "unchecked", "unstable", "overload", "disconnected")
NO_WEIGHT = ("unstable", "overload", "disconnected")
_PART = re.compile(r"(?P<number>\d+(?:\.\d+)?|\d*\.\d+)\s*(?P<unit>kg|g|%)", re.IGNORECASE)


@dataclass(frozen=True)
class Tolerance:
    absolute_kg: float = 0.0
    percent: float = 0.0

    def allowed_kg(self, expected_kg: float) -> float:
        return round(max(self.absolute_kg, abs(expected_kg) * self.percent / 100.0), 6)

    def describe(self) -> str:
        parts = [f"{self.absolute_kg:g} kg"] if self.absolute_kg else []
        if self.percent:
            parts.append(f"{self.percent:g}%")
        return " / ".join(parts) or "0 kg"


def parse_tolerance(text: str) -> Tolerance:
    """``"0.05kg, 5%"``, ``"50g"``, ``"3%"``: an absolute part (kg or g), a percentage, or both
    (the larger allowance wins). ValueError naming the part that is not one."""
    absolute = percent = None
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise ValueError("a tolerance: an absolute part, a percentage or both, e.g. \"0.05kg, 5%\"")
    for part in parts:
        m = _PART.fullmatch(part)
        if not m:
            raise ValueError(f"tolerance part {part!r}: expected e.g. 0.05kg, 50g or 5%")
        value, unit = float(m["number"]), m["unit"].lower()
        if unit == "%":
            if percent is not None or value > 100:
                raise ValueError(f"tolerance part {part!r}: one percentage, at most 100%")
            percent = value
        else:
            if absolute is not None:
                raise ValueError(f"tolerance part {part!r}: one absolute part")
            absolute = value / 1000 if unit == "g" else value
    return Tolerance(absolute or 0.0, percent or 0.0)


def expected_weight(order: Order, packaging_kg: float = 0.0) -> float | None:
    """What the packed parcel should weigh in kg, or None when the order does not say."""
    if order.expected_weight_kg is not None:
        return order.expected_weight_kg
    if order.lines and all(line.unit_weight_kg is not None for line in order.lines):
        items = sum((line.unit_weight_kg or 0.0) * line.qty for line in order.lines)
        return round(items + packaging_kg, 6)
    return None


@dataclass(frozen=True)
class WeightCheck:
    """The scale's reading of one parcel held against what it should weigh."""

    verdict: str  # one of VERDICTS
    measured_kg: float | None = None
    expected_kg: float | None = None
    allowed_kg: float | None = None  # the deviation the tolerance allows for expected_kg

    @property
    def passes(self) -> bool:
        return self.verdict in ("ok", "unchecked")

    @property
    def difference_kg(self) -> float | None:
        if self.measured_kg is None or self.expected_kg is None:
            return None
        return round(self.measured_kg - self.expected_kg, 6)

    def as_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "measured_kg": self.measured_kg,
                "expected_kg": self.expected_kg, "allowed_kg": self.allowed_kg,
                "difference_kg": self.difference_kg}


def check_weight(measured_kg: float | None, expected_kg: float | None, tolerance: Tolerance, *,
                 reading: str = "stable") -> WeightCheck:
    """The verdict: ``reading`` is the scale's state when there is no settled weight
    (``unstable``, ``overload``, ``disconnected``)."""
    allowed = tolerance.allowed_kg(expected_kg) if expected_kg is not None else None
    if measured_kg is None:
        state = reading if reading in NO_WEIGHT else "unstable"
        return WeightCheck(state, None, expected_kg, allowed)
    if expected_kg is None or allowed is None:
        return WeightCheck("unchecked", measured_kg)
    # rounded: 1.05 - 1.00 is 0.050000000000000044 in floats, and 0.05 must pass
    difference = round(measured_kg - expected_kg, 6)
    if difference < -allowed:
        return WeightCheck("too_light", measured_kg, expected_kg, allowed)
    if difference > allowed:
        return WeightCheck("too_heavy", measured_kg, expected_kg, allowed)
    return WeightCheck("ok", measured_kg, expected_kg, allowed)


def weight_words(check: WeightCheck) -> tuple[str, str]:
    """The check in the bench's words, (zh, en)."""
    v, m, e, a = check.verdict, check.measured_kg, check.expected_kg, check.allowed_kg
    if v == "unstable":
        return "秤上没有稳定的重量:放好包裹,等读数稳定", "no steady weight: put the parcel down and wait"
    if v == "overload":
        return "秤超载:包裹超出秤的量程", "the scale is overloaded: the parcel is beyond its range"
    if v == "disconnected":
        return "秤未连接:检查秤的线缆", "the scale does not answer: check its cable"
    if v == "unchecked":
        return f"称得 {m:.3f} kg(订单无预期重量)", f"weighed {m:.3f} kg (the order expects no weight)"
    assert m is not None and e is not None and a is not None
    if v == "ok":
        return (f"重量相符:称得 {m:.3f} kg,应为 {e:.3f} kg ±{a:.3f}",
                f"weight matches: {m:.3f} kg, expected {e:.3f} kg ±{a:.3f}")
    light = v == "too_light"
    return (f"重量不符(偏{'轻' if light else '重'}):称得 {m:.3f} kg,应为 {e:.3f} kg ±{a:.3f}",
            f"weight is off ({'too light' if light else 'too heavy'}): {m:.3f} kg, "
            f"expected {e:.3f} kg ±{a:.3f}")
