"""The edge's HTTP API as an OpenAPI 3.1 document, written by hand; ``GET /api/v1/openapi.json``.

Kept honest by tests: every Flask rule and the ASGI stream route are in it and nothing else
(``tests/test_openapi.py``), and schemathesis sends generated requests to a real server and
checks every answer against it (status codes, content types, response schemas). Limits come
from the code that enforces them (``edge.scanning.MAX_CODE``, ``edge.web.limits``), so the
document cannot drift from them.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from scanedge.edge.domain.packing import FREEZE_REASONS, Verdict
from scanedge.edge.scanning import MAX_CODE, MAX_SCAN_ID
from scanedge.edge.web.limits import MAX_ID
from scanedge.edge.web.schema import (
    ANY_OBJ,
    BOOL,
    INT,
    NUM,
    OPT_STR,
    STR,
    Schema,
    json_body,
    json_content,
    nullable,
    obj,
    ok_json,
    path_param,
    query,
    ref,
)
from scanedge.printers.queue import MAX_JOBS_LISTED
from scanedge.printers.queue import STATES as PRINT_STATES

bp = Blueprint("openapi", __name__)

ERROR_TEXT = {
    400: "malformed request: not JSON, a wrong type, a bad value (the message names the field)",
    401: "not signed in: a session (POST /api/v1/session) or 'Authorization: Bearer <token>'",
    403: "signed in, but the role may not do this, or at another station",
    404: "no such order, alarm, job or capture on this device",
    409: "refused in this state (frozen order, print gate, job state, tracking number in use)",
    413: "too large: the body (64 KiB of JSON, max_body_mb otherwise), a scan code, an image",
    414: "the path and query are longer than 8 KiB",
    422: "understood but not acceptable (a tracking number against the carrier's rules ...)",
    502: "the hub refused this device (its token: enrol it again), or answered nonsense",
    429: "too many failed sign-ins from this client or for this user (Retry-After)",
    431: "a header over 8 KiB, headers over 32 KiB in all, or more than 100",
    503: "busy or the store cannot write now: try again (Retry-After when known)",
    507: "the disk is below min_free_mb: new work is refused, nothing was written",
}
EVERY_CALL = (401, 403, 414, 431)  # the sign-in check and the request-head caps
WRITE = (503, 507)


def responses(ok: dict[str, Any], *errors: int) -> dict[str, Any]:
    out = dict(ok)
    for status in sorted({*errors, *EVERY_CALL}):
        out[str(status)] = {"description": ERROR_TEXT[status], "content": json_content(ref("Error"))}
    return out


STATION_Q = query("station", {"type": "string", "maxLength": 64},
                  "the station (default: the session's, else the device's `station`)")


def op(summary: str, resp: dict[str, Any], *, params: list[dict[str, Any]] | None = None,
       body: dict[str, Any] | None = None, tags: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {"summary": summary, "responses": resp}
    if params:
        out["parameters"] = params
    if body:
        out["requestBody"] = body
    if tags:
        out["tags"] = list(tags)
    return out


# -- schemas --------------------------------------------------------------------------------
MESSAGE = obj({"zh": STR, "en": STR})
LINE = obj({"line_no": INT, "sku": STR, "name": STR, "qty": INT, "packed": INT, "lot": OPT_STR,
            "expires": OPT_STR})
GIFT = obj({"gift_no": INT, "name": STR, "qty": INT}, {"code": OPT_STR, "confirmed": BOOL})
FREEZE = nullable(obj({"reason": STR, "issued_at": STR}))
ORDER = obj({
    "order_id": STR, "version": INT, "priority": STR, "tracking_number": OPT_STR,
    "carrier": OPT_STR, "lane": OPT_STR, "station": OPT_STR, "lines": {"type": "array", "items": LINE},
    "gifts": {"type": "array", "items": GIFT}, "items_packed": INT, "total_items": INT,
    "complete": BOOL,
}, {"print_gate": ANY_OBJ, "gifts_confirmed": {"type": "array"}, "recipient": ANY_OBJ,
    "freeze": FREEZE, "jobs": {"type": "array", "items": ref("PrintJob")}})
SCAN_RESULT = obj({
    "verdict": {"type": "string", "enum": [v.value for v in Verdict]},
    "reason": STR, "message": MESSAGE, "alarm": BOOL, "order_id": OPT_STR, "station": STR,
    "code": obj({"text": STR, "kind": STR}), "order": nullable(ref("Order")), "complete": BOOL,
    "ready_to_print": BOOL, "freeze": FREEZE, "event_id": OPT_STR, "seq": nullable(INT),
}, {"replayed": BOOL, "alarm_id": STR})
ALARM = obj({"alarm_id": STR, "type": STR, "level": STR, "order_id": OPT_STR, "station": OPT_STR,
             "message": MESSAGE, "details": ANY_OBJ, "created_at": STR, "acked_at": OPT_STR,
             "acked_by": OPT_STR, "active": BOOL})
PRINT_JOB = obj({
    "job_id": STR, "order_id": STR, "state": STR, "priority": STR, "copies": INT,
    "reprint_no": INT, "reprint_of": OPT_STR, "operator": OPT_STR, "reason": OPT_STR,
    "attempts": INT, "bytes_total": nullable(INT), "bytes_sent": nullable(INT),
    "cancel_requested": BOOL, "last_error": OPT_STR, "idempotency_key": OPT_STR,
    "created_at": {"type": ["string", "number"]}, "updated_at": {"type": ["string", "number"]},
    "printed_at": {"type": ["string", "number", "null"]},
})
PRINTER = obj({"printer": STR, "queue": ANY_OBJ, "hold": OPT_STR})
SYNC_VIEW = obj({"hub": BOOL, "outbox_pending": INT, "outbox_parked": INT,
                 "oldest_pending_time": OPT_STR, "freeze_status": STR})
WHO = obj({"kind": STR, "user_id": STR, "name": STR, "role": STR, "station": OPT_STR,
           "operator": STR}, {"expires_at": OPT_STR})
DECODE = obj({"file": STR, "symbols": {"type": "array", "items": ANY_OBJ}, "elapsed_ms": NUM},
             {"rejected": {"type": "array", "items": ANY_OBJ}})
CAPTURE = obj({"capture_id": STR, "status": STR}, {
    "tracking_number": OPT_STR, "carrier": OPT_STR, "candidates": {"type": "array"},
    "attached": {"type": ["boolean", "object", "null"]}, "checks": {"type": ["array", "object"]},
    "rule_problems": {"type": "array", "items": ANY_OBJ}})

SCHEMAS: dict[str, Schema] = {
    "Error": obj({"error": STR, "message": STR}),
    "Message": MESSAGE,
    "Order": ORDER,
    "ScanResult": SCAN_RESULT,
    "Alarm": ALARM,
    "PrintJob": PRINT_JOB,
    "Printer": PRINTER,
    "Who": WHO,
}

ORDER_ID = path_param("order_id", "an order id on this device")
JOB_ID = path_param("job_id", "a print job id")
CAPTURE_ID = path_param("capture_id", "a waybill capture id")
HTML = {"200": {"description": "the page", "content": {"text/html": {"schema": STR}}}}


def _page(summary: str) -> dict[str, Any]:
    return {"get": op(summary, responses(HTML), tags=("pages",), params=[
        STATION_Q, query("lang", {"type": "string", "enum": ["zh", "en"]}, "language (kept in a cookie)")])}


KG = nullable(NUM)
SCALE = obj({
    "configured": BOOL, "scale": OPT_STR, "tolerance": OPT_STR,
    "state": nullable({"type": "string", "enum": ["stable", "unstable", "overload", "underload",
                                                  "error", "disconnected"]}),
    "weight_kg": KG, "live_kg": KG, "error": OPT_STR, "order_id": OPT_STR, "expected_kg": KG,
    "check": nullable(obj({"verdict": STR, "measured_kg": KG, "expected_kg": KG, "allowed_kg": KG,
                           "difference_kg": KG, "passes": BOOL, "zh": STR, "en": STR})),
})


def _paths() -> dict[str, Any]:
    scan_body = obj({"code": {"type": "string", "maxLength": MAX_CODE,
                              "description": "what the scanner typed; GS1 separators as GS (\\u001d)"}},
                    {"station": {"type": "string", "maxLength": 64},
                     "scan_id": {"type": "string", "maxLength": MAX_SCAN_ID,
                                 "description": "the client's id of this scan: a retry with the same "
                                                "id gets the stored answer (replayed: true)"},
                     "acks": {"type": "array", "maxItems": 20, "items": {"type": "string"},
                              "description": "alarm ids this scan acknowledges first"}})
    image_form = {"multipart/form-data": {"schema": obj(
        {"image": {"type": "string", "contentMediaType": "application/octet-stream"}},
        {"order_id": {"type": "string", "maxLength": 64}, "station": {"type": "string", "maxLength": 64},
         "distributor": {"type": "string", "maxLength": 64}})}}
    decode_form = {"multipart/form-data": {"schema": obj(
        {"image": {"type": "string", "contentMediaType": "application/octet-stream"}})}}
    return {
        "/healthz": {"get": op("the device's health: store, sync, freeze status, outbox", responses(
            ok_json(obj({"status": STR, "device_id": STR, "station": STR, "hub": OPT_STR,
                         "sync": nullable(ANY_OBJ), "freeze": nullable(ANY_OBJ),
                         "outbox": obj({"pending": INT, "parked": INT,
                                        "oldest_pending_time": OPT_STR})}))), tags=("health",))},
        "/metrics": {"get": op("Prometheus metrics", responses(
            {"200": {"description": "the text format",
                     "content": {"text/plain": {"schema": STR}}}}), tags=("health",))},
        "/api/v1/openapi.json": {"get": op("this document", responses(ok_json(ANY_OBJ)),
                                           tags=("health",))},
        "/api/v1/version": {"get": op("which program answers: its version, the API's, each store "
                                      "component's schema version", responses(ok_json(obj({
                                          "name": STR, "version": OPT_STR, "api": STR,
                                          "device_id": STR, "schemas": {
                                              "type": "object", "additionalProperties": INT}}))),
                                  tags=("health",))},
        "/api/v1/session": {
            "post": op("sign in at a station: a badge, or a user id and PIN", responses(
                {"200": {"description": "signed in; the session cookie is set",
                         "content": json_content(ref("Who"))}}, 400, 413, 429),
                body=json_body(obj({}, {"badge": {"type": "string", "maxLength": 128},
                                        "user_id": {"type": "string", "maxLength": 128},
                                        "pin": {"type": "string", "maxLength": 128},
                                        "station": {"type": "string", "maxLength": 128}})),
                params=[STATION_Q], tags=("sign-in",)),
            "get": op("who is signed in", responses(ok_json(ref("Who"))), tags=("sign-in",)),
            "delete": op("sign out", responses(ok_json(obj({"signed_out": BOOL}))),
                         tags=("sign-in",)),
        },
        "/api/v1/scans": {"post": op("a scan: judged against the open order, recorded with its event",
                                     responses(ok_json(ref("ScanResult")), 400, 413, *WRITE),
                                     body=json_body(scan_body), tags=("scans",))},
        "/api/v1/todo": {"get": op("the station's to-do list: orders not printed yet, P0 on top",
                                   responses(ok_json(obj({"station": STR, "orders": {
                                       "type": "array", "items": ANY_OBJ}, "p0": INT})), 400),
                                   params=[STATION_Q], tags=("scans",))},
        "/api/v1/orders/{order_id}": {"get": op("an order with its packed counts", responses(
            ok_json(ref("Order")), 400, 404), params=[ORDER_ID, STATION_Q], tags=("scans",))},
        "/api/v1/orders/{order_id}/gifts/{gift_no}/confirm": {"post": op(
            "this gift is in the box (a packer's tap)", responses(
                ok_json(ref("Order")), 400, 404, 409, *WRITE),
            params=[ORDER_ID, path_param("gift_no", "the gift's number in the order",
                                         {"type": "integer", "minimum": 0})], tags=("scans",))},
        "/api/v1/countdowns": {"get": op(
            "cancel, address-change and note commands of this device's site against their "
            "countdown (from the hub), and what this device applied", responses(ok_json(obj({
                "countdowns": {"type": "array", "items": ANY_OBJ},
                "applied_here": {"type": "array", "items": ANY_OBJ}, "device_id": STR},
                {"now": OPT_STR, "hub_error": nullable(ANY_OBJ)}))), tags=("pages",))},
        "/api/v1/orders/{order_id}/notes/{command_id}/read": {"post": op(
            "the order's new note (备注) was read at the station: its scans go on", responses(
                ok_json(obj({"command_id": STR, "order_id": STR, "note": STR, "issued_at": STR,
                             "read_at": STR, "read_by": STR, "station": STR},
                            {"effective_by": OPT_STR})), 400, 404, 409, 413, *WRITE),
            body=json_body(obj({}, {"station": {"type": "string", "maxLength": 64}}),
                           required=False),
            params=[ORDER_ID, path_param("command_id", "the note command's id")],
            tags=("scans",))},
        "/api/v1/alarms": {"get": op("active alarms (all=1: the latest, acknowledged too)", responses(
            ok_json(obj({"alarms": {"type": "array", "items": ref("Alarm")}}))),
            params=[STATION_Q, query("all", STR, "any value: the latest 50, acknowledged too")],
            tags=("alarms",))},
        "/api/v1/alarms/{alarm_id}/ack": {"post": op(
            "acknowledge an alarm (as the signed-in person)", responses(
                ok_json(ref("Alarm")), 400, 404, 413, *WRITE),
            params=[path_param("alarm_id", "an alarm id")], tags=("alarms",))},
        "/api/v1/page-state": {"get": op("what a page starts from (the stream's first event)",
                                         responses(ok_json(obj({
                                             "device_id": STR, "station": STR, "last_id": INT,
                                             "alarms": {"type": "array", "items": ref("Alarm")},
                                             "sync": SYNC_VIEW, "printer": ref("Printer"),
                                             "open_order": nullable(ref("Order")), "time": NUM})), 400),
                                         params=[STATION_Q], tags=("pages",))},
        "/api/v1/overview": {"get": op("the supervisor's page in one read", responses(ok_json(obj({
            "device_id": STR, "station": STR, "alarms": {"type": "array", "items": ref("Alarm")},
            "unacked_freeze_alarms": {"type": "array"}, "freezes": {"type": "array"},
            "conflicts": {"type": "array"}, "interceptions": ANY_OBJ, "sync": SYNC_VIEW,
            "printer": ref("Printer"), "streams": obj({"open": INT, "limit": INT}), "time": NUM}))),
            tags=("pages",))},
        "/api/v1/conflicts": {"get": op(
            "the open expedite/cancel conflicts of this device's site, from the hub; can_decide: "
            "the hub lets this device decide, may_decide: the signed-in role may", responses(
                ok_json(obj({"conflicts": {"type": "array", "items": ANY_OBJ}, "can_decide": BOOL,
                             "may_decide": BOOL, "device_id": STR, "site": OPT_STR})),
                409, 502, 503), tags=("pages",))},
        "/api/v1/orders/{order_id}/decide": {"post": op(
            "decide an order's conflict at the hub as the signed-in supervisor: ship (the "
            "expedite stands) or cancel; 403 cannot_decide: the hub does not let this device",
            responses(ok_json(obj({"order_id": STR, "decision": STR, "operator": STR,
                                   "device_id": STR, "conflict_id": OPT_STR,
                                   "command": ANY_OBJ})), 400, 404, 409, 413, 502, 503, 507),
            params=[ORDER_ID],
            body=json_body(obj({"decision": {"type": "string", "enum": ["ship", "cancel"]}})),
            tags=("pages",))},
        "/api/v1/stream": {"get": op("Server-Sent Events for the pages (state, scan, alarm, job ...)",
                                     responses({"200": {"description": "the event stream",
                                                        "content": {"text/event-stream": {"schema": STR}}}},
                                               400, 503),
                                     params=[STATION_Q,
                                             query("all", STR, "1: every station's messages"),
                                             query("after", {"type": "integer", "minimum": 0},
                                                   "replay the kept messages after this id"),
                                             query("heartbeat", {"type": "number"},
                                                   "seconds between status events (0.2-30)"),
                                             {"name": "Last-Event-ID", "in": "header", "required": False,
                                              "schema": STR, "description": "as EventSource sends it"}],
                                     tags=("pages",))},
        "/": _page("the menu of the pages"),
        "/scan": _page("the PDA scan page"),
        "/bench": _page("the packing bench page"),
        "/waybill": _page("the waybill photo page"),
        "/supervisor": _page("the supervisor page"),
        "/pick": _page("the picker's page (waves, stops)"),
        "/returns": _page("the returns bench (receiving RMAs)"),
        "/dock": _page("the dock handover (loading parcels onto trucks)"),
        "/static/{filename}": {"get": op("the pages' scripts, styles and catalogue", responses(
            {"200": {"description": "the file", "content": {"*/*": {"schema": STR}}}}, 404),
            params=[path_param("filename", "a file of edge/static")], tags=("pages",))},
        "/api/v1/decode": {"post": op("barcodes in a photo (`scanedge decode --json`)", responses(
            ok_json(DECODE), 400, 413, 503),
            params=[query("budget_ms", NUM, "time budget of the cascade"),
                    query("exhaustive", STR, "1: every symbol, not the first good one")],
            body={"required": True, "content": decode_form}, tags=("photos",))},
        "/api/v1/waybills": {"post": op("a waybill photo: read, stored, attached when certain", responses(
            ok_json(CAPTURE, 201, "captured"), 400, 404, 409, 413, *WRITE),
            body={"required": True, "content": image_form}, tags=("photos",))},
        "/api/v1/waybills/orders": {"get": op(
            "the orders a waybill may be captured for (a distributor: its own only)", responses(
                ok_json(obj({"orders": {"type": "array", "items": obj(
                    {"order_id": STR, "tracking_number": OPT_STR, "carrier": OPT_STR,
                     "priority": STR, "frozen": BOOL})}}))), tags=("photos",))},
        "/api/v1/waybills/{capture_id}": {"get": op("a stored capture", responses(
            ok_json(ANY_OBJ), 404), params=[CAPTURE_ID], tags=("photos",))},
        "/api/v1/waybills/{capture_id}/confirm": {"post": op(
            "a person confirms the number (one tap, a candidate, or typed)", responses(
                ok_json(ANY_OBJ), 400, 404, 409, 413, 422, *WRITE),
            params=[CAPTURE_ID],
            body=json_body(obj({"tracking_number": {"type": "string", "minLength": 1}},
                               {"carrier": {"type": "string", "maxLength": 64},
                                "order_id": {"type": "string", "maxLength": 64},
                                "accept_rule_exception": BOOL})),
            tags=("photos",))},
        "/api/v1/orders/{order_id}/ewaybill": {"post": op(
            "打印面单: the carrier's e-waybill from the hub (gated like a label), the number as "
            "the order's tracking number, its label queued (docs/carriers.md); 409 "
            "ewaybill_gate with the gate's problems, 502 carrier_refused with the carrier's code, "
            "503 hub_unreachable (waiting for the hub) or carrier_unavailable", responses(
                ok_json(obj({"ewaybill": obj({
                    "carrier": STR, "number": STR, "order_id": STR, "sort_code": STR,
                    "package_center": STR, "recipient": ANY_OBJ, "sender": ANY_OBJ,
                    "qr": OPT_STR, "service": STR, "created_at": STR}),
                    "job": OPT_STR, "source": {"type": "string", "enum": ["hub", "pool"]}})),
                400, 404, 409, 413, 422, 502, *WRITE),
            params=[ORDER_ID], body=json_body(obj({}, {"carrier": STR, "station": STR}),
                                              required=False), tags=("printing",))},
        "/api/v1/print-jobs": {"get": op("the latest print jobs, newest first", responses(
            ok_json(obj({"jobs": {"type": "array", "items": ref("PrintJob")}})), 400),
            params=[query("state", {"type": "string", "enum": list(PRINT_STATES)}, "only this state"),
                    query("order_id", {"type": "string", "maxLength": 64}, "only this order's"),
                    query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_JOBS_LISTED},
                          "at most this many (default 50)")],
            tags=("printing",)),
            "post": op("queue an order's label (the print gate decides)", responses(
            ok_json(obj({"job_id": STR, "state": STR}), 202, "queued (or the job of the same key)"),
            400, 404, 409, 413, *WRITE),
            params=[{"name": "Idempotency-Key", "in": "header", "required": False,
                     "schema": {"type": "string", "maxLength": MAX_ID},
                     "description": "a retry with the same key is the same job"}],
            body=json_body(obj({"order_id": {"type": "string", "maxLength": 64}},
                               {"copies": {"type": "integer", "minimum": 1, "maximum": 20},
                                "idempotency_key": {"type": "string", "maxLength": MAX_ID},
                                "station": {"type": "string", "maxLength": 64},
                                "override": obj({"reason": {"type": "string", "minLength": 1,
                                                            "maxLength": 200}})})),
            tags=("printing",))},
        "/api/v1/print-jobs/{job_id}": {"get": op("a print job", responses(
            ok_json(ref("PrintJob")), 404), params=[JOB_ID], tags=("printing",))},
        "/api/v1/print-jobs/{job_id}/reprint": {"post": op("print a finished job's label again", responses(
            ok_json(obj({"job_id": STR, "state": STR, "reprint_no": INT}), 202, "queued"),
            400, 404, 409, 413, *WRITE), params=[JOB_ID],
            body=json_body(obj({"reason": {"type": "string", "minLength": 1, "maxLength": 200}},
                               {"copies": {"type": "integer", "minimum": 1, "maximum": 20}})),
            tags=("printing",))},
        "/api/v1/print-jobs/{job_id}/confirm": {"post": op(
            "a job in needs_confirmation: printed, resend or cancel", responses(
                ok_json(ref("PrintJob")), 400, 404, 409, 413, *WRITE), params=[JOB_ID],
            body=json_body(obj({"outcome": {"type": "string", "enum": ["printed", "resend", "cancel"]}})),
            tags=("printing",))},
        "/api/v1/pick/waves": {
            "get": op("the waves: waiting, claimed, done", responses(ok_json(ANY_OBJ), 404, 409),
                      tags=("picking",)),
            "post": op("regroup the open orders into waves now", responses(
                ok_json(ANY_OBJ), 404, 409, *WRITE), tags=("picking",)),
        },
        "/api/v1/pick/claim": {"post": op("claim a wave (the next, or wave_id) at a station", responses(
            ok_json(ANY_OBJ), 400, 404, 409, 413, *WRITE),
            body=json_body(obj({}, {"wave_id": {"type": "string", "maxLength": 64},
                                    "station": {"type": "string", "maxLength": 64}})),
            tags=("picking",))},
        "/api/v1/pick/current": {"get": op("the station's claimed wave and its next stop", responses(
            ok_json(ANY_OBJ), 400, 404, 409), params=[STATION_Q], tags=("picking",))},
        "/api/v1/pick/scans": {"post": op("a picker's scan: bin, item or tote", responses(
            ok_json(ANY_OBJ), 400, 404, 409, 413, *WRITE),
            body=json_body(obj({"code": {"type": "string", "maxLength": MAX_CODE}},
                               {"station": {"type": "string", "maxLength": 64}})),
            tags=("picking",))},
        "/api/v1/pick/short": {"post": op("a stop short: fewer items found than asked", responses(
            ok_json(ANY_OBJ), 400, 404, 409, 413, *WRITE),
            body=json_body(obj({"stop_no": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
                                "found": {"type": "integer", "minimum": 0, "maximum": 1_000_000},
                                "reason": STR}, {"station": {"type": "string", "maxLength": 64}})),
            tags=("picking",))},
        "/api/v1/pick/skip": {"post": op("skip a stop for now", responses(
            ok_json(ANY_OBJ), 400, 404, 409, 413, *WRITE),
            body=json_body(obj({"stop_no": {"type": "integer", "minimum": 0, "maximum": 1_000_000}},
                               {"station": {"type": "string", "maxLength": 64}})),
            tags=("picking",))},
        "/api/v1/printer": {"get": op("the printer and its queue", responses(ok_json(ref("Printer"))),
                                      tags=("printing",))},
        "/api/v1/label-preview/{order_id}": {"get": op("the order's label as it would print now", responses(
            {"200": {"description": "a PNG", "content": {"image/png": {"schema": STR}}}}, 404, 422),
            params=[ORDER_ID], tags=("printing",))},
        "/api/v1/scale": {"get": op(
            "the bench's scale now and, for an order, its expected weight and the weight check the "
            "print gate would make (docs/scale.md)", responses(ok_json(SCALE), 400, 404),
            params=[query("order_id", {"type": "string", "minLength": 1, "maxLength": 64},
                          "an order on this device")], tags=("printing",))},
        **_returns_paths(),
        **_evidence_paths(),
        **_dock_paths(),
        **_parcel_paths(),
    }


# Returns (docs/returns.md, "API"): the contract of the /returns page.
RMA_LINE = obj({"sku": STR, "name": STR, "qty": INT}, {"bin": OPT_STR})
RMA = obj({"rma_id": STR, "order_id": STR, "status": {"enum": ["open", "cancelled", "received"]},
           "reason": STR, "return_tracking": OPT_STR, "deadline": STR, "invoiced": BOOL,
           "custom_work": BOOL, "lines": {"type": "array", "items": RMA_LINE}})
VERDICT = obj({"qualifies": BOOL, "decided_at": STR,
               "reasons": {"type": "array", "items": obj({"code": STR, "message": STR},
                                                         {"sku": STR, "blocks": BOOL})},
               "lines": {"type": "array", "items": obj({
                   "sku": STR, "qty": INT, "condition": OPT_STR, "bin": OPT_STR,
                   "disposition": {"enum": ["restock", "quarantine", "scrap",
                                            "return_to_customer"]}}, {"qualifies": BOOL})}},
              {"refund_qty": INT})
RECEIPT = obj({
    "receipt_id": STR, "rma_id": OPT_STR, "unannounced": BOOL,
    "state": {"enum": ["open", "finished"]}, "station": OPT_STR, "operator": OPT_STR,
    "started_at": STR,
    "lines": {"type": "array", "items": obj({"sku": STR, "name": STR, "expected": INT,
                                             "received": INT, "condition": OPT_STR})},
    "extras": {"type": "array", "items": obj({"code": STR, "qty": INT, "kind": STR})},
    "photos": {"type": "array", "items": obj({"sha256": STR, "bytes": INT})},
    "verdict": nullable(VERDICT)}, {"order_id": OPT_STR, "code": OPT_STR, "finished_at": OPT_STR,
                                    "label_job": OPT_STR})
RECEIPT_ID = path_param("receipt_id", "a return receipt id")


def _returns_paths() -> dict[str, Any]:
    receipt = ok_json(RECEIPT)
    station = {"station": {"type": "string", "maxLength": 64}}
    return {
        "/api/v1/returns/lookup": {"get": op(
            "what a scanned return waybill, RMA id or original order names: the RMA and its "
            "receipt (open, else the first finished)", responses(
                ok_json(obj({"rma": RMA, "receipt": nullable(RECEIPT)})), 400, 404),
            params=[query("code", {"type": "string", "minLength": 1, "maxLength": MAX_CODE},
                          "what was scanned")], tags=("returns",))},
        "/api/v1/returns/receipts": {
            "post": op("start receiving an RMA (an open receipt is resumed: 200), or an "
                       "unannounced return", responses(
                           {**ok_json(RECEIPT, 201, "started"), **receipt}, 400, 404, 409, 413,
                           *WRITE),
                       body=json_body({"anyOf": [
                           obj({"rma_id": {"type": "string", "minLength": 1, "maxLength": 64}},
                               {"code": STR, **station}),
                           obj({"unannounced": {"const": True},
                                "code": {"type": "string", "minLength": 1, "maxLength": MAX_CODE}},
                               station)]}), tags=("returns",)),
            "get": op("receipts: open, finished, or unannounced (newest first)", responses(
                ok_json(obj({"receipts": {"type": "array", "items": RECEIPT}})), 400),
                params=[query("state", {"type": "string", "enum": ["open", "finished",
                                                                   "unannounced"]},
                              "which receipts (default open)")], tags=("returns",)),
        },
        "/api/v1/returns/receipts/{receipt_id}": {"get": op("one receipt", responses(
            receipt, 404), params=[RECEIPT_ID], tags=("returns",))},
        "/api/v1/returns/receipts/{receipt_id}/items": {"post": op(
            "an item scanned into the return: counted against a line, else flagged not_on_rma",
            responses(ok_json(obj({"receipt": RECEIPT, "matched": nullable(obj({"sku": STR})),
                                   "flag": {"enum": [None, "not_on_rma", "over_quantity"]}},
                                  {"replayed": BOOL})), 400, 404, 409, 413, *WRITE),
            params=[RECEIPT_ID],
            body=json_body(obj({"code": {"type": "string", "minLength": 1, "maxLength": MAX_CODE}},
                               {"scan_id": {"type": "string", "maxLength": MAX_SCAN_ID}})),
            tags=("returns",))},
        "/api/v1/returns/receipts/{receipt_id}/photos": {"post": op(
            "a photo of the goods (the body is the image), kept content-addressed", responses(
                ok_json(obj({"sha256": STR, "bytes": INT, "receipt": RECEIPT}), 201, "kept"),
                400, 404, 409, 413, *WRITE),
            params=[RECEIPT_ID], body={"required": True, "content": {
                "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
                "image/png": {"schema": {"type": "string", "format": "binary"}}}},
            tags=("returns",))},
        "/api/v1/returns/receipts/{receipt_id}/lines/{sku}": {"put": op(
            "the condition of a line's goods (or of an extra)", responses(
                receipt, 400, 404, 409, 413, *WRITE),
            params=[RECEIPT_ID, path_param("sku", "the line's SKU or the extra's code")],
            body=json_body(obj({"condition": nullable(
                {"enum": ["resaleable", "damaged", "used", "missing_parts"]})})),
            tags=("returns",))},
        "/api/v1/returns/receipts/{receipt_id}/finish": {"post": op(
            "judge the return: the verdict, one return_received event, the returns sticker",
            responses(ok_json(obj({"receipt": RECEIPT, "verdict": VERDICT,
                                   "label_job": OPT_STR}, {"replayed": BOOL})),
                      400, 404, 409, 413, *WRITE),
            params=[RECEIPT_ID], body=json_body(obj({}), required=False), tags=("returns",))},
    }


# Pack evidence (docs/evidence.md): the bench's video and photos of the packing
EVIDENCE = obj({"evidence_id": STR, "order_id": STR, "kind": {"enum": ["video", "photo"]},
                "sha256": STR, "size": INT, "duration_s": nullable(NUM), "mime": STR,
                "station": OPT_STR, "operator": OPT_STR, "recorded_at": STR,
                "uploaded_at": OPT_STR, "on_device": BOOL, "uploaded": BOOL})
GATE_PROBLEM = obj({"code": STR, "zh": STR, "en": STR})
BINARY = {"schema": {"type": "string", "format": "binary"}}


def _evidence_paths() -> dict[str, Any]:
    return {
        "/api/v1/orders/{order_id}/evidence": {
            "post": op(
                "a video (duration_s: its length, at least pack_video_min_s) or photo of the "
                "order's packing; the body is the file; kept content-addressed and sent to the "
                "hub in the background; 201 new, 200 the same clip again", responses(
                    ok_json(EVIDENCE, 201, "kept"), 400, 404, 413, 422, *WRITE),
                params=[ORDER_ID, query("duration_s", {"type": "number"},
                                        "a video's length in seconds, as the recorder measured"),
                        STATION_Q],
                body={"required": True, "content": {t: BINARY for t in (
                    "video/webm", "video/mp4", "image/jpeg", "image/png")}},
                tags=("evidence",)),
            "get": op(
                "the evidence_policy, the order's videos and photos, and what the policy still "
                "asks before its label or tracking number", responses(ok_json(obj({
                    "order_id": STR, "policy": STR, "min_video_s": NUM, "max_clip_mb": NUM,
                    "items": {"type": "array", "items": EVIDENCE}, "satisfied": BOOL,
                    "problems": {"type": "array", "items": GATE_PROBLEM}})), 404),
                params=[ORDER_ID], tags=("evidence",))},
        "/api/v1/evidence/uploads": {"get": op(
            "the upload of pack evidence to the hub: blobs and bytes waiting, failures in a row",
            responses(ok_json(obj({"hub": BOOL, "pending_blobs": INT, "pending_bytes": INT,
                                   "failures": INT, "last_error": OPT_STR,
                                   "rate_mbps": nullable(NUM)})), 404), tags=("evidence",))},
    }


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "scanedge edge device",
            "version": "1",
            "description": (
                "The device at a packing bench or PDA gateway: scans, orders, alarms, photos, "
                "labels, the pages and their live stream. Every error is JSON "
                "`{\"error\": code, \"message\": ...}`. Sign in at a station (`/api/v1/session`) or "
                "send `Authorization: Bearer <token>`; a device on loopback with no user and no "
                "token needs neither (docs/security.md). Freeze reasons: "
                + ", ".join(FREEZE_REASONS) + "."),
        },
        "servers": [{"url": "/"}],
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "scanedge_session"},
                "token": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"session": []}, {"token": []}, {}],
    }


@bp.get("/openapi.json")
def get_openapi():
    return jsonify(document())


# The dock handover (docs/dock.md, "API"): the contract of the /dock page.
DOCK_PARCEL = obj({"order_id": STR, "code": STR, "scans": INT, "scanned_at": STR,
                   "carrier": OPT_STR, "tracking_number": OPT_STR, "frozen": BOOL},
                  {"operator": OPT_STR})
PRINTED = obj({"order_id": STR, "carrier": OPT_STR, "tracking_number": OPT_STR,
               "printed_at": STR})
MANIFEST = obj({
    "batch_id": STR, "carrier": OPT_STR, "station": STR, "opened_at": STR, "closed_at": STR,
    "parcels": {"type": "array", "items": obj({
        "order_id": STR, "carrier": OPT_STR, "tracking_number": OPT_STR, "scanned_at": STR,
        "scans": INT})},
    "counts": obj({"parcels": INT, "by_carrier": {"type": "object",
                                                   "additionalProperties": INT},
                   "scanned_twice": INT, "not_scanned": INT, "to_pull": INT}),
    "not_scanned": {"type": "array", "items": PRINTED},
    "to_pull": {"type": "array", "items": PRINTED}}, {"operator": STR, "closed_by": STR})
BATCH = obj({
    "batch_id": STR, "carrier": OPT_STR, "station": STR, "state": {"enum": ["open", "closed"]},
    "opened_at": STR, "closed_at": OPT_STR, "parcels": {"type": "array", "items": DOCK_PARCEL},
    "count": INT, "scanned_twice": INT, "frozen": {"type": "array", "items": STR},
    "manifest": nullable(MANIFEST), "manifest_job": OPT_STR},
    {"operator": OPT_STR, "closed_by": OPT_STR,
     "not_scanned": {"type": "array", "items": PRINTED},
     "to_pull": {"type": "array", "items": PRINTED}})
BATCH_ID = path_param("batch_id", "a handover batch id")


def _dock_paths() -> dict[str, Any]:
    station = {"station": {"type": "string", "minLength": 1, "maxLength": 64}}
    empty = json_body(obj({}), required=False)
    return {
        "/api/v1/dock/batches": {
            "post": op("open a handover batch for a truck (the station's open one for the same "
                       "carrier is resumed: 200); no carrier: a mixed truck", responses(
                           {**ok_json(BATCH, 201, "opened"), **ok_json(BATCH)}, 400, 413, *WRITE),
                       body=json_body(obj({}, {
                           "carrier": {"type": "string", "minLength": 1, "maxLength": 64},
                           **station})), tags=("dock",)),
            "get": op("handover batches, open or closed (newest first)", responses(
                ok_json(obj({"batches": {"type": "array", "items": BATCH}})), 400),
                params=[query("state", {"type": "string", "enum": ["open", "closed"]},
                              "which batches (default open)")], tags=("dock",)),
        },
        "/api/v1/dock/batches/{batch_id}": {"get": op(
            "one batch; an open one with the labels printed here for its truck and not scanned "
            "yet (not_scanned) and the frozen ones among them (to_pull)",
            responses(ok_json(BATCH), 404), params=[BATCH_ID], tags=("dock",))},
        "/api/v1/dock/batches/{batch_id}/scans": {"post": op(
            "a parcel scanned onto the truck (order id, tracking number or label QR): accepted "
            "or a duplicate (200); refused when frozen or its label is void (with the station's "
            "alarm: pull it), loaded already, in another batch, another carrier's, unknown",
            responses(ok_json(obj({"verdict": {"enum": ["accepted", "duplicate"]},
                                   "order_id": STR, "code": STR,
                                   "flags": {"type": "array", "items": STR},
                                   "message": obj({"zh": STR, "en": STR}), "batch": BATCH},
                                  {"replayed": BOOL, "carrier": OPT_STR,
                                   "tracking_number": OPT_STR})),
                      400, 404, 409, 413, *WRITE),
            params=[BATCH_ID],
            body=json_body(obj({"code": {"type": "string", "minLength": 1, "maxLength": MAX_CODE}},
                               {"scan_id": {"type": "string", "maxLength": MAX_SCAN_ID}})),
            tags=("dock",))},
        "/api/v1/dock/batches/{batch_id}/parcels/{order_id}": {"delete": op(
            "a parcel taken off the truck (pulled)", responses(ok_json(BATCH), 400, 404, 409,
                                                               *WRITE),
            params=[BATCH_ID, ORDER_ID], tags=("dock",))},
        "/api/v1/dock/batches/{batch_id}/close": {"post": op(
            "装车完成: the manifest, one handover_closed event and one loaded event per parcel "
            "(a retried close answers the same manifest)",
            responses(ok_json(obj({"batch": BATCH, "manifest": MANIFEST},
                                  {"replayed": BOOL, "event_id": STR})),
                      400, 404, 409, 413, *WRITE),
            params=[BATCH_ID], body=empty, tags=("dock",))},
        "/api/v1/dock/batches/{batch_id}/manifest.csv": {"get": op(
            "a closed batch's manifest as CSV", responses(
                {"200": {"description": "CSV, one row per parcel",
                         "content": {"text/csv": {"schema": STR}}}}, 404, 409),
            params=[BATCH_ID], tags=("dock",))},
        "/api/v1/dock/batches/{batch_id}/manifest/print": {"post": op(
            "print a closed batch's manifest on this device's printer (one job per batch)",
            responses({**ok_json(obj({"job": ANY_OBJ, "created": BOOL}), 201, "queued"),
                       **ok_json(obj({"job": ANY_OBJ, "created": BOOL}))},
                      400, 404, 409, 413, *WRITE),
            params=[BATCH_ID], body=empty, tags=("dock",))},
    }


PARCEL_PROBLEM = obj({"code": STR, "zh": STR, "en": STR})
SPLIT = obj({
    "order_id": STR, "count": INT, "open_parcel": nullable(INT), "planned": BOOL,
    "parcels": {"type": "array", "items": obj({
        "parcel_no": INT, "label": STR, "open": BOOL, "items": INT,
        "planned_items": nullable(INT), "tracking_number": OPT_STR,
        "lines": {"type": "array", "items": obj({
            "line_no": INT, "sku": STR, "name": STR, "packed": INT,
            "planned": nullable(INT)})},
        "problems": {"type": "array", "items": PARCEL_PROBLEM},
        "job": nullable(obj({"job_id": STR, "state": STR}, {
            "weight_kg": nullable(NUM), "tracking_number": OPT_STR}))})}})


def _parcel_paths() -> dict[str, Any]:
    """Multi-parcel orders (docs/parcels.md)."""
    station = {"station": {"type": "string", "minLength": 1, "maxLength": 64}}
    parcel_no = path_param("parcel_no", "the parcel, 1 to the split's count", INT)
    return {
        "/api/v1/orders/{order_id}/parcels": {
            "get": op("the order's parcels: each one's label k/N, lines, tracking number, what "
                      "stands before its label, its latest label job (count 0: not split)",
                      responses(ok_json(SPLIT), 404), params=[ORDER_ID], tags=("parcels",)),
            "post": op("split the order into parcels (again: the parcels' contents are kept); "
                       "plan: per parcel, the items of each order line in it; 409 bad_split "
                       "says what does not fit", responses(ok_json(SPLIT), 400, 404, 409, 413,
                                                          *WRITE),
                       params=[ORDER_ID], body=json_body(obj(
                           {"count": {"type": "integer", "minimum": 1, "maximum": 50}},
                           {"plan": {"type": "array", "items": {
                               "type": "array", "items": {"type": "integer", "minimum": 0}}},
                            **station})), tags=("parcels",)),
        },
        "/api/v1/orders/{order_id}/parcels/open": {"post": op(
            "the bench's next items go into this parcel", responses(
                ok_json(SPLIT), 400, 404, 409, 413, *WRITE), params=[ORDER_ID],
            body=json_body(obj({"parcel_no": {"type": "integer", "minimum": 1}}, station)),
            tags=("parcels",))},
        "/api/v1/orders/{order_id}/parcels/{parcel_no}/label": {"post": op(
            "queue one parcel's label (k/N, its own tracking number and weight) through the "
            "print gate with the parcel's own counts; 409 not_ready with the problems, frozen",
            responses(ok_json(obj({"job_id": STR, "state": STR, "parcel_no": INT},
                                  {"payload": nullable(ANY_OBJ)}), 202, "queued"),
                      400, 403, 404, 409, 413, *WRITE),
            params=[ORDER_ID, parcel_no],
            body=json_body(obj({}, {"idempotency_key": {"type": "string", "maxLength": MAX_ID},
                                    "override": obj({"reason": STR}), **station}),
                           required=False), tags=("parcels",))},
    }
