"""Who is asking, and may they: sign-in sessions, tokens, the role table, one check per request.

Every request of the Flask API passes :func:`check_request` (a ``before_request`` hook) and the
page stream passes :func:`principal_from` itself. The endpoint -> action table below is complete:
a test fails when a route is added without a line here (default: refused).

Open mode: a device that listens on loopback only and has no user and no token acts for the
local operator (the demo, a bench Pi used from its own screen). As soon as one user or token
exists, every API call needs a session or a token. A request that came through a proxy
(``Forwarded`` / ``X-Forwarded-For``) never gets open mode.
"""

from __future__ import annotations

import ipaddress
from functools import cache
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from scanedge.edge.accounts import SigninFailed, SigninThrottled
from scanedge.edge.config import Settings
from scanedge.edge.context import EdgeContext
from scanedge.edge.domain.access import AccessError, Principal
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.web import context

bp = Blueprint("auth", __name__)
SESSION_COOKIE = "scanedge_session"
LOCAL = Principal("local", "local", "本机 local", "admin")

# Reachable without signing in: health, the pages (they show the sign-in screen), static
# files, signing in itself. Everything else is in ENDPOINT_ACTIONS.
PUBLIC = frozenset({"static", "health.healthz", "auth.post_session", "auth.delete_session",
                    "pages.menu", "pages.scan_page", "pages.bench_page", "pages.waybill_page",
                    "pages.supervisor_page", "pages.signin_page", "pages.pick_page", "pages.returns_page",
                    "pages.dock_page",
                    "openapi.get_openapi"})
ENDPOINT_ACTIONS: dict[str, str] = {
    "health.metrics": "read",
    "health.get_version": "read",
    "auth.get_session": "read",
    "api.post_scan": "scan",
    "api.get_order": "read",
    "api.list_alarms": "read",
    "api.ack_alarm": "ack_alarm",
    "api.confirm_gift": "scan",
    "api.read_note": "scan",
    "countdowns.list_countdowns": "supervise",
    "api.get_todo": "read",
    "stream.get_page_state": "read",
    "picking.get_waves": "read",
    "picking.post_build": "scan",
    "picking.post_claim": "scan",
    "picking.get_current": "read",
    "picking.post_pick_scan": "scan",
    "picking.post_short": "scan",
    "picking.post_skip": "scan",
    "stream.get_overview": "supervise",
    "conflicts.list_conflicts": "supervise",
    "conflicts.decide": "decide_conflict",
    "ocr.post_decode": "decode",
    "waybills.post_waybill": "capture_waybill",
    "waybills.confirm_waybill": "confirm_waybill",
    "waybills.get_waybill": "read",
    "waybills.list_orders": "capture_waybill",
    "printing.post_print_job": "print",
    "ewaybill.post_ewaybill": "print",  # the carrier's label: the same gate as a label
    "evidence.post_evidence": "scan",  # pack video and photos (docs/evidence.md): the packer
    "evidence.get_evidence": "read",
    "evidence.get_uploads": "read",
    "printing.list_print_jobs": "read",
    "printing.get_print_job": "read",
    "printing.post_reprint": "reprint",
    "printing.post_confirm": "confirm_print",
    "printing.get_printer": "read",
    "printing.get_label_preview": "read",
    "scale.get_scale": "read",
    "returns.get_lookup": "read",
    "returns.list_receipts": "read",
    "returns.get_receipt": "read",
    "returns.post_receipt": "scan",
    "returns.post_item": "scan",
    "returns.post_photo": "scan",
    "returns.put_line": "scan",
    "returns.post_finish": "scan",
    "dock.post_batch": "scan",  # the dock handover (docs/dock.md): a loader scans
    "dock.list_batches": "read",
    "dock.get_batch": "read",
    "dock.post_scan": "scan",
    "dock.delete_parcel": "scan",
    "dock.post_close": "scan",
    "dock.get_manifest_csv": "read",
    "dock.post_print_manifest": "print",
    "parcels.get_parcels": "read",  # multi-parcel orders (docs/parcels.md)
    "parcels.post_parcels": "scan",
    "parcels.post_open_parcel": "scan",
    "parcels.post_parcel_label": "print",
}
STREAM_ACTION = "read"  # GET /api/v1/stream (served on the event loop, edge/web/stream.py)


@cache  # asked on every request in open mode: the setting does not change while serving
def is_loopback(listen: str) -> bool:
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_mode_problem(settings: Settings, ctx: EdgeContext) -> str | None:
    """Why the service must not start (listening beyond loopback with nobody to sign in)."""
    if is_loopback(settings.listen) or ctx.accounts.configured():
        return None
    return (f"listening on {settings.listen} with no user and no token: anyone on the network "
            "could scan, print and acknowledge alarms. Add a user (scanedge user add ...) or a "
            "token (scanedge token add ...), or listen on 127.0.0.1")


