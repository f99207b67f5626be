"""POSTing JSON notifications to a webhook (``notify_url``): the device's P0 alerts
(edge/notify.py) and the hub's tripped fuses (sync/hub/webhooks.py).

A notification is a row first (written in the transaction that decided it, unique, so a replay
or a second process notifies once); :class:`WebhookSender` delivers the rows, oldest first, each
retried with exponential backoff until the URL answers 2xx, in a thread that wakes when told or
when the next retry is due; a restart resumes. Subclasses only say where the rows are.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

BACKOFF_CAP_S = 300.0


def post_json(url: str, payload: str, timeout_s: float) -> str | None:
    """POST one JSON document; None when the URL answered 2xx, else what went wrong."""
    req = urllib.request.Request(url, data=payload.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            return None if 200 <= r.status < 300 else f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}"
    except (OSError, ValueError) as e:
        return f"{e.__class__.__name__}: {e}"


def backoff_s(attempts: int, base_s: float) -> float:
    """The wait before the next try of a webhook that failed ``attempts`` times (capped)."""
    return min(BACKOFF_CAP_S, base_s * 2 ** attempts)


class WebhookSender:
    """Delivers a table of notification rows to ``url`` (none is sent without a URL)."""

    thread_name = "webhook"

    def __init__(self, url: str, *, timeout_s: float = 5.0, backoff_base_s: float = 2.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.url, self.timeout_s, self.backoff_base_s, self.clock = url, timeout_s, \
            backoff_base_s, clock
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- where the rows are (per subclass) -----------------------------------------------------
    def due_rows(self, now: float) -> list[tuple[Any, str, int]]:
        """(row id, JSON payload, attempts so far) of the rows due by ``now``, oldest first."""
        raise NotImplementedError

    def mark_sent(self, row_id: Any) -> None:
        raise NotImplementedError

    def mark_failed(self, row_id: Any, error: str, next_at: float) -> None:
        raise NotImplementedError

    def next_due(self) -> float | None:
        """When the earliest unsent row is due (None: nothing to send)."""
        raise NotImplementedError

    # -- delivery --------------------------------------------------------------------------------
    def deliver_due(self) -> int:
        """Send every notification that is due; returns how many were delivered."""
        now = self.clock()
        delivered = 0
        for row_id, payload, attempts in self.due_rows(now):
            error = post_json(self.url, payload, self.timeout_s)
            if error is None:
                delivered += 1
                self.mark_sent(row_id)
            else:
                delay = backoff_s(attempts, self.backoff_base_s)
                log.warning("notify %s failed (%s); retrying in %.0f s", self.url, error, delay)
                self.mark_failed(row_id, error, now + delay)
        return delivered

    def start(self) -> WebhookSender:
        if self.url and self._thread is None:
            self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.deliver_due()
                due = self.next_due()
                wait = 60.0 if due is None else max(0.05, min(60.0, due - self.clock()))
            except Exception:  # the store may be away for a while: the rows wait
                log.exception("%s: delivering notifications failed", self.thread_name)
                wait = 5.0
            self._wake.wait(wait)
            self._wake.clear()
