"""Offline policy: when the hub has been silent too long, this device cannot know about freezes.

"Freeze status unknown" is said in ``/healthz`` (``freeze_status``), on the bus (message ``sync``,
for the pages, published on every change) and in the metrics
(``scanedge_freeze_status_unknown``). Printing then follows ``offline_print``:
``allow`` (print as usual), ``hold_p0`` (P0 labels wait), ``hold_all`` (every label waits). Held
jobs stay queued -- nothing fails -- and print when the hub answers again, unless a freeze that
arrives meanwhile cancels them. A device without a hub (no ``hub_url``) has only local freezes:
its status is ``local`` and the policy does not apply.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from edge.domain.orders import PRIORITIES

if TYPE_CHECKING:
    from edge.bus import EventBus
    from edge.config import Settings
    from printers.service import PrintService
    from sync.worker import SyncWorker

log = logging.getLogger(__name__)
HELD = {"allow": (), "hold_p0": ("P0",), "hold_all": tuple(PRIORITIES)}


class FreezeStatus:
    def __init__(self, settings: Settings, sync: SyncWorker | None, printing: PrintService,
                 bus: EventBus, *, check_s: float = 0.25) -> None:
        self.settings = settings
        self.sync = sync
        self.printing = printing
        self.bus = bus
        self.check_s = check_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: str | None = None
        printing.print_gate = self.held_priorities

    @property
    def status(self) -> str:
        if self.sync is None:
            return "local"
        return "known" if self.sync.online else "unknown"

    def held_priorities(self) -> tuple[str, ...]:
        """The priorities whose labels wait now (empty: print everything)."""
        if self.status != "unknown":
            return ()
        return HELD[self.settings.offline_print]

    def state(self) -> dict[str, Any]:
        status = self.status
        sync = self.sync.status() if self.sync is not None else None
        return {
            "freeze_status": status,
            "message": {"zh": "冻结状态未知(与中心失联)", "en": "freeze status unknown (hub silent)"}
            if status == "unknown" else None,
            "hub_online": None if sync is None else sync["online"],
            "offline_since": None if sync is None else sync["offline_since"],
            "offline_print": self.settings.offline_print,
            "held_priorities": list(self.held_priorities()),
            "print_held": self.printing.held_jobs(),
        }

    # -- the watcher -------------------------------------------------------------------------
    def start(self) -> FreezeStatus:
        self._thread = threading.Thread(target=self._run, name="freeze-status", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def check(self) -> bool:
        """Publish the state if it changed; True when it did."""
        status = self.status
        if status == self._last:
            return False
        before, self._last = self._last, status
        state = self.state()
        self.bus.publish("sync", state)
        if status == "unknown":
            log.warning("hub silent for more than %.0f s: freeze status unknown, offline_print = %s",
                        self.settings.offline_after_s, self.settings.offline_print)
        elif before == "unknown":
            log.info("hub answers again: freeze status known, held labels may print")
        self.printing.wake()  # the gate changed: let the worker look at the queue again
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:
                log.exception("freeze status check failed")
            self._stop.wait(self.check_s)


class FreezeStatusCollector(Collector):
    def __init__(self, status: FreezeStatus) -> None:
        self._status = status

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = self._status.state()
        yield GaugeMetricFamily("scanedge_freeze_status_unknown",
                                "1 while the hub is silent and freezes may be missing",
                                value=1.0 if state["freeze_status"] == "unknown" else 0.0)
        yield GaugeMetricFamily("scanedge_print_jobs_held",
                                "Queued labels held by the offline_print policy",
                                value=state["print_held"])
        db = self._status.printing.store.read()
        yield GaugeMetricFamily("scanedge_orders_frozen", "Orders frozen on this device",
                                value=db.execute("SELECT COUNT(*) FROM freezes").fetchone()[0])
        try:
            pending = db.execute("SELECT COUNT(*) FROM freeze_followups WHERE acked_at IS NULL"
                                 ).fetchone()[0]
        except sqlite3.OperationalError:  # table not made yet
            pending = 0
        yield GaugeMetricFamily("scanedge_freeze_acks_pending",
                                "Applied freezes the hub has not acknowledged yet", value=pending)
