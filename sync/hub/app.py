"""The hub's HTTP API (docs/interfaces.md "Hub HTTP"): Flask application factory."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from importlib import resources
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from scanedge.edge.domain.countdown import STATES
from scanedge.edge.domain.evidence import SHA256_RE
from scanedge.edge.domain.orders import DEFAULT_SITE, ORDER_ID_RE, SITE_RE, OrderError
from scanedge.edge.domain.packing import FREEZE_REASONS
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.web.errors import register_error_handlers
from scanedge.edge.web.limits import HubJSONProvider, install_json, json_body
from scanedge.sync.carriers.accounts import CarrierAccounts, load_accounts
from scanedge.sync.hub import dock, ewaybills
from scanedge.sync.hub import freezes as hub_freezes
from scanedge.sync.hub import openapi as hub_openapi
from scanedge.sync.hub.blobs import BlobUploads, open_blob_store
from scanedge.sync.hub.limits import Rate, RateLimiter, retry_after_header
from scanedge.sync.hub.storage import AdminScope, HubStorage, SiteChange, now_iso
from scanedge.sync.protocol import HEARTBEAT_S, MAX_BATCH_BYTES, MAX_BATCH_EVENTS

log = logging.getLogger(__name__)
bp = Blueprint("hub", __name__)
DEVICE_ID_RE = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
# A device pushes at most MAX_BATCH_EVENTS; the hub takes a few batches' worth in one request.
MAX_PUSH_EVENTS = 5 * MAX_BATCH_EVENTS
MAX_NOTE = 500  # characters: what fits a dialog on a PDA screen


@dataclass(frozen=True)
class HubOptions:
    """How a hub process serves (settings ``hub_*``, docs/scaling.md)."""

    heartbeat_s: float = HEARTBEAT_S
    # How often the change feed re-reads the log without a wake-up: the safety net for
    # changes written by another hub process. With PostgreSQL LISTEN/NOTIFY it can be long.
    reread_s: float = 1.0
    streams_per_device: int = 2
    rates: dict[str, Rate] = field(default_factory=lambda: {
        "pull": Rate(5.0, 20.0), "push": Rate(20.0, 60.0), "ack": Rate(20.0, 60.0),
        "stream": Rate(0.5, 5.0)})
    admin_threads: int = 8
    device_threads: int = 16
    notify_url: str = ""  # fuse trips are POSTed here (sync/hub/webhooks.py)
    carriers: CarrierAccounts = field(default_factory=CarrierAccounts)  # per site (carriers.md)
    blobs: BlobUploads | None = None  # pack evidence (docs/evidence.md); None: not kept here

    @classmethod
    def from_settings(cls, settings: Any, **over: Any) -> HubOptions:
        return cls(
            streams_per_device=settings.hub_streams_per_device,
            rates={"pull": Rate(settings.hub_pull_rate, settings.hub_pull_burst),
                   "push": Rate(settings.hub_push_rate, settings.hub_push_burst),
                   # freeze acks have a bucket of their own: a busy outbox never delays them
                   "ack": Rate(settings.hub_push_rate, settings.hub_push_burst),
                   "stream": Rate(settings.hub_stream_rate, settings.hub_stream_burst)},
            admin_threads=settings.hub_admin_threads, device_threads=settings.hub_threads,
            reread_s=settings.hub_reread_s, notify_url=settings.notify_url,
            carriers=load_accounts(settings.hub_carrier_accounts),
            blobs=BlobUploads(*open_blob_store(settings.hub_blobs, settings.data_dir)), **over)


class Hub:
    """What the hub app holds: storage (with its after-commit signals), the per-device rate
    limits."""

    def __init__(self, storage: HubStorage, options: HubOptions) -> None:
        self.storage = storage
        self.options = options
        self.limiter = RateLimiter(options.rates, time.monotonic)

    def limit(self, kind: str, device_id: str) -> None:
        """Raise 429 with Retry-After when the device is over its ``kind`` rate."""
        wait = self.limiter.check(kind, device_id)
        if wait is not None:
            raise Refusal("rate_limited", f"too many {kind} requests from this device; "
                           f"retry in {retry_after_header(wait)} s",
                           retry_after_s=int(retry_after_header(wait)))


def hub() -> Hub:
    return current_app.extensions["scanedge_hub"]


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Refusal("unauthorized", "send 'Authorization: Bearer <token>'")
    return token.strip()


def admin_only(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        scope = hub().storage.admin_scope(_bearer())
        if scope is None:
            raise Refusal("forbidden", "this call needs the hub's admin token or an "
                                             "order-system token ('scanedge hub add-token')")
        g.scope = scope
        return fn(*args, **kwargs)

    return wrapper


def device_only(kind: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A device's call; with ``kind``, counted against that rate limit of the device."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            device = hub().storage.device_for_token(_bearer())
            if device is None:
                raise Refusal("forbidden", "unknown device token: register the device "
                                                 "with 'scanedge hub add-device ID'")
            if kind is not None:
                hub().limit(kind, device.device_id)
            g.device = device
            return fn(*args, **kwargs)

        return wrapper

    return decorate


def _scope() -> AdminScope:
    return g.scope


def _order_site(order_id: str, requested: Any = None) -> str:
    """The site a call on ``order_id`` concerns, checked against the token's scope: the order's
    own site if the hub knows it, else the one asked for, else the token's default."""
    scope = _scope()
    if not ORDER_ID_RE.fullmatch(order_id):
        raise Refusal("bad_request", "order id: 1-64 letters, digits, '-', '_', '.', '/'")
    site = hub().storage.order_site(order_id)
    if site is None:
        site = requested or scope.default_site
        if not isinstance(site, str) or not SITE_RE.fullmatch(site):
            raise Refusal("bad_request", "site: 1-64 letters, digits, '-', '_', '.'")
    if not scope.allows(site):
        # the same answer whether or not the order exists at a site the token cannot see
        raise Refusal("not_found", f"order {order_id}: not at a site of this token")
    return site


