"""JSON errors for every failure: clients (PDAs, the order system) never see an HTML page."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from edge.store.db import DiskFull, StoreError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client caused or must know about: status, a stable code and a message."""

    def __init__(self, status: int, code: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


def error_body(status: int, code: str, message: str, **extra: object):
    return jsonify({"error": code, "message": message, **extra}), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(e: ApiError):
        body, status = error_body(e.status, e.code, e.message, **e.extra)
        if "retry_after_s" in e.extra:  # 429 and 503: when to try again, as HTTP says it
            body.headers["Retry-After"] = str(e.extra["retry_after_s"])
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
