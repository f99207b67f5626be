"""``GET /api/v1/countdowns``: the supervisor's live view of 生效倒计时 and 熔断 at this device.

The hub knows the whole picture (which devices of the site applied a cancel, an address change
or a note, how many seconds are left, whose fuse tripped): the device asks it with its own token
(``GET /api/v1/sync/countdowns``). Beside it, what this device itself applied and when it told
the hub, which it knows even while the hub cannot be reached.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.web import context
from scanedge.edge.web.conflicts import hub_call

bp = Blueprint("countdowns", __name__)
LOCAL_LISTED = 50


@bp.get("/countdowns")
def list_countdowns():
    hub: dict[str, Any] | None = None
    problem = None
    try:
        answer = hub_call("GET", "/api/v1/sync/countdowns")
        if not isinstance(answer, dict) or not isinstance(answer.get("countdowns"), list):
            raise Refusal("hub_refused", "the hub's answer is not a list of countdowns")
        hub = answer
    except Refusal as e:  # the page still shows what this device did
        problem = {"error": e.code, "message": e.message}
    rows = context().store.read().execute(
        "SELECT command_id, kind, reason, order_id, issued_at, applied_at, effects_at, acked_at"
        " FROM freeze_followups ORDER BY applied_at DESC LIMIT ?", [LOCAL_LISTED]).fetchall()
    keys = ("command_id", "kind", "reason", "order_id", "issued_at", "applied_at", "effects_at",
            "acked_at")
    return jsonify({"countdowns": hub["countdowns"] if hub else [],
                    "now": hub.get("now") if hub else None, "hub_error": problem,
                    "device_id": context().settings.device_id,
                    "applied_here": [dict(zip(keys, r, strict=True)) for r in rows]})
