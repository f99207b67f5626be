"""What the device does once a hub freeze is committed: stop the labels, alarm, tell the hub.

Runs on the bus signal ``hub_applied`` (after the commit of the hub's changes) and once at start
(a follow-up whose effects a crash interrupted is found in ``freeze_followups`` and run then):

1. cancel the order's queued print jobs (a job already sending is flagged by the print service);
2. if the order is open at a station of this device, was scanned here in the last hour, or had a
   label pending, raise an alarm (type ``freeze``) per such station through the AlarmCenter: the
   pages (bus ``alarm``), the printer buzzer and the GPIO buzzer/LED hear it; it stays until a
   person acknowledges it;
3. acknowledge to the hub at once (:class:`AckSender`, ``POST /api/v1/sync/acks``), ahead of the
   event backlog: the hub lists freezes a device did not acknowledge within 3 s.

A rejected command (bad signature, replay) raises one ``command_rejected`` warning for the
supervisor (not one per command: a flood must not bury the pages).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlite_utils

from scanedge.edge.domain.messages import command_rejected_message, freeze_message, fuse_message
from scanedge.edge.freezes.interceptions import record_interception
from scanedge.edge.store.orders import load_freeze
from scanedge.sync import command_log
from scanedge.sync.apply import Applied

if TYPE_CHECKING:
    from scanedge.edge.alarms import Alarm, AlarmCenter
    from scanedge.edge.bus import EventBus
    from scanedge.edge.config import Settings
    from scanedge.edge.notes import NoteService
    from scanedge.edge.picking import PickService
    from scanedge.edge.store import Store
    from scanedge.printers.service import PrintService
    from scanedge.sync.client import HubClient

log = logging.getLogger(__name__)
RECENT_SCAN = timedelta(hours=1)


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stations_working_on(db: sqlite_utils.Database, order_id: str,
                        now: datetime | None = None) -> list[str]:
    """Stations where the order is open now, or (if none) where it was scanned in the last hour."""
    open_at = [r[0] for r in db.execute(
        "SELECT station FROM stations WHERE order_id = ? ORDER BY station", [order_id])]
    if open_at:
        return open_at
    since = _iso((now or datetime.now(UTC)) - RECENT_SCAN)
    row = db.execute(
        "SELECT json_extract(payload, '$.station') FROM events WHERE type = 'scan'"
        " AND order_id = ? AND device_time >= ? ORDER BY seq DESC LIMIT 1",
        [order_id, since]).fetchone()
    return [row[0]] if row and row[0] else []


class FreezeEffects:
    def __init__(self, store: Store, settings: Settings, printing: PrintService,
                 alarms: AlarmCenter, bus: EventBus, *, notes: NoteService | None = None,
                 picking: PickService | None = None) -> None:
        self.store = store
        self.notes = notes  # note commands' follow-ups (edge/notes.py)
        self.picking = picking  # freezes stop pickers too (docs/picking.md, "Freeze")
        self.settings = settings
        self.printing = printing
        self.alarms = alarms
        self.bus = bus
        self._lock = threading.Lock()  # stream and poll threads may both deliver changes
        command_log.ensure_schema(store)

    def on_applied(self, applied: Applied) -> None:
        self.run_pending()
        if applied.rejected:
            self._rejected_alarm(applied.rejected)
        for fuse in applied.fuses:
            self._fuse_alarm(fuse)
        if applied.freezes or applied.unfreezes or applied.expedites:
            self.bus.publish("freeze", {
                "frozen": [{"order_id": f.get("order_id"), "reason": f.get("reason"),
                            "issued_at": f.get("issued_at")} for f in applied.freezes],
                "lifted": [u.get("order_id") for u in applied.unfreezes],
                "expedited": [e.get("order_id") for e in applied.expedites]})
        self.bus.signal("acks_due", None)  # the AckSender tells the hub at once

    def run_pending(self) -> int:
        """Run every follow-up not done yet (also at start, after a crash); returns how many."""
        with self._lock:
            pending = command_log.pending_effects(self.store.read())
            for followup in pending:
                try:
                    if followup.kind == "note":
                        if self.notes is not None:
                            self.notes.follow_up(followup)
                        continue
                    self._follow_up(followup)
                except Exception:  # one order's trouble must not stop the others' alarms
                    log.exception("freeze follow-up of %s failed", followup.order_id)
            return len(pending)

    def _follow_up(self, f: command_log.Followup) -> None:
        db = self.store.read()
        current = load_freeze(db, f.order_id)
        if current is None or current.version != f.version:
            # lifted or replaced before we got here: the newer command has its own follow-up
            self.store.write(lambda w: command_log.mark_effects(w, f.command_id,
                                                                {"superseded": True}),
                             essential=True)
            return
        jobs = self.printing.cancel_order_jobs(f.order_id, reason=f"freeze:{f.reason}")
        stations = stations_working_on(db, f.order_id)
        if not stations and (jobs["cancelled"] or jobs["sending"]):
            stations = [self.settings.station]  # a label was on its way at this bench
        message = freeze_message(f.order_id, f.reason)

        def write(w: sqlite_utils.Database) -> list[Alarm]:
            raised = [self.alarms.insert(
                w, "freeze", message, order_id=f.order_id, station=station,
                reason=f.reason, issued_at=f.issued_at, command_id=f.command_id,
                version=f.version, jobs_cancelled=jobs["cancelled"],
                jobs_sending=jobs["sending"]) for station in stations]
            if self.picking is not None:  # stop the picker (docs/picking.md, "Freeze")
                raised += self.picking.on_freeze(w, f.order_id, f.reason, f.issued_at, message)
            # a label the freeze took out of the queue is a save before print: on the record
            # like every other refused action (the report counted none of these before)
            for job_id in jobs["cancelled"]:
                record_interception(w, self.settings.device_id, current, action="print",
                                    station=self.settings.station, operator=None,
                                    job_id=job_id, what="queued_label_cancelled")
            command_log.mark_effects(w, f.command_id, {
                "jobs_cancelled": len(jobs["cancelled"]), "jobs_sending": len(jobs["sending"]),
                "alarms": [a.alarm_id for a in raised], "stations": stations})
            return raised

        for alarm in self.store.write(write, essential=True):
            self.alarms.announce(alarm)
        log.warning("order %s frozen (%s): %d labels cancelled, %d sending, alarm at %s",
                    f.order_id, f.reason, len(jobs["cancelled"]), len(jobs["sending"]),
                    ", ".join(stations) or "no station")

    def _fuse_alarm(self, fuse: dict[str, Any]) -> None:
        """The hub's countdown for a command ran out before every device applied it (熔断): a
        warning for the supervisor (it does not hold any station's scans)."""
        what = fuse.get("reason") if fuse.get("kind") == "freeze" else fuse.get("kind")
        message = fuse_message(str(fuse.get("order_id")), str(what),
                               float(fuse.get("countdown_s") or 0),
                               [str(d) for d in fuse.get("not_in_time") or []])
        self.alarms.raise_alarm(
            "fuse_tripped", message, level="warning", order_id=fuse.get("order_id"),
            command_id=fuse.get("command_id"), command=what,
            not_in_time=fuse.get("not_in_time"), tripped_at=fuse.get("tripped_at"))

    def _rejected_alarm(self, rejected: list[dict[str, Any]]) -> None:
        if any(a.type == "command_rejected" for a in self.alarms.active()):
            return  # one waiting warning is enough; every rejection is an outbox event
        first = rejected[0]
        self.alarms.raise_alarm(
            "command_rejected",
            command_rejected_message(str(first["kind"]), str(first["order_id"]), first["problem"]),
            level="warning", order_id=first.get("order_id"), rejected=len(rejected),
            problem=first["problem"], change_seq=first["change_seq"])


class AckSender:
    """Sends freeze acknowledgements to the hub as soon as a follow-up is done, and retries."""

    def __init__(self, store: Store, client: HubClient, *, bus: EventBus | None = None,
                 retry_s: float = 1.0) -> None:
        self.store = store
        if bus is not None:  # follow-ups done: bus signal "acks_due"
            bus.on("acks_due", lambda _: self.wake())
        self.client = client
        self.retry_s = retry_s
        self.sent = 0
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="freeze-acks", daemon=True)

    def start(self) -> AckSender:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(5)

    def send_once(self) -> int:
        from scanedge.sync.client import HubRefused, HubUnavailable

        pending = command_log.pending_acks(self.store.read())
        if not pending:
            return 0
        acks = [{"command_id": f.command_id, "order_id": f.order_id, "applied_at": f.applied_at,
                 "effects_at": f.effects_at, "result": f.result} for f in pending]
        try:
            # HubClient's generic call: acks are not outbox events, they must not queue behind them
            self.client.call("POST", "/api/v1/sync/acks", {"acks": acks})
        except (HubUnavailable, HubRefused) as e:
            self.last_error = str(e)
            raise
        ids = [f.command_id for f in pending]
        self.store.write(lambda db: command_log.mark_acked(db, ids), essential=True)
        self.sent += len(ids)
        return len(ids)

    def _run(self) -> None:
        from scanedge.sync.client import HubRefused, HubUnavailable

        failures = 0
        while not self._stop.is_set():
            # idle: a look every 5 s (wake() comes at once); failing: 1, 2, 4 ... 10 s
            self._wake.wait(5.0 if failures == 0 else min(10.0, self.retry_s * 2 ** (failures - 1)))
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                while self.send_once():
                    pass
                failures = 0
            except (HubUnavailable, HubRefused):
                failures += 1
            except Exception:
                log.exception("freeze acknowledgement failed")
                failures += 1
