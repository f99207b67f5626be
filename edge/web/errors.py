"""JSON errors for every failure: clients (PDAs, the order system) never see an HTML page."""

from __future__ import annotations

import logging

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


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(Refusal)
    def _refusal(e: Refusal):  # every refusal, whoever raised it (edge/domain/refusal.py)
        body, status = error_body(e.status, e.code, e.message, **e.details)
        body.headers.update(retry_after(e))
        return body, status

    @app.errorhandler(DiskFull)
    def _disk_full(e: DiskFull):
        log.error("disk full: %s", e)
        return error_body(507, "disk_full", str(e))

    @app.errorhandler(StoreError)
    def _store(e: StoreError):
        log.error("store refused a write: %s", e)
        return error_body(503, "storage_unavailable", f"not recorded, try again: {e}")

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(e: RequestEntityTooLarge):
        limit = request.max_content_length  # smaller for JSON bodies (edge/web/limits.py)
        return error_body(413, "too_large", f"request body is larger than {limit} bytes")

    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        code = (e.name or "error").lower().replace(" ", "_")
        return error_body(e.code or 500, code, e.description or e.name)

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        log.exception("unhandled error")
        return error_body(500, "internal_error", "internal error; the event was not recorded")
