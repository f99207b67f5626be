"""Waybill capture over HTTP (docs/waybill.md).

``POST /api/v1/waybills`` (multipart ``image``; form fields ``order_id``, ``station``,
``distributor``, all optional; the operator is the signed-in person): reads the photo like
``scanedge waybill --json``, stores the photo and the result, and attaches the number to the
order when nothing is in doubt.
Answers ``201`` with the reader's JSON plus ``capture_id``, ``status`` (``attached`` or
``needs_confirmation``), ``attached`` and ``checks``. Bad photos: 400/413; unknown order: 404;
frozen order: 409 (an interception is recorded).

``POST /api/v1/waybills/<capture_id>/confirm`` ``{tracking_number, carrier?,
order_id?, accept_rule_exception?}``: a person's one tap, candidate pick or typed number;
validated against the carrier table or the distributor's own format (422), the distributor's
rules (422 ``rule_failed`` with the problems, unless confirmed as an exception), refused for a
frozen order or a number already on another order (409). ``GET /api/v1/waybills/<capture_id>``:
the stored capture. ``GET /api/v1/waybills/orders``: the orders a waybill may be captured for.

A signed-in ``distributor`` names the order (400 ``order_required``) and sees only its own
orders and captures: another's answers 404 exactly like one that does not exist.
"""

from __future__ import annotations

import threading

from flask import Blueprint, current_app, jsonify, request

from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.web import context
from scanedge.edge.web.auth import operator as auth_operator
from scanedge.edge.web.auth import principal as auth_principal
from scanedge.edge.web.auth import station_of

bp = Blueprint("waybills", __name__)

_service_lock = threading.Lock()
MAX_FIELD = 64


def _service():
    from scanedge.edge.waybills import WaybillCaptures

    with _service_lock:
        svc = current_app.extensions.get("scanedge_waybills")
        if svc is None:
            ctx = context()
            svc = current_app.extensions["scanedge_waybills"] = WaybillCaptures(ctx.settings,
                                                                                ctx.store)
        return svc


def _field(source, name: str) -> str | None:
    value = source.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_FIELD or not value.strip():
        raise Refusal("bad_field", f"{name}: 1-{MAX_FIELD} characters")
    return value.strip()


def _as_distributor() -> str | None:
    """A signed-in distributor's user id: it sees and touches only its own orders (an order
    names it in its ``distributor`` key); None for every other role."""
    p = auth_principal()
    return p.id if p.role == "distributor" else None


@bp.get("/waybills/orders")
def list_orders():
    """The orders the caller may capture a waybill for (a distributor: its own only)."""
    return jsonify({"orders": _service().orders(as_distributor=_as_distributor())})


@bp.post("/waybills")
def post_waybill():
    from scanedge.ocr import memory
    from scanedge.ocr.images import limits_from_settings
    from scanedge.ocr.waybill import read_waybill

    upload = request.files.get("image")
    if upload is None:
        raise Refusal("missing_image", "send the photo as multipart/form-data field 'image'")
    order_id, station, distributor = (
        _field(request.form, k) for k in ("order_id", "station", "distributor"))
    station, operator = station_of(station), auth_operator()
    settings = context().settings
    svc = _service()
    as_distributor = _as_distributor()
    svc.check_order(order_id, station=station, operator=operator,
                    as_distributor=as_distributor)
    memory.configure(settings.image_memory_mb)
    limits = limits_from_settings(settings)
    data = upload.stream.read(limits.get("max_bytes", 20 * 1024 * 1024) + 1)
    # Admitted by ocr.memory (one read per CPU, within image_memory_mb), read at most 4096 px a
    # side: the photo is never decoded whole here.
    result = read_waybill(data, file=upload.filename or "", engine=settings.waybill_ocr_engine,
                          **limits).to_json()
    stored = svc.capture(data, result, order_id=order_id, station=station, operator=operator,
                         distributor=distributor, as_distributor=as_distributor)
    return jsonify({**result, **stored}), 201


@bp.post("/waybills/<capture_id>/confirm")
def confirm_waybill(capture_id: str):

    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Refusal("bad_json", "send a JSON object {tracking_number, carrier?, operator}")
    number = body.get("tracking_number")
    if not isinstance(number, str) or not number.strip():
        raise Refusal("missing_tracking_number", "tracking_number is required")
    carrier, order_id = _field(body, "carrier"), _field(body, "order_id")
    exception = body.get("accept_rule_exception", False)
    if not isinstance(exception, bool):
        raise Refusal("bad_field", "accept_rule_exception: true or false")
    # who confirmed is the signed-in person, never the request's own words
    out = _service().confirm(capture_id, tracking_number=number, carrier=carrier,
                             operator=auth_operator(), order_id=order_id,
                             as_distributor=_as_distributor(), accept_rule_exception=exception)
    return jsonify(out)


@bp.get("/waybills/<capture_id>")
def get_waybill(capture_id: str):
    found = _service().get(capture_id, as_distributor=_as_distributor())
    if found is None:
        raise Refusal("unknown_capture", f"no capture {capture_id}")
    return jsonify(found)
