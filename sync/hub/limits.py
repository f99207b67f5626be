"""Per-device rate limits of the hub (pure code: the clock is passed in).

A token bucket per (device, kind): ``rate`` requests a second on average, ``burst`` at once. A
device over its limit is answered ``429`` with ``Retry-After`` (the seconds until one token is
back); the device's sync worker already treats 429 as "try again later" with backoff. The
buckets live in the hub process: behind a proxy with N processes a device may get up to N
times its rate, which still bounds what one device can take (docs/scaling.md).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Rate:
    per_s: float
    burst: float


class RateLimiter:
    def __init__(self, rates: dict[str, Rate], clock: Callable[[], float], *,
                 max_keys: int = 200_000) -> None:
        self.rates = rates
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # -> (tokens, at)
        self._lock = threading.Lock()

    def check(self, kind: str, key: str) -> float | None:
        """Take one token: None when allowed, else the seconds to wait before trying again."""
        rate = self.rates[kind]
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get((kind, key), (rate.burst, now))
            tokens = min(rate.burst, tokens + (now - at) * rate.per_s)
            if tokens >= 1.0:
                self._buckets[(kind, key)] = (tokens - 1.0, now)
                if len(self._buckets) > self.max_keys:
                    self._forget_full(now)
                return None
            self._buckets[(kind, key)] = (tokens, now)
            return (1.0 - tokens) / rate.per_s

    def _forget_full(self, now: float) -> None:
        """Drop buckets that have refilled: they hold nothing a new bucket would not."""
        for (kind, key), (tokens, at) in list(self._buckets.items()):
            rate = self.rates[kind]
            if tokens + (now - at) * rate.per_s >= rate.burst:
                del self._buckets[(kind, key)]


def retry_after_header(seconds: float) -> str:
    """Retry-After takes whole seconds: round up, at least 1."""
    return str(max(1, math.ceil(seconds)))
