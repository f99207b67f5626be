"""The sync protocol's shapes and limits, shared by the hub and the edge client (pure code).

push: ``{"events": [Event...]}`` -> ``{"results": [{"event_id", "status"}]}`` where status is
``accepted``, ``duplicate`` or ``rejected:<reason>``.
pull: ``?cursor=N`` -> ``{"changes": [Change...], "cursor": M, "more": bool}``.
stream: Server-Sent Events, ``id`` = the change's hub sequence, ``event: change`` or
``event: heartbeat`` (every ``HEARTBEAT_S``).
"""

from __future__ import annotations

import re
from typing import Any

MAX_BATCH_EVENTS = 200
MAX_BATCH_BYTES = 256 * 1024
MAX_EVENT_BYTES = 64 * 1024
HEARTBEAT_S = 5.0
OFFLINE_AFTER_S = 15.0
CHANGE_KINDS = ("order", "freeze", "unfreeze", "expedite", "setting")

ACCEPTED = "accepted"
DUPLICATE = "duplicate"

_ULID_RE = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
_UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TYPE_RE = re.compile(r"[a-z][a-z0-9_.]{0,63}")


def rejected(reason: str) -> str:
    return f"rejected:{reason}"


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
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        return "bad_seq"
    if not isinstance(event.get("type"), str) or not _TYPE_RE.fullmatch(event["type"]):
        return "bad_type"
    if not isinstance(event.get("payload"), dict):
        return "bad_payload"
    if not isinstance(event.get("device_time"), str):
        return "bad_device_time"
    order_id = event.get("order_id")
    if order_id is not None and (not isinstance(order_id, str) or len(order_id) > 64):
        return "bad_order_id"
    return None
