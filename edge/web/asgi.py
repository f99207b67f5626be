"""The edge as one ASGI app: page streams on the event loop, the Flask API on a thread pool.

- ``GET /api/v1/stream`` -> :class:`edge.web.stream.PageStreams`: a coroutine per open page;
- the common ``POST /api/v1/scans`` -> :class:`edge.web.scan_route.ScanRoute`, on the loop
  with no request thread (the busiest call; any other shape of it goes to Flask);
- everything else -> the Flask app (``edge.web.app.create_app``) through
  :class:`edge.web.wsgi_bridge.WsgiBridge`, on ``http_threads`` threads that no page stream
  ever takes.

A plain ASGI dispatcher, like the hub's (``sync/hub/asgi.py``): a request passes no router and
no middleware stack on its way to Flask, which routes and answers errors itself. Requests whose
line or headers are over the caps are answered 414/431 before anything reads them. Errors of the
stream (bad Last-Event-ID, too many pages, the store refusing) are JSON shaped like the Flask
API's (edge/web/errors.py): ``{"error": code, "message": ...}``, with ``Retry-After`` on a 503
that says when.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import JSONResponse

from scanedge.edge.config import Settings
from scanedge.edge.context import EdgeContext
from scanedge.edge.web.app import create_app
from scanedge.edge.web.errors import error_answer
from scanedge.edge.web.limits import refuse_request, request_head_problem
from scanedge.edge.web.scan_route import ScanRoute
from scanedge.edge.web.stream import PageStreams
from scanedge.edge.web.wsgi_bridge import WsgiBridge

STREAM_PATH = "/api/v1/stream"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


def error_response(e: Exception) -> JSONResponse:
    """The JSON answer to an error a page stream raised before its response started."""
    status, body, headers = error_answer(e)  # the same as the Flask routes' (edge/web/errors.py)
    return JSONResponse(body, status_code=status, headers=headers)


class EdgeAsgi:
    """The ASGI application ``scanedge serve`` runs."""

    # what it serves itself, beside the Flask routes (the OpenAPI document lists both)
    asgi_routes: tuple[tuple[str, str], ...] = (("get", STREAM_PATH),)

    def __init__(self, settings: Settings, ctx: EdgeContext) -> None:
        app = create_app(settings, ctx)
        self.api = WsgiBridge(app, workers=settings.http_threads)
        # the common scan request, answered on the loop (edge/web/scan_route.py)
        self.scans = ScanRoute(ctx, lambda obj: app.json.dumps(obj, separators=(",", ":")),
                               int(settings.max_body_mb * 1024 * 1024))
        self.streams = PageStreams(ctx)
        # serve_asgi's on_exit (any thread, a signal handler): SIGTERM ends pages at once
        self.end_streams = self.streams.end_all

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind != "http":  # no websockets here
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1000})
        elif (problem := request_head_problem(scope)) is not None:
            await refuse_request(send, *problem)
        elif scope.get("path") == STREAM_PATH:
            await self._stream(scope, receive, send)
        elif self.scans.takes(scope):
            await self.scans(scope, receive, send)
        else:
            await self.api(scope, receive, send)

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def sending(message: dict[str, Any]) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.streams(scope, receive, sending)
        except Exception as e:
            if started:  # the stream was open: all that is left is to end the connection
                raise
            await error_response(e)(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.streams.close()  # publishers stop waking a loop that is going away
                self.api.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_asgi_app(settings: Settings, ctx: EdgeContext) -> EdgeAsgi:
    """The app ``scanedge serve`` runs: the Flask API beside the async page streams."""
    return EdgeAsgi(settings, ctx)