def _int_arg(name: str, default: int, lo: int = 0, hi: int = 10**15) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Refusal("bad_request", f"{name}: expected a whole number") from None
    if not lo <= value <= hi:
        raise Refusal("bad_request", f"{name}: expected {lo}..{hi}")
    return value


def _body_naming(key: str, value: str) -> dict[str, Any]:
    """The JSON body of a PUT to ``.../{value}``: its ``key`` is the path's, or missing."""
    body = json_body()
    if body.setdefault(key, value) != value:
        raise Refusal("bad_request", f"{key} in the body ({body[key]!r}) differs from the path "
                                     f"({value!r})")
    return body


# -- order system (admin) ---------------------------------------------------------------------
@bp.put("/orders/<order_id>")
@admin_only
def put_order(order_id: str):
    body = _body_naming("order_id", order_id)
    scope = _scope()
    body.setdefault("site", hub().storage.order_site(order_id) or scope.default_site)
    if not isinstance(body["site"], str):  # else "5" and 5 would pass the check differently
        raise Refusal("bad_order", "site: expected a string")
    if not scope.allows(body["site"]):
        raise Refusal("forbidden", f"site {body['site']!r} is not a site of this token")
    try:
        order, changed = hub().storage.upsert_order(body)
    except OrderError as e:
        raise Refusal("bad_order", str(e)) from None
    except SiteChange as e:
        raise Refusal("site_change", str(e)) from None
    return jsonify({"order_id": order.order_id, "version": order.version, "changed": changed,
                    "site": order.site})


def _command(kind: str, order_id: str, fields: dict[str, Any], body: dict[str, Any]):
    site = _order_site(order_id, body.get("site"))
    payload = hub().storage.add_command(kind, order_id, fields, site)
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
        raise Refusal("bad_request", f"reason: expected one of {', '.join(FREEZE_REASONS)}")
    answer = _command("freeze", order_id, {"reason": reason}, body)
    _cancel_waybill(order_id)
    return answer


