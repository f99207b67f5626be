"""``GET /api/v1/stream``: the pages' live feed (Server-Sent Events), and the state they start from.

Each bus message becomes one SSE event: ``id`` = the bus message id, ``event`` = its kind,
``data`` = its JSON. A page that reconnects sends ``Last-Event-ID`` (EventSource does it by itself;
a page that makes a new EventSource passes ``?after=``) and gets the kept messages it missed. Every
connection starts with a ``state`` event (active alarms, sync status, printer, the open order) so
that a page never depends on replay; a ``status`` event every few seconds is the heartbeat: it
carries the sync and printer status (the bus has no "hub went offline" message) and lets the page
see a dead connection that TCP would not report (Wi-Fi gone).

Threads: waitress gives each open stream one worker thread for as long as it is open. So that
pages can never starve the scan API, at most ``http_threads - RESERVED_THREADS`` streams are open
at once; one more is answered ``503`` with ``Retry-After`` (the page retries). Streams are also
closed after ``MAX_STREAM_S`` (the page reconnects at once and loses nothing: Last-Event-ID), so a
thread held by a client that vanished without a FIN is returned.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, jsonify, request

from edge.context import EdgeContext
from edge.scanning import order_view
from edge.store.orders import load_pack_state, open_order_id
from edge.store.outbox import outbox_status
from edge.web import context
from edge.web.errors import ApiError

bp = Blueprint("stream", __name__)

HEARTBEAT_S = 3.0  # a page calls the edge unreachable after ~3 missed heartbeats
MAX_STREAM_S = 300.0
RESERVED_THREADS = 4  # worker threads a stream may never take: scans, prints, acks
RETRY_MS = 1000  # the EventSource reconnection delay after a drop
FREEZE_ALARM_TYPES = ("freeze", "frozen_scan", "frozen_print", "frozen_waybill", "conflict",
                      "needs_decision")


class StreamSlots:
    """Counts open streams against a limit derived from the HTTP worker threads."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.open = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.open >= self.limit:
                return False
            self.open += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.open -= 1


def stream_limit(http_threads: int) -> int:
    return max(1, http_threads - RESERVED_THREADS)


def _slots(ctx: EdgeContext) -> StreamSlots:
    # one per context (tests run several apps in one process)
    slots = getattr(ctx, "_stream_slots", None)
    if slots is None:
        slots = StreamSlots(stream_limit(ctx.settings.http_threads))
        ctx._stream_slots = slots  # type: ignore[attr-defined]
    return slots


# --- what a page starts from ---------------------------------------------------------------------


def sync_view(ctx: EdgeContext) -> dict[str, Any]:
    """Hub link and outbox, as the connection banners need them."""
    outbox = outbox_status(ctx.store.read())
    view: dict[str, Any] = {
        "hub": bool(ctx.settings.hub_url),
        "outbox_pending": outbox.pending,
        "outbox_parked": outbox.parked,
        "oldest_pending_time": outbox.oldest_pending_time,
    }
    # "known" | "unknown" (hub silent: freezes may be missing) | "local" (no hub): the offline
    # policy's own verdict when it runs, else the same rule from the sync worker
    freeze = getattr(ctx, "freeze_status", None)
    if ctx.sync is None:  # a standalone device: freezes only come from its own CLI
        view.update(online=None, offline_since=None, freeze_status="local")
        return view
    status = ctx.sync.status()
    view.update(online=status.get("online"), offline_since=status.get("offline_since"),
                last_contact=status.get("last_contact"), stream_connected=status.get("stream_connected"),
                last_error=status.get("last_error"))
    view["freeze_status"] = freeze.status if freeze is not None else (
        "known" if status.get("online") else "unknown")
    return view


def printer_view(ctx: EdgeContext) -> dict[str, Any]:
    return ctx.printing.status_view()


def order_jobs_view(ctx: EdgeContext, order_id: str) -> list[dict[str, Any]]:
    from printers.queue import order_jobs

    return [job.to_json() for job in order_jobs(ctx.store.read(), order_id)][-5:]


def open_order_view(ctx: EdgeContext, station: str) -> dict[str, Any] | None:
    db = ctx.store.read()
    order_id = open_order_id(db, station)
    state = load_pack_state(db, order_id) if order_id else None
    if state is None:
        return None
    view = order_view(state)
    view["jobs"] = order_jobs_view(ctx, state.order.order_id)
    from edge.store.orders import load_freeze

    freeze = load_freeze(db, state.order.order_id)
    view["freeze"] = None if freeze is None else {"reason": freeze.reason,
                                                  "issued_at": freeze.issued_at.isoformat()}
    return view


def page_state(ctx: EdgeContext, station: str) -> dict[str, Any]:
    last = ctx.bus.recent(limit=1)
    return {
        "device_id": ctx.settings.device_id,
        "station": station,
        "last_id": last[0].id if last else 0,
        "alarms": [a.as_json() for a in ctx.alarms.active(station)],
        "sync": sync_view(ctx),
        "printer": printer_view(ctx),
        "open_order": open_order_view(ctx, station),
        "time": time.time(),
    }


def _station_arg(ctx: EdgeContext) -> str:
    station = request.args.get("station") or ctx.settings.station
    if len(station) > 64:
        raise ApiError(400, "bad_request", "station: at most 64 characters")
    return station


@bp.get("/page-state")
def get_page_state():
    """What the stream's first ``state`` event holds (for a page that cannot stream)."""
    ctx = context()
    return jsonify(page_state(ctx, _station_arg(ctx)))


