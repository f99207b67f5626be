"""``/api/v1/orders/{order_id}/evidence``: the bench's pack video and photos (docs/evidence.md).

``POST`` the recording's bytes as the body (``Content-Type`` video/webm, video/mp4, image/jpeg
or image/png; ``?duration_s=`` for a video, as the recorder measured it; ``?station=``): 201
with the record when new, 200 with the first record when the same clip was sent before.
Refusals: ``bad_evidence`` (400), ``clip_too_short`` (422), ``too_large`` (413),
``unknown_order`` (404), ``disk_full`` (507), and a photo's image errors (``not_an_image`` ...).
``GET`` answers the policy, the order's evidence and what is still missing.
"""

from __future__ import annotations

import math

from flask import Blueprint, jsonify, request

from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.evidence import EvidenceService
from scanedge.edge.web import context, service
from scanedge.edge.web.auth import operator, station_of

bp = Blueprint("evidence", __name__)
MAX_FIELD = 64


def _service() -> EvidenceService:
    return service("evidence", "pack evidence is not set up on this device")


def _duration() -> float | None:
    raw = request.args.get("duration_s")
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise Refusal("bad_evidence", "duration_s: the recording's length in seconds, a number")
    return value


@bp.post("/orders/<order_id>/evidence")
def post_evidence(order_id: str):
    service = _service()
    station = request.args.get("station") or None
    if station is not None and len(station) > MAX_FIELD:
        raise Refusal("bad_request", f"station: at most {MAX_FIELD} characters")
    duration = _duration()
    mime = request.mimetype or ""
    limit = service.max_clip_bytes
    # a video is larger than max_body_mb allows other bodies: this route has its own cap
    request.max_content_length = limit + 1
    data = request.stream.read(limit + 1)  # never more than the cap and one byte in memory
    row, new = service.add(order_id, data, mime=mime, duration_s=duration,
                           station=station_of(station), operator=operator())
    return jsonify(row), 201 if new else 200


@bp.get("/orders/<order_id>/evidence")
def get_evidence(order_id: str):
    return jsonify(_service().status(order_id))


@bp.get("/evidence/uploads")
def get_uploads():
    """The upload to the hub: blobs and bytes waiting, failures in a row, the last error."""
    _service()
    uploads = context().uploads
    if uploads is None:  # no hub: nothing is sent
        return jsonify({"hub": False, "pending_blobs": 0, "pending_bytes": 0, "failures": 0,
                        "last_error": None, "rate_mbps": None})
    return jsonify({"hub": True, **uploads.status()})
