"""Dynamic waves: which open orders go to the pickers now, together (docs/picking.md).

Every ``wave_interval_s`` and on demand the gateway regroups the open, unfrozen orders that are
not picked yet and that have locations (an order without locations is packed only, as before).
Rules, in this order:

1. Orders a picker has started (their wave is claimed) never move: their waves are kept as they
   are and their parcels count against the carriers' capacity.
2. Urgent first: P0 orders and orders whose ``ship_by`` is today or earlier, then by ``ship_by``
   (none last), then priority, then order id (a stable, reproducible order).
3. ``carrier_capacity`` (parcels per carrier per day): an order over its carrier's capacity
   waits, with the reason.
4. Limits per wave: orders, lines and totes (a tote per order, more for large orders). A wave is
   filled in the order of rule 2; an order that fits in no wave of this run (too large) waits.

Pure code: the service passes the clock (``now``) and what it knows; the same input gives the
same plan.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

URGENT_PRIORITY = "P0"


@dataclass(frozen=True)
class WaveLimits:
    max_orders: int = 12
    max_lines: int = 60
    max_totes: int = 12  # tote slots on a picking cart
    units_per_tote: int = 20
    max_waves: int = 1000  # per run: the rest wait for the next run


@dataclass(frozen=True)
class Candidate:
    """An order as wave building sees it."""

    order_id: str
    priority: str = "P2"
    ship_by: datetime | None = None
    carrier: str | None = None
    lines: int = 1
    units: int = 1
    frozen: bool = False
    has_locations: bool = True
    started: bool = False  # in a claimed wave, or picking done

    def totes(self, limits: WaveLimits) -> int:
        return max(1, math.ceil(self.units / limits.units_per_tote))


@dataclass(frozen=True)
class PlannedWave:
    order_ids: tuple[str, ...]
    lines: int
    totes: int
    urgent: bool


@dataclass(frozen=True)
class Waiting:
    order_id: str
    reason: str  # frozen | carrier_capacity | too_large | max_waves
    detail: str = ""


@dataclass(frozen=True)
class WavePlan:
    waves: tuple[PlannedWave, ...]
    waiting: tuple[Waiting, ...]
    carrier_used: Mapping[str, int] = field(default_factory=dict)


def is_urgent(c: Candidate, now: datetime) -> bool:
    return c.priority == URGENT_PRIORITY or (c.ship_by is not None
                                            and c.ship_by.date() <= now.date())


def sort_key(c: Candidate, now: datetime) -> tuple:
    ship = c.ship_by.timestamp() if c.ship_by is not None else math.inf
    return (0 if is_urgent(c, now) else 1, ship, c.priority, c.order_id)


def build_waves(candidates: Iterable[Candidate], *, now: datetime, limits: WaveLimits = WaveLimits(),
                carrier_capacity: Mapping[str, int] | None = None,
                carrier_used: Mapping[str, int] | None = None) -> WavePlan:
    """Group the candidates into waves. ``carrier_used``: parcels of each carrier already
    committed today (picked, or in started waves) -- started candidates are not regrouped but
    counted here by the caller."""
    capacity = dict(carrier_capacity or {})
    used = dict(carrier_used or {})
    waiting: list[Waiting] = []
    ready: list[Candidate] = []
    for c in candidates:
        if c.started or not c.has_locations:
            continue
        if c.frozen:
            waiting.append(Waiting(c.order_id, "frozen", "the order is frozen"))
            continue
        ready.append(c)
    ready.sort(key=lambda c: sort_key(c, now))
    waves: list[PlannedWave] = []
    current: list[Candidate] = []
    lines = totes = 0

    def close() -> None:
        nonlocal current, lines, totes
        if current:
            waves.append(PlannedWave(tuple(c.order_id for c in current), lines, totes,
                                     any(is_urgent(c, now) for c in current)))
        current, lines, totes = [], 0, 0

    for c in ready:
        need = c.totes(limits)
        if c.lines > limits.max_lines or need > limits.max_totes:
            waiting.append(Waiting(c.order_id, "too_large",
                                   f"{c.lines} lines, {need} totes: over one wave's limits "
                                   f"({limits.max_lines} lines, {limits.max_totes} totes)"))
            continue
        carrier = c.carrier or ""
        if carrier in capacity and used.get(carrier, 0) >= capacity[carrier]:
            waiting.append(Waiting(c.order_id, "carrier_capacity",
                                   f"{carrier}: {capacity[carrier]} parcels today, all taken"))
            continue
        if (len(current) + 1 > limits.max_orders or lines + c.lines > limits.max_lines
                or totes + need > limits.max_totes):
            close()
        if not current and len(waves) >= limits.max_waves:
            waiting.append(Waiting(c.order_id, "max_waves",
                                   f"{limits.max_waves} waves made in this run"))
            continue
        current.append(c)
        lines += c.lines
        totes += need
        used[carrier] = used.get(carrier, 0) + 1
    close()
    return WavePlan(tuple(waves), tuple(waiting), used)
