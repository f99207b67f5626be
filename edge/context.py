"""Everything a running edge device holds: settings, the store and the services over it."""

from __future__ import annotations

from dataclasses import dataclass

from edge.config import Settings
from edge.metrics import EdgeMetrics
from edge.scanning import ScanService
from edge.store import Store


@dataclass
class EdgeContext:
    settings: Settings
    store: Store
    scans: ScanService
    metrics: EdgeMetrics

    @classmethod
    def open(cls, settings: Settings) -> EdgeContext:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(settings.edge_db_path)
        scans = ScanService(store, settings)
        metrics = EdgeMetrics(store)
        scans.listeners.append(metrics.on_scan)
        return cls(settings=settings, store=store, scans=scans, metrics=metrics)

    def close(self) -> None:
        self.store.close()