def _cancel_waybill(order_id: str) -> None:
    """A frozen or cancelled order's waybill is cancelled at the carrier: recorded now, asked
    of the carrier in the background (the order system's call does not wait on a carrier; one
    that does not answer is retried by the hub's sweep, sync/hub/ewaybills.py)."""
    storage, accounts = hub().storage, hub().options.carriers
    row = ewaybills.mark_cancelling(storage, order_id)
    if row is not None:
        threading.Thread(target=ewaybills.cancel_row, args=(storage, accounts, row),
                         name=f"cancel-waybill-{order_id}", daemon=True).start()


@bp.get("/orders/<order_id>")
@admin_only
def get_order(order_id: str):
    """The order as the hub keeps it: its document (a live waybill's number as its tracking
    number), its e-waybills, newest first, and whether a dock loaded it onto a truck."""
    _order_site(order_id)
    doc = hub().storage.order_doc(order_id)
    if doc is None:
        raise Refusal("not_found", f"order {order_id}: the hub has no such order")
    attempts = ewaybills.for_order(hub().storage, order_id)
    live = next((a["ewaybill"] for a in attempts if a["state"] == "live"), None)
    return jsonify({"order": doc, "tracking_number": doc.get("tracking_number"),
                    "carrier": doc.get("carrier"), "ewaybill": live,
                    "loaded": dock.loaded(hub().storage, order_id),  # 装车 (docs/dock.md)
                    "ewaybills": [{k: a[k] for k in ("attempt", "carrier", "carrier_order_id",
                                                     "state", "number", "error", "device_id",
                                                     "created_at", "updated_at")}
                                  for a in attempts]})


@bp.post("/orders/<order_id>/unfreeze")
@admin_only
def unfreeze(order_id: str):
    return _command("unfreeze", order_id, {}, _optional_body())


@bp.post("/orders/<order_id>/expedite")
@admin_only
def expedite(order_id: str):
    return _command("expedite", order_id, {}, _optional_body())


@bp.post("/orders/<order_id>/note")
@admin_only
def note(order_id: str):
    """A note (备注) for the packer: signed like a freeze, shown at the bench in a dialog that
    blocks the order's scans until read; on a countdown like a cancel."""
    body = json_body()
    text = body.get("note")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_NOTE:
        raise Refusal("bad_request", f"note: the text for the packer, 1-{MAX_NOTE} "
                                           "characters")
    return _command("note", order_id, {"note": text.strip()}, body)


def _optional_body() -> dict[str, Any]:
    return json_body() if request.get_data(cache=True) else {}


@bp.post("/orders/<order_id>/decide")
@admin_only
def decide(order_id: str):
    """Resolve a needs_decision conflict: ``{decision: cancel|ship, operator}``."""
    decision, operator = _decision(json_body())
    _order_site(order_id)
    return _decide(order_id, decision, operator, None)


def _decision(body: dict[str, Any]) -> tuple[str, str]:
    decision = body.get("decision")
    if decision not in hub_freezes.DECISIONS:
        raise Refusal("bad_request", "decision: expected cancel or ship")
    operator = body.get("operator")
    if not isinstance(operator, str) or not operator.strip() or len(operator) > 64:
        raise Refusal("bad_request", "operator: required (who decided), 1-64 characters")
    return decision, operator.strip()


def _decide(order_id: str, decision: str, operator: str, device: str | None):
    result = hub().storage.decide(order_id, decision, operator, device)  # or 409 no_conflict
    log.info("order %s: conflict %s decided %s by %s%s (command %s)", order_id,
             result["conflict_id"], decision, operator, f" on device {device}" if device else "",
             result["command"]["command_id"])
    return jsonify(result)


