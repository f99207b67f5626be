"""``/api/v1``: scans and orders."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, jsonify, request

from scanedge.edge.context import EdgeContext
from scanedge.edge.domain.access import Principal
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.scanning import PendingScan, bench_view, check_name, order_view
from scanedge.edge.store.orders import load_freeze, load_pack_state
from scanedge.edge.store.outbox import append_event
from scanedge.edge.web import context
from scanedge.edge.web.auth import operator, station_for, station_of
from scanedge.edge.web.limits import json_body

bp = Blueprint("api", __name__)


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Refusal("bad_request", f"{key}: expected a string")
    return value


@bp.post("/scans")
def post_scan():
    # the edge's server answers this path on its event loop (edge/web/scan_route.py); this
    # route serves the Flask app alone (tests, tools), from the same begin_scan
    ctx = context()
    pending = begin_scan(ctx, json_body(), g.get("principal"))
    return jsonify(pending.done(ctx.store.write(pending.apply)))


def begin_scan(ctx: EdgeContext, body: dict[str, Any], who: Principal | None) -> PendingScan:
    """A scan request's body, checked and handed to the scan service (its first step)."""
    code = body.get("code")
    if not isinstance(code, str):
        raise Refusal("bad_request", "code: required, a string (what the scanner typed)")
    if who is None:
        raise Refusal("unauthorized", "sign in first")
    return ctx.scans.begin(
        code,
        station=station_for(_optional_text(body, "station"), who, ctx.settings.station),
        operator=who.operator,  # the signed-in person, never the request's own words
        scan_id=_optional_text(body, "scan_id"),
        acks=_id_list(body, "acks"),
    )  # a bad code, station or scan id: 400 (413 for a huge code), from the scan service


def _id_list(body: dict[str, Any], key: str, limit: int = 20) -> list[str]:
    value = body.get(key) or []
    if (not isinstance(value, list) or len(value) > limit
            or not all(isinstance(v, str) and 0 < len(v) <= 64 for v in value)):
        raise Refusal("bad_request", f"{key}: a list of at most {limit} ids")
    return value


@bp.post("/orders/<order_id>/gifts/<int:gift_no>/confirm")
def confirm_gift(order_id: str, gift_no: int):
    """A packer's tap: this gift is in the box (a scan of the gift's own code does the same)."""
    from scanedge.edge.store import bench

    ctx = context()
    who, station = operator(), station_of(None)  # the writer thread has no request

    def write(db):
        state = load_pack_state(db, order_id)
        if state is None:
            raise Refusal("not_found", f"order {order_id} is not on this device")
        if not 0 <= gift_no < len(state.order.gifts):
            raise Refusal("not_found", f"order {order_id} has no gift #{gift_no}")
        if bench.confirm_gift(db, order_id, gift_no, how="tap", operator=who):
            append_event(db, ctx.settings.device_id, "gift_confirmed", {
                "gift_no": gift_no, "gift": state.order.gifts[gift_no].name, "how": "tap",
                "operator": who, "station": station}, order_id=order_id)
        return order_view(state, bench_view(db, state, station, ctx.settings.print_policy))

    view = ctx.store.write(write)
    ctx.bus.publish("order_view", {"station": station, "order": view})
    return jsonify(view)


@bp.post("/orders/<order_id>/notes/<command_id>/read")
def read_note(order_id: str, command_id: str):
    """A person at the station read the order's new note (备注): its scans go on."""
    ctx = context()
    if ctx.notes is None:
        raise Refusal("not_found", "this device keeps no notes")
    body = json_body() if request.get_data(cache=True) else {}
    station = station_of(_optional_text(body, "station"))
    check_name("station", station, 64)
    return jsonify(ctx.notes.read(order_id, command_id, operator=operator(), station=station))


@bp.get("/todo")
def get_todo():
    """The station's to-do list: orders not printed yet, P0 on top, with how long each waited."""
    from datetime import UTC, datetime

    from scanedge.edge.store import bench

    station = station_of(request.args.get("station"))
    now = datetime.now(UTC)
    orders = bench.station_todo(context().store.read(), station)
    for o in orders:
        since = datetime.fromisoformat(str(o["since"]).replace("Z", "+00:00"))
        o["waiting_s"] = max(0, int((now - since).total_seconds()))
    return jsonify({"station": station, "orders": orders,
                    "p0": sum(1 for o in orders if o["priority"] == "P0")})


@bp.get("/orders/<order_id>")
def get_order(order_id: str):
    ctx = context()
    db = ctx.store.read()
    state = load_pack_state(db, order_id)
    if state is None:
        raise Refusal("not_found", f"order {order_id} is not on this device")
    freeze = load_freeze(db, order_id)
    view = order_view(state, bench_view(db, state, station_of(request.args.get("station")),
                                        ctx.settings.print_policy))
    view["recipient"] = state.order.recipient
    view["freeze"] = None if freeze is None else {
        "reason": freeze.reason, "issued_at": freeze.issued_at.isoformat()}
    return jsonify(view)


@bp.get("/alarms")
def list_alarms():
    """Active alarms (``?all=1``: the latest 50, acknowledged ones too)."""
    center = context().alarms
    if request.args.get("all"):
        alarms = center.recent()
    else:
        alarms = center.active(request.args.get("station") or None)
    return jsonify({"alarms": [a.as_json() for a in alarms]})


@bp.post("/alarms/<alarm_id>/ack")
def ack_alarm(alarm_id: str):
    # who acknowledged is the signed-in person (docs/security.md); 404 for an unknown alarm
    return jsonify(context().alarms.acknowledge(alarm_id, operator()).as_json())
