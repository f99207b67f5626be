"""``/api/v1/conflicts`` and ``/api/v1/orders/<id>/decide``: a supervisor signed in at this device
decides an order's expedite/cancel conflict (``needs_decision``) through the hub.

The device asks the hub with its own token (``GET /api/v1/sync/conflicts``, ``POST
/api/v1/sync/decide/<id>``); the hub decides only for a device it allows to
(``scanedge hub device ID --can-decide``) and records the operator and the device. The operator
is the signed-in person, never a name from the request. The decision comes back to every device
of the site as a signed command, like any freeze or unfreeze (docs/freeze.md).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from flask import Blueprint, jsonify

from scanedge.edge.domain.orders import ORDER_ID_RE
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.store.outbox import append_event
from scanedge.edge.web import context
from scanedge.edge.web.auth import principal, station_of
from scanedge.edge.web.limits import json_body

log = logging.getLogger(__name__)
bp = Blueprint("conflicts", __name__)
DECISIONS = ("cancel", "ship")
HUB_TIMEOUT_S = 5.0  # a person is waiting: say "hub unreachable" rather than hang


def hub_call(method: str, path: str, body: Any = None) -> Any:
    """Call the hub as this device; its failures as the page's errors, in plain words."""
    from scanedge.sync.client import HubRefused, HubUnavailable

    ctx = context()
    if ctx.sync is None:
        raise Refusal("no_hub", "this device works without a hub (no hub_url): conflicts "
                                      "are decided at the hub")
    try:
        return ctx.sync.client.call(method, path, body,
                                    timeout=min(HUB_TIMEOUT_S, ctx.settings.hub_timeout_s))
    except HubUnavailable as e:
        raise Refusal("hub_unavailable", "the hub cannot be reached just now, so nothing "
                       f"was decided; try again when it answers ({e})", retry_after_s=5) from None
    except HubRefused as e:
        raise _refusal(e) from None


def _refusal(e: Any) -> Refusal:
    device = context().settings.device_id
    if e.code == "cannot_decide":
        return Refusal("cannot_decide", "this device may not decide: grant it at the hub "
                        f"with scanedge hub device {device} --can-decide")
    if e.code in ("bad_request", "not_found", "no_conflict"):  # the hub's words are for us too
        return Refusal(e.code, e.hub_message or str(e))
    # 401/403 forbidden: the hub does not know this device's token (or an older hub)
    return Refusal("hub_refused", f"the hub refused this device ({e}): enrol it again "
                    f"(scanedge hub add-device {device} on the hub, then scanedge enroll)")


@bp.get("/conflicts")
def list_conflicts():
    """The open conflicts of this device's site, from the hub, and who may decide them here."""
    answer = hub_call("GET", "/api/v1/sync/conflicts")
    if not isinstance(answer, dict) or not isinstance(answer.get("conflicts"), list):
        raise Refusal("hub_refused", "the hub's answer is not a list of conflicts")
    return jsonify({"conflicts": answer["conflicts"],
                    "can_decide": answer.get("can_decide") is True,
                    "may_decide": principal().can("decide_conflict"),
                    "device_id": context().settings.device_id, "site": answer.get("site")})


@bp.post("/orders/<order_id>/decide")
def decide(order_id: str):
    """``{decision: ship|cancel}`` for the order's open conflict, as the signed-in person."""
    ctx = context()
    body = json_body()
    decision = body.get("decision")
    if decision not in DECISIONS:
        raise Refusal("bad_request", "decision: expected ship or cancel")
    if not ORDER_ID_RE.fullmatch(order_id):
        raise Refusal("bad_request", "order id: 1-64 letters, digits, '-', '_', '.', '/'")
    who = principal().operator  # the signed-in person, never the request's own words
    station = station_of(None)
    audit: dict[str, Any] = {"decision": decision, "operator": who, "station": station}
    try:
        result = hub_call("POST", f"/api/v1/sync/decide/{quote(order_id, safe='')}",
                           {"decision": decision, "operator": who})
    except Refusal as e:
        _record(order_id, {**audit, "ok": False, "hub_status": e.status, "hub_error": e.code})
        raise
    command = result.get("command") if isinstance(result, dict) else None
    command = command if isinstance(command, dict) else {}
    _record(order_id, {**audit, "ok": True, "hub_status": 200, "hub_error": None,
                       "conflict_id": result.get("conflict_id"),
                       "command_id": command.get("command_id"), "command_kind": command.get("kind")})
    log.info("order %s: conflict decided %s by %s at %s", order_id, decision, who, station)
    ctx.bus.publish("conflict", {"order_id": order_id, "decision": decision, "operator": who})
    return jsonify({"order_id": order_id, "decision": decision, "operator": who,
                    "device_id": ctx.settings.device_id,
                    "conflict_id": result.get("conflict_id"), "command": command})


def _record(order_id: str, payload: dict[str, Any]) -> None:
    """The audit event of a decision (or a refused one): who, what, the hub's answer. Written
    even on a low disk (essential): the hub may already have acted on it."""
    ctx = context()
    ctx.store.write(lambda db: append_event(db, ctx.settings.device_id, "conflict_decided",
                                            payload, order_id=order_id), essential=True)
