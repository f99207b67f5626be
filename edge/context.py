"""Everything a running edge device holds: settings, the store and the services over it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from scanedge.edge.accounts import Accounts
from scanedge.edge.alarms import AlarmCenter
from scanedge.edge.bus import EventBus
from scanedge.edge.config import Settings
from scanedge.edge.metrics import EdgeMetrics
from scanedge.edge.scanning import ScanService
from scanedge.edge.store import Store
from scanedge.printers.service import PrintService

if TYPE_CHECKING:
    from scanedge.edge.dock import DockService
    from scanedge.edge.evidence import EvidenceService, EvidenceUploader
    from scanedge.edge.freezes.effects import AckSender, FreezeEffects
    from scanedge.edge.freezes.status import FreezeStatus
    from scanedge.edge.gpio import GpioAlarm
    from scanedge.edge.notes import NoteService
    from scanedge.edge.notify import Notifier
    from scanedge.edge.picking import PickService
    from scanedge.edge.returns import ReturnsService
    from scanedge.edge.weighing import Weigher
    from scanedge.sync.worker import SyncWorker


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
    weigher: Weigher | None = None  # the bench's scale, when one is configured (docs/scale.md)
    notifier: Notifier | None = None  # P0 orders: supervisor alert and notify_url webhook
    picking: PickService | None = None  # waves and pick steps (docs/picking.md)
    notes: NoteService | None = None  # notes from the hub, read at the bench
    returns: ReturnsService | None = None  # RMAs received at the bench (docs/returns.md)
    dock: DockService | None = None  # handover batches loaded onto trucks (docs/dock.md)
    evidence: EvidenceService | None = None  # pack videos and photos (docs/evidence.md)
    uploads: EvidenceUploader | None = None  # ... sent to the hub in the background

    @classmethod
    def open(cls, settings: Settings) -> EdgeContext:
        """The device's composition root: every service is built here with its collaborators,
        and what one does after another's commit is wired here, as bus topics (edge/bus.py):
        ``scan`` (metrics, the sync worker's push), ``alarm`` (the printer's and the GPIO's
        buzzers), ``hub_applied`` (freeze effects, P0 notifications), ``acks_due``."""
        from scanedge.edge import ewaybills
        from scanedge.edge.dock import DockService
        from scanedge.edge.evidence import EvidenceService
        from scanedge.edge.freezes.effects import FreezeEffects
        from scanedge.edge.gpio import GpioAlarm
        from scanedge.edge.notes import NoteService
        from scanedge.edge.picking import PickService
        from scanedge.edge.returns import ReturnsService
        from scanedge.edge.store import parcels
        from scanedge.edge.weighing import Weigher

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(settings.edge_db_path, min_free_mb=settings.min_free_mb)
        store.ensure_schema(ewaybills.COMPONENT, ewaybills.MIGRATIONS)  # functions, no service
        store.ensure_schema(parcels.COMPONENT, parcels.MIGRATIONS)  # split orders: functions too
        bus = EventBus()
        alarms = AlarmCenter(store, settings.device_id, bus)
        picking = PickService(store, settings.device_id, settings.data_dir / "layout.toml",
                              alarms=alarms, bus=bus)
        scans = ScanService(store, settings, bus=bus, alarms=alarms, picking=picking)
        metrics = EdgeMetrics(store)
        bus.on("scan", metrics.on_scan)
        # started at the end: the offline policy's gate must be in place before the first job
        weigher = Weigher.from_settings(settings)  # started with the print worker, below
        printing = PrintService(store, settings, bus=bus, alarms=alarms, start=False,
                                weigher=weigher)
        # Noise makers hear every alarm after its commit: the printer's buzzer (per model, sent
        # between labels by the print worker) and the bench's GPIO buzzer + LED.
        bus.on("alarm", lambda alarm: alarm.get("level") == "alarm" and printing.buzz())
        notes = NoteService(store, bus, settings.device_id)
        freezes = FreezeEffects(store, settings, printing, alarms, bus, notes=notes,
                                picking=picking)
        ctx = cls(settings=settings, store=store, scans=scans, metrics=metrics, printing=printing,
                  bus=bus, alarms=alarms,
                  accounts=Accounts(store, settings.device_id, session_hours=settings.session_hours),
                  freezes=freezes, picking=picking, notes=notes, weigher=weigher,
                  gpio=GpioAlarm.from_settings(settings, alarms, bus),
                  returns=ReturnsService(settings, store, alarms=alarms, printing=printing),
                  dock=DockService(settings, store, alarms=alarms, printing=printing),
                  evidence=EvidenceService(settings, store, bus))
        assert ctx.returns is not None
        bus.on("hub_applied", ctx.returns.on_applied)  # an RMA cancelled while on the bench
        picking.start_timer()
        if settings.hub_url:
            ctx._connect_hub()
        ctx._start_freeze_status()
        if weigher is not None:
            weigher.start()
        printing.start()
        freezes.run_pending()  # follow-ups of freezes a crash interrupted
        ctx.returns.on_applied()  # and alarms of RMAs cancelled while on a bench
        return ctx

    def _connect_hub(self) -> None:
        from scanedge.edge.evidence import EvidenceUploader
        from scanedge.edge.freezes.effects import AckSender
        from scanedge.edge.notify import Notifier
        from scanedge.sync.pinning import pin_configured_key
        from scanedge.sync.worker import SyncWorker

        settings, store, bus = self.settings, self.store, self.bus
        pin_configured_key(store, settings.device_id, settings.hub_public_key)
        self.sync = sync = SyncWorker(store, settings, bus=bus,
                                      offline_after_s=settings.offline_after_s)
        bus.on("scan", sync.notify_new_event)
        self.metrics.watch_sync(sync)
        assert self.freezes is not None
        bus.on("hub_applied", self.freezes.on_applied)
        self.notifier = notifier = Notifier(store, bus, url=settings.notify_url,
                                            device_id=settings.device_id,
                                            station=settings.station).start()
        bus.on("hub_applied", lambda applied: notifier.p0_orders(
            [*applied.orders, *(e.get("order_id") for e in applied.expedites)]))
        self.acks = AckSender(store, sync.client, bus=bus).start()
        if self.evidence is not None:  # pack evidence to the hub, throttled (docs/evidence.md)
            self.uploads = EvidenceUploader(self.evidence, sync.client).start()
            bus.on("evidence_stored", self.uploads.wake)
            bus.on("evidence_stored", sync.notify_new_event)  # its pack_evidence event
        sync.start()

    def _start_freeze_status(self) -> None:
        from scanedge.edge.freezes.status import FreezeStatus, FreezeStatusCollector

        self.freeze_status = FreezeStatus(self.settings, self.sync, self.printing, self.bus).start()
        self.metrics.registry.register(FreezeStatusCollector(self.freeze_status))

    def close(self) -> None:
        if self.picking is not None:
            self.picking.stop()
        if self.freeze_status is not None:
            self.freeze_status.stop()
        if self.acks is not None:
            self.acks.stop()
        if self.uploads is not None:
            self.uploads.stop()
        if self.sync is not None:
            self.sync.stop()
        if self.gpio is not None:
            self.gpio.close()
        if self.notifier is not None:
            self.notifier.stop()
        if self.weigher is not None:
            self.weigher.stop()
        self.printing.stop()
        self.store.close()
