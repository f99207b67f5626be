"""An in-process publish/subscribe bus: what happens on this device, after it is committed.

Publishers (scans, print jobs, alarms, sync status) call ``publish(kind, data)`` after their
commit, from whatever thread they run on. The services of the device hear each other through it
too: ``on(topic, handler)`` is how one service acts after another's commit (metrics count scans,
the sync worker pushes a new event, the freeze effects follow the hub's changes), wired in one
place, edge/context.py. ``signal(topic, data)`` reaches those handlers only (data that is not for
the pages, e.g. the hub's applied changes). The topics: docs/architecture.md, "One
composition root, the bus between services".

For the pages, two kinds of subscriber:

- :meth:`EventBus.subscribe`: a blocking queue for a thread (the GPIO buzzer);
- :class:`AsyncFanout`: the page streams of one event loop. One publish costs one hop onto the
  loop however many streams are open; there the message is encoded once and handed to the
  streams that want it (a message naming a ``station`` goes to that station's streams and to
  those that want everything; one without a station, e.g. sync, printer, freeze, goes to all).

A subscriber that stops reading loses its oldest messages, never blocks a publisher: the bus is
for screens, the outbox is the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

Sink = Callable[["Message"], None]
Handler = Callable[[Any], None]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    id: int  # increasing per bus; a page that reconnects asks for what it missed after this id
    kind: str  # "scan", "alarm", "alarm_ack", "job", "printer", "sync", "freeze", ...
    data: dict[str, Any]
    time: float = field(default_factory=time.time)

    @property
    def station(self) -> str | None:
        """The station the message is about; None: the whole device."""
        station = self.data.get("station")
        return station if isinstance(station, str) and station else None


class Subscription:
    """A blocking subscription, for a thread."""

    def __init__(self, bus: EventBus, maxsize: int) -> None:
        self._bus = bus
        self._queue: queue.Queue[Message] = queue.Queue(maxsize)

    def get(self, timeout: float) -> Message | None:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def _offer(self, message: Message) -> None:
        while True:
            try:
                self._queue.put_nowait(message)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()  # drop the oldest, keep the newest

    def close(self) -> None:
        self._bus._remove_sink(self._offer)


class EventBus:
    def __init__(self, history: int = 200) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._sinks: list[Sink] = []
        self._history: list[Message] = []
        self._history_max = history
        self._handlers: dict[str, list[Handler]] = {}

    def on(self, topic: str, handler: Handler) -> None:
        """Call ``handler(data)`` after each publish or signal of ``topic``, in the publisher's
        thread (after its commit). A handler that fails is logged; the publisher never sees it."""
        with self._lock:
            self._handlers.setdefault(topic, []).append(handler)

    def off(self, topic: str, handler: Handler) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._handlers.get(topic, []).remove(handler)

    def publish(self, kind: str, data: dict[str, Any]) -> Message:
        """To the pages (kept for a page that reconnects) and to the handlers of ``kind``."""
        with self._lock:
            message = Message(next(self._ids), kind, data)
            self._history.append(message)
            del self._history[: -self._history_max]
            # under the lock, so every sink sees the ids in order; sinks never block
            for sink in self._sinks:
                sink(message)
        self.signal(kind, data)
        return message

    def signal(self, topic: str, data: Any) -> None:
        """To the handlers of ``topic`` only (not the pages)."""
        for handler in self._handlers.get(topic, ()):
            try:
                handler(data)
            except Exception:  # a broken handler must not turn a committed change into an error
                log.exception("bus handler of %r failed", topic)

    def subscribe(self, *, after: int | None = None, maxsize: int = 1000) -> Subscription:
        """A new subscription; with ``after``, first replays the kept messages newer than it."""
        sub = Subscription(self, maxsize)
        with self._lock:
            if after is not None:
                for message in self._history:
                    if message.id > after:
                        sub._offer(message)
            self._sinks.append(sub._offer)
        return sub

    def recent(self, kind: str | None = None, limit: int = 50) -> list[Message]:
        with self._lock:
            items = [m for m in self._history if kind is None or m.kind == kind]
        return items[-limit:]

    def _add_sink(self, sink: Sink) -> None:
        with self._lock:
            self._sinks.append(sink)

    def _history_now(self) -> list[Message]:
        with self._lock:
            return list(self._history)

    def _remove_sink(self, sink: Sink) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._sinks.remove(sink)


# --- page streams on an event loop ---------------------------------------------------------------


class AsyncSubscription:
    """One stream's share of the bus, on the loop: the encoded messages since its last write.

    The stream awaits :meth:`wait`, then takes everything pending at once (one write for a burst).
    Timers and the connection watcher :meth:`poke` it too, through the same wake-up.
    """

    def __init__(self, fanout: AsyncFanout, station: str | None, last_id: int,
                 maxsize: int) -> None:
        self.station = station  # None: every message
        self.last_id = last_id  # nothing at or below it is delivered (seen or replayed already)
        self.closed = False  # the client went away
        self._fanout = fanout
        self._pending: deque[bytes] = deque(maxlen=maxsize)  # full: the oldest are dropped
        self._wake = asyncio.Event()

    def wants(self, message: Message) -> bool:
        return self.station is None or message.station in (None, self.station)

    def put(self, message_id: int, payload: bytes) -> None:
        if message_id <= self.last_id:
            return
        self.last_id = message_id
        self._pending.append(payload)
        self._wake.set()

    def poke(self) -> None:
        self._wake.set()

    async def wait(self) -> None:
        await self._wake.wait()
        self._wake.clear()

    def take(self) -> list[bytes]:
        items = list(self._pending)
        self._pending.clear()
        return items

    def close(self) -> None:
        self._fanout._remove(self)


class AsyncFanout:
    """Delivers bus messages to the subscriptions of one event loop.

    Publishers' threads only append to a list and, when none is scheduled yet, schedule one
    delivery with ``call_soon_threadsafe``: a burst of publishes costs one wake-up of the loop,
    and no publish ever costs a hop per stream. The delivery encodes each message once (for the
    streams that want it) and wakes those streams.
    """

    ENCODED_KEPT = 512  # encoded messages kept for replays (the bus keeps 200 by default)

    def __init__(self, bus: EventBus, loop: asyncio.AbstractEventLoop,
                 encode: Callable[[Message], bytes]) -> None:
        self._bus = bus
        self._loop = loop
        self._encode = encode
        self._lock = threading.Lock()
        self._incoming: list[Message] = []
        self._scheduled = False
        self._everything: set[AsyncSubscription] = set()
        self._by_station: dict[str, set[AsyncSubscription]] = {}
        self._encoded: OrderedDict[int, bytes] = OrderedDict()
        bus._add_sink(self._offer)

    def subscribe(self, station: str | None, after: int | None = None,
                  maxsize: int = 1000) -> AsyncSubscription:
        """On the loop: a subscription to ``station``'s messages and the device's (None: all).

        With ``after``, the kept messages newer than it are pending at once; an ``after`` beyond
        the newest id (the bus restarted, ids began again) replays everything kept.
        """
        history = self._bus._history_now()
        newest = history[-1].id if history else 0
        # messages up to `newest` that are still on their way to the loop are not delivered
        # again: they are in the replay, or came before this subscription
        sub = AsyncSubscription(self, station, newest, maxsize)
        if after is not None:
            after = 0 if after > newest else after
            for message in history:
                if message.id > after and sub.wants(message):
                    sub._pending.append(self._bytes(message))
            if sub._pending:
                sub.poke()
        if station is None:
            self._everything.add(sub)
        else:
            self._by_station.setdefault(station, set()).add(sub)
        return sub

    def close(self) -> None:
        self._bus._remove_sink(self._offer)

    def end_all(self) -> None:
        """Any thread: end every stream (the server is stopping; the pages reconnect)."""

        def end() -> None:
            for sub in [*self._everything, *(s for subs in self._by_station.values() for s in subs)]:
                sub.closed = True
                sub.poke()

        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing is open
            self._loop.call_soon_threadsafe(end)

    @property
    def subscribers(self) -> int:
        return len(self._everything) + sum(len(s) for s in self._by_station.values())

    def _remove(self, sub: AsyncSubscription) -> None:
        if sub.station is None:
            self._everything.discard(sub)
            return
        subs = self._by_station.get(sub.station)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_station[sub.station]

    def _offer(self, message: Message) -> None:
        """Any thread (under the bus lock): queue for the loop, waking it once per burst."""
        with self._lock:
            self._incoming.append(message)
            if self._scheduled:
                return
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: no stream is left
            self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            batch, self._incoming = self._incoming, []
            self._scheduled = False
        for message in batch:
            payload: bytes | None = None
            for sub in self._targets(message):
                if payload is None:
                    payload = self._bytes(message)
                sub.put(message.id, payload)

    def _targets(self, message: Message) -> Iterator[AsyncSubscription]:
        yield from self._everything
        station = message.station
        if station is not None:
            yield from self._by_station.get(station, ())
            return
        for subs in self._by_station.values():
            yield from subs

    def _bytes(self, message: Message) -> bytes:
        payload = self._encoded.get(message.id)
        if payload is None:
            payload = self._encoded[message.id] = self._encode(message)
            while len(self._encoded) > self.ENCODED_KEPT:
                self._encoded.popitem(last=False)
        return payload
