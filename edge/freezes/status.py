"""Offline policy: when the hub has been silent too long, this device cannot know about freezes.

"Freeze status unknown" is said in ``/healthz`` (``freeze_status``, and ``reason`` says why), on
the bus (message ``sync``, for the pages, published on every change) and in the metrics
(``scanedge_freeze_status_unknown``). The hub may answer and the status still be unknown
(docs/security.md, "Enrolment and hub identity"): while the device resyncs with its hub
(``resync``: the cursor was ahead of the hub, the hub's log or identity changed), when it has no
hub key to verify commands with (``no_hub_key``: not enrolled) or when the hub signs with another
key than the one the device trusts (``hub_key_mismatch``). A resync for a reason like those, and a
key mismatch, also raise one warning alarm for the supervisor. Printing then follows ``offline_print``:
``allow`` (print as usual), ``hold_p0`` (P0 labels wait), ``hold_all`` (every label waits). Held
jobs stay queued -- nothing fails -- and print when the hub answers again, unless a freeze that
arrives meanwhile cancels them. A device without a hub (no ``hub_url``) has only local freezes:
its status is ``local`` and the policy does not apply.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from scanedge.edge.domain.orders import PRIORITIES

if TYPE_CHECKING:
    from scanedge.edge.bus import EventBus
    from scanedge.edge.config import Settings
    from scanedge.printers.service import PrintService
    from scanedge.sync.worker import SyncWorker

log = logging.getLogger(__name__)
HELD = {"allow": (), "hold_p0": ("P0",), "hold_all": tuple(PRIORITIES)}
REASONS = {  # why the freeze status is unknown: (zh, en)
    "hub_silent": ("冻结状态未知(与中心失联)", "freeze status unknown (hub silent)"),
    "resync": ("冻结状态未知(正在与中心重新同步)",
               "freeze status unknown (resyncing with the hub: {reason})"),
    "no_hub_key": ("冻结状态未知(本机未登记中心密钥,中心指令一律拒绝;请登记本机)",
                   "freeze status unknown (no hub key: hub commands are refused until this "
                   "device is enrolled, `scanedge enroll`)"),
    "hub_key_mismatch": ("冻结状态未知(中心的签名密钥与本机信任的不同;请重新登记本机)",
                         "freeze status unknown (the hub signs with key {hub}, this device "
                         "trusts {pinned}: enrol it again)"),
}
HUB_ALARMS = {  # the supervisor's warning: (alarm type, zh, en)
    "resync": ("hub_resync",
               "中心数据与本机不一致({reason}),正在重新同步;请主管确认中心是否被恢复或更换",
               "The hub's log does not match this device ({reason}); resyncing. Supervisor: "
               "check whether the hub was restored or replaced"),
    "hub_key_mismatch": ("hub_key",
                         "中心的签名密钥({hub})与本机信任的({pinned})不同,中心指令将被拒绝;请重新登记本机",
                         "The hub signs with key {hub}, this device trusts {pinned}: hub commands "
                         "are refused; enrol the device again"),
}


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


class FreezeStatus:
    def __init__(self, settings: Settings, sync: SyncWorker | None, printing: PrintService,
                 bus: EventBus, *, check_s: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.sync = sync
        self.printing = printing
        self.bus = bus
        self.check_s = check_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: tuple[str, str | None] | None = None
        self._alarmed: set[str] = set()  # problems already alarmed (also looked up in alarms)
        self._clock = clock
        self._started = clock()
        self._silence_said = False  # "hub silent" logged for the current silence
        printing.print_gate = self.held_priorities

    def _evaluate(self) -> tuple[str, str | None, dict[str, Any]]:
        """(status, reason, details): "local"; "known"; "unknown" with why."""
        if self.sync is None:
            return "local", None, {}
        if not self.sync.online:
            return "unknown", "hub_silent", {}
        problem = self.sync.trust_problem()
        if problem is not None:
            return "unknown", problem[0], problem[1]
        return "known", None, {}

    @property
    def status(self) -> str:
        return self._evaluate()[0]

    def held_priorities(self) -> tuple[str, ...]:
        """The priorities whose labels wait now (empty: print everything)."""
        if self.status != "unknown":
            return ()
        return HELD[self.settings.offline_print]

    def state(self) -> dict[str, Any]:
        status, reason, details = self._evaluate()
        sync = self.sync.status() if self.sync is not None else None
        message = None
        if reason is not None:
            zh, en = REASONS[reason]
            values = _Blank(details)
            message = {"zh": zh.format_map(values), "en": en.format_map(values)}
        return {
            "freeze_status": status,
            "reason": reason,  # hub_silent | resync | no_hub_key | hub_key_mismatch | None
            "message": message,
            "resync": details if reason == "resync" else None,
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
        """Publish the state if it changed; True when it did. Raise the supervisor's alarm for
        a hub problem not alarmed yet."""
        status, reason, details = self._evaluate()
        self._hub_alarms(reason, details)
        self._log_silence(reason)
        if (status, reason) == self._last:
            return False
        before, self._last = self._last, (status, reason)
        state = self.state()
        self.bus.publish("sync", state)
        if status == "unknown" and reason != "hub_silent":
            log.warning("freeze status unknown: %s", state["message"]["en"])
        elif before is not None and before[0] == "unknown" and self._silence_said:
            log.info("freeze status known again, held labels may print")
        elif before is not None and before[0] == "unknown":
            log.info("hub reached: freeze status known")
        if status != "unknown":
            self._silence_said = False
        self.printing.wake()  # the gate changed: let the worker look at the queue again
        return True

    def _log_silence(self, reason: str | None) -> None:
        """Warn once per silence; at start, only once the hub had offline_after_s to answer (a
        device that just started has heard nothing yet: that is no silence worth a warning)."""
        if reason != "hub_silent" or self._silence_said:
            return
        if (not getattr(self.sync, "contacted", True)
                and self._clock() - self._started <= self.settings.offline_after_s):
            return
        self._silence_said = True
        log.warning("hub silent for more than %.0f s: freeze status unknown, offline_print = %s",
                    self.settings.offline_after_s, self.settings.offline_print)

    def _hub_alarms(self, reason: str | None, details: dict[str, Any]) -> None:
        from scanedge.sync.hubstate import ALARMING, last_resync

        if self.sync is None:
            return
        wanted = []
        resync = last_resync(self.sync.store.read())  # also one a `sync --once` finished
        if resync is not None and resync.get("reason") in ALARMING:
            wanted.append(("resync", f"resync:{resync.get('since')}", resync))
        if reason == "hub_key_mismatch":
            wanted.append((reason, f"key:{details.get('pinned')}:{details.get('hub')}", details))
        alarms = getattr(self.printing, "alarms", None)
        for kind, key, values in wanted:
            if key in self._alarmed or alarms is None:
                continue
            self._alarmed.add(key)
            if alarms.store.read().execute(
                    "SELECT 1 FROM alarms WHERE json_extract(details, '$.problem_key') = ?",
                    [key]).fetchone():
                continue  # raised before a restart
            type_, zh, en = HUB_ALARMS[kind]
            fill = _Blank({k: v for k, v in values.items() if isinstance(v, str | int)})
            alarms.raise_alarm(type_, {"zh": zh.format_map(fill), "en": en.format_map(fill)},
                               level="warning", problem_key=key,
                               **{k: v for k, v in values.items() if k != "problem_key"})

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
