"""The print service: queue API for the web layer, and the worker thread that drives the printer.

One worker, one printer. For each job it connects, polls DLE EOT 1/2/4, claims the job (the
freeze check), sends the bytes in chunks, polls again, and records the outcome. A printer fault
(paper out, cover open, offline, no answer) holds the queue and raises an alarm until a poll
finds the printer ready again; jobs wait, none is lost, none is sent twice without a person
saying so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlite_utils

from scanedge.edge.bus import EventBus
from scanedge.edge.config import ConfigError, Settings
from scanedge.edge.domain.evidence import with_evidence
from scanedge.edge.domain.messages import freeze_message
from scanedge.edge.domain.print_gate import GateVerdict
from scanedge.edge.freezes.interceptions import record_interception
from scanedge.edge.store import DiskFull, Store, bench, parcels, weighings
from scanedge.edge.store.evidence import policy_problems
from scanedge.edge.store.orders import load_freeze, load_order, load_pack_state
from scanedge.edge.store.outbox import append_event
from scanedge.printers import queue as q
from scanedge.printers import status as st
from scanedge.printers.ewaybill_print import EWAYBILL, render_ewaybill_job
from scanedge.printers.models import ModelError, PrinterModel, get_model
from scanedge.printers.transports import PrintPayload, Transport, TransportError, make_transport

if TYPE_CHECKING:
    from scanedge.edge.alarms import Alarm, AlarmCenter
    from scanedge.edge.domain.orders import Order
    from scanedge.edge.domain.weighing import WeightCheck
    from scanedge.edge.weighing import Weigher

log = logging.getLogger(__name__)
MAX_COPIES = 20
BUZZ_TIMES, BUZZ_DURATION = 5, 3  # ESC B n t: five beeps; a frozen order must be heard
FAULT_MESSAGES = {
    "paper_out": "打印机缺纸", "cover_open": "打印机盖未关", "offline": "打印机离线",
    "error": "打印机故障", "no_answer": "打印机无响应", "unreachable": "连不上打印机",
}


@dataclass
class PrinterState:
    """What the worker last saw of the printer (served by GET /printer)."""

    status: st.PrinterStatus | None = None
    checked_at: str | None = None
    hold: str | None = None  # the fault holding the queue
    hold_since: str | None = None
    warning: str | None = None
    sending_job: str | None = None
    sending_bytes: int = 0
    printed: int = 0
    last_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class PrintService:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        bus: EventBus | None = None,
        alarms: AlarmCenter | None = None,
        transport: Transport | None = None,
        start: bool = True,
        poll_interval: float = 2.0,
        retry_base: float = 1.0,
        retry_max: float = 30.0,
        status_timeout: float = 1.0,
        connect_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        weigher: Weigher | None = None,
    ) -> None:
        self.store = store
        # the bench's scale (docs/scale.md): a label request weighs the parcel, the gate checks it
        self.weigher = weigher
        self.settings = settings
        try:
            self.model: PrinterModel = get_model(settings.printer_model)
        except ModelError as e:
            raise ConfigError(f"printer_model = {settings.printer_model!r}: {e}") from None
        self.paper = settings.paper or self.model.paper
        self.template_name = settings.label_template or f"standard_{self.paper}"
        try:
            self.transport = transport or make_transport(
                settings.printer, timeout=connect_timeout, status_timeout=status_timeout,
                status=self.model.status,
            )
        except ValueError as e:
            raise ConfigError(str(e)) from None
        self.poll_interval = poll_interval
        self.retry_base = retry_base
        self.retry_max = retry_max
        self._clock = clock
        # after each commit: topics "job" (a job's state) and "printer_alarm" (paper out ...)
        self.bus = bus or EventBus()
        self.alarms = alarms  # a print refused for a freeze is an alarm that waits for a person
        # Set by EdgeContext (offline policy): the priorities to hold back now, or None.
        self.print_gate: Callable[[], Sequence[str] | None] | None = None
        self._buzz = threading.Event()
        self.state = PrinterState()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        store.ensure_schema(q.COMPONENT, q.MIGRATIONS)
        store.ensure_schema(bench.COMPONENT, bench.MIGRATIONS)
        store.ensure_schema(weighings.COMPONENT, weighings.MIGRATIONS)
        store.ensure_schema(parcels.COMPONENT, parcels.MIGRATIONS)  # a split order's labels
        # essential: a start-up write, it must not stop `scanedge serve` on a full disk
        self.store.write(lambda db: q.recover_after_crash(db, settings.device_id), essential=True)
        if start:
            self.start()

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="print-worker", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        self._wake.set()

    # --- API ------------------------------------------------------------------------------------

    def submit(self, order_id: str, *, copies: int = 1, idempotency_key: str | None = None,
               station: str | None = None, operator: str | None = None,
               override_reason: str | None = None) -> q.Job:
        """Queue an order's label. A frozen order is refused (logged); an order the print gate
        refuses (edge/domain/print_gate.py) too, unless ``override_reason`` (a supervisor's,
        checked by the caller) is given; a known idempotency key is a no-op."""
        _check_copies(copies)
        device = self.settings.device_id
        station = station or self.settings.station
        gated: list[GateVerdict] = []

        def write(db: sqlite_utils.Database) -> tuple[q.Job | None, str | None, Alarm | None]:
            if idempotency_key is not None:
                existing = db.execute("SELECT job_id FROM print_jobs WHERE idempotency_key = ?",
                                      [idempotency_key]).fetchone()
                if existing is not None:
                    order = load_order(db, order_id)
                    if order is not None:
                        return q.enqueue(db, device, order, copies=copies,
                                         idempotency_key=idempotency_key)[0], None, None
            order = load_order(db, order_id)
            if order is None:
                raise q.QueueError("not_found", f"order {order_id} is not on this device")
            reason = q.blocked_by_freeze(db, device, order_id, "print_request")
            if reason:
                self._alarm(db, "frozen_print", order_id=order_id, freeze_reason=reason)
                return None, reason, self._intercept(db, order_id, "print_request")
            if parcels.load_split(db, order_id) is not None:  # one label per box (docs/parcels.md)
                raise q.QueueError("order_split", f"order {order_id} is split into parcels: "
                                   "print each parcel's label")
            weight = self._weigh(db, order, station, operator)
            verdict = self.gate(db, order_id, station, weight)
            audit = {"problems": verdict.codes, "station": station, "operator": operator,
                     "policy": self.settings.print_policy,
                     **({"weight": weight.as_json()} if weight is not None else {})}
            if not verdict.allowed and override_reason is None:
                append_event(db, device, "print_refused", audit, order_id=order_id)
                gated.append(verdict)  # committed: the refusal is on the record
                return None, None, None
            if not verdict.allowed:
                append_event(db, device, "print_override", {**audit, "reason": override_reason},
                             order_id=order_id)
            elif verdict.problems:  # print_policy = warn
                append_event(db, device, "print_warned", audit, order_id=order_id)
            job = q.enqueue(db, device, order, copies=copies, idempotency_key=idempotency_key,
                            operator=operator)[0]
            return job, None, None

        job, frozen, alarm = self.store.write(write)
        self._announce(alarm)
        if gated:
            problems = gated[0].problems
            raise q.QueueError("not_ready", "；".join(p.zh for p in problems) + " / "
                               + "; ".join(p.en for p in problems),
                               problems=[p.as_json() for p in problems])
        return self._queued_or_frozen(job, order_id, frozen)

    def _weigh(self, db: sqlite_utils.Database, order: Order, station: str,
               operator: str | None) -> WeightCheck | None:
        """At a bench with a scale: the parcel weighed now, recorded (the label prints it) and,
        when the scale gave a weight, the event ``parcel_weighed``; None without a scale."""
        if self.weigher is None:
            return None
        weight = self.weigher.check(order)
        weighings.record(db, order.order_id, weight, station=station, operator=operator)
        if weight.measured_kg is not None:
            append_event(db, self.settings.device_id, "parcel_weighed",
                         {**weight.as_json(), "station": station, "operator": operator},
                         order_id=order.order_id)
        return weight

    def _queued_or_frozen(self, job: q.Job | None, order_id: str, frozen: str | None) -> q.Job:
        """After a submit's commit: the job announced and the worker woken, or the freeze that
        refused it raised (its alarm to the pages)."""
        if job is None:
            self._notify_alarm({"kind": "frozen_print", "order_id": order_id, "reason": frozen})
            raise q.QueueError("frozen", f"order {order_id} is frozen ({frozen}): not printed")
        self._notify(job)
        self.wake()
        return job

    def queued(self, job: q.Job) -> None:
        """A job another service queued in its own transaction (a returns sticker): after its
        commit, the pages hear of it and the worker wakes."""
        self._notify(job)
        self.wake()

    def submit_payload(self, order_id: str, *, kind: str, payload: dict[str, Any],
                       idempotency_key: str | None = None, operator: str | None = None,
                       copies: int = 1) -> q.Job:
        """Queue a job whose content travels with it (``kind``, ``payload``: a carrier label) for
        an order on this device. A frozen order is refused and intercepted as ``submit`` does,
        unless the kind ships nothing; a known idempotency key returns its job. The print gate
        is the caller's (it decided before the content was made)."""
        _check_copies(copies)
        device = self.settings.device_id

        def write(db: sqlite_utils.Database) -> tuple[q.Job | None, str | None, Alarm | None]:
            order = load_order(db, order_id)
            if order is None:
                raise q.QueueError("not_found", f"order {order_id} is not on this device")
            if idempotency_key is not None:
                known = db.execute("SELECT 1 FROM print_jobs WHERE idempotency_key = ?",
                                   [idempotency_key]).fetchone()
                if known is not None:
                    return q.enqueue_job(db, device, order_id, order.priority, kind=kind,
                                         payload=payload, idempotency_key=idempotency_key)[0], None, None
            reason = None
            if kind not in q.FREEZE_EXEMPT_KINDS:
                reason = q.blocked_by_freeze(db, device, order_id, "print_request")
            if reason:
                self._alarm(db, "frozen_print", order_id=order_id, freeze_reason=reason)
                return None, reason, self._intercept(db, order_id, "print_request")
            return q.enqueue_job(db, device, order_id, order.priority, kind=kind, payload=payload,
                                 copies=copies, idempotency_key=idempotency_key,
                                 operator=operator)[0], None, None

        job, frozen, alarm = self.store.write(write)
        self._announce(alarm)
        return self._queued_or_frozen(job, order_id, frozen)

    def get(self, job_id: str) -> q.Job | None:
        return q.get_job(self.store.read(), job_id)

    def recent(self, *, state: str | None = None, order_id: str | None = None,
               limit: int = 50) -> list[q.Job]:
        return q.recent_jobs(self.store.read(), state=state, order_id=order_id, limit=limit)

    def gate(self, db: sqlite_utils.Database, order_id: str, station: str,
             weight: WeightCheck | None = None) -> GateVerdict:
        """The print gate for ``order_id`` at ``station`` (docs/printing.md), with the parcel's
        ``weight`` check when it was weighed (docs/scale.md)."""
        state = load_pack_state(db, order_id)
        if state is None:
            raise q.QueueError("not_found", f"order {order_id} is not on this device")
        verdict = bench.gate(db, state, station, self.settings.print_policy, weight)
        # pack evidence (docs/evidence.md): no label before the packing's video or photo is stored
        return with_evidence(verdict, policy_problems(
            db, order_id, self.settings.evidence_policy, self.settings.pack_video_min_s))

    def reprint(self, job_id: str, *, operator: str, reason: str, copies: int = 1) -> q.Job:
        """A new job for the same order, marked "补打 #n", logged with operator and reason."""
        _check_copies(copies)
        device = self.settings.device_id

        def write(db: sqlite_utils.Database) -> tuple[q.Job | None, str, Alarm | None]:
            original = q.get_job(db, job_id)
            if original is None:
                raise q.QueueError("not_found", f"print job {job_id} does not exist")
            if original.state in ("queued", "sending"):
                raise q.QueueError("bad_state", f"print job {job_id} is still {original.state}")
            if original.kind not in q.FREEZE_EXEMPT_KINDS and original.kind != q.LABEL and \
                    q.blocked_by_freeze(db, device, original.order_id, "reprint"):
                return None, original.order_id, self._intercept(  # a carrier label ships
                    db, original.order_id, "reprint", operator=operator, job_id=job_id)
            if original.kind == "parcel":  # a split order's box: relabelled as a label is
                bench.relabelled(db, original.order_id)
            if original.kind != q.LABEL:  # its content travels with the job
                return q.enqueue_job(db, device, original.order_id, original.priority,
                                     kind=original.kind, payload=original.payload,
                                     copies=copies, reprint_of=original, operator=operator,
                                     reason=reason)[0], original.order_id, None
            order = load_order(db, original.order_id)
            if order is None:
                raise q.QueueError("not_found", f"order {original.order_id} is not on this device")
            if q.blocked_by_freeze(db, device, order.order_id, "reprint"):
                # refused, but committed: the interception and its alarm are the record
                return None, order.order_id, self._intercept(db, order.order_id, "reprint",
                                                             operator=operator, job_id=job_id)
            bench.relabelled(db, order.order_id)  # the void label's replacement is on its way
            return q.enqueue(db, device, order, copies=copies, reprint_of=original,
                             operator=operator, reason=reason)[0], order.order_id, None

        job, order_id, alarm = self.store.write(write)
        self._announce(alarm)
        if job is None:
            raise q.QueueError("frozen", f"order {order_id} is frozen: not printed")
        self._notify(job)
        self.wake()
        return job

    def confirm(self, job_id: str, *, outcome: str, operator: str) -> q.Job:
        job = self.store.write(lambda db: q.confirm(db, self.settings.device_id, job_id, outcome, operator))
        self._notify(job)
        self.wake()
        return job

    def cancel_order_jobs(self, order_id: str, reason: str = "freeze") -> dict[str, list[str]]:
        """Cancel an order's pending labels (one transaction; see queue.cancel_order_jobs)."""
        result = self.store.write(
            lambda db: q.cancel_order_jobs(db, self.settings.device_id, order_id, reason)
        )
        for job_id in result["cancelled"] + result["sending"]:
            job = self.get(job_id)
            if job is not None:
                self._notify(job)
        return result

    def status_view(self) -> dict[str, Any]:
        s = self.state
        return {
            "printer": self.transport.describe(),
            "model": self.model.name,
            "paper": self.paper,
            "template": self.template_name,
            "status": s.status.to_json() if s.status else None,
            "checked_at": s.checked_at,
            "hold": s.hold,
            "hold_since": s.hold_since,
            "warning": s.warning,
            "sending_job": s.sending_job,
            "sending_bytes": s.sending_bytes,
            "queue": q.depth(self.store.read()),
            "last_error": s.last_error,
        }

    # --- rendering -------------------------------------------------------------------------------

    def render(self, job: q.Job) -> PrintPayload:
        from scanedge.printers.encode import label_bytes
        from scanedge.printers.layout import load_template, render_label

        if job.kind == EWAYBILL:
            return render_ewaybill_job(self, job)
        if job.kind == "returns":  # a returns sticker (edge/returns.py)
            from scanedge.printers.returns_label import render_returns_job

            return render_returns_job(self, job)
        if job.kind == "parcel":  # one parcel's label of a split order (edge/parcels.py)
            from scanedge.printers.parcel_label import render_parcel_job

            return render_parcel_job(self, job)
        if job.kind == "manifest":  # the dock's handover manifest (edge/dock.py)
            from scanedge.printers.manifest_label import render_manifest_job

            return render_manifest_job(self, job)
        if job.kind != q.LABEL:
            raise q.QueueError("cannot_render", f"print job kind {job.kind!r} is not known here")
        order = load_order(self.store.read(), job.order_id)
        if order is None:
            raise q.QueueError("not_found", f"order {job.order_id} is not on this device")
        template = load_template(self.template_name)
        generation = bench.label_generation(self.store.read(), job.order_id)
        image, _ = render_label(order, template, station=self.settings.station,
                                printed_at=datetime.now(), reprint_no=job.reprint_no,
                                font_path=self.settings.label_font, generation=generation,
                                relabel=generation > 1,
                                weight_kg=weighings.latest_weight(self.store.read(), job.order_id))
        images = [image] * job.copies
        data = label_bytes(images, self.model, beep=order.priority == "P0")
        return PrintPayload(data=data, images=images, name=f"{job.job_id}-{_safe(order.order_id)}")

    # --- worker ---------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                waited = self._step()
            except DiskFull as e:  # no new label starts below min_free_mb; it waits, queued
                log.warning("print worker: %s", e)
                waited = self.poll_interval
            except Exception:  # the worker must survive anything; the job stays in the store
                log.exception("print worker step failed")
                waited = self.poll_interval
            if waited:
                self._wake.wait(waited)
                self._wake.clear()

    def _step(self) -> float:
        """Do one thing; return how long to sleep (0 = go on at once)."""
        if self._buzz.is_set():
            self._send_buzzer()
        if self.state.hold is not None:
            return 0.0 if self._poll_hold() else self.poll_interval
        now = self._clock()
        job = self._next_due(now)
        if job is None:
            if self.held_jobs():  # only held labels are due: the gate's change wakes us
                return self.poll_interval
            nxt = q.next_wakeup(self.store.read())
            return max(0.01, min(self.poll_interval, nxt - now)) if nxt else self.poll_interval
        self._process(job)
        return 0.0

    def held_priorities(self) -> list[str]:
        """The priorities whose labels wait now: the offline policy's, and every one but P0
        while a P0 label is queued or printing (``p0_blocks_others``)."""
        held = set(self.print_gate() or ()) if self.print_gate is not None else set()
        # a P0 the offline policy holds back must not stop the others too (that would make
        # hold_p0 hold everything): only a P0 that may print blocks the rest
        if (self.settings.p0_blocks_others and "P0" not in held
                and q.p0_pending(self.store.read())):
            held |= {"P1", "P2", "P3"}
        return sorted(held)

    def _next_due(self, now: float) -> q.Job | None:
        return q.next_due(self.store.read(), now, self.held_priorities())

    def held_jobs(self) -> int:
        """Queued jobs held back right now (offline policy, a P0 waiting)."""
        held = self.held_priorities()
        return q.count_queued(self.store.read(), held) if held else 0

    # --- freezes: the check right before the bytes go out, interceptions, the buzzer ------------

    def _claim(self, job: q.Job, size: int) -> q.Job | None:
        """Claim the job for sending; a freeze committed before this stops it (logged as an
        interception and alarmed, in the same transaction as the cancel)."""
        device = self.settings.device_id

        def write(db: sqlite_utils.Database) -> tuple[q.Job | None, Alarm | None]:
            before = q.get_job(db, job.job_id)
            claimed = q.start_sending(db, device, job.job_id, size)
            alarm = None
            if claimed is None and before is not None and before.state == "queued":
                alarm = self._intercept(db, job.order_id, "print_job", operator=before.operator,
                                        job_id=job.job_id)
            return claimed, alarm

        claimed, alarm = self.store.write(write)
        self._announce(alarm)
        return claimed

    def _intercept(self, db: sqlite_utils.Database, order_id: str, what: str, *,
                   operator: str | None = None, **details: Any) -> Alarm | None:
        """Log a refused print of a frozen order as an interception; write its alarm."""
        freeze = load_freeze(db, order_id)
        if freeze is None:
            return None
        station = self.settings.station
        record_interception(db, self.settings.device_id, freeze, action="print", station=station,
                            operator=operator, what=what, **details)
        if self.alarms is None:
            return None
        return self.alarms.insert(db, "frozen_print", freeze_message(order_id, freeze.reason),
                                  order_id=order_id, station=station, operator=operator,
                                  what=what, freeze_reason=freeze.reason, **details)

    def _announce(self, alarm: Alarm | None) -> None:
        """After the commit: the pages and the noise makers hear the alarm."""
        if alarm is not None and self.alarms is not None:
            self.alarms.announce(alarm)

    def buzz(self) -> bool:
        """Sound the printer's buzzer (per model) as soon as the worker is between jobs.
        Requests coalesce; False when the model or the transport has no buzzer."""
        if self.model.buzzer == "none" or self.transport.scheme in ("preview", ""):
            return False
        self._buzz.set()
        self.wake()
        return True

    def _send_buzzer(self) -> None:
        from scanedge.printers.encode import buzzer_command

        self._buzz.clear()
        data = buzzer_command(self.model, times=BUZZ_TIMES, duration=BUZZ_DURATION)
        t = self.transport
        try:
            t.open()
            t.send(PrintPayload(data=data, name="buzzer"))
        except TransportError as e:  # the other channels (pages, GPIO) still sound
            log.warning("printer buzzer: %s", e)
        finally:
            t.close()

    def _backoff(self, attempts: int) -> float:
        return self._clock() + min(self.retry_max, self.retry_base * 2 ** max(0, attempts - 1))

    def _process(self, job: q.Job) -> None:
        device = self.settings.device_id
        try:
            payload = self.render(job)
        except Exception as e:  # LabelError, FontError, a missing order: retrying cannot help
            error = str(e)
            log.warning("print job %s cannot be rendered: %s", job.job_id, error)
            self._notify(self.store.write(lambda db: q.fail(db, device, job.job_id, error),
                                          essential=True))
            return
        t = self.transport
        try:
            t.open()
        except TransportError as e:
            error = str(e)
            self._hold("unreachable", error)
            self.store.write(lambda db: q.defer(db, job.job_id, error, self._backoff(job.attempts + 1)),
                             essential=True)
            return
        try:
            before = self._status(t)
            if before.fault:
                self._hold(before.fault, f"before job {job.job_id}")
                self.store.write(lambda db: q.defer(db, job.job_id, before.fault or "",
                                                    self._backoff(job.attempts + 1)), essential=True)
                return
            claimed = self._claim(job, len(payload.data))
            if claimed is None:  # cancelled, frozen or taken meanwhile
                current = self.get(job.job_id)
                if current is not None:
                    self._notify(current)
                return
            self._notify(claimed)
            self.state.sending_job, self.state.sending_bytes = job.job_id, 0
            try:
                sent = t.send(payload, self._progress)
            except TransportError as e:
                self._after_send_error(claimed, e)
                return
            finally:
                self.state.sending_job = None
            try:
                after = self._status(t)
            except TransportError as e:
                after = st.NO_ANSWER
                self.state.last_error = str(e)
            if after.fault:
                # All bytes left us but the printer is not well: the label may be cut short.
                done = self.store.write(lambda db: q.needs_confirmation(
                    db, device, job.job_id, sent, f"printer {after.fault} after sending"),
                    essential=True)
                self._notify(done)
                self._hold(after.fault, f"after job {job.job_id}")
                return
            # essential: the label is out; not recording it would print it again after a restart
            done = self.store.write(lambda db: q.finish_printed(db, device, job.job_id, sent),
                                    essential=True)
            self.state.printed += 1
            self._notify(done)
            if done.cancel_requested:
                self._raise_alarm("printed_after_cancel", order_id=done.order_id, job_id=done.job_id)
        finally:
            t.close()

    def _after_send_error(self, job: q.Job, e: TransportError) -> None:
        device = self.settings.device_id
        if e.sent == 0:
            retry = self.store.write(
                lambda db: q.retry_later(db, job.job_id, str(e), self._backoff(job.attempts)),
                essential=True)
            self._notify(retry)
            self._hold("unreachable", str(e))
            return
        done = self.store.write(lambda db: q.needs_confirmation(db, device, job.job_id, e.sent, str(e)),
                                essential=True)
        self._notify(done)
        self._hold("unreachable", str(e))

    def _progress(self, sent: int) -> None:
        self.state.sending_bytes = sent

    def _status(self, t: Transport) -> st.PrinterStatus:
        status = t.status()
        self.state.status = status
        self.state.checked_at = _now()
        warning = status.warning
        if warning and self.state.warning != warning:
            self._raise_alarm(warning, level="warning")
        self.state.warning = warning
        return status

    def _poll_hold(self) -> bool:
        """Poll a held printer; True when it is ready again (the hold is released)."""
        t = self.transport
        try:
            t.open()
        except TransportError as e:
            self.state.last_error = str(e)
            return False
        try:
            status = self._status(t)
        except TransportError as e:
            self.state.last_error = str(e)
            return False
        finally:
            t.close()
        if status.fault:
            if status.fault != self.state.hold:
                self._hold(status.fault, "while held")
            return False
        fault = self.state.hold
        self.state.hold = self.state.hold_since = None

        def write(db: sqlite_utils.Database) -> None:
            q.release_backoff(db)
            append_event(db, self.settings.device_id, "printer_ready", {"after": fault})

        self.store.write(write, essential=True)
        self._notify_alarm({"kind": "printer_ready", "after": fault, "level": "info"})
        return True

    def _hold(self, fault: str, detail: str) -> None:
        if self.state.hold == fault:
            return
        self.state.hold, self.state.hold_since = fault, _now()
        self.state.last_error = detail
        log.warning("printer %s: %s (%s): queue held", self.transport.describe(), fault, detail)
        self._raise_alarm(fault, detail=detail)

    def _alarm(self, db: sqlite_utils.Database, kind: str, *, level: str = "alarm",
               order_id: str | None = None, **extra: Any) -> dict[str, Any]:
        payload = {"kind": kind, "level": level, "message": FAULT_MESSAGES.get(kind, kind),
                   "printer": self.transport.describe(), **extra}
        append_event(db, self.settings.device_id, "alarm" if level == "alarm" else "warning",
                     payload, order_id=order_id)
        return payload

    def _raise_alarm(self, kind: str, *, level: str = "alarm", order_id: str | None = None,
                     **extra: Any) -> None:
        payload = self.store.write(lambda db: self._alarm(db, kind, level=level, order_id=order_id,
                                                          **extra), essential=True)
        self._notify_alarm({**payload, "order_id": order_id})

    def _notify_alarm(self, payload: dict[str, Any]) -> None:
        self.bus.publish("printer_alarm", payload)

    def _notify(self, job: q.Job) -> None:
        self.bus.publish("job", {"type": "print_job", **job.to_json()})


def _check_copies(copies: int) -> None:
    if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= MAX_COPIES:
        raise q.QueueError("bad_request", f"copies: expected a whole number from 1 to {MAX_COPIES}")


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in text)


def _now() -> str:
    from scanedge.edge.store.db import utc_now

    return utc_now()
