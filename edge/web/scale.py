"""``GET /api/v1/scale``: the bench's scale and the open order's weight check (docs/scale.md)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.store.orders import load_order
from scanedge.edge.web import context

bp = Blueprint("scale", __name__)


@bp.get("/scale")
def get_scale():
    """What the scale reads now; with ``?order_id=``, that order's expected weight and the
    check the print gate would make (nothing is recorded: a label request weighs)."""
    ctx = context()
    order_id = request.args.get("order_id") or None
    if order_id is not None and len(order_id) > 64:
        raise Refusal("bad_request", "order_id: at most 64 characters")
    order = None
    if order_id is not None:
        order = load_order(ctx.store.read(), order_id)
        if order is None:
            raise Refusal("not_found", f"order {order_id} is not on this device")
    if ctx.weigher is None:
        return jsonify({"configured": False, "scale": None, "tolerance": None, "state": None,
                        "weight_kg": None, "live_kg": None, "error": None,
                        "order_id": order_id, "expected_kg": None, "check": None})
    return jsonify(ctx.weigher.view(order))