def principal_from(ctx: EdgeContext, headers: Any, cookies: Any) -> Principal | None:
    """The principal of a request (Flask's or Starlette's headers and cookies), or None."""
    scheme, _, token = (headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return ctx.accounts.principal_for_token(token.strip())  # a bad token is no fallback
    session = cookies.get(SESSION_COOKIE)
    if session:
        found = ctx.accounts.principal_for_session(session)
        if found is not None:
            return found
    proxied = headers.get("Forwarded") or headers.get("X-Forwarded-For")
    if not proxied and is_loopback(ctx.settings.listen) and not ctx.accounts.configured():
        return LOCAL
    return None


def refusal(principal: Principal | None, action: str, station: str | None) -> Refusal | None:
    """Why ``principal`` may not take ``action`` at ``station`` (None: it may)."""
    if principal is None:
        return Refusal("unauthorized", "sign in at the station (badge or user and PIN) or "
                                             "send 'Authorization: Bearer <token>'")
    if not principal.can(action):
        return Refusal("forbidden", f"the role {principal.role} may not {action}")
    if principal.station is not None and station and station != principal.station:
        return Refusal("wrong_station", f"signed in at {principal.station}, not {station}: "
                                              "sign in at this station")
    return None


FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")


def _requested_station() -> str | None:
    station = request.args.get("station") if request.query_string else None
    if station is None and request.is_json:
        body = request.get_json(silent=True)
        if isinstance(body, dict) and isinstance(body.get("station"), str):
            station = body["station"]
    elif station is None and request.mimetype in FORM_TYPES:  # only these have a form to parse
        station = request.form.get("station")
    return station or None


def check_request() -> None:
    """``before_request``: set ``g.principal``; refuse what the principal may not do."""
    endpoint = request.endpoint
    if endpoint is None:  # no such route: Flask answers 404/405
        return
    ctx = context()
    principal = principal_from(ctx, request.headers, request.cookies)
    g.principal = principal
    if endpoint in PUBLIC:
        return
    action = ENDPOINT_ACTIONS.get(endpoint)
    if action is None:  # a route nobody classified: refuse rather than guess
        raise Refusal("forbidden", f"{endpoint}: no permission is defined for this call")
    problem = refusal(principal, action, _requested_station())
    if problem is not None:
        raise problem


def principal() -> Principal:
    """The principal of the current request (the check ran: never None on a guarded route)."""
    found = g.get("principal")
    if found is None:
        raise Refusal("unauthorized", "sign in first")
    return found


def operator() -> str:
    """Who events of this request are recorded as: the session's user or the token's name."""
    return principal().operator


def station_of(requested: str | None) -> str:
    """The station a call acts at: the one asked for, else the session's, else the device's."""
    return station_for(requested, g.get("principal"), context().settings.station)


def station_for(requested: str | None, p: Principal | None, device_station: str) -> str:
    return requested or (p.station if p is not None and p.station else None) or device_station


# -- /api/v1/session ---------------------------------------------------------------------------
def _who(p: Principal, expires_at: str | None = None) -> dict[str, Any]:
    return {"kind": p.kind, "user_id": p.id, "name": p.name, "role": p.role, "station": p.station,
            "expires_at": expires_at, "operator": p.operator}


@bp.post("/session")
def post_session():
    """Sign in: ``{badge}`` or ``{user_id, pin}``, at ``station`` (default: the device's)."""
    from scanedge.edge.web.limits import json_body

    ctx = context()
    body = json_body()
    station = body.get("station") or request.args.get("station") or ctx.settings.station
    badge, user_id, pin = body.get("badge"), body.get("user_id"), body.get("pin")
    for name, value in (("station", station), ("badge", badge), ("user_id", user_id), ("pin", pin)):
        if value is not None and (not isinstance(value, str) or len(value) > 128):
            raise Refusal("bad_request", f"{name}: a string of at most 128 characters")
    if badge is None and (user_id is None or pin is None):
        raise Refusal("bad_request", "send {badge} or {user_id, pin}")
    try:
        session = ctx.accounts.sign_in(station, request.remote_addr or "?", badge=badge,
                                       user_id=user_id, pin=pin)
    except SigninThrottled as e:
        raise Refusal("signin_throttled", str(e), retry_after_s=int(e.wait_s) + 1) from None
    except (SigninFailed, AccessError) as e:
        raise Refusal("signin_failed", str(e)) from None
    response: Response = jsonify(_who(session.principal, session.expires_at))
    response.set_cookie(SESSION_COOKIE, session.token, max_age=int(ctx.accounts.session_hours * 3600),
                        httponly=True, samesite="Strict", secure=bool(ctx.settings.tls_cert),
                        path="/")
    return response


@bp.get("/session")
def get_session():
    return jsonify(_who(principal()))


@bp.delete("/session")
def delete_session():
    p = g.get("principal")
    if p is not None:
        context().accounts.sign_out(p)
    response: Response = jsonify({"signed_out": p is not None and p.kind == "user"})
    response.delete_cookie(SESSION_COOKIE, path="/", samesite="Strict")
    return response