# --- the stream ----------------------------------------------------------------------------------


def _sse(event: str, data: Any, id_: int | None = None) -> bytes:
    lines = []
    if id_ is not None:
        lines.append(f"id: {id_}")
    lines.append(f"event: {event}")
    # json.dumps never emits a raw newline, so one data line is always enough
    lines.append("data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def _after() -> int | None:
    raw = request.headers.get("Last-Event-ID") or request.args.get("after")
    if raw is None or raw == "":
        return None
    try:
        return max(0, int(raw))
    except ValueError:
        raise ApiError(400, "bad_request", "Last-Event-ID / after: expected a message id") from None


@bp.get("/stream")
def get_stream():
    ctx = context()
    station = _station_arg(ctx)
    after = _after()
    try:  # tests and slow links may ask for another heartbeat interval
        heartbeat = min(max(float(request.args.get("heartbeat", HEARTBEAT_S)), 0.2), 30.0)
    except ValueError:
        raise ApiError(400, "bad_request", "heartbeat: expected seconds") from None
    slots = _slots(ctx)
    if not slots.take():
        raise ApiError(503, "too_many_streams",
                       f"{slots.limit} live pages are open already; this one retries",
                       retry_after_s=5)
    try:
        last = ctx.bus.recent(limit=1)
        newest = last[0].id if last else 0
        if after is not None and after > newest:
            after = 0  # the edge restarted (ids begin again): everything kept is new to the page
        sub = ctx.bus.subscribe(after=after)
        state = page_state(ctx, station)
    except BaseException:
        slots.give()
        raise

    def generate() -> Iterator[bytes]:
        try:
            yield f"retry: {RETRY_MS}\n\n".encode()
            yield _sse("state", state)
            started = time.monotonic()
            next_beat = started + heartbeat
            while time.monotonic() - started < MAX_STREAM_S:
                message = sub.get(timeout=max(0.0, next_beat - time.monotonic()))
                if message is not None:
                    yield _sse(message.kind, message.data, message.id)
                    continue
                next_beat = time.monotonic() + heartbeat
                yield _sse("status", {"time": time.time(), "sync": sync_view(ctx),
                                      "printer": printer_view(ctx)})
        finally:  # the client went away (waitress raises on write) or the stream timed out
            sub.close()
            slots.give()

    response = Response(generate(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache, no-store"
    response.headers["X-Accel-Buffering"] = "no"  # a reverse proxy must not buffer it
    return response


# --- the supervisor's overview -------------------------------------------------------------------


def interception_summary(ctx: EdgeContext, limit: int = 50) -> dict[str, Any]:
    """The interceptions this device still holds in its outbox (acked ones are purged after
    ``outbox_retention_days``; the hub's report is the full record)."""
    rows = ctx.store.read().execute(
        "SELECT order_id, payload, device_time FROM events WHERE type = 'interception'"
        " ORDER BY seq DESC LIMIT 1000").fetchall()
    items = []
    for order_id, payload, device_time in rows:
        data = json.loads(payload)
        items.append({"order_id": order_id, "time": device_time, "action": data.get("action"),
                      "station": data.get("station"), "operator": data.get("operator"),
                      "reason": data.get("freeze_reason"),
                      "seconds_since_freeze": data.get("seconds_since_freeze")})
    seconds = sorted(s for i in items if isinstance(s := i["seconds_since_freeze"], int | float))
    by_action: dict[str, int] = {}
    for item in items:
        by_action[item["action"] or "?"] = by_action.get(item["action"] or "?", 0) + 1
    return {
        "count": len(items),
        "orders": len({i["order_id"] for i in items}),
        "by_action": by_action,
        "median_s": round(statistics.median(seconds), 1) if seconds else None,
        "p95_s": round(seconds[min(len(seconds) - 1, int(0.95 * len(seconds)))], 1) if seconds else None,
        "recent": items[:limit],
    }


def freezes_view(ctx: EdgeContext) -> list[dict[str, Any]]:
    rows = ctx.store.read().execute(
        "SELECT order_id, reason, issued_at, received_at, version, source FROM freezes"
        " ORDER BY received_at DESC LIMIT 200").fetchall()
    active = {}
    for alarm in ctx.alarms.active():
        if alarm.order_id:
            active.setdefault(alarm.order_id, []).append(alarm.alarm_id)
    return [{"order_id": r[0], "reason": r[1], "issued_at": r[2], "received_at": r[3],
             "version": r[4], "source": r[5], "unacked_alarms": active.get(r[0], []),
             "conflict": r[1] == "needs_decision"} for r in rows]


@bp.get("/overview")
def get_overview():
    """Everything the supervisor page shows, in one read."""
    ctx = context()
    alarms = [a.as_json() for a in ctx.alarms.recent(100)]
    freezes = freezes_view(ctx)
    return jsonify({
        "device_id": ctx.settings.device_id,
        "station": ctx.settings.station,
        "alarms": alarms,
        "unacked_freeze_alarms": [a for a in alarms
                                  if a["active"] and a["type"] in FREEZE_ALARM_TYPES],
        "freezes": freezes,
        "conflicts": [f for f in freezes if f["conflict"]],
        "interceptions": interception_summary(ctx),
        "sync": sync_view(ctx),
        "printer": printer_view(ctx),
        "streams": {"open": _slots(ctx).open, "limit": _slots(ctx).limit},
        "time": time.time(),
    })
