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

So a short call costs one hop onto the pool and one back. The pool is a few threads reading a C
queue (``queue.SimpleQueue``) that hand the result back with one ``call_soon_threadsafe``: a
``ThreadPoolExecutor`` behind ``run_in_executor`` costs a lock, a work item, two futures chained
by callbacks and a semaphore per call, a measurable share of a scan (docs/benchmarks.md). The
environ is a2wsgi's (``build_environ``); contextvars are copied into the thread. An exception of
the app before its response started is logged and answered ``500 {"error": "internal_error"}``
(after that, the connection is cut: the status was sent already).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import io
import json
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from typing import Any

from a2wsgi.wsgi import Body, build_environ

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
log = logging.getLogger(__name__)
INTERNAL_ERROR = json.dumps({"error": "internal_error", "message": "internal error"}).encode()


class WorkerThreads:
    """``workers`` threads that run blocking calls for an event loop (started on first use)."""

    def __init__(self, workers: int, name: str = "WSGI") -> None:
        self.workers = workers
        self.name = name
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def run(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        """``fn()`` on a worker thread; the future is settled on the calling loop."""
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._jobs.put((loop, future, fn))
        return future

    def close(self) -> None:
        """Let the threads end once the calls queued so far are done."""
        for _ in self._threads:
            self._jobs.put(None)

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self.workers:
                t = threading.Thread(target=self._work, daemon=True,
                                     name=f"{self.name}-{len(self._threads)}")
                t.start()
                self._threads.append(t)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, future, fn = job
            try:
                result, error = fn(), None
            except BaseException as e:  # handed to the awaiting coroutine, raised there
                result, error = None, e
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(settle, future, result, error)


def settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():  # the client went away while the app ran
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class WsgiBridge:
    def __init__(self, app: WsgiApp, workers: int, *, buffer_body: int = 64 * 1024,
                 buffer_response: int = 256 * 1024, name: str = "WSGI") -> None:
        self.app = app
        self.threads = WorkerThreads(workers, name)
        self.buffer_body = buffer_body
        self.buffer_response = buffer_response

    def close(self) -> None:
        self.threads.close()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # the dispatchers hand it http scopes; refuse anything else
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
        try:
            start, chunks = await self.threads.run(lambda: context.run(call.run))
        except Exception:
            if call.streaming:  # the status went out already: all that is left is to cut it
                raise
            log.exception("%s %s failed", scope.get("method"), scope.get("path"))
            start = {"type": "http.response.start", "status": 500,
                     "headers": [(b"content-type", b"application/json"),
                                 (b"content-length", str(len(INTERNAL_ERROR)).encode())]}
            chunks = [INTERNAL_ERROR]
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