@bp.get("/conflicts")
@admin_only
def conflicts():
    """Expedite/cancel conflicts (``?open=1``: only those waiting for a decision)."""
    return jsonify({"conflicts": hub().storage.conflicts(
        open_only=request.args.get("open") in ("1", "true"), limit=_int_arg("limit", 200, 1, 5000),
        scope=_scope())})


@bp.get("/freezes")
@admin_only
def list_freezes():
    """Freezes with the devices' acks (``?acks=all``: a row for every expected device) and the
    late ones; ``?unacked=1``: only those a device did not acknowledge within ``within_s``
    (default 3) seconds of the issue."""
    try:
        within = float(request.args.get("within_s") or 3.0)
        if not 0 <= within <= 10**9:  # nan and inf too
            raise ValueError
    except ValueError:
        raise Refusal("bad_request", "within_s: expected a number of seconds") from None
    items = hub().storage.list_freezes(
        within_s=within, unacked=request.args.get("unacked") in ("1", "true"),
        since=request.args.get("since") or None, limit=_int_arg("limit", 200, 1, 5000),
        scope=_scope(), all_devices=request.args.get("acks") == "all")
    return jsonify({"freezes": items, "within_s": within})


def _state_arg() -> str | None:
    state = request.args.get("state") or None
    if state is not None and state not in STATES:
        raise Refusal("bad_request", f"state: expected one of {', '.join(STATES)}")
    return state


@bp.get("/countdowns")
@admin_only
def list_countdowns():
    """Cancel, address-change and note commands against their countdown (生效倒计时): seconds
    left, devices applied/expected, who is missing or late; ``?state=tripped``: the fuses."""
    return jsonify({"countdowns": hub().storage.list_countdowns(
        scope=_scope(), state=_state_arg(), since=request.args.get("since") or None,
        limit=_int_arg("limit", 100, 1, 5000)), "now": now_iso()})


@bp.get("/reports/interceptions")
@admin_only
def interception_report():
    """The interception report over the events the devices pushed (docs/freeze.md)."""
    from scanedge.edge.domain.interception_report import format_table, parse_since

    try:
        since = parse_since(request.args.get("since") or "")
    except ValueError as e:
        raise Refusal("bad_request", str(e)) from None
    report = hub().storage.interception_report(since, _scope())
    if request.args.get("format") == "markdown":
        return Response(format_table(report) + "\n", mimetype="text/markdown")
    return jsonify(report.as_json())


@bp.get("/events")
@admin_only
def list_events():
    events = hub().storage.list_events(
        order_id=request.args.get("order_id") or None,
        device_id=request.args.get("device_id") or None,
        after=_int_arg("after", 0), limit=_int_arg("limit", 500, 1, 5000), scope=_scope())
    return jsonify({"events": events, "next": events[-1]["hub_seq"] if events else None})


@bp.get("/devices")
@admin_only
def devices():
    return jsonify({"devices": hub().storage.devices(_scope())})


# -- returns (docs/returns.md, "Hub"): sync/hub/rmas.py ---------------------------------------
@bp.put("/rmas/<rma_id>")
@admin_only
def put_rma(rma_id: str):
    """An RMA from the order system, synced to the devices of the order's site like orders."""
    from scanedge.edge.domain.returns import RmaError
    from scanedge.sync.hub import rmas

    body = _body_naming("rma_id", rma_id)
    for key in ("version", "status"):  # the hub's to keep: versions, and cancel through /cancel
        if key in body and not (key == "status" and body[key] == "open"):
            raise Refusal("bad_request", f"{key}: set by the hub (cancel: POST .../cancel)")
    if not isinstance(body.get("order_id"), str):
        raise Refusal("bad_request", "order_id: required, the original order")
    site = rmas.site_of(hub().storage, rma_id) or _order_site(body["order_id"], body.get("site"))
    if not _scope().allows(site):
        raise Refusal("not_found", f"RMA {rma_id}: not at a site of this token")
    try:
        rma, changed = rmas.upsert(hub().storage, {**body, "site": site})
    except RmaError as e:
        raise Refusal("bad_request", f"RMA: {e}") from None
    except rmas.RmaSiteChange as e:
        raise Refusal("site_change", str(e)) from None
    return jsonify({"rma_id": rma.rma_id, "version": rma.version, "changed": changed,
                    "site": rma.site, "status": rma.status})


