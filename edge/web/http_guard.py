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

The only answer is closing the connection: a client that stopped sending is not reading either.
Once the request is complete nothing here limits the answer (page streams stay open for hours).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_TIMEOUT_S = 20.0  # no client takes seconds to send a request's head
BODY_IDLE_S = 30.0  # between two pieces of a body (nginx's client_body_timeout is 60 s)


class GuardedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol with the deadlines of the module docstring."""

    head_timeout_s = HEAD_TIMEOUT_S
    body_idle_s = BODY_IDLE_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._guard: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm(self.timeout_keep_alive, reading_body=False)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.head_timeout_s, reading_body=False)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_idle_s, reading_body=True)

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._arm(self.body_idle_s, reading_body=True)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self, seconds: float, *, reading_body: bool) -> None:
        self._disarm()
        self._guard = self.loop.call_later(seconds, self._expired, seconds, reading_body)

    def _disarm(self) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None

    def _expired(self, seconds: float, reading_body: bool) -> None:
        self._guard = None
        if self.transport.is_closing():
            return
        if reading_body and self._server_is_waiting():
            self._arm(seconds, reading_body=True)  # our pause, not the client's
            return
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
