"""Everything a running edge device holds: settings, the store and the services over it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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
    sync: SyncWorker | None = None  # None: offline device (no hub_url)

    @classmethod
    def open(cls, settings: Settings) -> EdgeContext:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(settings.edge_db_path, min_free_mb=settings.min_free_mb)
        scans = ScanService(store, settings)
        metrics = EdgeMetrics(store)
        scans.listeners.append(metrics.on_scan)
        printing = PrintService(store, settings)  # starts the print-queue worker thread
        bus = EventBus()
        scans.listeners.append(lambda r: bus.publish("scan", r))
        printing.listeners.append(lambda job: bus.publish("job", job))
        printing.alarm_listeners.append(lambda alarm: bus.publish("alarm", alarm))
        ctx = cls(settings=settings, store=store, scans=scans, metrics=metrics, printing=printing,
                  bus=bus)
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
