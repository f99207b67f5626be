"""Photos kept on the device, content-addressed: waybill captures (edge/waybills.py), the
goods of a return (edge/returns.py), and pack videos and photos (edge/evidence.py).

- A photo is stored as ``<root>/<sha256[:2]>/<sha256>.<ext>``: the same photo sent twice is
  stored once (sent again, it is young again for the retention).
- Below ``min_free_mb`` (the store's) a new photo is refused with ``DiskFull`` before a byte is
  written; the file appears whole or not at all (written aside, synced, then renamed), and is
  on disk before the caller's row that names it commits.
- :meth:`PhotoStore.purge` removes photos older than the retention, then the oldest beyond the
  size limit; the caller forgets the paths in its own rows (its records stay).
- :func:`check_photo` refuses what is no single still image with the limits and the errors of
  every image the device takes (ocr/images.py: ``too_large``, ``too_many_pixels``,
  ``not_an_image``, ``truncated``, ``multi_frame`` ...), before it is stored.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Set
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scanedge.edge.store import Store

PURGE_EVERY_S = 3600.0
CHECK_SIDE = 64  # px: decoding this small still reads every byte (a cut-off file is found)


class PhotoStore:
    def __init__(self, root: Path, store: Store, *, retention_days: float,
                 max_mb: float) -> None:
        self.root = root
        self.store = store
        self.retention_days = retention_days
        self.max_mb = max_mb
        self._last_purge = 0.0
        self._purge_lock = threading.Lock()

    def put(self, photo: bytes) -> tuple[str, Path]:
        """Keep the photo; (its sha256, its path)."""
        sha = hashlib.sha256(photo).hexdigest()
        path = self.root / sha[:2] / f"{sha}{extension(photo)}"
        if not path.exists():
            if self.store.min_free_bytes and self.store.free_bytes() < (
                    self.store.min_free_bytes + len(photo)):
                from scanedge.edge.store import DiskFull

                raise DiskFull("not enough free disk for the photo (min_free_mb)")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + f".{os.getpid()}.{threading.get_ident()}.tmp")
            with tmp.open("wb") as f:
                f.write(photo)
                f.flush()
                os.fsync(f.fileno())  # on disk before a row names it (a pack video gates a label)
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        else:
            os.utime(path)  # sent again: young again for the retention
        return sha, path

    def purge_if_due(self, forget: Callable[[list[Path]], None]) -> None:
        """At most once an hour: :meth:`purge`, then ``forget(deleted paths)``."""
        if time.monotonic() - self._last_purge < PURGE_EVERY_S:
            return
        if self._purge_lock.acquire(blocking=False):
            try:
                self._last_purge = time.monotonic()
                gone, _ = self.purge()
                if gone:
                    forget(gone)
            finally:
                self._purge_lock.release()

    def purge(self, now: datetime | None = None,
              keep: Set[Path] = frozenset()) -> tuple[list[Path], int]:
        """Delete photos past the retention, then the oldest beyond the size limit; (the deleted
        paths, the bytes kept). Files in ``keep`` (pack videos not yet uploaded) stay."""
        now = now or datetime.now(UTC)
        cutoff = (now - timedelta(days=self.retention_days)).timestamp()
        limit = int(self.max_mb * 1024 * 1024)
        files = sorted(((p.stat().st_mtime, p.stat().st_size, p)
                        for p in self.root.glob("*/*") if p.is_file()), key=lambda t: t[0])
        total = sum(size for _, size, _ in files)
        gone: list[Path] = []
        for mtime, size, path in files:
            if (mtime < cutoff or total > limit) and path not in keep:
                path.unlink(missing_ok=True)
                total -= size
                gone.append(path)
        return gone, total


def _fsync_dir(folder: Path) -> None:
    """The rename itself on disk (a power cut after the commit keeps the file's name)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def extension(photo: bytes) -> str:
    if photo.startswith(b"\x1aE\xdf\xa3"):  # EBML: MediaRecorder's WebM (pack videos, edge/evidence.py)
        return ".webm"
    if photo[4:8] == b"ftyp":  # ISO media: Safari's MediaRecorder MP4
        return ".mp4"
    for magic, ext in ((b"\xff\xd8\xff", ".jpg"), (b"\x89PNG", ".png"), (b"RIFF", ".webp"),
                       (b"GIF8", ".gif"), (b"BM", ".bmp"), (b"II*\x00", ".tif"),
                       (b"MM\x00*", ".tif")):
        if photo.startswith(magic):
            return ext
    return ".img"


def check_photo(photo: bytes, settings: Any) -> None:
    """Refuse (``ImageError``) what is no single, whole still image within the ``max_image_*``
    limits. The header is checked before any pixel is decoded; then the image is decoded at a
    tiny size, within the device's image memory budget, to find a file that ends early."""
    from scanedge.ocr import memory
    from scanedge.ocr.images import limits_from_settings, open_image

    pending = open_image(photo, **limits_from_settings(settings))
    memory.configure(settings.image_memory_mb)
    with memory.image_job(pending.cost(grayscale=True, max_side=CHECK_SIDE), "photo"):
        pending.load(grayscale=True, max_side=CHECK_SIDE)
