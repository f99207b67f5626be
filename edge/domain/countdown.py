"""生效倒计时 (effective countdown) and 熔断 (the fuse): how long a hub command may take to reach
every device of its order's site, and what it means when it does not.

A cancel, an address change or a note (备注) must take effect everywhere the order may be
worked on within a countdown: ``countdown_s`` (default 15 s), or the order category's own
(``countdown_by_category``). The hub signs ``effective_by`` = issued_at + countdown into the
command. At ``effective_by`` the fuse is checked: if a device expected to apply the command has
not acknowledged it by then, the fuse trips (the order is escalated to a person). A device whose
acknowledgement came after ``effective_by`` is *late*, and named.

Pure code: the hub loads the expected devices and the acknowledgements (its own clock's receive
times, so a device's wrong clock cannot make it look on time) and stores what comes back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

DEFAULT_COUNTDOWN_S = 15.0
MAX_COUNTDOWN_S = 24 * 3600.0  # a day: beyond that it is not a countdown but a backlog
# Freeze reasons that carry a countdown (a hold or the hub's needs_decision do not: nobody
# outside asked for them to take effect by a time).
COUNTDOWN_REASONS = ("cancel", "address_change")
RUNNING, MET, TRIPPED = "running", "met", "tripped"
STATES = (RUNNING, MET, TRIPPED)


def has_countdown(kind: str, fields: Mapping[str, object]) -> bool:
    """Whether a command of ``kind`` with these fields is put on a countdown."""
    return kind == "note" or (kind == "freeze" and fields.get("reason") in COUNTDOWN_REASONS)


@dataclass(frozen=True)
class CountdownPolicy:
    """Seconds a command has, by the order's ``category`` (hub settings)."""

    default_s: float = DEFAULT_COUNTDOWN_S
    by_category: Mapping[str, float] = field(default_factory=dict)

    def seconds_for(self, category: str | None) -> float:
        if category is not None and category in self.by_category:
            return self.by_category[category]
        return self.default_s

    def effective_by(self, issued_at: datetime, category: str | None) -> datetime:
        return issued_at + timedelta(seconds=self.seconds_for(category))


def valid_seconds(value: object) -> float:
    """A countdown length: a number of seconds above 0, at most a day (raises ValueError)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r}: expected a number of seconds")
    seconds = float(value)
    if not (0 < seconds <= MAX_COUNTDOWN_S) or math.isnan(seconds):
        raise ValueError(f"{value!r}: expected seconds above 0 and at most {MAX_COUNTDOWN_S:.0f}")
    return seconds


def parse_by_category(text: str) -> dict[str, float]:
    """The ``countdown_by_category`` setting: a JSON object ``{"生鲜": 5, "furniture": 60}``
    (empty text: none). Raises ValueError naming the bad entry."""
    if not text.strip():
        return {}
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e.msg} at character {e.pos}") from None
    if not isinstance(doc, dict):
        raise ValueError('expected a JSON object of category -> seconds, e.g. {"fresh": 5}')
    out = {}
    for category, seconds in doc.items():
        try:
            out[category] = valid_seconds(seconds)
        except ValueError as e:
            raise ValueError(f"category {category!r}: {e}") from None
    return out


@dataclass(frozen=True)
class FuseCheck:
    """Where one command stands against its countdown at ``now``."""

    state: str  # running | met | tripped
    expected: int  # devices expected to apply it
    applied: tuple[str, ...]  # acknowledged by effective_by (or so far, while running)
    late: tuple[tuple[str, float], ...]  # (device, seconds after effective_by), acknowledged late
    missing: tuple[str, ...]  # expected and not acknowledged at all (yet)
    remaining_s: float  # until effective_by (0 when over)

    @property
    def not_in_time(self) -> tuple[str, ...]:
        """The devices that made the fuse trip: missing at expiry, or acknowledged after it."""
        return tuple(sorted({*self.missing, *(d for d, _ in self.late)}))


def check_fuse(expected: Iterable[str], acks: Mapping[str, datetime], effective_by: datetime,
               now: datetime) -> FuseCheck:
    """The fuse of one command: ``expected`` devices, ``acks`` device -> when the hub received
    its acknowledgement. Before ``effective_by`` the command is ``running`` (``met`` as soon as
    every expected device applied it); from ``effective_by`` on it is ``met`` if every expected
    device had acknowledged by then, else ``tripped``. A device not expected (registered after
    the command) that acknowledges is counted as applied, never as missing."""
    wanted = set(expected)
    on_time = sorted(d for d, t in acks.items() if t <= effective_by)
    late = tuple(sorted(((d, round((t - effective_by).total_seconds(), 3))
                         for d, t in acks.items() if t > effective_by)))
    missing = tuple(sorted(wanted - set(acks)))
    remaining = max(0.0, (effective_by - now).total_seconds())
    if now < effective_by:
        state = MET if wanted <= set(on_time) else RUNNING
    else:
        state = MET if wanted <= set(on_time) else TRIPPED
    return FuseCheck(state, len(wanted), tuple(on_time), late, missing, round(remaining, 3))
