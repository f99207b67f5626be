"""``/api/v1/orders/{order_id}/parcels``: an order split into parcels at the bench
(docs/parcels.md).

- ``GET``: the split (``count`` 0 when the order is not split): each parcel's label ``k/N``, its
  lines and counts, its tracking number, what stands before its label, its latest label job.
- ``POST`` ``{"count", "plan"?, "station"?}``: split the order (again); ``plan``: one list per
  parcel of the items of each order line in it. ``bad_split`` (409) says what does not fit.
- ``POST .../open`` ``{"parcel_no"}``: the bench's next items go into that parcel.
- ``POST .../{parcel_no}/label`` ``{"idempotency_key"?, "override"?: {"reason"}, "station"?}``:
  queue the parcel's label (202); ``not_ready`` (409) with the problems, ``frozen``.
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from scanedge.edge import parcels
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.web import context
from scanedge.edge.web.auth import operator, principal, station_of
from scanedge.edge.web.limits import MAX_ID, json_body, text_field

bp = Blueprint("parcels", __name__)


@bp.get("/orders/<order_id>/parcels")
def get_parcels(order_id: str):
    return jsonify(parcels.view(context().store.read(), order_id))


@bp.post("/orders/<order_id>/parcels")
def post_parcels(order_id: str):
    body = json_body()
    return jsonify(parcels.split_order(
        context(), order_id, body.get("count"), body.get("plan"),
        station=station_of(text_field(body, "station", 64)), operator=operator()))


@bp.post("/orders/<order_id>/parcels/open")
def post_open_parcel(order_id: str):
    body = json_body()
    return jsonify(parcels.open_parcel(
        context(), order_id, body.get("parcel_no"),
        station=station_of(text_field(body, "station", 64)), operator=operator()))


@bp.post("/orders/<order_id>/parcels/<int:parcel_no>/label")
def post_parcel_label(order_id: str, parcel_no: int):
    body = json_body()
    override = body.get("override")
    reason = None
    if override is not None:  # {"reason": ...}: the print gate's supervisor override, audited
        if not principal().can("override_print_gate"):
            raise Refusal("forbidden", f"the role {principal().role} may not override the print "
                          "gate: a supervisor may")
        if not isinstance(override, dict):
            raise Refusal("bad_request", "override: expected {\"reason\": ...}")
        reason = text_field(override, "reason", 200, required=True)
    return jsonify(parcels.print_label(
        context(), order_id, parcel_no, station=station_of(text_field(body, "station", 64)),
        operator=operator(), override_reason=reason,
        idempotency_key=text_field(body, "idempotency_key", MAX_ID))), 202
