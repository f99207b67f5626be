"""One writer thread with group commit.

Every scan must be on disk (``synchronous=FULL``) before it is answered. One fsync per scan caps
a Pi's SD card at a few hundred scans a second; so concurrent requests hand their work to one
thread, which runs whatever has queued up inside a single transaction (a savepoint each, so one
failing job rolls back alone) and commits once. Nobody is answered before that commit. It also
means there is exactly one writer, so SQLite never answers "database is locked".
"""

from __future__ import annotations

import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import sqlite_utils

from scanedge.edge.store.db import StoreError, connect

T = TypeVar("T")
log = logging.getLogger(__name__)


Done = Callable[[Any, BaseException | None], None]


class _Job:
    __slots__ = ("done", "error", "fn", "on_done", "result")

    def __init__(self, fn: Callable[[sqlite_utils.Database], Any], on_done: Done | None = None
                 ) -> None:
        self.fn = fn
        self.on_done = on_done
        self.done: threading.Lock | None = None
        if on_done is None:
            # held until the commit: a bare lock is the cheapest one-shot signal between two
            # threads (an Event is a Condition and a Lock in Python code, paid twice per scan)
            self.done = threading.Lock()
            self.done.acquire()
        self.result: Any = None
        self.error: BaseException | None = None

    def finish(self) -> None:
        if self.done is not None:
            self.done.release()
            return
        assert self.on_done is not None
        try:
            self.on_done(self.result, self.error)
        except Exception:  # a caller's callback must not stop the writer
            log.exception("a writer callback failed")


_STOP = object()
COMMIT_TIMEOUT_S = 30.0  # a job not committed by then is answered "store unavailable"


class Writer:
    def __init__(self, path: str | Path, *, max_batch: int = 256,
                 timeout_s: float = COMMIT_TIMEOUT_S) -> None:
        self._db = connect(path)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._max_batch = max_batch
        self._timeout_s = timeout_s
        self._thread = threading.Thread(target=self._loop, name="store-writer", daemon=True)
        self._closed = False
        self._thread.start()

    def run(self, fn: Callable[[sqlite_utils.Database], T]) -> T:
        """Run ``fn(db)`` in a committed transaction; return its result or raise its error."""
        if self._closed:
            raise StoreError("the store is closed")
        job = _Job(fn)
        self._queue.put(job)
        assert job.done is not None
        if not job.done.acquire(timeout=self._timeout_s):
            raise StoreError(f"the store did not commit within {self._timeout_s:.0f} s")
        if job.error is not None:
            raise job.error
        return job.result

    def submit(self, fn: Callable[[sqlite_utils.Database], Any], on_done: Done) -> None:
        """Queue ``fn(db)`` without waiting: ``on_done(result, error)`` is called on the writer
        thread after the commit (or the rollback). For an event loop, which must not block:
        ``on_done`` hands the result over (``call_soon_threadsafe``) and returns at once."""
        if self._closed:
            raise StoreError("the store is closed")
        self._queue.put(_Job(fn, on_done))

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join(timeout=self._timeout_s)
            self._db.close()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch: list[_Job] = [item]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            self._commit(batch)
            if stop:
                return

    def _commit(self, batch: list[_Job]) -> None:
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            for job in batch:
                db.execute("SAVEPOINT job")
                try:
                    job.result = job.fn(db)
                    db.execute("RELEASE job")
                except BaseException as e:  # the job's own failure: undo only its writes
                    job.error = e
                    db.execute("ROLLBACK TO job")
                    db.execute("RELEASE job")
            db.execute("COMMIT")
        except sqlite3.Error as e:
            log.error("commit of %d jobs failed: %s", len(batch), e)
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            for job in batch:
                if job.error is None:
                    job.error = StoreError(f"nothing was recorded: {e}")
        finally:
            for job in batch:
                job.finish()