@bp.get("/rmas/<rma_id>")
@admin_only
def get_rma(rma_id: str):
    """The RMA and its outcome: the first receipt's verdict releases the refund."""
    from scanedge.sync.hub import rmas

    found = rmas.get(hub().storage, rma_id, _scope())
    if found is None:
        raise Refusal("not_found", f"no RMA {rma_id} at a site of this token")
    return jsonify(found)


@bp.post("/rmas/<rma_id>/cancel")
@admin_only
def cancel_rma(rma_id: str):
    """Cancel an RMA upstream: on the devices its return is refused and alarmed like a freeze."""
    from scanedge.sync.hub import rmas

    _optional_body()
    rma = rmas.cancel(hub().storage, rma_id, _scope())
    if rma is None:
        raise Refusal("not_found", f"no RMA {rma_id} at a site of this token")
    return jsonify({"rma_id": rma.rma_id, "version": rma.version, "status": rma.status})


@bp.get("/reports/returns")
@admin_only
def returns_report():
    """Returns received, qualified, rejected by reason; minutes from scan to verdict, by reason
    code and station (``?format=markdown`` for tables)."""
    from scanedge.edge.domain.interception_report import parse_since
    from scanedge.edge.domain.returns_report import format_table
    from scanedge.sync.hub import rmas

    try:
        since = parse_since(request.args.get("since") or "")
    except ValueError as e:
        raise Refusal("bad_request", str(e)) from None
    report = rmas.report(hub().storage, since, _scope())
    if request.args.get("format") == "markdown":
        return Response(format_table(report) + "\n", mimetype="text/markdown")
    return jsonify(report.as_json())


# -- devices --------------------------------------------------------------------------------
@bp.post("/sync/push")
@device_only("push")
def push():
    body = json_body()
    events = body.get("events")
    if not isinstance(events, list):
        raise Refusal("bad_request", "events: expected a list")
    if len(events) > MAX_PUSH_EVENTS:
        raise Refusal("too_large", f"at most {MAX_PUSH_EVENTS} events per push")
    results = hub().storage.store_events(g.device, events)
    if any(isinstance(e, dict) and e.get("type") == "return_received" for e in events):
        from scanedge.sync.hub import rmas

        # before the answer: a device that got none pushes again, and a duplicate relays too
        rmas.relay_received(hub().storage, g.device, events, results)
    return jsonify({"results": results, "hub": hub().storage.hub_info()})


@bp.post("/sync/acks")
@device_only("ack")
def freeze_acks():
    """A device applied these freezes (and cancelled labels, raised its alarm): sent at once,
    ahead of its event backlog. ``{acks: [{command_id, order_id, applied_at, effects_at,
    result}]}``; idempotent by (command, device)."""
    body = json_body()
    acks = body.get("acks")
    if not isinstance(acks, list) or len(acks) > 1000 or not all(
            isinstance(a, dict) and isinstance(a.get("command_id"), str) for a in acks):
        raise Refusal("bad_request", "acks: expected a list of {command_id, ...}")
    stored = hub().storage.store_freeze_acks(g.device, acks)
    return jsonify({"stored": stored})


def _device_scope() -> AdminScope:
    """A device sees its own site's conflicts, as a token of that one site would."""
    return AdminScope(f"device:{g.device.device_id}", frozenset({g.device.site}))


