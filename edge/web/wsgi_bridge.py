"""The Flask API under uvicorn: an ASGI -> WSGI bridge with one hop each way for a short call.

a2wsgi (used before) runs the WSGI app on a thread pool and hops back onto the event loop for
every piece of the exchange: reading the body, the response's start, each body chunk and its end,
each time waking the loop and blocking the thread until the loop ran the step. A scan paid four
such round trips (docs/benchmarks.md, "Where a scan's time goes"). Here:

- a body with a ``Content-Length`` up to ``buffer_body`` bytes (a scan: ~100 B) is read on the
  loop before the app runs; a larger or chunked one is read from the thread as it comes, like
  a2wsgi did (an upload the app refuses with 413 is never read into memory);
- the app's response is collected in the thread up to ``buffer_response`` bytes and sent from the
  loop in one go; a larger one is streamed, each chunk sent before the next is read
  (back-pressure, as before).

So a short call costs one hop onto the pool and one back. The environ is a2wsgi's
(``build_environ``), contextvars are copied into the thread as before, and an exception of the
app before its response started reaches Starlette's handlers (a 500 in JSON).
"""

from __future__ import annotations

import asyncio
import contextvars
import io
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from a2wsgi.wsgi import Body, build_environ

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class WsgiBridge:
    def __init__(self, app: WsgiApp, workers: int, *, buffer_body: int = 64 * 1024,
                 buffer_response: int = 256 * 1024) -> None:
        self.app = app
        self.executor = ThreadPoolExecutor(thread_name_prefix="WSGI", max_workers=workers)
        self.buffer_body = buffer_body
        self.buffer_response = buffer_response

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # Starlette hands a mount only http (and websocket) scopes
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        loop = asyncio.get_running_loop()
        body: Any = Body(loop, receive)  # read from the thread as the app asks for it
        length = _content_length(scope)
        if length is not None and length <= self.buffer_body:
            chunks = []
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":  # the client went away
                    break
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            body = io.BytesIO(b"".join(chunks))
        environ = build_environ(scope, body)  # type: ignore[arg-type]
        call = _Call(self.app, environ, loop, send, self.buffer_response)
        context = contextvars.copy_context()
        start, chunks = await loop.run_in_executor(self.executor, context.run, call.run)
        if start is not None:  # buffered: the whole response at once
            await send(start)
            await send({"type": "http.response.body", "body": b"".join(chunks)})


def _content_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class _Call:
    """One request on a pool thread: the app, its start_response, and where its body goes."""

    def __init__(self, app: WsgiApp, environ: dict[str, Any], loop: asyncio.AbstractEventLoop,
                 send: Any, buffer_limit: int) -> None:
        self.app = app
        self.environ = environ
        self.loop = loop
        self._send = send
        self.limit = buffer_limit
        self.start: dict[str, Any] | None = None
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.streaming = False  # the start was sent: each chunk goes out as it comes

    def run(self) -> tuple[dict[str, Any] | None, list[bytes]]:
        """The response still to send from the loop: (start, chunks), or (None, []) if sent."""
        iterable = self.app(self.environ, self.start_response)
        try:
            for chunk in iterable:
                self.write(chunk)
            if self.start is None:
                raise RuntimeError("the WSGI app returned without calling start_response")
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        if self.streaming:
            self.send({"type": "http.response.body", "body": b""})
            return None, []
        return self.start, self.chunks

    def start_response(self, status: str, headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None and self.streaming:  # PEP 3333: too late to change the status
            raise exc_info[1].with_traceback(exc_info[2])
        self.start = {
            "type": "http.response.start",
            "status": int(status.split(" ", 1)[0]),
            "headers": [(name.strip().encode("latin1").lower(), value.strip().encode("latin1"))
                        for name, value in headers],
        }
        return self.write

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        if not self.streaming:
            self.chunks.append(chunk)
            self.buffered += len(chunk)
            if self.buffered <= self.limit:
                return
            # a large response: from here on, streamed with back-pressure
            self.streaming = True
            assert self.start is not None
            self.send(self.start)
            chunk = b"".join(self.chunks)
            self.chunks = []
        self.send({"type": "http.response.body", "body": chunk, "more_body": True})

    def send(self, message: dict[str, Any]) -> None:
        asyncio.run_coroutine_threadsafe(self._send(message), self.loop).result()
