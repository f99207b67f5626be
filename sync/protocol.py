"""The sync protocol's shapes and limits, shared by the hub and the edge client (pure code).

push: ``{"events": [Event...]}`` -> ``{"results": [{"event_id", "status"}], "hub": Hub}`` where
status is ``accepted``, ``duplicate`` or ``rejected:<reason>``.
pull: ``?cursor=N`` -> ``{"changes": [Change...], "cursor": M, "more": bool, "hub": Hub}``.
stream: Server-Sent Events: first ``event: hello`` (``{"hub": Hub}``), then ``event: change``
(``id`` = the change's hub sequence) and ``event: heartbeat`` (every ``HEARTBEAT_S``, with
``hub``).

``Hub`` names the hub a device talks to (docs/sync.md, "Whose cursor"): ``key_id`` (its
command-signing key), ``database_id`` (a random id made once with its database), ``last_seq``
(its last change sequence) and, on pull and hello, ``from_mark``: the fingerprint of the change
at the cursor asked from (:func:`change_mark`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from typing import Any

MAX_BATCH_EVENTS = 200
MAX_BATCH_BYTES = 256 * 1024
MAX_EVENT_BYTES = 64 * 1024  # one event as JSON (UTF-8); a bigger one is rejected:too_large
MAX_PULL_ANSWER_BYTES = 16 * 1024 * 1024  # the device reads no more of a pull answer
MAX_ANSWER_BYTES = 1024 * 1024  # ... of any other answer (push, acks, errors)
MAX_SSE_LINE_BYTES = 1024 * 1024  # ... of one line or one event of the stream
HEARTBEAT_S = 5.0
OFFLINE_AFTER_S = 15.0
CHANGE_KINDS = ("order", "freeze", "unfreeze", "expedite", "setting")
INT64_MAX = 2**63 - 1
MAX_TEXT = 64  # device_time, hlc, order_id, ids in the hub's answers

ACCEPTED = "accepted"
DUPLICATE = "duplicate"

_ULID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TYPE_RE = re.compile(r"[a-z][a-z0-9_.]{0,63}")


def rejected(reason: str) -> str:
    return f"rejected:{reason}"


# The device's sync_state key of the mark of the change its cursor stands on (sync/hubstate.py).
CURSOR_MARK = "cursor_mark"


def change_mark(seq: int, kind: Any, order_id: Any, created_at: Any) -> str:
    """A fingerprint of one change of a hub's log: a hub restored from an older backup (or any
    other log) that numbers a different change ``seq`` gives another mark."""
    text = "\x1f".join(str(x) for x in (seq, kind, order_id, created_at))
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]


def _short_text(value: Any, *, optional: bool = False) -> bool:
    if value is None:
        return optional
    return isinstance(value, str) and len(value) <= MAX_TEXT


def _ints_in_range(value: Any) -> bool:
    """Every integer in a JSON value fits a signed 64-bit column (iterative: no recursion)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, bool):
            continue
        if isinstance(item, int):
            if not -INT64_MAX - 1 <= item <= INT64_MAX:
                return False
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def event_problem(event: Any, device_id: str) -> str | None:
    """Why the hub cannot store this event (a short reason), or None when it is well-formed."""
    if not isinstance(event, dict):
        return "not_an_object"
    event_id = event.get("event_id")
    if not isinstance(event_id, str) or not (_ULID_RE.fullmatch(event_id)
                                             or _UUID_RE.fullmatch(event_id)):
        return "bad_event_id"
    if event.get("device_id") != device_id:
        return "device_mismatch"
    seq = event.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= INT64_MAX:
        return "bad_seq"
    if not isinstance(event.get("type"), str) or not _TYPE_RE.fullmatch(event["type"]):
        return "bad_type"
    if not isinstance(event.get("payload"), dict):
        return "bad_payload"
    if not _short_text(event.get("device_time")):
        return "bad_device_time"
    if not _short_text(event.get("hlc"), optional=True):
        return "bad_hlc"
    if not _short_text(event.get("order_id"), optional=True):
        return "bad_order_id"
    try:
        size = len(json.dumps(event, ensure_ascii=False, allow_nan=False,
                              separators=(",", ":")).encode("utf-8"))
    except UnicodeEncodeError:
        return "bad_text"  # a lone surrogate: no UTF-8 form, no database can store it
    except ValueError:
        return "bad_number"  # NaN, Infinity
    except RecursionError:
        return "too_deep"
    if size > MAX_EVENT_BYTES:
        return "too_large"
    if not _ints_in_range(event["payload"]):
        return "out_of_range"
    return None


def file_sha256(path: str | os.PathLike[str]) -> str:
    """A pack-evidence blob's name (docs/evidence.md): the SHA-256 of the file, read in parts."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1024 * 1024):
            digest.update(block)
    return digest.hexdigest()
