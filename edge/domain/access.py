"""Who may do what on a device (pure rules: no Flask, no SQLite).

People sign in at a station with their badge or their user id and PIN; scripts and order
systems use tokens. Either way a request acts as a :class:`Principal` with one role, and the
table :data:`PERMISSIONS` says which actions each role may take (docs/security.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

ROLES = ("picker", "packer", "supervisor", "distributor", "admin")

# action -> the roles that may take it. Reading what a station shows is open to every role.
PERMISSIONS: dict[str, frozenset[str]] = {
    "read": frozenset(ROLES),
    "scan": frozenset({"picker", "packer", "supervisor", "admin"}),
    "print": frozenset({"packer", "supervisor", "admin"}),
    "reprint": frozenset({"packer", "supervisor", "admin"}),
    "confirm_print": frozenset({"packer", "supervisor", "admin"}),
    "ack_alarm": frozenset({"picker", "packer", "supervisor", "admin"}),
    "decode": frozenset(ROLES),
    "capture_waybill": frozenset({"packer", "supervisor", "distributor", "admin"}),
    "confirm_waybill": frozenset({"packer", "supervisor", "distributor", "admin"}),
    "override_print_gate": frozenset({"supervisor", "admin"}),
    "decide_conflict": frozenset({"supervisor", "admin"}),
    "supervise": frozenset({"supervisor", "admin"}),
}

USER_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
PIN_RE = re.compile(r"[0-9]{4,12}")
BADGE_MIN, BADGE_MAX = 6, 128


class AccessError(ValueError):
    """A user, PIN, badge or role that cannot be accepted; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a signed-in person (``kind`` "user"), a token, or the device's own
    loopback user when nobody is configured (``kind`` "local")."""

    kind: str  # "user" | "token" | "local"
    id: str
    name: str
    role: str
    station: str | None = None  # a person's session is bound to the station it signed in at
    session_id: str | None = field(default=None, compare=False)

    @property
    def operator(self) -> str:
        """What events record as the operator: never free text from a request."""
        return f"token:{self.id}" if self.kind == "token" else self.id

    def can(self, action: str) -> bool:
        return self.role in PERMISSIONS[action]


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccessError(f"role {role!r}: expected one of {', '.join(ROLES)}")
    return role


def check_user_id(user_id: str) -> str:
    if not USER_ID_RE.fullmatch(user_id):
        raise AccessError("user id: 1-64 letters, digits, '.', '_' or '-'")
    return user_id


def check_pin(pin: str) -> str:
    if not PIN_RE.fullmatch(pin):
        raise AccessError("PIN: 4 to 12 digits")
    return pin


def check_badge(badge: str) -> str:
    badge = badge.strip()
    if not BADGE_MIN <= len(badge) <= BADGE_MAX or not badge.isprintable():
        raise AccessError(f"badge: {BADGE_MIN}-{BADGE_MAX} printable characters")
    return badge


@dataclass
class SigninThrottle:
    """Failed sign-ins, per key (a client address, a user id): after ``free`` failures each
    further one locks the key for twice as long as the last, from ``base_s`` up to ``cap_s``.
    A success clears the key. The clock is passed in (tests need no sleeping)."""

    free: int = 5
    base_s: float = 30.0
    cap_s: float = 900.0
    max_keys: int = 10_000
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict)  # key -> (n, locked until)

    def wait_s(self, key: str, now: float) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        _, until = self._failures.get(key, (0, 0.0))
        return max(0.0, until - now)

    def failed(self, key: str, now: float) -> float:
        """Record a failure; returns the lock it starts (0 while still within ``free``)."""
        n, _ = self._failures.get(key, (0, 0.0))
        n += 1
        lock = 0.0 if n <= self.free else min(self.cap_s, self.base_s * 2 ** (n - self.free - 1))
        if len(self._failures) >= self.max_keys and key not in self._failures:
            # forget keys whose lock is over: an attacker cannot grow this without bound
            for k, (_, until) in list(self._failures.items()):
                if until <= now:
                    del self._failures[k]
        self._failures[key] = (n, now + lock)
        return lock

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)
