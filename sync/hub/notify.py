"""Waking the hub's change feed when the change log grows.

In one process the storage calls :meth:`ChangeNotifier.notify` after each commit that appended
changes. Across processes over one PostgreSQL, each process LISTENs and notifies its own feed on
NOTIFY. The feed also re-reads the log every ``reread_s``, so a missed wake-up (SQLite hubs in
several processes, a dropped LISTEN connection) delays a change by at most that, never loses it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class ChangeNotifier:
    """Calls its listeners (from whatever thread committed) when the change log grew."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []

    def __bool__(self) -> bool:  # anyone listening?
        return bool(self._listeners)

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def notify(self) -> None:
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a closed event loop at shutdown must not fail a commit
                log.debug("change listener failed", exc_info=True)


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
