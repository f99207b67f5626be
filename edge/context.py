"""Everything a running edge device holds: settings, the store and the services over it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge.alarms import AlarmCenter
from edge.bus import EventBus
from edge.config import Settings
from edge.metrics import EdgeMetrics
from edge.scanning import ScanService
from edge.store import Store
from printers.service import PrintService

if TYPE_CHECKING:
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
    sync: SyncWorker | None = None  # None: offline device (no hub_url)

    @classmethod
    def open(cls, settings: Settings) -> EdgeContext:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(settings.edge_db_path, min_free_mb=settings.min_free_mb)
        bus = EventBus()
        alarms = AlarmCenter(store, settings.device_id, bus)
        scans = ScanService(store, settings, alarms=alarms)
        metrics = EdgeMetrics(store)
        scans.listeners.append(metrics.on_scan)
        printing = PrintService(store, settings)  # starts the print-queue worker thread
        scans.listeners.append(lambda r: bus.publish("scan", r))
        printing.listeners.append(lambda job: bus.publish("job", job))
        # printer faults are states that clear themselves (paper refilled), not acked alarms
        printing.alarm_listeners.append(lambda alarm: bus.publish("printer_alarm", alarm))
        ctx = cls(settings=settings, store=store, scans=scans, metrics=metrics, printing=printing,
                  bus=bus, alarms=alarms)
        if settings.hub_url:
            from sync.worker import SyncWorker

            ctx.sync = SyncWorker(store, settings)
            scans.listeners.append(ctx.sync.notify_new_event)
            metrics.watch_sync(ctx.sync)
            ctx.sync.start()
        return ctx

    def close(self) -> None:
        if self.sync is not None:
            self.sync.stop()
        self.printing.stop()
        self.store.close()
