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
CLI alike); ids and idempotency keys at ``MAX_ID`` characters.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider

from edge.web.errors import ApiError

MAX_JSON_DEPTH = 64
MAX_ID = 128  # scan_id, Idempotency-Key, path ids
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
        kwargs.setdefault("parse_constant", _no_constant)
        kwargs.setdefault("parse_float", _finite_float)
        try:
            data = json.loads(s, **kwargs)
        except RecursionError:
            raise JSONInputError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
        check_tree(data, max_int_bits=self.max_int_bits)
        return data


class HubJSONProvider(StrictJSONProvider):
    max_int_bits = None  # /sync/push rejects an event with a huge seq on its own (not the batch)


def install_json(app: Flask, provider: type[StrictJSONProvider] = StrictJSONProvider) -> None:
    app.json = provider(app)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Chinese stays readable


def checked_text(value: Any, name: str, *, max_len: int = MAX_ID, status: int = 400) -> str:
    """``value`` as a non-empty string of at most ``max_len`` characters, else an ApiError
    (``413 too_large`` when ``status`` says so and only the length is wrong)."""
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "bad_request", f"{name}: expected a non-empty string")
    if len(value) > max_len:
        code = "too_large" if status == 413 else "bad_request"
        raise ApiError(status, code, f"{name}: at most {max_len} characters")
    if has_surrogate(value):
        raise ApiError(400, "bad_request", f"{name}: not valid Unicode")
    return value


def json_problem() -> str:
    """Why the current request's body is not a JSON object (for the 400's message)."""
    from flask import current_app, request

    try:
        current_app.json.loads(request.get_data(cache=True))
    except ValueError as e:
        return f"the body is not valid JSON: {str(e)[:200]}"
    return "the body is not a JSON object"
