"""Waking the hub's streams when the change log grows.

In one process a condition variable is enough. Across processes over one PostgreSQL, each process
LISTENs and wakes its own streams on NOTIFY. Streams also re-read the log every second, so a
missed wake-up (SQLite hubs in several processes, a dropped LISTEN connection) delays a change by
at most that, never loses it.
"""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class ChangeNotifier:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    @property
    def generation(self) -> int:
        return self._generation

    def notify(self) -> None:
        with self._cond:
            self._generation += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        """Wait until the generation moves past ``seen`` or the timeout ends; return it."""
        with self._cond:
            self._cond.wait_for(lambda: self._generation != seen, timeout=timeout)
            return self._generation


def listen_postgres(url: str, channel: str, notifier: ChangeNotifier,
                    stop: threading.Event) -> threading.Thread:
    """A daemon thread that turns PostgreSQL NOTIFYs into local wake-ups (reconnecting)."""
    import psycopg

    def run() -> None:
        while not stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {channel}")
                    notifier.notify()  # anything missed while disconnected is re-read now
                    while not stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            notifier.notify()
            except psycopg.Error as e:
                log.warning("LISTEN %s failed (%s); retrying", channel, e)
                stop.wait(1.0)

    thread = threading.Thread(target=run, name="pg-listen", daemon=True)
    thread.start()
    return thread
