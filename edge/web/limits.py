"""Limits and bad input for the HTTP APIs of the edge and the hub (docs/security.md, "Limits
and bad input").

Every request body is parsed by :class:`StrictJSONProvider`, so a malformed body is a ``400``
wherever it arrives, never a ``500`` deep inside a handler:

- nesting deeper than ``MAX_JSON_DEPTH`` (Python's parser would raise ``RecursionError`` on
  100,000 levels; a few hundred would still reach the handlers and SQLite);
- lone UTF-16 surrogates (``"\\ud800"``): valid JSON, but no UTF-8 encoding exists, so SQLite,
  PostgreSQL and the JSON answer would all fail on them;
- ``NaN``, ``Infinity`` and numbers that overflow a double (``1e999``): not JSON (RFC 8259);
- on the edge (``max_int_bits=64``), integers outside a signed 64-bit range: SQLite cannot
  store them. The hub leaves big integers to the per-event checks of ``/sync/push``, which
  reject one event rather than a whole batch, and bounds its own fields where it reads them.

A scan ``code`` is capped where scans are taken (``edge.scanning.MAX_CODE``, for the API and the
CLI alike); ids and idempotency keys at ``MAX_ID`` characters; a JSON body on the edge at
``MAX_JSON_BYTES`` (``413 too_large`` before it is read: 4 clients sending 10 MB "codes" must not
slow everyone's scans down).
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Flask, Request, request
from flask.json.provider import DefaultJSONProvider

from scanedge.edge.domain.refusal import Refusal

MAX_JSON_DEPTH = 64
MAX_ID = 128  # scan_id, Idempotency-Key, path ids
MAX_JSON_BYTES = 64 * 1024  # a JSON body on the edge (a scan, a print job, a sign-in)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class JSONInputError(ValueError):
    """A request body that is JSON-shaped but cannot be taken; the message says why."""


def _no_constant(name: str) -> float:
    raise JSONInputError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONInputError(f"number {text[:20]} is out of range")
    return value


def has_surrogate(text: str) -> bool:
    """True when ``text`` holds a lone surrogate (it has no UTF-8 form)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def check_tree(data: Any, *, max_depth: int = MAX_JSON_DEPTH, max_int_bits: int | None = None) -> None:
    """Raise :class:`JSONInputError` for what :class:`StrictJSONProvider` refuses (iteratively:
    the check itself must not recurse)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if has_surrogate(value):
                raise JSONInputError("a string holds a lone UTF-16 surrogate (not valid Unicode)")
        elif isinstance(value, bool) or value is None or isinstance(value, float):
            continue
        elif isinstance(value, int):
            if max_int_bits is not None and not INT64_MIN <= value <= INT64_MAX:
                raise JSONInputError("an integer is out of the 64-bit range")
        elif isinstance(value, dict | list):
            if depth > max_depth:
                raise JSONInputError(f"nested deeper than {max_depth} levels")
            if isinstance(value, dict):
                for key, item in value.items():
                    if has_surrogate(key):
                        raise JSONInputError("a key holds a lone UTF-16 surrogate "
                                             "(not valid Unicode)")
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in value)


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing what no handler can store or answer (see the module docstring)."""

    max_int_bits: int | None = 64

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return strict_loads(s, max_int_bits=self.max_int_bits, **kwargs)


def strict_loads(s: str | bytes, *, max_int_bits: int | None = 64, **kwargs: Any) -> Any:
    """``json.loads`` refusing what no handler can store or answer (``ValueError``)."""
    kwargs.setdefault("parse_constant", _no_constant)
    kwargs.setdefault("parse_float", _finite_float)
    try:
        data = json.loads(s, **kwargs)
    except RecursionError:
        raise JSONInputError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    check_tree(data, max_int_bits=max_int_bits)
    return data


def is_json_type(content_type: str | None) -> bool:
    """Werkzeug's ``Request.is_json`` for a Content-Type header: ``application/json`` or
    ``application/*+json``."""
    mimetype = (content_type or "").partition(";")[0].strip().lower()
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json"))


def json_object(raw: bytes, loads: Any = strict_loads) -> dict[str, Any]:
    """A body as a JSON object, or the 400 that says what is wrong with it."""
    try:
        body = loads(raw)
    except ValueError as e:
        raise Refusal("bad_request", f"the body is not a JSON object: {str(e)[:200]}") from None
    if not isinstance(body, dict):
        raise Refusal("bad_request", "the body is not a JSON object")
    return body