@bp.get("/sync/conflicts")
@device_only()
def device_conflicts():
    """The open expedite/cancel conflicts of the device's site (with what each command was),
    and whether this device may decide them (``scanedge hub device ID --can-decide``)."""
    device = g.device
    return jsonify({"conflicts": hub().storage.conflicts(open_only=True, scope=_device_scope(),
                                                         details=True),
                    "device_id": device.device_id, "site": device.site,
                    "can_decide": device.can_decide})


@bp.post("/sync/decide/<order_id>")
@device_only()
def device_decide(order_id: str):
    """A supervisor signed in at a device decides a conflict of its site: ``{decision,
    operator}``; recorded as decided by the operator on this device."""
    device = g.device
    if not device.can_decide:
        raise Refusal("cannot_decide", f"device {device.device_id} may not decide "
                       f"conflicts: grant it at the hub with 'scanedge hub device "
                       f"{device.device_id} --can-decide'")
    decision, operator = _decision(json_body())
    if not ORDER_ID_RE.fullmatch(order_id):
        raise Refusal("bad_request", "order id: 1-64 letters, digits, '-', '_', '.', '/'")
    if (hub().storage.order_site(order_id) or DEFAULT_SITE) != device.site:
        # the same answer whether or not the order exists at another site
        raise Refusal("not_found", f"order {order_id}: not at this device's site")
    return _decide(order_id, decision, operator, device.device_id)


@bp.post("/sync/ewaybill/<order_id>")
@device_only()
def device_ewaybill(order_id: str):
    """A device asks for the order's e-waybill: ``{carrier?}``. The live one if the order has
    one (``replayed``), else the carrier is asked (sync/hub/ewaybills.py)."""
    body = _optional_body()
    carrier = body.get("carrier")
    if carrier is not None and (not isinstance(carrier, str) or not 1 <= len(carrier) <= 16):
        raise Refusal("bad_request", "carrier: a carrier code such as SF, ZTO, JT")
    if not ORDER_ID_RE.fullmatch(order_id):
        raise Refusal("bad_request", "order id: 1-64 letters, digits, '-', '_', '.', '/'")
    ewb, replayed = ewaybills.request(hub().storage, hub().options.carriers, order_id,
                                      g.device.site, carrier, g.device.device_id)
    return jsonify({"ewaybill": ewb.to_json(), "replayed": replayed})


@bp.get("/sync/pull")
@device_only("pull")
def pull():
    """The device's site's changes after ``cursor``; the answer's cursor is where to resume,
    ``hub`` says which hub answers and how far its log goes (docs/sync.md, "Whose cursor")."""
    return jsonify(hub().storage.pull_answer(g.device.site, _int_arg("cursor", 0, 0, 2**63 - 1),
                                             _int_arg("limit", 500, 1, 5000)))


@bp.get("/sync/countdowns")
@device_only("pull")
def device_countdowns():
    """The device's site's countdowns (its supervisor page shows them live)."""
    return jsonify({"countdowns": hub().storage.list_countdowns(
        site=g.device.site, state=_state_arg(), limit=_int_arg("limit", 50, 1, 500)),
        "now": now_iso()})


def _blobs() -> BlobUploads:
    blobs = hub().options.blobs
    if blobs is None:
        raise Refusal("not_found", "this hub keeps no pack evidence (hub_blobs)")
    return blobs


@bp.get("/sync/blobs/<sha256>")
@device_only()
def blob_status(sha256: str):
    """How much of a pack-evidence blob the hub holds: ``{offset, complete}`` (resume from
    ``offset``; docs/evidence.md)."""
    return jsonify(_blobs().status(sha256))


@bp.put("/sync/blobs/<sha256>")
@device_only()
def put_blob_chunk(sha256: str):
    """One chunk of a blob: the body's bytes, ``Content-Range: bytes START-LAST/SIZE`` and
    ``X-Chunk-SHA256``; the last chunk completes it (sync/hub/blobs.py)."""
    from scanedge.edge.domain.evidence import parse_content_range

    try:
        start, end, size = parse_content_range(request.headers.get("Content-Range", ""))
    except ValueError as e:
        raise Refusal("bad_request", str(e)) from None
    chunk_sha = request.headers.get("X-Chunk-SHA256", "")
    if not chunk_sha:
        raise Refusal("bad_request", "X-Chunk-SHA256: the chunk's SHA-256, hex")
    return jsonify(_blobs().receive(sha256, start, end, size, request.get_data(), chunk_sha))


