"""systemd's notify protocol (``sd_notify``), without a dependency: a datagram to NOTIFY_SOCKET.

A unit with ``Type=notify`` counts as started when ``READY=1`` arrives, and with ``WatchdogSec=``
it kills and restarts the service when ``WATCHDOG=1`` stops arriving. Outside systemd (no
NOTIFY_SOCKET) every call is a no-op, so the same code runs by hand, in tests and in the unit.

The :class:`Watchdog` pings only while a health check passes: a thread that merely loops would
keep a hung service alive, which is the one thing a watchdog must not do.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def _address() -> str | None:
    addr = os.environ.get("NOTIFY_SOCKET")
    if not addr:
        return None
    if addr.startswith("@"):  # abstract namespace: a leading NUL byte instead of '@'
        return "\0" + addr[1:]
    if addr.startswith("/"):
        return addr
    return None  # vsock:... and other forms are for VMs, not for us


def notify(*fields: str) -> bool:
    """Send ``KEY=value`` lines to systemd; False when not under systemd or the send failed."""
    addr = _address()
    if addr is None:
        return False
    message = "\n".join(fields).encode("utf-8")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(addr)
            sock.sendall(message)
        return True
    except OSError as e:  # systemd gone or socket not ours: the service itself goes on
        log.warning("sd_notify to %s failed: %s", os.environ.get("NOTIFY_SOCKET"), e)
        return False


def ready(status: str = "") -> bool:
    return notify("READY=1", *([f"STATUS={status}"] if status else []), f"MAINPID={os.getpid()}")


def stopping(status: str = "stopping") -> bool:
    return notify("STOPPING=1", f"STATUS={status}")


def status(text: str) -> bool:
    return notify(f"STATUS={text}")


def watchdog_interval() -> float | None:
    """Seconds between pings (half of WATCHDOG_USEC), or None when no watchdog is asked for."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec:
        return None
    if pid and pid != str(os.getpid()):  # meant for another process (e.g. a wrapper shell)
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 1e6 / 2 if value > 0 else None


HealthCheck = Callable[[], str | None]  # None = healthy, else what is wrong (one line)


class Watchdog:
    """Sends WATCHDOG=1 every ``interval`` seconds while ``check()`` says healthy.

    ``check`` may block (a hung store blocks it): then no ping goes out and systemd restarts the
    service after WatchdogSec, which is what should happen. An unhealthy answer is logged and
    shown in ``systemctl status`` (STATUS=), and the ping is withheld.
    """

    def __init__(self, check: HealthCheck, interval: float, *, healthy_status: str = "") -> None:
        self.check = check
        self.interval = interval
        self.healthy_status = healthy_status
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sd-watchdog", daemon=True)
        self._last_problem: str | None = None

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.interval + 1)

    def beat(self) -> bool:
        """One round: check, then ping if healthy. Returns whether a ping went out."""
        try:
            problem = self.check()
        except Exception as e:  # a failing check is a failing service
            problem = f"health check failed: {e!r}"
        if problem is None:
            if self._last_problem is not None:
                log.warning("healthy again")
                self._last_problem = None
                if self.healthy_status:
                    status(self.healthy_status)
            return notify("WATCHDOG=1")
        if problem != self._last_problem:
            log.error("unhealthy, withholding the watchdog ping: %s", problem)
            self._last_problem = problem
        status(f"unhealthy: {problem}")
        return False

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.beat()
            self._stop.wait(self.interval)
