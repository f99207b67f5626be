"""Pack evidence on the device (docs/evidence.md): the bench's video or photos of the packing,
kept content-addressed with a size cap and a retention, and uploaded to the hub in the
background.

- :meth:`EvidenceService.add` checks the clip (edge/domain/evidence.py), stores the file
  (edge/photos.py, the store the waybill and returns photos use) and records it for the order
  with one ``pack_evidence`` outbox event, in one transaction. The same clip sent again for the
  order is answered with its first record and writes nothing.
- :meth:`EvidenceService.problems` is what ``evidence_policy`` still asks of an order: the label
  (the print gate) and the e-waybill (edge/ewaybills.py) refuse until it is empty. Stored on the
  device is enough: the upload may finish later.
- :class:`EvidenceUploader` is a thread that sends stored blobs to the hub with
  sync/blob_upload.py, throttled (``evidence_upload_mbps``), resuming after a cut from what the
  hub holds; an uploaded blob is marked in every row naming it.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanedge.edge.domain.evidence import Evidence, check_clip, clip_kind
from scanedge.edge.domain.print_gate import GateProblem
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.photos import PURGE_EVERY_S, PhotoStore
from scanedge.edge.store import Store
from scanedge.edge.store import evidence as rows
from scanedge.edge.store.orders import load_order
from scanedge.edge.store.outbox import append_event

if TYPE_CHECKING:
    import sqlite_utils

    from scanedge.edge.bus import EventBus
    from scanedge.edge.config import Settings
    from scanedge.sync.client import HubClient

log = logging.getLogger(__name__)
RETRY_S = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0)  # after a failed upload; then every minute
IDLE_S = 60.0  # look for work this often without a wake-up (a failure left some behind)


class EvidenceService:
    def __init__(self, settings: Settings, store: Store, bus: EventBus) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus  # after a new clip's commit: signal "evidence_stored" (the uploader)
        self._last_purge = time.monotonic()
        store.ensure_schema(rows.COMPONENT, rows.MIGRATIONS)
        self.files = PhotoStore(settings.data_dir / "evidence", store,
                                retention_days=settings.evidence_retention_days,
                                max_mb=settings.evidence_max_mb)

    @property
    def max_clip_bytes(self) -> int:
        return int(self.settings.evidence_clip_max_mb * 1024 * 1024)

    def add(self, order_id: str, data: bytes, *, mime: str, duration_s: float | None,
            station: str, operator: str | None) -> tuple[dict[str, Any], bool]:
        """Keep a clip or photo of the order's packing: (its record, True when new)."""
        kind = clip_kind(mime)
        check_clip(kind, len(data), duration_s, min_video_s=self.settings.pack_video_min_s,
                   max_bytes=self.max_clip_bytes)
        if load_order(self.store.read(), order_id) is None:
            raise Refusal("unknown_order", f"order {order_id} is not on this device")
        if kind == "photo":
            from scanedge.edge.photos import check_photo

            check_photo(data, self.settings)  # a whole still image, within the image limits
        sha, path = self.files.put(data)
        item = Evidence(kind, sha, len(data), duration_s if kind == "video" else None)
        device = self.settings.device_id

        def write(db: sqlite_utils.Database) -> tuple[dict[str, Any], bool]:
            row, new = rows.record(db, order_id, item, mime=mime.split(";")[0].strip(),
                                   path=str(path), station=station, operator=operator)
            if new:
                append_event(db, device, "pack_evidence", {
                    k: row[k] for k in ("evidence_id", "kind", "sha256", "size", "duration_s",
                                        "mime", "station", "operator")}, order_id=order_id)
            return row, new

        row, new = self.store.write(write)
        if row["uploaded_at"] is None:
            self.bus.signal("evidence_stored", row["sha256"])
        if time.monotonic() - self._last_purge > PURGE_EVERY_S:
            self.purge()
        return public(row), new

    def problems(self, db: sqlite_utils.Database, order_id: str) -> tuple[GateProblem, ...]:
        """What ``evidence_policy`` still asks of the order before its label or waybill."""
        return rows.policy_problems(db, order_id, self.settings.evidence_policy,
                                    self.settings.pack_video_min_s)

    def status(self, order_id: str) -> dict[str, Any]:
        """``GET /api/v1/orders/{id}/evidence``: the policy, what the order has, what is missing."""
        db = self.store.read()
        if load_order(db, order_id) is None:
            raise Refusal("unknown_order", f"order {order_id} is not on this device")
        problems = self.problems(db, order_id)
        return {"order_id": order_id, "policy": self.settings.evidence_policy,
                "min_video_s": self.settings.pack_video_min_s,
                "max_clip_mb": self.settings.evidence_clip_max_mb,
                "items": [public(r) for r in rows.for_order(db, order_id)],
                "satisfied": not problems, "problems": [p.as_json() for p in problems]}

    def purge(self) -> list[Path]:
        """Files past the retention, then the oldest beyond the cap, never one still waiting
        for the hub (a device without a hub waits for nobody); their rows stay, without a file."""
        self._last_purge = time.monotonic()
        pending = rows.pending_paths(self.store.read()) if self.settings.hub_url else set()
        gone, _ = self.files.purge(keep={Path(p) for p in pending})
        if gone:
            self.store.write(lambda db: rows.forget_paths(db, [str(p) for p in gone]))
        return gone


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A record as the API shows it (no file path)."""
    out = {k: v for k, v in row.items() if k != "path"}
    out["on_device"] = row.get("path") is not None
    out["uploaded"] = row.get("uploaded_at") is not None
    return out


class EvidenceUploader:
    """Sends stored pack evidence to the hub, one blob at a time, throttled; see the module."""

    def __init__(self, service: EvidenceService, client: HubClient, *,
                 rate_mbps: float | None = None) -> None:
        self.service = service
        self.client = client
        self.rate_bps = (rate_mbps or service.settings.evidence_upload_mbps) * 1024 * 1024
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        self.last_error: str | None = None
        self.uploaded = 0  # blobs this process completed

    def start(self) -> EvidenceUploader:
        self._thread = threading.Thread(target=self._run, name="evidence-upload", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def wake(self, *_: Any) -> None:
        """Something is waiting for the hub (bus signal ``evidence_stored``): send it now."""
        self._wake.set()

    def status(self) -> dict[str, Any]:
        blobs, size = rows.upload_backlog(self.service.store.read())
        return {"pending_blobs": blobs, "pending_bytes": size, "failures": self.failures,
                "last_error": self.last_error, "rate_mbps": self.rate_bps / 1024 / 1024}

    def upload_pending(self) -> int:
        """Send every blob waiting now; the number completed. Raises what the hub or the
        network raise (the loop backs off)."""
        from scanedge.sync.blob_upload import Throttle, upload_blob
        from scanedge.sync.protocol import file_sha256

        done = 0
        throttle = Throttle(self.rate_bps, self._stop)
        while not self._stop.is_set():
            batch = rows.pending_uploads(self.service.store.read())
            if not batch:
                return done
            for blob in batch:
                path = Path(blob.path)
                if not path.is_file() or file_sha256(path) != blob.sha256:
                    log.error("pack evidence %s: the file is missing or damaged; not uploaded",
                              blob.sha256)
                    self.service.store.write(lambda db, p=blob.path: rows.forget_paths(db, [p]))
                    continue
                if upload_blob(self.client, path, blob.sha256, blob.size, throttle=throttle,
                               stop=self._stop) is None:
                    return done  # stopping
                self.service.store.write(lambda db, s=blob.sha256: rows.mark_uploaded(db, s))
                done += 1
                self.uploaded += 1
        return done

    def _run(self) -> None:
        from scanedge.sync.client import HubRefused, HubUnavailable

        delay = 0.0
        while not self._stop.is_set():
            self._wake.wait(delay or IDLE_S)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.upload_pending()
                self.service.purge()
                self.failures, self.last_error, delay = 0, None, 0.0
            except (HubUnavailable, HubRefused, OSError) as e:
                self.failures += 1
                self.last_error = str(e)
                delay = RETRY_S[min(self.failures, len(RETRY_S)) - 1]
                log.warning("pack evidence upload failed (%s); again in %.0f s", e, delay)
            except Exception as e:  # never let the thread die: the evidence must reach the hub
                self.failures += 1
                self.last_error = f"{e.__class__.__name__}: {e}"
                delay = RETRY_S[-1]
                log.exception("pack evidence upload failed unexpectedly")

