"""The hub as one ASGI app: device streams on the event loop, the Flask API on two thread pools.

Routing (docs/architecture.md, "Serving"):
- ``GET /api/v1/sync/stream`` -> :func:`stream` here: a coroutine per stream, no thread;
- ``/api/v1/sync/*`` (push, pull, acks) -> the Flask app on the *device* pool (``hub_threads``);
- everything else (the order system, admin, health) -> the same Flask app on the *admin* pool
  (``hub_admin_threads``), so no number of devices can take the order system's threads.
Database calls made for streams (token check, catch-up reads, the change feed) run on a small
executor of their own, which also bounds the PostgreSQL connections a process opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse

from scanedge.edge.web.limits import refuse_request, request_head_problem
from scanedge.edge.web.wsgi_bridge import WsgiBridge
from scanedge.sync.hub import ewaybills
from scanedge.sync.hub.app import Hub, HubOptions, create_hub_app
from scanedge.sync.hub.limits import retry_after_header
from scanedge.sync.hub.storage import Change, HubStorage
from scanedge.sync.hub.streams import (
    CATCH_UP_BATCH,
    ChangeFeed,
    DeviceStreams,
    StreamHandle,
    stream_events,
)
from scanedge.sync.hub.webhooks import HubWebhooks

log = logging.getLogger(__name__)
STREAM_PATH = "/api/v1/sync/stream"
DEVICE_PREFIX = "/api/v1/sync/"
STREAM_DB_THREADS = 4
PUBLISH_EVERY_S = 2.0  # safety net for events a crashed process committed but never numbered
FUSE_CHECK_S = 0.5  # how often countdowns that ran out are settled (a fuse trips this late at most)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def _error(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


class HubAsgi:
    """The ASGI application of one hub process."""

    def __init__(self, storage: HubStorage, options: HubOptions) -> None:
        self.flask = create_hub_app(storage, options)
        self.hub: Hub = self.flask.extensions["scanedge_hub"]
        self.storage = storage
        self.options = options
        self.admin_app = WsgiBridge(self.flask, options.admin_threads, name="hub-admin")
        self.device_app = WsgiBridge(self.flask, options.device_threads, name="hub-device")
        self.db = ThreadPoolExecutor(STREAM_DB_THREADS, thread_name_prefix="hub-stream-db")
        self.feed = ChangeFeed(self.run_blocking, lambda cursor, limit: storage.changes_since(
            cursor, limit), storage.last_change_seq, reread_s=options.reread_s,
            heartbeat_s=options.heartbeat_s)
        self.streams = DeviceStreams(options.streams_per_device)
        storage.changes.subscribe(self.feed.wake)  # the change log grew: wake the streams
        self._publisher: asyncio.Task[None] | None = None
        self._fuse_watch: asyncio.Task[None] | None = None
        self.webhooks = HubWebhooks(storage, options.notify_url)
        self._pushed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run_blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            self.db, partial(fn, *args, **kwargs))

    # -- ASGI ----------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] == "http" and (problem := request_head_problem(scope)) is not None:
            await refuse_request(send, *problem)  # 414/431: capped like the edge's
            return
        path = scope.get("path", "")
        if path == STREAM_PATH and scope["type"] == "http":
            response = await self.stream(Request(scope, receive))
            await response(scope, receive, send)
        elif path.startswith(DEVICE_PREFIX):
            await self.device_app(scope, receive, send)
        else:
            await self.admin_app(scope, receive, send)

    def end_streams(self) -> None:
        """Any thread (a signal handler): end every device stream now; devices reconnect."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.feed.close_all)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as e:
                    log.exception("hub start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(e)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        await self.feed.start()
        self._loop = asyncio.get_running_loop()
        if not self.storage.publish_inline:
            # Pushes leave the numbering of their events to one publisher per process: a round
            # numbers everything committed so far, so at 100 pushes a second it runs a few
            # times, not 100 (docs/scaling.md, "Event ingest").
            self.storage.pushed.subscribe(self._events_pushed)
            self._publisher = self._loop.create_task(self._publish_when_pushed())
        self.webhooks.start()
        self._fuse_watch = self._loop.create_task(self._watch_fuses())

    async def shutdown(self) -> None:
        await self.feed.stop()
        for task in (self._publisher, self._fuse_watch):
            if task is not None:
                task.cancel()
        self.webhooks.stop()
        self.db.shutdown(wait=False, cancel_futures=True)
        self.admin_app.close()
        self.device_app.close()

    def _events_pushed(self) -> None:  # a WSGI thread, after its commit
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._pushed.set)

    async def _publish_when_pushed(self) -> None:
        while True:
            # every PUBLISH_EVERY_S anyway: events of a process that died before publishing
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._pushed.wait(), PUBLISH_EVERY_S)
            self._pushed.clear()
            try:
                await self.run_blocking(self.storage.publish)
            except Exception:  # the database may be away for a while: the next round retries
                log.warning("publishing pushed events failed", exc_info=True)
                await asyncio.sleep(PUBLISH_EVERY_S)

    async def _watch_fuses(self) -> None:
        """Settle the countdowns that ran out (sync/hub/countdowns.py): a fuse that trips is a
        change to its site's devices and a webhook."""
        while True:
            await asyncio.sleep(FUSE_CHECK_S)
            try:
                trips = await self.run_blocking(self.storage.sweep_fuses)
            except Exception:  # the database may be away for a while: the next round retries
                log.warning("checking countdowns failed", exc_info=True)
                continue
            for trip in trips:
                log.warning("fuse tripped: %s %s of order %s not applied in %g s by %s",
                            trip["kind"], trip["reason"] or "", trip["order_id"],
                            trip["countdown_s"], ", ".join(trip["not_in_time"]) or "?")
            if trips:
                self.webhooks.wake()
            # e-waybill cancels a carrier did not answer (sync/hub/ewaybills.py)
            ewaybills.retry_cancels_in_background(self.storage, self.options.carriers)

    # -- GET /api/v1/sync/stream ------------------------------------------------------------------
    async def stream(self, request: Request) -> Any:
        if request.method != "GET":
            return _error(405, "method_not_allowed", "GET only")
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _error(401, "unauthorized", "send 'Authorization: Bearer <token>'")
        device = await self.run_blocking(self.storage.device_for_token, token.strip())
        if device is None:
            return _error(403, "forbidden", "unknown device token: register the device with "
                                            "'scanedge hub add-device ID'")
        wait = self.hub.limiter.check("stream", device.device_id)
        if wait is not None:
            return _error(429, "rate_limited", "too many stream connects from this device",
                          **{"Retry-After": retry_after_header(wait)})
        raw = request.headers.get("last-event-id") or request.query_params.get("cursor") or "0"
        try:
            cursor = int(raw)
            if not 0 <= cursor < 2**63:
                raise ValueError
        except ValueError:
            return _error(400, "bad_request", "Last-Event-ID: expected a change sequence")
        hello = await self.run_blocking(self._hello, cursor)  # read after the request came
        handle = StreamHandle(device, cursor)
        if self.streams.open(handle):
            log.info("device %s: a new stream closes its oldest (%d at most)",
                     device.device_id, self.streams.per_device)
        self.feed.add(handle)
        return StreamingResponse(self._events(handle, hello), media_type="text/event-stream",
                                 # a stream the hub ends also ends its connection
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no",
                                          "Connection": "close"})

    def _hello(self, cursor: int) -> dict[str, Any]:
        """The stream's first message: who the hub is, its last change (read now, so a device
        whose cursor is beyond it knows it is ahead) and the mark of the change at its cursor."""
        last = self.storage.last_change_seq()
        return {"hub": {**self.storage.hub_info(), "last_seq": last,
                        "from_mark": self.storage.change_marks([cursor]).get(cursor)}}

    async def _events(self, handle: StreamHandle, hello: dict[str, Any]) -> AsyncIterator[bytes]:
        def catch_up(cursor: int, site: str, upto: int) -> list[Change]:
            return self.storage.changes_since(cursor, CATCH_UP_BATCH, site=site, upto=upto)

        try:
            async for chunk in stream_events(handle, self.feed, self.run_blocking, catch_up,
                                             hello):
                yield chunk
        finally:  # closed by a newer stream, the client went away, or shutdown
            self.feed.remove(handle)
            self.streams.close(handle)


def create_hub_asgi(storage: HubStorage, options: HubOptions | None = None) -> HubAsgi:
    return HubAsgi(storage, options or HubOptions())
