"""SQLite storage of the edge device (sqlite-utils over the standard sqlite3 module).

``Store`` is the handle the services use: ``write(fn)`` runs ``fn(db)`` in a committed
transaction on the single writer thread; ``read()`` gives this thread's read connection (WAL lets
readers run beside the writer).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import sqlite_utils

from edge.store.db import Migration, StoreError, connect, migrate
from edge.store.schema import EDGE_MIGRATIONS
from edge.store.writer import Writer

T = TypeVar("T")
__all__ = ["Store", "StoreError"]


class Store:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
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

    def write(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        return self._writer.run(fn)

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
