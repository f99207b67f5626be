"""``POST /api/v1/orders/{order_id}/ewaybill``: the bench's 打印面单 (docs/carriers.md).

Body ``{"carrier"?: code}``. Answers 200 ``{"ewaybill", "job", "source"}`` (``job``: the print
job's id; ``source``: ``hub``) or a refusal: ``ewaybill_gate`` (409, the print gate's problems),
``hub_unreachable`` (503, waiting for the hub), ``carrier_refused`` (502, the carrier's code and
message), ``frozen``, ``unknown_order``, ``no_carrier_account``, and the printer's refusals
(``paper_too_narrow`` ...; the number is kept, a tap again prints it).
"""

from __future__ import annotations

from flask import Blueprint, jsonify

from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.ewaybills import request_ewaybill
from scanedge.edge.web import context
from scanedge.edge.web.auth import operator, station_of
from scanedge.edge.web.limits import json_body

bp = Blueprint("ewaybill", __name__)


@bp.post("/orders/<order_id>/ewaybill")
def post_ewaybill(order_id: str):
    body = json_body()
    carrier = body.get("carrier")
    if carrier is not None and (not isinstance(carrier, str) or not 1 <= len(carrier) <= 16):
        raise Refusal("bad_request", "carrier: a carrier code such as SF, ZTO, JT")
    station = body.get("station")
    if station is not None and (not isinstance(station, str) or not 1 <= len(station) <= 64):
        raise Refusal("bad_request", "station: 1-64 characters")
    return jsonify(request_ewaybill(context(), order_id, carrier=carrier,
                                    station=station_of(station), operator=operator()))
