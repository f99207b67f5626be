"""JSON errors for every failure: clients (PDAs, the order system) never see an HTML page."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.store.db import DiskFull, StoreError

log = logging.getLogger(__name__)


def error_body(status: int, code: str, message: str, **extra: object):
    return jsonify({"error": code, "message": message, **extra}), status


def retry_after(e: Refusal) -> dict[str, str]:
    """429 and 503: when to try again, as HTTP says it."""
    seconds = e.details.get("retry_after_s")
    return {} if seconds is None else {"Retry-After": str(seconds)}


def error_answer(e: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """``(status, body, headers)`` for an error a request ran into: the one mapping behind the
    Flask handlers below and the routes served on the event loop (edge/web/asgi.py)."""
    if isinstance(e, Refusal):  # every refusal, whoever raised it (edge/domain/refusal.py)
        return e.status, e.as_json(), retry_after(e)
    if isinstance(e, DiskFull):
        log.error("disk full: %s", e)
        return 507, {"error": "disk_full", "message": str(e)}, {}
    if isinstance(e, StoreError):
        log.error("store refused a write: %s", e)
        return 503, {"error": "storage_unavailable", "message": f"not recorded, try again: {e}"}, {}
    log.error("unhandled error", exc_info=e)
    return 500, {"error": "internal_error",
                 "message": "internal error; the event was not recorded"}, {}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(e: RequestEntityTooLarge):
        limit = request.max_content_length  # smaller for JSON bodies (edge/web/limits.py)
        return error_body(413, "too_large", f"request body is larger than {limit} bytes")

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        code = (e.name or "error").lower().replace(" ", "_")
        return error_body(e.code or 500, code, e.description or e.name)

    @app.errorhandler(Exception)  # refusals, the store's errors, anything else: error_answer
    def _answer(e: Exception):
        status, body, headers = error_answer(e)
        return jsonify(body), status, headers