class HubJSONProvider(StrictJSONProvider):
    max_int_bits = None  # /sync/push rejects an event with a huge seq on its own (not the batch)


class JSONCappedRequest(Request):
    """A request whose JSON body may be at most ``MAX_JSON_BYTES`` (other bodies: photos, up to
    ``max_body_mb``). Applies before anything reads the body, the sign-in check included."""

    @property
    def max_content_length(self) -> int | None:
        limit = Request.max_content_length.fget(self)  # type: ignore[attr-defined]
        if self._max_content_length is None and self.is_json:
            return MAX_JSON_BYTES if limit is None else min(limit, MAX_JSON_BYTES)
        return limit

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


def install_json(app: Flask, provider: type[StrictJSONProvider] = StrictJSONProvider, *,
                 cap_json_bodies: bool = True) -> None:
    app.json = provider(app)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Chinese stays readable
    if cap_json_bodies:
        app.request_class = JSONCappedRequest


def checked_text(value: Any, name: str, *, max_len: int = MAX_ID, status: int = 400) -> str:
    """``value`` as a non-empty string of at most ``max_len`` characters, else an Refusal
    (``413 too_large`` when ``status`` says so and only the length is wrong)."""
    if not isinstance(value, str) or not value.strip():
        raise Refusal("bad_request", f"{name}: expected a non-empty string")
    if len(value) > max_len:
        code = "too_large" if status == 413 else "bad_request"
        raise Refusal(code, f"{name}: at most {max_len} characters")
    if has_surrogate(value):
        raise Refusal("bad_request", f"{name}: not valid Unicode")
    return value




# -- the request line and headers (an ASGI check before any app sees the request) ------------
MAX_TARGET_BYTES = 8 * 1024  # path + query string
MAX_HEADER_BYTES = 8 * 1024  # one header's value (a cookie, a token, an Idempotency-Key)
MAX_HEADERS_BYTES = 32 * 1024  # all of them
MAX_HEADER_COUNT = 100


def request_head_problem(scope: dict[str, Any]) -> tuple[int, str, str] | None:
    """``(status, code, message)`` when the request line or headers are over the caps above
    (414 / 431), else None. uvicorn's httptools parser has no limits of its own."""
    target = len(scope.get("raw_path") or scope.get("path", "").encode("utf-8", "replace")) + len(
        scope.get("query_string") or b"")
    if target > MAX_TARGET_BYTES:
        return 414, "uri_too_long", f"path and query: at most {MAX_TARGET_BYTES} bytes"
    headers = scope.get("headers") or []
    if len(headers) > MAX_HEADER_COUNT:
        return 431, "headers_too_large", f"at most {MAX_HEADER_COUNT} headers"
    total = 0
    for name, value in headers:
        if len(value) > MAX_HEADER_BYTES:
            return 431, "headers_too_large", (f"{name.decode('latin-1')[:64]}: at most "
                                              f"{MAX_HEADER_BYTES} bytes")
        total += len(name) + len(value)
    if total > MAX_HEADERS_BYTES:
        return 431, "headers_too_large", f"headers: at most {MAX_HEADERS_BYTES} bytes in all"
    return None


async def refuse_request(send: Any, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": code, "message": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def json_body() -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong with it (device and hub)."""
    if not request.is_json:
        raise Refusal("bad_request", "expected a JSON body (Content-Type: application/json)")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):  # parse again for the reason (the 400 says it)
        from flask import current_app

        return json_object(request.get_data(cache=True), current_app.json.loads)
    return body


def text_field(body: dict[str, Any], key: str, limit: int, *,
               required: bool = False) -> str | None:
    """``body[key]`` stripped: 1-``limit`` characters, or absent (None) unless ``required``."""
    value = body.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Refusal("bad_request", f"{key}: {'required, ' if required else ''}"
                      f"1-{limit} characters")
    return value.strip()


def choice_arg(name: str, choices: tuple[str, ...], default: str) -> str:
    """The query argument ``name``: one of ``choices``, ``default`` when absent or empty."""
    value = request.args.get(name) or default
    if value not in choices:
        raise Refusal("bad_request", f"{name}: one of {', '.join(choices)}")
    return value


def scanned_code(body: dict[str, Any], limit: int) -> str:
    """``body["code"]``, what a scanner typed: required, at most ``limit`` characters (413)."""
    code = body.get("code")
    if not isinstance(code, str) or not code.strip():
        raise Refusal("bad_request", "code: required, what the scanner typed")
    if len(code) > limit:
        raise Refusal("too_large", f"code: at most {limit} characters")
    return code
