"""Device streams served from the event loop: one change-log reader, many cheap streams.

A hub process holds thousands of ``GET /api/v1/sync/stream`` connections. None of them holds a
thread or reads the database while it waits:
- :class:`ChangeFeed` is the process's one reader of the change log. When the log grows (a commit
  in this process, a PostgreSQL NOTIFY from another, or every ``reread_s`` as a safety net) it
  reads the new changes once, keeps the recent ones in memory and wakes the streams of the sites
  they concern.
- each stream (:class:`StreamHandle`) sends what the feed holds after its cursor for its site,
  then waits on a future the feed completes. A stream whose cursor is older than what the feed
  keeps catches up from the database first, by its site's index.
- :class:`DeviceStreams` keeps at most ``per_device`` streams per device: one more closes the
  oldest (a device that reconnects before its old socket timed out is the common case).

Heartbeats come from one ticker that wakes every stream, so there is no timer per stream.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from scanedge.sync.hub.storage import ALL_SITES, Change, Device

log = logging.getLogger(__name__)

RunBlocking = Callable[..., Awaitable[Any]]  # run a storage call off the loop
READ_BATCH = 1000
CATCH_UP_BATCH = 500


def sse(event: str, data: dict[str, Any], id_: int | None = None) -> bytes:
    head = f"id: {id_}\n" if id_ is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def change_bytes(change: Change) -> bytes:
    return sse("change", change.as_json(), change.seq)


class StreamHandle:
    """One open stream: whose it is, how far it got, how to wake it."""

    def __init__(self, device: Device, cursor: int) -> None:
        self.device = device
        self.cursor = cursor
        self.opened = time.monotonic()
        self.closed = False
        self.beat = -1  # the feed's heartbeat count last sent
        self._waiter: asyncio.Future[None] | None = None

    @property
    def site(self) -> str:
        return self.device.site

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def close(self) -> None:
        self.closed = True
        self.wake()

    async def wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class ChangeFeed:
    def __init__(self, run_blocking: RunBlocking, read: Callable[[int, int], list[Change]],
                 last_seq: Callable[[], int], *, keep: int = 5000, reread_s: float = 1.0,
                 heartbeat_s: float = 5.0) -> None:
        self._run = run_blocking
        self._read = read
        self._last_seq = last_seq
        self.keep = keep
        self.reread_s = reread_s
        self.heartbeat_s = heartbeat_s
        self.cursor = 0  # the last change read from the log
        self.base = 0  # every change after this is in the buffer
        self.beat = 0
        self._changes: list[Change] = []
        self._seqs: list[int] = []
        self._streams: dict[str, set[StreamHandle]] = {}  # by site
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.reads = 0  # log reads so far (a test counts them: one per wake-up, not per stream)

    # -- life cycle (in the loop) ------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.cursor = self.base = await self._run(self._last_seq)
        self._tasks = [self._loop.create_task(self._follow(), name="change-feed"),
                       self._loop.create_task(self._tick(), name="heartbeat")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        self.close_all()

    def close_all(self) -> None:
        for streams in self._streams.values():
            for handle in list(streams):
                handle.close()

    def wake(self) -> None:
        """The log grew (any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wakeup.set)

    # -- streams -------------------------------------------------------------------------------
    def add(self, handle: StreamHandle) -> None:
        self._streams.setdefault(handle.site, set()).add(handle)

    def remove(self, handle: StreamHandle) -> None:
        self._streams.get(handle.site, set()).discard(handle)

    @property
    def open_streams(self) -> int:
        return sum(len(s) for s in self._streams.values())

    def take(self, handle: StreamHandle) -> list[Change] | None:
        """The buffered changes for ``handle`` after its cursor (its cursor moves to the feed's);
        None when its cursor is older than the buffer: it must catch up from the database."""
        if handle.cursor < self.base:
            return None
        start = bisect.bisect_right(self._seqs, handle.cursor)
        out = [c for c in self._changes[start:] if c.site == handle.site or c.site == ALL_SITES]
        handle.cursor = max(handle.cursor, self.cursor)
        return out

    # -- the reader ---------------------------------------------------------------------------
    async def _follow(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.reread_s)
            self._wakeup.clear()
            try:
                await self._read_new()
            except Exception:  # the database is away: the streams wait, the next round retries
                log.warning("change feed: reading the change log failed", exc_info=True)
                await asyncio.sleep(self.reread_s)

    async def _read_new(self) -> None:
        while True:
            batch: list[Change] = await self._run(self._read, self.cursor, READ_BATCH)
            self.reads += 1
            if not batch:
                return
            self._changes.extend(batch)
            self._seqs.extend(c.seq for c in batch)
            self.cursor = batch[-1].seq
            if len(self._changes) > 2 * self.keep:  # trim in steps, not on every change
                drop = len(self._changes) - self.keep
                self.base = self._seqs[drop - 1]
                del self._changes[:drop]
                del self._seqs[:drop]
            sites = {c.site for c in batch}
            targets = self._streams.keys() if ALL_SITES in sites else sites
            for site in list(targets):
                for handle in self._streams.get(site, ()):
                    handle.wake()
            if len(batch) < READ_BATCH:
                return

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            self.beat += 1
            for streams in list(self._streams.values()):
                for handle in list(streams):
                    handle.wake()


