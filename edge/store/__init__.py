"""SQLite storage of the edge device (sqlite-utils over the standard sqlite3 module).

``Store`` is the handle the services use: ``write(fn)`` runs ``fn(db)`` in a committed
transaction on the single writer thread; ``read()`` gives this thread's read connection (WAL lets
readers run beside the writer).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import sqlite_utils

from scanedge.edge.store.db import DiskFull, Migration, StoreError, connect, migrate
from scanedge.edge.store.schema import EDGE_MIGRATIONS
from scanedge.edge.store.writer import Done, Writer

T = TypeVar("T")
__all__ = ["DiskFull", "Store", "StoreError"]


class Store:
    def __init__(self, path: str | Path, *, min_free_mb: float = 0.0) -> None:
        self.path = Path(path)
        self.min_free_bytes = int(min_free_mb * 1024 * 1024)
        self._free_checked = (0.0, 0)  # (monotonic time, free bytes): statvfs once a second
        self.ensure_schema("edge", EDGE_MIGRATIONS)
        self._writer = Writer(self.path)
        self._local = threading.local()
        self._readers: list[sqlite_utils.Database] = []
        self._lock = threading.Lock()

    def ensure_schema(self, component: str, steps: Sequence[Migration]) -> int:
        """Run a component's forward migrations (each area of the code owns its tables)."""
        db = connect(self.path)
        try:
            return migrate(db, component, steps)
        finally:
            db.close()

    def write(self, fn: Callable[[sqlite_utils.Database], T], *, essential: bool = False) -> T:
        """Run ``fn(db)`` in a committed transaction on the writer thread.

        Below ``min_free_mb`` of free disk, new work (scans, prints, captures) is refused with
        :class:`DiskFull`; ``essential`` writes (freezes, hub acknowledgements, applied changes)
        still go through: they are small, and refusing them would be worse than using the reserve.
        """
        self._check_free(essential)
        return self._writer.run(fn)

    def submit(self, fn: Callable[[sqlite_utils.Database], T], on_done: Done, *,
               essential: bool = False) -> None:
        """:meth:`write` without waiting, for an event loop: ``on_done(result, error)`` is called
        on the writer thread once the transaction committed (or rolled back); it must only hand
        the result over. Raises :class:`DiskFull` at once, like :meth:`write`."""
        self._check_free(essential)
        self._writer.submit(fn, on_done)

    def _check_free(self, essential: bool) -> None:
        if not essential and self.min_free_bytes:
            free = self.free_bytes()
            if free < self.min_free_bytes:
                raise DiskFull(
                    f"only {free // (1024 * 1024)} MB free on the disk of {self.path.parent} "
                    f"(min_free_mb = {self.min_free_bytes // (1024 * 1024)}): new work is refused "
                    f"until space is freed; freezes and sync still work")

    def free_bytes(self) -> int:
        checked_at, free = self._free_checked
        if time.monotonic() - checked_at > 1.0:
            free = shutil.disk_usage(self.path.parent).free
            self._free_checked = (time.monotonic(), free)
        return free

    def read(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = connect(self.path, readonly=True)
            self._local.db = db
            with self._lock:
                self._readers.append(db)
        return db

    def close(self) -> None:
        self._writer.close()
        with self._lock:
            for db in self._readers:
                db.close()
            self._readers.clear()
