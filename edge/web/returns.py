"""``/api/v1/returns/...``: receiving returns at the bench (docs/returns.md, "API").

The contract the ``/returns`` page codes against; the service is edge/returns.py, the rules
edge/domain/returns.py. The operator is the signed-in person, never the request's words.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.returns import STATES, ReturnsService
from scanedge.edge.scanning import MAX_CODE, MAX_SCAN_ID
from scanedge.edge.web import context, service
from scanedge.edge.web.auth import operator, station_of
from scanedge.edge.web.limits import choice_arg, json_body, scanned_code, text_field

bp = Blueprint("returns", __name__)
MAX_FIELD = 64
PHOTO_TYPES = ("image/jpeg", "image/png")


def _service() -> ReturnsService:
    return service("returns", "returns are not set up on this device")


@bp.get("/returns/lookup")
def get_lookup():
    code = request.args.get("code", "")
    if not code.strip() or len(code) > MAX_CODE:
        raise Refusal("bad_request", "code: what was scanned (an RMA id, the return's waybill "
                      "or the original order id)")
    return jsonify(_service().lookup(code))


@bp.post("/returns/receipts")
def post_receipt():
    body = json_body()
    station = station_of(text_field(body, "station", MAX_FIELD))
    unannounced = body.get("unannounced", False)
    if not isinstance(unannounced, bool):
        raise Refusal("bad_request", "unannounced: true or false")
    if unannounced:
        code = text_field(body, "code", MAX_CODE, required=True)
        rma_id = None
    else:
        rma_id = text_field(body, "rma_id", MAX_FIELD, required=True)
        code = text_field(body, "code", MAX_CODE)
    receipt, created = _service().start(rma_id=rma_id, code=code, station=station,
                                        operator=operator())
    return jsonify(receipt), 201 if created else 200


@bp.get("/returns/receipts")
def list_receipts():
    state = choice_arg("state", STATES, "open")
    return jsonify({"receipts": _service().receipts(state)})


@bp.get("/returns/receipts/<receipt_id>")
def get_receipt(receipt_id: str):
    return jsonify(_service().get(receipt_id))


@bp.post("/returns/receipts/<receipt_id>/items")
def post_item(receipt_id: str):
    body = json_body()
    code = scanned_code(body, MAX_CODE)
    scan_id = text_field(body, "scan_id", MAX_SCAN_ID)
    return jsonify(_service().scan_item(receipt_id, code, scan_id=scan_id, operator=operator()))


@bp.post("/returns/receipts/<receipt_id>/photos")
def post_photo(receipt_id: str):
    kind = (request.mimetype or "").lower()
    if kind not in PHOTO_TYPES:
        raise Refusal("not_an_image", "send the photo's bytes as the body, Content-Type "
                      "image/jpeg or image/png")
    limit = int(context().settings.max_image_mb * 1024 * 1024)
    data = request.stream.read(limit + 1)  # never more than the limit and one byte in memory
    if len(data) > limit:
        raise Refusal("too_large", f"the photo is larger than {context().settings.max_image_mb:g}"
                      " MB (max_image_mb)")
    out = _service().add_photo(receipt_id, data, operator=operator())
    return jsonify(out), 201


@bp.put("/returns/receipts/<receipt_id>/lines/<path:sku>")
def put_line(receipt_id: str, sku: str):
    body = json_body()
    if "condition" not in body:
        raise Refusal("bad_condition", "condition: required (resaleable, damaged, used, "
                      "missing_parts, or null)")
    condition = body["condition"]
    if condition is not None and not isinstance(condition, str):
        raise Refusal("bad_condition", "condition: a string or null")
    return jsonify(_service().set_condition(receipt_id, sku, condition, operator=operator()))


@bp.post("/returns/receipts/<receipt_id>/finish")
def post_finish(receipt_id: str):
    if request.get_data(cache=True):
        json_body()  # {} or nothing: anything else is a malformed request
    return jsonify(_service().finish(receipt_id, operator=operator()))
