"""A hybrid logical clock: timestamps that never go backwards, whatever the wall clock does.

A Pi without a real-time clock may boot in 1970 or jump when NTP arrives. Events are ordered by
the per-device sequence; the HLC gives them a time that is monotonic per device and close to real
time when the clock is right. Text form ``"<wall_ms:013d>.<counter:04d>"`` sorts as it should.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Hlc:
    wall_ms: int
    counter: int = 0

    def __str__(self) -> str:
        return f"{self.wall_ms:013d}.{self.counter:04d}"

    @classmethod
    def parse(cls, text: str) -> Hlc:
        wall, _, counter = text.partition(".")
        return cls(int(wall), int(counter or 0))


def tick(last: Hlc | None, now_ms: int) -> Hlc:
    """The next timestamp for a local event."""
    if last is None or now_ms > last.wall_ms:
        return Hlc(now_ms, 0)
    return Hlc(last.wall_ms, last.counter + 1)


def observe(last: Hlc | None, remote: Hlc, now_ms: int) -> Hlc:
    """Merge a timestamp seen from elsewhere (the hub), so later local events sort after it."""
    base = max(x for x in (last, remote, Hlc(now_ms, -1)) if x is not None)
    if base.wall_ms == now_ms and base.counter < 0:
        return Hlc(now_ms, 0)
    return Hlc(base.wall_ms, base.counter + 1)