class DeviceStreams:
    """At most ``per_device`` open streams per device: a new one closes the oldest."""

    def __init__(self, per_device: int) -> None:
        self.per_device = per_device
        self._open: dict[str, deque[StreamHandle]] = {}

    def open(self, handle: StreamHandle) -> list[StreamHandle]:
        """Register ``handle``; returns the streams it pushed out (already closed)."""
        mine = self._open.setdefault(handle.device.device_id, deque())
        mine.append(handle)
        closed = []
        while len(mine) > self.per_device:
            old = mine.popleft()
            old.close()
            closed.append(old)
        return closed

    def close(self, handle: StreamHandle) -> None:
        mine = self._open.get(handle.device.device_id)
        if mine is not None:
            if handle in mine:
                mine.remove(handle)
            if not mine:
                del self._open[handle.device.device_id]

    def count(self, device_id: str) -> int:
        return len(self._open.get(device_id, ()))


async def stream_events(handle: StreamHandle, feed: ChangeFeed, run_blocking: RunBlocking,
                        catch_up: Callable[[int, str, int], list[Change]],
                        hello: dict[str, Any] | None = None) -> AsyncIterator[bytes]:
    """The bytes of one stream until it is closed (or the client goes away: the task is
    cancelled). ``catch_up(cursor, site, upto)`` reads a site's changes from the database.
    ``hello``: the first message, ``{"hub": {key_id, database_id, last_seq, from_mark}}``; each
    heartbeat repeats who the hub is (docs/sync.md, "Whose cursor")."""
    yield b"retry: 1000\n\n"
    identity = {}
    if hello is not None:
        identity = {k: hello["hub"][k] for k in ("key_id", "database_id")}
        yield sse("hello", hello)
    while not handle.closed:
        changes = feed.take(handle)
        if changes is None:  # behind the buffer: read this site's changes from the database
            upto = feed.base
            batch = await run_blocking(catch_up, handle.cursor, handle.site, upto)
            handle.cursor = batch[-1].seq if len(batch) == CATCH_UP_BATCH else upto
            if batch:
                yield b"".join(change_bytes(c) for c in batch)
            continue
        out = b"".join(change_bytes(c) for c in changes)
        if handle.beat != feed.beat:
            handle.beat = feed.beat
            out += sse("heartbeat", {"cursor": handle.cursor, "time": time.time(),
                                     "device": handle.device.device_id,
                                     "hub": {**identity, "last_seq": feed.cursor}})
        if out:
            yield out
            continue
        await handle.wait()
