"""``/api/v1/dock/...``: the dock handover (装车交接, docs/dock.md, "API").

The contract the ``/dock`` page codes against; the service is edge/dock.py, the rules
edge/domain/dock.py. The operator is the signed-in person, never the request's words.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from scanedge.edge.dock import STATES, DockService, manifest_csv
from scanedge.edge.domain.orders import ORDER_ID_RE
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.scanning import MAX_CODE, MAX_SCAN_ID
from scanedge.edge.web import service
from scanedge.edge.web.auth import operator, station_of
from scanedge.edge.web.limits import choice_arg, json_body, scanned_code, text_field

bp = Blueprint("dock", __name__)
MAX_FIELD = 64


def _service() -> DockService:
    return service("dock", "the dock is not set up on this device")


@bp.post("/dock/batches")
def post_batch():
    body = json_body()
    station = station_of(text_field(body, "station", MAX_FIELD))
    carrier = text_field(body, "carrier", MAX_FIELD)  # none: a mixed truck
    batch, created = _service().open_batch(carrier=carrier, station=station, operator=operator())
    return jsonify(batch), 201 if created else 200


@bp.get("/dock/batches")
def list_batches():
    state = choice_arg("state", STATES, "open")
    return jsonify({"batches": _service().batches(state)})


@bp.get("/dock/batches/<batch_id>")
def get_batch(batch_id: str):
    return jsonify(_service().get(batch_id))


@bp.post("/dock/batches/<batch_id>/scans")
def post_scan(batch_id: str):
    body = json_body()
    code = scanned_code(body, MAX_CODE)
    scan_id = text_field(body, "scan_id", MAX_SCAN_ID)
    return jsonify(_service().scan(batch_id, code, scan_id=scan_id, operator=operator()))


@bp.delete("/dock/batches/<batch_id>/parcels/<path:order_id>")
def delete_parcel(batch_id: str, order_id: str):
    if not ORDER_ID_RE.fullmatch(order_id):
        raise Refusal("bad_request", "order_id: not an order id")
    return jsonify(_service().remove(batch_id, order_id, operator=operator()))


@bp.post("/dock/batches/<batch_id>/close")
def post_close(batch_id: str):
    if request.get_data(cache=True):
        json_body()  # an optional empty object; anything else is a clear 400
    return jsonify(_service().close(batch_id, operator=operator()))


@bp.get("/dock/batches/<batch_id>/manifest.csv")
def get_manifest_csv(batch_id: str):
    doc = _service().manifest(batch_id)
    return Response(manifest_csv(doc), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="manifest-{batch_id}.csv"'})


@bp.post("/dock/batches/<batch_id>/manifest/print")
def post_print_manifest(batch_id: str):
    if request.get_data(cache=True):
        json_body()
    out = _service().print_manifest(batch_id, operator=operator())
    return jsonify(out), 201 if out["created"] else 200
