"""The edge as one ASGI app: page streams on the event loop, the Flask API on a thread pool.

- ``GET /api/v1/stream`` -> :class:`edge.web.stream.PageStreams`: a coroutine per open page;
- everything else -> the Flask app (``edge.web.app.create_app``) through
  :class:`edge.web.wsgi_bridge.WsgiBridge`, on ``http_threads`` threads that no page stream
  ever takes.

Errors of the stream (bad Last-Event-ID, too many pages, the store refusing) are JSON shaped like
the Flask API's (edge/web/errors.py): ``{"error": code, "message": ...}``, with ``Retry-After``
on a 503 that says when.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from scanedge.edge.config import Settings
from scanedge.edge.context import EdgeContext
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.store.db import DiskFull, StoreError
from scanedge.edge.web.app import create_app
from scanedge.edge.web.errors import retry_after
from scanedge.edge.web.limits import RequestHeadLimits
from scanedge.edge.web.stream import PageStreams
from scanedge.edge.web.wsgi_bridge import WsgiBridge

log = logging.getLogger(__name__)
STREAM_PATH = "/api/v1/stream"


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


async def _refusal(request: Request, e: Exception) -> Response:
    assert isinstance(e, Refusal)  # the same body as the Flask routes' (edge/web/errors.py)
    return JSONResponse(e.as_json(), status_code=e.status, headers=retry_after(e))


async def _store_error(request: Request, e: Exception) -> Response:
    if isinstance(e, DiskFull):
        return error_response(507, "disk_full", str(e))
    log.error("store error: %s", e)
    return error_response(503, "storage_unavailable", f"try again: {e}")


async def _http_error(request: Request, e: Exception) -> Response:
    # Starlette's own 404 (a path its routes cannot match, e.g. one with a newline in it)
    assert isinstance(e, HTTPException)
    return error_response(e.status_code, "not_found" if e.status_code == 404 else "http_error",
                          str(e.detail))


async def _unexpected(request: Request, e: Exception) -> Response:
    # uvicorn logs the traceback: Starlette re-raises after this answer
    return error_response(500, "internal_error", "internal error")


def create_asgi_app(settings: Settings, ctx: EdgeContext) -> Starlette:
    """The app ``scanedge serve`` runs: the Flask API mounted beside the async page streams."""
    api = WsgiBridge(create_app(settings, ctx), workers=settings.http_threads)
    streams = PageStreams(ctx)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        streams.close()  # publishers stop waking a loop that is going away

    app = Starlette(
        routes=[Route(STREAM_PATH, streams), Mount("/", app=api)],
        middleware=[Middleware(RequestHeadLimits)],  # 414/431 before anything reads them
        exception_handlers={Refusal: _refusal, StoreError: _store_error,
                            HTTPException: _http_error, Exception: _unexpected},
        lifespan=lifespan,
    )
    app.state.end_streams = streams.end_all  # serve_asgi's on_exit: SIGTERM ends pages at once
    return app
