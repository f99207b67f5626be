"""``/api/v1/pick/...``: waves and the picker's steps (docs/picking.md)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.picking import PickService
from scanedge.edge.web import service
from scanedge.edge.web.auth import operator, station_of
from scanedge.edge.web.limits import json_body

bp = Blueprint("picking", __name__)


def _service() -> PickService:
    return service("picking", "picking is not set up on this device", "no_picking")


def _station(body: dict[str, Any] | None = None) -> str:
    asked = (body or {}).get("station") if body else request.args.get("station")
    if asked is not None and not isinstance(asked, str):
        raise Refusal("bad_request", "station: expected a string")
    return station_of(asked)


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise Refusal("bad_request", f"{key}: a whole number")
    return value


@bp.get("/pick/waves")
def get_waves():
    return jsonify(_service().overview())


@bp.post("/pick/waves")
def post_build():
    """Regroup the open orders into waves now (they are also rebuilt every interval)."""
    return jsonify(_service().build())


@bp.post("/pick/claim")
def post_claim():
    body = json_body()
    wave_id = body.get("wave_id")
    if wave_id is not None and (not isinstance(wave_id, str) or len(wave_id) > 64):
        raise Refusal("bad_request", "wave_id: a string")
    return jsonify(_service().claim(wave_id, _station(body), operator()))


@bp.get("/pick/current")
def get_current():
    return jsonify(_service().current(_station()))


@bp.post("/pick/scans")
def post_pick_scan():
    body = json_body()
    code = body.get("code")
    if not isinstance(code, str):
        raise Refusal("bad_request", "code: required, a string (what the scanner typed)")
    return jsonify(_service().scan(_station(body), operator(), code))


@bp.post("/pick/short")
def post_short():
    body = json_body()
    reason = body.get("reason")
    if not isinstance(reason, str):
        raise Refusal("bad_request", "reason: required")
    return jsonify(_service().short(_station(body), operator(), _int(body, "stop_no"),
                         _int(body, "found"), reason))


@bp.post("/pick/skip")
def post_skip():
    body = json_body()
    return jsonify(_service().skip(_station(body), operator(), _int(body, "stop_no")))
