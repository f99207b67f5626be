"""``POST /api/v1/scans`` on the event loop: the busiest call, without a request thread.

Through Flask, a scan crossed three threads (the loop, a request thread, the writer) and back,
and paid Flask's request context, routing and response objects: at peak, more CPU than the scan
itself (docs/benchmarks.md, "Where a scan's time goes"). Here the loop reads the small JSON body,
hands the sign-in check and the scan's transaction to the writer (``Store.submit``) and sends
the answer when the writer's commit settles the future: one hop to the writer and one back.

The common shape only: ``POST``, this exact path, a JSON ``Content-Type``, no query string, a
``Content-Length`` within the JSON cap. Any other request (a form, a chunked or oversized body,
``?station=``) goes to the Flask route, so the rarer rules stay in one place. Both routes are
built of the same pieces, in the same order, so they answer alike (tests/test_scan_route.py
sends the same requests to both and compares):

1. the body parsed leniently, for the station the sign-in check needs (auth.check_request);
2. who asks (:func:`~edge.web.auth.principal_from`) and may they scan there
   (:func:`~edge.web.auth.refusal`, the action from ``ENDPOINT_ACTIONS``);
3. the body as a JSON object or a 400 that says why (:func:`~edge.web.limits.json_object`);
4. :func:`~edge.web.api.begin_scan`, the scan's transaction, ``PendingScan.done``;
5. any error mapped by :func:`~edge.web.errors.error_answer`.

Steps 2-4 run as one job on the writer: who asks is a read of the accounts tables, and no
SQLite runs on the event loop (docs/pages.md). A refused request writes nothing (its savepoint
rolls back). One order differs from Flask's: on a full disk (``min_free_mb``) a request is
answered 507 before its sign-in is checked, where Flask says 401 first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from scanedge.edge.context import EdgeContext
from scanedge.edge.scanning import PendingScan
from scanedge.edge.store.db import StoreError
from scanedge.edge.store.writer import COMMIT_TIMEOUT_S
from scanedge.edge.web.api import begin_scan
from scanedge.edge.web.auth import ENDPOINT_ACTIONS, principal_from, refusal
from scanedge.edge.web.errors import error_answer
from scanedge.edge.web.limits import MAX_JSON_BYTES, is_json_type, json_object, strict_loads
from scanedge.edge.web.wsgi_bridge import settle

SCANS_PATH = "/api/v1/scans"
ACTION = ENDPOINT_ACTIONS["api.post_scan"]
Dumps = Callable[[Any], str]


class ScanRoute:
    """The ASGI handler of the common scan request (see the module docstring)."""

    def __init__(self, ctx: EdgeContext, dumps: Dumps, max_body_bytes: int) -> None:
        self.ctx = ctx
        self.dumps = dumps  # the Flask app's JSON encoder: the same bytes as jsonify
        self.limit = min(max_body_bytes, MAX_JSON_BYTES)  # as JSONCappedRequest

    def takes(self, scope: dict[str, Any]) -> bool:
        """Whether this route answers the request (else the Flask app does)."""
        if scope["path"] != SCANS_PATH or scope["method"] != "POST" or scope["query_string"]:
            return False
        length = None
        json_type = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                json_type = is_json_type(value.decode("latin-1"))
        return json_type and length is not None and length.isdigit() and int(length) <= self.limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nobody to answer
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        try:
            status, body, headers = 200, await self._scan(scope, b"".join(chunks)), {}
        except Exception as e:
            status, body, headers = error_answer(e)
        data = (self.dumps(body) + "\n").encode()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())]})
        await send({"type": "http.response.body", "body": data})

    async def _scan(self, scope: dict[str, Any], raw: bytes) -> dict[str, Any]:
        ctx = self.ctx
        try:
            lenient: Any = strict_loads(raw)
        except ValueError:
            lenient = None
        station = lenient.get("station") if isinstance(lenient, dict) else None
        headers = Headers(scope=scope)
        cookies = cookie_parser(headers.get("cookie", ""))

        def write(db: Any) -> tuple[PendingScan, Any]:
            # on the writer: who asks is read from SQLite, which the loop never touches (a
            # reader there could wait out another process's lock with every page stream stalled)
            who = principal_from(ctx, headers, cookies)
            problem = refusal(who, ACTION, station if isinstance(station, str) and station else None)
            if problem is not None:
                raise problem
            body = lenient if isinstance(lenient, dict) else json_object(raw)
            pending = begin_scan(ctx, body, who)
            return pending, pending.apply(db)

        pending, applied = await _written(ctx, write)
        return pending.done(applied)


async def _written(ctx: EdgeContext, fn: Callable[[Any], Any]) -> Any:
    """``ctx.store.write(fn)`` for the event loop: the writer settles a future at its commit."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def on_done(result: Any, error: BaseException | None) -> None:  # on the writer thread
        with contextlib.suppress(RuntimeError):  # the loop closed (shutting down): nobody waits
            loop.call_soon_threadsafe(settle, future, result, error)

    ctx.store.submit(fn, on_done)
    try:
        async with asyncio.timeout(COMMIT_TIMEOUT_S):  # as Writer.run: never wait forever
            return await future
    except TimeoutError:
        raise StoreError(f"the store did not commit within {COMMIT_TIMEOUT_S:.0f} s") from None
