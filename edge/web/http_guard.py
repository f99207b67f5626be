"""Slow clients cannot hold connections: a deadline for a request's head, an idle limit for its
body (the edge and the hub run uvicorn with :func:`guarded_protocol`).

uvicorn closes a keep-alive connection that is idle *between* requests (``timeout_keep_alive``),
but not one that sent part of a request and stopped. Anyone on the warehouse Wi-Fi could open
connections and send half a request line on each (slowloris): measured on uvicorn 0.54, such a
connection was still open after 40 s, and after a few thousand of them the process is out of
file descriptors and no scanner can connect. So, per connection:

- a new connection must begin a request within ``timeout_keep_alive``, as an idle one must;
- a request's line and headers must all arrive within ``head_timeout_s`` of its first byte;
- while its body is read, at most ``body_idle_s`` may pass without a byte: a slow upload on
  poor Wi-Fi keeps going, a stalled one is cut. Time in which the server itself stopped
  reading (flow control: the app has not taken the last chunk yet; ``Expect: 100-continue``
  before the app asks for the body) does not count.

One sweep per event loop checks the deadlines four times within the shortest limit (every 5 s
with the defaults), so a connection is closed up to a quarter of its limit late. The only answer
is closing the connection: a client that stopped sending is not reading either.
Once the request is complete nothing here limits the answer (page streams stay open for hours).
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_TIMEOUT_S = 20.0  # no client takes seconds to send a request's head
BODY_IDLE_S = 30.0  # between two pieces of a body (nginx's client_body_timeout is 60 s)


class _Sweep:
    """One timer per event loop that closes its connections past their deadline. A timer per
    connection, set and cancelled at each step of each request, cost 10 % of a scan's CPU at
    peak (docs/benchmarks.md); a step here only writes the deadline down."""

    def __init__(self, loop: asyncio.AbstractEventLoop, every_s: float) -> None:
        self.loop = loop
        self.every_s = every_s
        self.connections: set[GuardedHttpTools] = set()
        self.timer: asyncio.TimerHandle | None = None

    def add(self, connection: GuardedHttpTools) -> None:
        self.connections.add(connection)
        if self.timer is None:
            self.timer = self.loop.call_later(self.every_s, self.run)

    def run(self) -> None:
        now = self.loop.time()
        for connection in list(self.connections):
            connection._check(now)
        self.timer = self.loop.call_later(self.every_s, self.run) if self.connections else None


_sweeps: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Sweep] = weakref.WeakKeyDictionary()


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with the deadlines of the module docstring."""

    head_timeout_s = HEAD_TIMEOUT_S
    body_idle_s = BODY_IDLE_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: float | None = self.loop.time() + self.timeout_keep_alive
        self._reading_body = False
        sweep = _sweeps.get(self.loop)
        if sweep is None:  # checked 4 times within the shortest limit: closes within 1.25 x
            every = min(self.head_timeout_s, self.body_idle_s, self.timeout_keep_alive) / 4
            sweep = _sweeps[self.loop] = _Sweep(self.loop, every)
        self._sweep = sweep
        sweep.add(self)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._deadline = self.loop.time() + self.head_timeout_s
        self._reading_body = False

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._deadline = self.loop.time() + self.body_idle_s
        self._reading_body = True

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._deadline = self.loop.time() + self.body_idle_s

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._deadline = None  # the answer is the app's; between requests, uvicorn's limit

    def connection_lost(self, exc: Exception | None) -> None:
        self._sweep.connections.discard(self)
        super().connection_lost(exc)

    def _check(self, now: float) -> None:
        if self._deadline is None or now < self._deadline or self.transport.is_closing():
            return
        if self._reading_body and self._server_is_waiting():
            self._deadline = now + self.body_idle_s  # our pause, not the client's
            return
        self._sweep.connections.discard(self)
        self.transport.close()

    def _server_is_waiting(self) -> bool:
        cycle: Any = self.cycle
        return bool(self.flow.read_paused
                    or (cycle is not None and cycle.waiting_for_100_continue))


def guarded_protocol(head_timeout_s: float = HEAD_TIMEOUT_S,
                     body_idle_s: float = BODY_IDLE_S) -> type[GuardedHttpTools]:
    """The protocol class for uvicorn's ``http`` option, with these limits."""
    if (head_timeout_s, body_idle_s) == (HEAD_TIMEOUT_S, BODY_IDLE_S):
        return GuardedHttpTools
    return type("GuardedHttpTools", (GuardedHttpTools,),
                {"head_timeout_s": head_timeout_s, "body_idle_s": body_idle_s})
