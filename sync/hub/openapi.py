"""The hub's HTTP API as an OpenAPI 3.1 document, written by hand; ``GET /api/v1/openapi.json``.

Checked like the edge's (``tests/test_openapi.py``): the Flask rules and the ASGI device stream
are exactly its paths, and schemathesis fuzzes a real hub against it (admin and device tokens).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from scanedge.edge.domain.countdown import STATES
from scanedge.edge.domain.orders import MAX_DOC_CHARS, MAX_GIFTS, MAX_LINES, MAX_TEXT, MAX_VERSION, PRIORITIES
from scanedge.edge.domain.packing import FREEZE_REASONS
from scanedge.edge.web.schema import (
    ANY_OBJ,
    BOOL,
    INT,
    NUM,
    OPT_STR,
    STR,
    json_body,
    json_content,
    nullable,
    obj,
    ok_json,
    path_param,
    query,
    ref,
)
from scanedge.sync.protocol import MAX_BATCH_EVENTS

bp = Blueprint("hub_openapi", __name__)

ERROR_TEXT = {
    400: "malformed request: not JSON, a wrong type, a bad value (the message names the field)",
    401: "no 'Authorization: Bearer <token>'",
    403: "the token may not do this (a device token on the order system's API, another site, "
         "a device not allowed to decide conflicts: cannot_decide ...)",
    404: "no such order at a site of this token",
    409: "refused in this state (an order cannot change site; no open conflict to decide)",
    413: "too large: the body, or too many events in one push",
    414: "the path and query are longer than 8 KiB",
    422: "a checksum did not match (checksum_mismatch: nothing was kept, send it again)",
    429: "this device is over its rate for this call (Retry-After)",
    431: "a header over 8 KiB, headers over 32 KiB in all, or more than 100",
    502: "the carrier refused the e-waybill (carrier_refused: its code and message)",
    503: "the carrier did not answer usably (carrier_unavailable): retry, it cannot make a "
         "second waybill",
}
ADMIN = (400, 401, 403, 414, 431)
DEVICE = (400, 401, 403, 414, 429, 431)


def responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    out = dict(ok)
    for status in sorted(set(errors)):
        out[str(status)] = {"description": ERROR_TEXT[status], "content": json_content(ref("Error"))}
    return out


def op(summary: str, resp: dict[str, Any], *, params: list[dict[str, Any]] | None = None,
       body: dict[str, Any] | None = None, tag: str, public: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": summary, "responses": resp, "tags": [tag]}
    if params:
        out["parameters"] = params
    if body:
        out["requestBody"] = body
    if public:
        out["security"] = []
    return out


ORDER_ID = path_param("order_id", "the order's id (1-64 letters, digits, '-', '_', '.', '/')")
LIMIT = query("limit", {"type": "integer", "minimum": 1, "maximum": 5000}, "at most this many")
SITE = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}$"}
TEXT = {"type": ["string", "integer"], "maxLength": MAX_TEXT}

ORDER_DOC = obj({"lines": {"type": "array", "minItems": 1, "maxItems": MAX_LINES, "items": obj(
    {"sku": TEXT}, {"qty": {"type": "integer", "minimum": 1, "maximum": 100_000},
                    "name": TEXT, "lot": TEXT, "expires": {"type": "string", "format": "date"}})}},
    {"order_id": STR, "version": {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
     "priority": {"type": "string", "enum": list(PRIORITIES)}, "station": TEXT,
     "tracking_number": TEXT, "carrier": TEXT, "lane": TEXT, "site": SITE,
     "gifts": {"type": "array", "maxItems": MAX_GIFTS, "items": obj({"name": TEXT}, {
         "qty": {"type": "integer", "minimum": 1, "maximum": 100_000}})},
     "recipient": ANY_OBJ})
ORDER_DOC["description"] = ("Order JSON (docs/interfaces.md); unknown keys are kept. At most "
                            f"{MAX_DOC_CHARS} characters as JSON, nesting at most 16.")
COMMAND = obj({"command_id": STR, "order_id": STR, "kind": STR, "issued_at": STR, "version": INT,
               "site": STR, "signature": STR, "hub_key": STR},
              {"change_seq": INT, "reason": STR, "conflict": ANY_OBJ})
CHANGE = obj({"seq": INT, "kind": STR, "order_id": OPT_STR, "payload": ANY_OBJ, "created_at": STR,
              "site": STR})
HUB_INFO = obj({"key_id": STR, "database_id": STR}, {"last_seq": INT, "from_mark": OPT_STR})
SCHEMAS = {
    "Error": obj({"error": STR, "message": STR}),
    "Order": ORDER_DOC,
    "Command": COMMAND,
    "Change": CHANGE,
}


COUNTDOWNS = obj({"countdowns": {"type": "array", "items": obj({
    "command_id": STR, "order_id": STR, "site": STR, "kind": STR, "issued_at": STR,
    "effective_by": STR, "countdown_s": NUM, "remaining_s": NUM,
    "state": {"type": "string", "enum": list(STATES)}, "expected": INT, "applied": INT,
    "missing": {"type": "array", "items": STR}, "missing_count": INT,
    "late": {"type": "array", "items": ANY_OBJ}, "not_in_time": {"type": "array", "items": STR}},
    {"reason": OPT_STR, "category": OPT_STR, "settled_at": OPT_STR})}, "now": STR})
PARTY = obj({}, {"name": STR, "phone": STR, "address": STR})
EWAYBILL = obj({"carrier": STR, "number": STR, "order_id": STR, "sort_code": STR,
                "package_center": STR, "recipient": PARTY, "sender": PARTY, "qr": OPT_STR,
                "service": STR, "created_at": STR})
COUNTDOWN_STATE = query("state", {"type": "string", "enum": list(STATES)}, "only these")


def _paths() -> dict[str, Any]:
    site_body = json_body(obj({}, {"site": SITE}), required=False)
    health = op("the hub's health, its signing key's id", responses(ok_json(obj({
        "status": STR, "role": STR, "storage": STR, "last_change": INT, "signing_key_id": STR},
        {"database_id": STR})), 414, 431), tag="health", public=True)
    return {
        "/healthz": {"get": health},
        "/supervisor": {"get": op(
            "the supervisor's page: countdowns and fuses, live (asks for an admin token)",
            {"200": {"description": "the page", "content": {"text/html": {"schema": STR}}}},
            tag="health", public=True)},
        "/api/v1/healthz": {"get": health},
        "/api/v1/openapi.json": {"get": op("this document", responses(ok_json(ANY_OBJ), 414, 431),
                                           tag="health", public=True)},
        "/api/v1/orders/{order_id}": {"get": op(
            "the order as the hub keeps it (a live e-waybill's number is its tracking number), "
            "its e-waybills, newest first, and loaded: the dock that put it on a truck",
            responses(ok_json(obj({
                "order": ANY_OBJ, "tracking_number": OPT_STR, "carrier": OPT_STR,
                "ewaybill": nullable(EWAYBILL), "ewaybills": {"type": "array", "items": obj({
                    "attempt": INT, "carrier": STR, "carrier_order_id": STR, "state": STR,
                    "number": OPT_STR, "error": OPT_STR, "device_id": OPT_STR,
                    "created_at": STR, "updated_at": STR})}}, {"loaded": nullable(obj({
                        "device_id": STR, "batch_id": OPT_STR, "carrier": OPT_STR,
                        "tracking_number": OPT_STR, "station": OPT_STR, "operator": OPT_STR,
                        "loaded_at": OPT_STR}))})), *ADMIN, 404),
            params=[ORDER_ID], tag="orders"), "put": op(
            "create or replace an order; a change bumps its version", responses(ok_json(obj({
                "order_id": STR, "version": INT, "changed": BOOL, "site": STR})),
                *ADMIN, 409, 413), params=[ORDER_ID], body=json_body(ref("Order")), tag="orders")},
        "/api/v1/orders/{order_id}/freeze": {"post": op(
            "freeze an order on every device of its site (a signed command)", responses(
                ok_json(ref("Command"), 202, "recorded"), *ADMIN, 404, 413), params=[ORDER_ID],
            body=json_body(obj({"reason": {"type": "string", "enum": list(FREEZE_REASONS)}},
                               {"site": SITE})), tag="orders")},
        "/api/v1/orders/{order_id}/unfreeze": {"post": op(
            "lift an order's freeze", responses(ok_json(ref("Command"), 202, "recorded"),
                                                *ADMIN, 404, 413),
            params=[ORDER_ID], body=site_body, tag="orders")},
        "/api/v1/orders/{order_id}/expedite": {"post": op(
            "expedite an order (with a cancel close by: needs_decision)", responses(
                ok_json(ref("Command"), 202, "recorded"), *ADMIN, 404, 413),
            params=[ORDER_ID], body=site_body, tag="orders")},
        "/api/v1/orders/{order_id}/decide": {"post": op(
            "decide an expedite/cancel conflict", responses(ok_json(obj({
                "conflict_id": STR, "decision": STR, "command": ref("Command")})),
                *ADMIN, 404, 409, 413), params=[ORDER_ID],
            body=json_body(obj({"decision": {"type": "string", "enum": ["cancel", "ship"]},
                                "operator": {"type": "string", "minLength": 1, "maxLength": 64}})),
            tag="orders")},
        "/api/v1/orders/{order_id}/note": {"post": op(
            "a note (备注) for the packer: blocks the order's scans at the bench until read "
            "(signed, on a countdown)", responses(ok_json(ref("Command"), 202, "recorded"),
                                                 *ADMIN, 404, 413), params=[ORDER_ID],
            body=json_body(obj({"note": {"type": "string", "minLength": 1, "maxLength": 500}},
                               {"site": SITE})), tag="orders")},
        "/api/v1/countdowns": {"get": op(
            "cancel, address-change and note commands against their countdown (生效倒计时); "
            "state=tripped: the fuses (熔断)", responses(ok_json(COUNTDOWNS), *ADMIN),
            params=[COUNTDOWN_STATE, query("since", STR, "issued at or after (ISO time)"), LIMIT],
            tag="orders")},
        "/api/v1/conflicts": {"get": op("expedite/cancel conflicts", responses(ok_json(obj({
            "conflicts": {"type": "array", "items": ANY_OBJ}})), *ADMIN),
            params=[query("open", STR, "1: only those waiting for a decision"), LIMIT], tag="orders")},
        "/api/v1/freezes": {"get": op("freezes with the devices' acknowledgements", responses(
            ok_json(obj({"freezes": {"type": "array", "items": ANY_OBJ}, "within_s": NUM})), *ADMIN),
            params=[query("within_s", {"type": "number", "minimum": 0}, "late after this many s"),
                    query("unacked", STR, "1: only freezes some device did not acknowledge in time"),
                    query("since", STR, "issued at or after (ISO time)"),
                    query("acks", {"type": "string", "enum": ["all"]}, "a row for every device"),
                    LIMIT], tag="orders")},
        "/api/v1/reports/interceptions": {"get": op(
            "the interception report over the pushed events", responses({"200": {
                "description": "the report", "content": {
                    "application/json": {"schema": obj({"since": STR, "total": ANY_OBJ,
                                                        "rows": {"type": "array"}})},
                    "text/markdown": {"schema": STR}}}}, *ADMIN),
            params=[query("since", STR, "YYYY-MM-DD or an ISO time"),
                    query("format", {"type": "string", "enum": ["json", "markdown"]}, "markdown: a table")],
            tag="reports")},
        "/api/v1/events": {"get": op("the devices' events in the hub's order", responses(ok_json(obj({
            "events": {"type": "array", "items": ANY_OBJ}, "next": nullable(INT)})), *ADMIN),
            params=[query("order_id", STR, "one order's"), query("device_id", STR, "one device's"),
                    query("after", {"type": "integer", "minimum": 0}, "hub_seq to resume after"),
                    LIMIT], tag="reports")},
        "/api/v1/devices": {"get": op("the registered devices", responses(ok_json(obj({
            "devices": {"type": "array", "items": ANY_OBJ}})), *ADMIN), tag="reports")},
        "/api/v1/sync/push": {"post": op(
            "a device's events, oldest first; each answered accepted, duplicate or rejected:<why>",
            responses(ok_json(obj({"results": {"type": "array", "items": ANY_OBJ}}, {"hub": HUB_INFO})),
                      *DEVICE, 413),
            body=json_body(obj({"events": {"type": "array", "maxItems": 5 * MAX_BATCH_EVENTS,
                                           "items": ANY_OBJ}})), tag="devices")},
        "/api/v1/sync/countdowns": {"get": op(
            "the countdowns of the device's site (its supervisor page)",
            responses(ok_json(COUNTDOWNS), *DEVICE), params=[COUNTDOWN_STATE, LIMIT],
            tag="devices")},
        "/api/v1/sync/acks": {"post": op(
            "a device applied these freezes", responses(ok_json(obj({"stored": INT})), *DEVICE, 413),
            body=json_body(obj({"acks": {"type": "array", "maxItems": 1000, "items": obj(
                {"command_id": STR}, {"order_id": STR, "applied_at": STR, "effects_at": OPT_STR,
                                      "result": STR})}})), tag="devices")},
        "/api/v1/sync/conflicts": {"get": op(
            "the open expedite/cancel conflicts of the device's site; can_decide: this device "
            "may decide them", responses(ok_json(obj({
                "conflicts": {"type": "array", "items": ANY_OBJ}, "can_decide": BOOL,
                "device_id": STR, "site": STR})), *DEVICE), tag="devices")},
        "/api/v1/sync/decide/{order_id}": {"post": op(
            "a supervisor at this device decides a conflict of its site (403 cannot_decide "
            "unless granted: scanedge hub device ID --can-decide)", responses(ok_json(obj({
                "conflict_id": STR, "decision": STR, "decided_by": STR, "decided_device": STR,
                "command": ref("Command")})), *DEVICE, 404, 409, 413), params=[ORDER_ID],
            body=json_body(obj({"decision": {"type": "string", "enum": ["cancel", "ship"]},
                                "operator": {"type": "string", "minLength": 1, "maxLength": 64}})),
            tag="devices")},
        "/api/v1/sync/ewaybill/{order_id}": {"post": op(
            "the order's e-waybill from its site's carrier account (the live one again if it has "
            "one: replayed); docs/carriers.md", responses(ok_json(obj({
                "ewaybill": EWAYBILL, "replayed": BOOL})), *DEVICE, 404, 409, 413, 502, 503),
            params=[ORDER_ID], body=json_body(obj({}, {"carrier": STR}), required=False),
            tag="devices")},
        "/api/v1/sync/pull": {"get": op(
            "the device's site's changes after cursor", responses(ok_json(obj({
                "changes": {"type": "array", "items": ref("Change")}, "cursor": INT, "more": BOOL},
                {"hub": HUB_INFO})), *DEVICE),
            params=[query("cursor", {"type": "integer", "minimum": 0}, "the last change applied"),
                    LIMIT], tag="devices")},
        "/api/v1/sync/stream": {"get": op(
            "Server-Sent Events: the site's changes as they happen (id: the change's seq)",
            responses({"200": {"description": "the event stream",
                               "content": {"text/event-stream": {"schema": STR}}}}, *DEVICE),
            params=[query("cursor", {"type": "integer", "minimum": 0}, "resume after"),
                    {"name": "Last-Event-ID", "in": "header", "required": False, "schema": STR,
                     "description": "as EventSource sends it"}], tag="devices")},
        **_returns_paths(),
        **_evidence_paths(),
    }


# Pack evidence (docs/evidence.md): sync/hub/blobs.py
SHA256 = path_param("sha256", "the blob's SHA-256, 64 lowercase hex digits",
                    {"type": "string", "pattern": "^[0-9a-f]{64}$"})
BLOB_STATE = obj({"sha256": STR, "offset": nullable(INT), "complete": BOOL}, {"stored": BOOL})


def _evidence_paths() -> dict[str, Any]:
    return {
        "/api/v1/sync/blobs/{sha256}": {
            "get": op("how many bytes of a pack-evidence blob the hub holds (offset; null once "
                      "complete): resume from there", responses(ok_json(BLOB_STATE), *DEVICE, 404),
                      params=[SHA256], tag="devices"),
            "put": op("one chunk of a blob: Content-Range bytes START-LAST/SIZE, X-Chunk-SHA256; "
                      "409 offset_mismatch says the hub's offset; 422 checksum_mismatch writes "
                      "nothing; the last chunk completes it (its SHA-256 checked)",
                      responses(ok_json(BLOB_STATE), *DEVICE, 404, 409, 413, 422),
                      params=[SHA256, {"name": "Content-Range", "in": "header", "required": True,
                                       "schema": STR, "description": "bytes START-LAST/SIZE"},
                              {"name": "X-Chunk-SHA256", "in": "header", "required": True,
                               "schema": STR, "description": "the chunk's SHA-256, hex"}],
                      body={"required": True, "content": {"application/octet-stream": {
                          "schema": {"type": "string", "format": "binary"}}}},
                      tag="devices")},
        "/api/v1/orders/{order_id}/evidence": {"get": op(
            "the order's pack videos and photos as devices reported them, each with whether "
            "the hub holds its blob (stored)", responses(ok_json(obj({
                "order_id": STR, "evidence": {"type": "array", "items": obj({
                    "kind": OPT_STR, "sha256": OPT_STR, "stored": BOOL, "device_id": STR,
                    "recorded_at": OPT_STR}, {"evidence_id": OPT_STR, "size": nullable(INT),
                                               "duration_s": nullable(NUM), "mime": OPT_STR,
                                               "station": OPT_STR, "operator": OPT_STR})}})),
                *ADMIN, 404), params=[ORDER_ID], tag="orders")},
        "/api/v1/blobs/{sha256}": {"get": op(
            "a stored pack-evidence blob's bytes (404 until the hub holds it)",
            {"200": {"description": "the blob", "content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}},
             **responses({}, *ADMIN, 404)}, params=[SHA256], tag="orders")},
    }


# Returns (docs/returns.md, "Hub"): sync/hub/rmas.py
RMA_ID = path_param("rma_id", "the RMA's id (1-64 letters, digits, '-', '_', '.', '/')")
RMA_DOC = obj({"order_id": STR, "reason": {"type": "string", "minLength": 1, "maxLength": 32},
               "deadline": STR, "lines": {"type": "array", "minItems": 1, "items": obj(
                   {"sku": STR, "qty": {"type": "integer", "minimum": 1}},
                   {"name": STR, "bin": STR})}},
              {"rma_id": STR, "return_tracking": STR, "invoiced": BOOL, "custom_work": BOOL,
               "site": SITE, "status": {"const": "open"}})
RMA_STORED = obj({"rma_id": STR, "version": INT, "status": STR}, {"changed": BOOL, "site": STR})
RETURNS_ROW = {"type": "array", "items": obj({"received": INT, "qualified": INT, "rejected": INT,
                                              "median_minutes_to_verdict": nullable(NUM)})}


def _returns_paths() -> dict[str, Any]:
    return {
        "/api/v1/rmas/{rma_id}": {
            "put": op("an RMA (return authorised upstream), synced to the devices of the order's "
                      "site; a change bumps its version", responses(
                          ok_json(RMA_STORED), *ADMIN, 404, 409, 413),
                      params=[RMA_ID], body=json_body(RMA_DOC), tag="returns"),
            "get": op("the RMA and its outcome (the first receipt's verdict: release the refund "
                      "when outcome.qualifies), with every receipt the devices reported",
                      responses(ok_json(obj({"rma": ANY_OBJ, "outcome": nullable(obj({
                          "qualifies": BOOL, "verdict": ANY_OBJ, "receipt_id": STR,
                          "device_id": STR})), "receipts": {"type": "array"}})), *ADMIN, 404),
                      params=[RMA_ID], tag="returns")},
        "/api/v1/rmas/{rma_id}/cancel": {"post": op(
            "cancel the RMA upstream: devices refuse its return and raise an alarm",
            responses(ok_json(RMA_STORED), *ADMIN, 404, 413), params=[RMA_ID],
            body=json_body(ANY_OBJ, required=False), tag="returns")},
        "/api/v1/reports/returns": {"get": op(
            "returns received, qualified, rejected by reason; median minutes from scan to "
            "verdict, by reason code and station", responses({"200": {
                "description": "the report", "content": {
                    "application/json": {"schema": obj({
                        "since": STR, "received": INT, "qualified": INT, "rejected": INT,
                        "median_minutes_to_verdict": nullable(NUM),
                        "rejected_by_reason": ANY_OBJ, "by_reason_code": RETURNS_ROW,
                        "by_station": RETURNS_ROW})},
                    "text/markdown": {"schema": STR}}}}, *ADMIN),
            params=[query("since", STR, "YYYY-MM-DD or an ISO time"),
                    query("format", {"type": "string", "enum": ["json", "markdown"]},
                          "markdown: tables")], tag="reports")},
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "scanedge hub",
            "version": "1",
            "description": (
                "Head office: orders and signed freeze/unfreeze/expedite commands for the order "
                "system (the admin token or a site's token), events and the change log for the "
                "devices (a device token). Every error is JSON `{\"error\": code, \"message\": ...}` "
                "(docs/sync.md, docs/scaling.md, docs/security.md)."),
        },
        "servers": [{"url": "/"}],
        "paths": _paths(),
        "components": {"schemas": SCHEMAS,
                       "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}}},
        "security": [{"token": []}],
    }


@bp.get("/openapi.json")
def get_openapi():
    return jsonify(document())
