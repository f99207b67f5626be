"""The hub's HTTP API (DESIGN.md "Hub HTTP"): Flask application factory."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from edge.domain.orders import OrderError
from edge.domain.packing import FREEZE_REASONS
from edge.web.api import json_body
from edge.web.errors import ApiError, register_error_handlers
from sync.hub import freezes as hub_freezes
from sync.hub.notify import ChangeNotifier
from sync.hub.storage import HubStorage
from sync.protocol import HEARTBEAT_S, MAX_BATCH_BYTES, MAX_BATCH_EVENTS

log = logging.getLogger(__name__)
bp = Blueprint("hub", __name__)
DEVICE_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
# A device pushes at most MAX_BATCH_EVENTS; the hub takes a few batches' worth in one request.
MAX_PUSH_EVENTS = 5 * MAX_BATCH_EVENTS


class Hub:
    """What the hub app holds: storage, the stream notifier, timing."""

    def __init__(self, storage: HubStorage, *, heartbeat_s: float = HEARTBEAT_S,
                 reread_s: float = 1.0) -> None:
        self.storage = storage
        self.notifier = ChangeNotifier()
        self.heartbeat_s = heartbeat_s
        # How often a stream re-reads the change log without a wake-up: the safety net for
        # changes written by another hub process. With PostgreSQL LISTEN/NOTIFY it can be long.
        self.reread_s = reread_s
        storage.on_change = self.notifier.notify


def hub() -> Hub:
    return current_app.extensions["scanedge_hub"]


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send 'Authorization: Bearer <token>'")
    return token.strip()


def admin_only(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not hub().storage.is_admin(_bearer()):
            raise ApiError(403, "forbidden", "this call needs the hub's admin token")
        return fn(*args, **kwargs)

    return wrapper


def device_only(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        device_id = hub().storage.device_for_token(_bearer())
        if device_id is None:
            raise ApiError(403, "forbidden", "unknown device token: register the device with "
                                             "'scanedge hub add-device ID'")
        g.device_id = device_id
        return fn(*args, **kwargs)

    return wrapper


def _int_arg(name: str, default: int, lo: int = 0, hi: int = 10**15) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name}: expected a whole number") from None
    if not lo <= value <= hi:
        raise ApiError(400, "bad_request", f"{name}: expected {lo}..{hi}")
    return value


# -- order system (admin) ---------------------------------------------------------------------
@bp.put("/orders/<order_id>")
@admin_only
def put_order(order_id: str):
    body = json_body()
    if body.setdefault("order_id", order_id) != order_id:
        raise ApiError(400, "bad_request", f"order_id in the body ({body['order_id']!r}) "
                                           f"differs from the path ({order_id!r})")
    try:
        order, changed = hub().storage.upsert_order(body)
    except OrderError as e:
        raise ApiError(400, "bad_order", str(e)) from None
    return jsonify({"order_id": order.order_id, "version": order.version, "changed": changed})


def _command(kind: str, order_id: str, fields: dict[str, Any]):
    payload = hub().storage.add_command(kind, order_id, fields)
    if payload.get("conflict"):
        conflict = payload["conflict"]
        log.warning("order %s: expedite and cancel within %.0f s (commands %s): needs_decision "
                    "(conflict %s)", order_id, conflict["window_s"],
                    ", ".join(conflict["commands"]), conflict["conflict_id"])
    return jsonify(payload), 202


@bp.post("/orders/<order_id>/freeze")
@admin_only
def freeze(order_id: str):
    body = json_body()
    reason = body.get("reason")
    if reason not in FREEZE_REASONS:
        raise ApiError(400, "bad_request", f"reason: expected one of {', '.join(FREEZE_REASONS)}")
    return _command("freeze", order_id, {"reason": reason})


@bp.post("/orders/<order_id>/unfreeze")
@admin_only
def unfreeze(order_id: str):
    return _command("unfreeze", order_id, {})


@bp.post("/orders/<order_id>/expedite")
@admin_only
def expedite(order_id: str):
    return _command("expedite", order_id, {})


@bp.post("/orders/<order_id>/decide")
@admin_only
def decide(order_id: str):
    """Resolve a needs_decision conflict: ``{decision: cancel|ship, operator}``."""
    body = json_body()
    decision = body.get("decision")
    if decision not in hub_freezes.DECISIONS:
        raise ApiError(400, "bad_request", "decision: expected cancel or ship")
    operator = body.get("operator")
    if not isinstance(operator, str) or not operator.strip() or len(operator) > 64:
        raise ApiError(400, "bad_request", "operator: required (who decided), 1-64 characters")
    try:
        result = hub().storage.decide(order_id, decision, operator.strip())
    except hub_freezes.ConflictError as e:
        raise ApiError(409, "no_conflict", str(e)) from None
    log.info("order %s: conflict %s decided %s by %s (command %s)", order_id,
             result["conflict_id"], decision, operator, result["command"]["command_id"])
    return jsonify(result)


@bp.get("/conflicts")
@admin_only
def conflicts():
    """Expedite/cancel conflicts (``?open=1``: only those waiting for a decision)."""
    return jsonify({"conflicts": hub().storage.conflicts(
        open_only=request.args.get("open") in ("1", "true"), limit=_int_arg("limit", 200, 1, 5000))})


@bp.get("/freezes")
@admin_only
def list_freezes():
    """Freezes with each device's ack; ``?unacked=1``: only those a device did not acknowledge
    within ``within_s`` (default 3) seconds of the issue."""
    try:
        within = float(request.args.get("within_s") or 3.0)
    except ValueError:
        raise ApiError(400, "bad_request", "within_s: expected a number of seconds") from None
    items = hub().storage.list_freezes(
        within_s=within, unacked=request.args.get("unacked") in ("1", "true"),
        since=request.args.get("since") or None, limit=_int_arg("limit", 200, 1, 5000))
    return jsonify({"freezes": items, "within_s": within})


@bp.get("/reports/interceptions")
@admin_only
def interception_report():
    """The interception report over the events the devices pushed (docs/freeze.md)."""
    from edge.interception_report import format_table, parse_since

    try:
        since = parse_since(request.args.get("since") or "")
    except ValueError as e:
        raise ApiError(400, "bad_request", str(e)) from None
    report = hub().storage.interception_report(since)
    if request.args.get("format") == "markdown":
        return Response(format_table(report) + "\n", mimetype="text/markdown")
    return jsonify(report.as_json())


@bp.get("/events")
@admin_only
def list_events():
    events = hub().storage.list_events(
        order_id=request.args.get("order_id") or None,
        device_id=request.args.get("device_id") or None,
        after=_int_arg("after", 0), limit=_int_arg("limit", 500, 1, 5000))
    return jsonify({"events": events, "next": events[-1]["hub_seq"] if events else None})


@bp.get("/devices")
@admin_only
def devices():
    return jsonify({"devices": hub().storage.devices()})


# -- devices --------------------------------------------------------------------------------
@bp.post("/sync/push")
@device_only
def push():
    body = json_body()
    events = body.get("events")
    if not isinstance(events, list):
        raise ApiError(400, "bad_request", "events: expected a list")
    if len(events) > MAX_PUSH_EVENTS:
        raise ApiError(413, "too_large", f"at most {MAX_PUSH_EVENTS} events per push")
    results = hub().storage.store_events(g.device_id, events)
    return jsonify({"results": results})


@bp.post("/sync/acks")
@device_only
def freeze_acks():
    """A device applied these freezes (and cancelled labels, raised its alarm): sent at once,
    ahead of its event backlog. ``{acks: [{command_id, order_id, applied_at, effects_at,
    result}]}``; idempotent by (command, device)."""
    body = json_body()
    acks = body.get("acks")
    if not isinstance(acks, list) or len(acks) > 1000 or not all(
            isinstance(a, dict) and isinstance(a.get("command_id"), str) for a in acks):
        raise ApiError(400, "bad_request", "acks: expected a list of {command_id, ...}")
    stored = hub().storage.store_freeze_acks(g.device_id, acks)
    return jsonify({"stored": stored})


@bp.get("/sync/pull")
@device_only
def pull():
    cursor = _int_arg("cursor", 0)
    limit = _int_arg("limit", 500, 1, 5000)
    changes = hub().storage.changes_since(cursor, limit + 1)
    more = len(changes) > limit
    changes = changes[:limit]
    return jsonify({"changes": [c.as_json() for c in changes],
                    "cursor": changes[-1].seq if changes else cursor, "more": more})


@bp.get("/sync/stream")
@device_only
def stream():
    last_id = request.headers.get("Last-Event-ID") or request.args.get("cursor") or "0"
    try:
        cursor = int(last_id)
    except ValueError:
        raise ApiError(400, "bad_request", "Last-Event-ID: expected a change sequence") from None
    the_hub = hub()
    device_id = g.device_id

    def events() -> Iterator[str]:
        nonlocal cursor
        seen = the_hub.notifier.generation
        last_beat = 0.0
        yield "retry: 1000\n\n"
        while True:
            changes = the_hub.storage.changes_since(cursor, 200)
            for change in changes:
                cursor = change.seq
                data = json.dumps(change.as_json(), ensure_ascii=False)
                yield f"id: {change.seq}\nevent: change\ndata: {data}\n\n"
            now = time.monotonic()
            if now - last_beat >= the_hub.heartbeat_s:
                last_beat = now
                beat = json.dumps({"cursor": cursor, "time": time.time(), "device": device_id})
                yield f"event: heartbeat\ndata: {beat}\n\n"
            if len(changes) == 200:
                continue
            wait = min(the_hub.reread_s,
                       max(0.0, the_hub.heartbeat_s - (time.monotonic() - last_beat)))
            seen = the_hub.notifier.wait(seen, wait)

    return Response(events(), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@bp.get("/healthz")
def healthz():
    from sync.signing import key_id

    storage = hub().storage
    return jsonify({"status": "ok", "role": "hub", "storage": storage.dialect,
                    "last_change": storage.last_change_seq(),
                    "signing_key_id": key_id(storage.signer().public_b64)})


def create_hub_app(storage: HubStorage, *, heartbeat_s: float = HEARTBEAT_S,
                   reread_s: float = 1.0, conflict_window_s: float | None = None) -> Flask:
    storage.signer()  # the keypair is made at the first start (kept in hub_meta)
    if conflict_window_s is not None:
        storage.conflict_window_s = conflict_window_s
    app = Flask("scanedge_hub")
    app.config["MAX_CONTENT_LENGTH"] = MAX_PUSH_EVENTS * (MAX_BATCH_BYTES // MAX_BATCH_EVENTS) * 4
    app.json.ensure_ascii = False
    app.extensions["scanedge_hub"] = Hub(storage, heartbeat_s=heartbeat_s, reread_s=reread_s)
    register_error_handlers(app)
    app.register_blueprint(bp, url_prefix="/api/v1")
    app.add_url_rule("/healthz", view_func=healthz)
    return app
