"""Prometheus metrics of one edge device (a registry per app, so tests can run several)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from scanedge.edge.store import Store
from scanedge.edge.store.outbox import outbox_status


class _OutboxCollector(Collector):
    """Reads the outbox at scrape time: the depth is the store's, not a counter we could skew."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = outbox_status(self._store.read())
        depth = GaugeMetricFamily("scanedge_outbox_depth", "Events not yet acknowledged by the hub",
                                  labels=["state"])
        depth.add_metric(["pending"], status.pending)
        depth.add_metric(["parked"], status.parked)
        yield depth
        age = 0.0
        if status.oldest_pending_time:
            oldest = datetime.fromisoformat(status.oldest_pending_time.replace("Z", "+00:00"))
            age = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        yield GaugeMetricFamily("scanedge_outbox_oldest_pending_seconds",
                                "Age of the oldest event not yet acknowledged", value=age)


class _SyncCollector(Collector):
    def __init__(self, worker: Any) -> None:
        self._worker = worker

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = self._worker.status()
        yield GaugeMetricFamily("scanedge_hub_online", "1 when the hub answered within 15 s",
                                value=1.0 if status["online"] else 0.0)
        yield GaugeMetricFamily("scanedge_sync_stream_connected", "1 while the change stream is open",
                                value=1.0 if status["stream_connected"] else 0.0)
        yield GaugeMetricFamily("scanedge_sync_push_failures", "Consecutive failed pushes",
                                value=status["push_failures"])
        for key in ("last_push_ok", "last_pull_ok"):
            ts = status[key]
            age = (datetime.now(UTC) - datetime.fromisoformat(ts.replace("Z", "+00:00"))
                   ).total_seconds() if ts else -1.0
            yield GaugeMetricFamily(f"scanedge_sync_{key}_age_seconds",
                                    f"Seconds since the {key.replace('_', ' ')} (-1: never)",
                                    value=age)


class EdgeMetrics:
    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry()
        self.scans = Counter("scanedge_scans", "Scans answered, by verdict", ["verdict"],
                             registry=self.registry)
        self.alarms = Counter("scanedge_alarms", "Alarms raised, by verdict", ["verdict"],
                              registry=self.registry)
        self.registry.register(_OutboxCollector(store))

    def watch_sync(self, worker: Any) -> None:
        self.registry.register(_SyncCollector(worker))

    def on_scan(self, response: dict[str, Any]) -> None:
        if response.get("replayed"):
            return
        self.scans.labels(response["verdict"]).inc()
        if response.get("alarm"):
            self.alarms.labels(response["verdict"]).inc()