@bp.get("/orders/<order_id>/evidence")
@admin_only
def order_evidence(order_id: str):
    """The order's pack evidence as devices reported it (``pack_evidence`` events), each with
    whether the hub holds its blob yet (``stored``)."""
    _order_site(order_id)
    blobs = hub().options.blobs
    items = []
    for e in hub().storage.list_events(order_id=order_id, scope=_scope(), limit=5000):
        if e["type"] != "pack_evidence":
            continue
        p = e["payload"]
        sha = p.get("sha256")
        items.append({**{k: p.get(k) for k in ("evidence_id", "kind", "sha256", "size",
                                                "duration_s", "mime", "station", "operator")},
                      "device_id": e["device_id"], "recorded_at": e["device_time"],
                      "stored": bool(blobs and isinstance(sha, str) and SHA256_RE.fullmatch(sha)
                                     and blobs.store.has(sha))})
    return jsonify({"order_id": order_id, "evidence": items})


@bp.get("/blobs/<sha256>")
@admin_only
def get_blob(sha256: str):
    """A stored pack-evidence blob's bytes (a supervisor watching the packing video)."""
    from scanedge.sync.hub.blobs import check_sha

    check_sha(sha256)
    f = _blobs().store.open(sha256)
    if f is None:
        raise Refusal("not_found", f"blob {sha256}: the hub does not hold it (yet)")

    def chunks():
        with contextlib.closing(f):
            while block := f.read(1024 * 1024):
                yield block

    return Response(chunks(), mimetype="application/octet-stream")


# GET /sync/stream is served from the event loop, not here: sync/hub/asgi.py.


@bp.get("/healthz")
def healthz():
    from scanedge.sync.signing import key_id

    storage = hub().storage
    return jsonify({"status": "ok", "role": "hub", "storage": storage.dialect,
                    "last_change": storage.last_change_seq(),
                    "signing_key_id": key_id(storage.signer().public_b64),
                    "database_id": storage.hub_info()["database_id"]})


def supervisor_page():
    """The hub's supervisor page: countdowns and fuses, live (it asks for an admin token)."""
    page = resources.files("scanedge.sync.hub").joinpath("pages/supervisor.html").read_text("utf-8")
    return Response(page, mimetype="text/html")


def create_hub_app(storage: HubStorage, options: HubOptions | None = None) -> Flask:
    """The hub's request/response API (a Flask app). ``sync.hub.asgi.create_hub_asgi`` serves
    it beside the device streams; tests may drive it alone through its test client."""
    options = options or HubOptions()
    storage.signer()  # the keypair is made at the first start (kept in hub_meta)
    app = Flask("scanedge_hub", static_folder=None)  # no files to serve (no /static route)
    app.config["MAX_CONTENT_LENGTH"] = MAX_PUSH_EVENTS * (MAX_BATCH_BYTES // MAX_BATCH_EVENTS) * 4
    # malformed JSON is a 400 (edge/web/limits.py); big integers are left to /sync/push's
    # per-event checks, and the admin API bounds its own fields
    install_json(app, HubJSONProvider, cap_json_bodies=False)
    app.extensions["scanedge_hub"] = Hub(storage, options)
    register_error_handlers(app)
    app.register_blueprint(bp, url_prefix="/api/v1")
    app.register_blueprint(hub_openapi.bp, url_prefix="/api/v1")  # GET /api/v1/openapi.json
    app.add_url_rule("/healthz", view_func=healthz)
    app.add_url_rule("/supervisor", view_func=supervisor_page)
    return app
