"""An in-process publish/subscribe bus: what happens on this device, for the pages' live stream.

Publishers (scans, print jobs, alarms, sync status) call ``publish(kind, data)`` after their
commit; each subscriber (one per open page stream) gets every message in order from a bounded
queue. A subscriber that stops reading loses its oldest messages, never blocks a publisher:
the bus is for screens, the outbox is the record.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    id: int  # increasing per bus; a page that reconnects asks for what it missed after this id
    kind: str  # "scan", "alarm", "alarm_ack", "job", "printer", "sync", "freeze", ...
    data: dict[str, Any]
    time: float = field(default_factory=time.time)


class Subscription:
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
        self._bus._unsubscribe(self)


class EventBus:
    def __init__(self, history: int = 200) -> None:
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._history: list[Message] = []
        self._history_max = history

    def publish(self, kind: str, data: dict[str, Any]) -> Message:
        with self._lock:
            message = Message(next(self._ids), kind, data)
            self._history.append(message)
            del self._history[: -self._history_max]
            subs = list(self._subs)
        for sub in subs:
            sub._offer(message)
        return message

    def subscribe(self, *, after: int | None = None, maxsize: int = 1000) -> Subscription:
        """A new subscription; with ``after``, first replays the kept messages newer than it."""
        sub = Subscription(self, maxsize)
        with self._lock:
            if after is not None:
                for message in self._history:
                    if message.id > after:
                        sub._offer(message)
            self._subs.append(sub)
        return sub

    def recent(self, kind: str | None = None, limit: int = 50) -> list[Message]:
        with self._lock:
            items = [m for m in self._history if kind is None or m.kind == kind]
        return items[-limit:]

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
