"""Everything a running edge device holds: settings, the store and the services over it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge.accounts import Accounts
from edge.alarms import AlarmCenter
from edge.bus import EventBus
from edge.config import Settings
from edge.metrics import EdgeMetrics
from edge.scanning import ScanService
from edge.store import Store
from printers.service import PrintService

if TYPE_CHECKING:
    from edge.freezes.effects import AckSender, FreezeEffects
    from edge.freezes.status import FreezeStatus
    from edge.gpio import GpioAlarm
    from edge.notes import NoteService
    from edge.notify import Notifier
    from edge.picking import PickService
    from sync.worker import SyncWorker


@dataclass
class EdgeContext:
    settings: Settings
    store: Store
    scans: ScanService
    metrics: EdgeMetrics
    printing: PrintService
    bus: EventBus  # live messages for the pages (scans, jobs, alarms)
    alarms: AlarmCenter
    accounts: Accounts  # people, tokens and sessions (docs/security.md)
    sync: SyncWorker | None = None  # None: offline device (no hub_url)
    freezes: FreezeEffects | None = None  # what a hub freeze does here (docs/freeze.md)
    freeze_status: FreezeStatus | None = None  # offline policy: "freeze status unknown"
    acks: AckSender | None = None  # freeze acks to the hub, ahead of the event backlog
    gpio: GpioAlarm | None = None  # buzzer + red LED, when pins are configured
    notifier: Notifier | None = None  # P0 orders: supervisor alert and notify_url webhook
    picking: PickService | None = None  # waves and pick steps (docs/picking.md)
    notes: NoteService | None = None  # notes from the hub, read at the bench

    @classmethod
    def open(cls, settings: Settings) -> EdgeContext:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(settings.edge_db_path, min_free_mb=settings.min_free_mb)
        bus = EventBus()
        alarms = AlarmCenter(store, settings.device_id, bus)
        scans = ScanService(store, settings, alarms=alarms)
        metrics = EdgeMetrics(store)
        scans.listeners.append(metrics.on_scan)
        # started at the end: the offline policy's gate must be in place before the first job
        printing = PrintService(store, settings, start=False)
        printing.alarms = alarms  # a refused print is an alarm that waits for a person
        scans.listeners.append(lambda r: bus.publish("scan", r))
        printing.listeners.append(lambda job: bus.publish("job", job))
        # printer faults are states that clear themselves (paper refilled), not acked alarms
        printing.alarm_listeners.append(lambda alarm: bus.publish("printer_alarm", alarm))
        accounts = Accounts(store, settings.device_id, session_hours=settings.session_hours)
        ctx = cls(settings=settings, store=store, scans=scans, metrics=metrics, printing=printing,
                  bus=bus, alarms=alarms, accounts=accounts)
        ctx._wire_freezes()
        ctx._wire_picking()
        if settings.hub_url:
            from edge.freezes.effects import AckSender
            from sync.pinning import pin_configured_key
            from sync.worker import SyncWorker

            pin_configured_key(store, settings.device_id, settings.hub_public_key)
            ctx.sync = SyncWorker(store, settings, offline_after_s=settings.offline_after_s)
            scans.listeners.append(ctx.sync.notify_new_event)
            metrics.watch_sync(ctx.sync)
            assert ctx.freezes is not None
            ctx.sync.on_applied.append(ctx.freezes.on_applied)  # after the commit
            from edge.notify import Notifier

            ctx.notifier = Notifier(store, bus, url=settings.notify_url,
                                    device_id=settings.device_id, station=settings.station).start()
            notifier = ctx.notifier
            ctx.sync.on_applied.append(lambda applied: notifier.p0_orders(
                [*applied.orders, *(e.get("order_id") for e in applied.expedites)]))
            ctx.acks = ctx.freezes.acks = AckSender(store, ctx.sync.client).start()
            ctx.sync.start()
        ctx._start_freeze_status()
        printing.start()
        ctx.freezes.run_pending()  # follow-ups of freezes a crash interrupted
        return ctx

    def _wire_freezes(self) -> None:
        from edge.freezes.effects import FreezeEffects
        from edge.gpio import GpioAlarm
        from edge.notes import NoteService

        printing = self.printing
        # Noise makers hear every alarm after its commit: the printer's buzzer (per model, sent
        # between labels by the print worker) and the bench's GPIO buzzer + LED.
        self.alarms.listeners.append(lambda alarm: alarm.level == "alarm" and printing.buzz())
        self.gpio = GpioAlarm.from_settings(self.settings, self.alarms, self.bus)
        self.notes = NoteService(self.store, self.bus, self.settings.device_id)
        self.freezes = FreezeEffects(self.store, self.settings, printing, self.alarms, self.bus,
                                     notes=self.notes)

    def _wire_picking(self) -> None:
        from edge.picking import PickService

        self.picking = PickService(self.store, self.settings.device_id,
                                   self.settings.data_dir / "layout.toml", alarms=self.alarms,
                                   bus=self.bus)
        self.scans.picking = self.picking  # a tote scanned at a bench opens its order
        assert self.freezes is not None
        self.freezes.picking = self.picking
        self.picking.start_timer()

    def _start_freeze_status(self) -> None:
        from edge.freezes.status import FreezeStatus, FreezeStatusCollector

        self.freeze_status = FreezeStatus(self.settings, self.sync, self.printing, self.bus).start()
        self.metrics.registry.register(FreezeStatusCollector(self.freeze_status))

    def close(self) -> None:
        if self.picking is not None:
            self.picking.stop()
        if self.freeze_status is not None:
            self.freeze_status.stop()
        if self.acks is not None:
            self.acks.stop()
        if self.sync is not None:
            self.sync.stop()
        if self.gpio is not None:
            self.gpio.close()
        if self.notifier is not None:
            self.notifier.stop()
        self.printing.stop()
        self.store.close()
