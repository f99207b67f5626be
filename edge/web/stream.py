"""``GET /api/v1/stream``: the pages' live feed (Server-Sent Events), and the state they start from.

Each bus message becomes one SSE event: ``id`` = the bus message id, ``event`` = its kind,
``data`` = its JSON. A page that reconnects sends ``Last-Event-ID`` (EventSource does it by itself;
a page that makes a new EventSource passes ``?after=``) and gets the kept messages it missed. Every
connection starts with a ``state`` event (active alarms, sync status, printer, the open order) so
that a page never depends on replay; a ``status`` event every few seconds is the heartbeat: it
carries the sync and printer status (the bus has no "hub went offline" message) and lets the page
see a dead connection that TCP would not report (Wi-Fi gone).

The stream is served from the event loop (:class:`PageStreams`, an ASGI app that
``edge/web/asgi.py`` routes to), not from the API's thread pool: an open page costs a coroutine
and a socket, so hundreds of PDAs stay live while every API thread is free for scans. What would
block the loop -- the ``state`` snapshot and the heartbeat's status, both read SQLite -- runs in a
thread; the heartbeat's status is the same for every page, so it is computed at most once per
``STATUS_MAX_AGE_S`` for all of them. A ``?station=`` stream gets that station's messages and the
device-wide ones (sync, printer, freezes); a stream without a station, or with ``?all=1`` (the
supervisor), gets every message. At most ``page_streams_max`` streams are open at once; one more
is answered ``503 too_many_streams`` with ``Retry-After`` (the page retries). Streams end after
``MAX_STREAM_S`` (the page reconnects at once and loses nothing: Last-Event-ID).

The page-state and overview routes are Flask (``bp``), served on the API's threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, jsonify, request
from starlette.requests import Request

from scanedge.edge.bus import AsyncFanout, AsyncSubscription, Message
from scanedge.edge.context import EdgeContext
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.scanning import bench_view, order_view
from scanedge.edge.store.orders import load_pack_state, open_order_id
from scanedge.edge.store.outbox import outbox_status
from scanedge.edge.web import context
from scanedge.edge.web.auth import STREAM_ACTION, principal_from, refusal

bp = Blueprint("stream", __name__)
log = logging.getLogger(__name__)

HEARTBEAT_S = 3.0  # a page calls the edge unreachable after ~3 missed heartbeats
MAX_STREAM_S = 300.0
STUCK_GRACE_S = 30.0  # past MAX_STREAM_S, a stream whose client stopped reading is cut
RETRY_MS = 1000  # the EventSource reconnection delay after a drop
STATUS_MAX_AGE_S = 1.0  # the heartbeat's status is shared by all streams for this long
RETRY_AFTER_S = 5  # when a refused page may try again
FREEZE_ALARM_TYPES = ("freeze", "frozen_scan", "frozen_print", "frozen_waybill", "conflict",
                      "needs_decision")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class StreamSlots:
    """Counts open streams against ``page_streams_max``."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self.open = 0
        self._lock = threading.Lock()  # taken on the loop, read by the overview's threads

    def take(self) -> bool:
        with self._lock:
            if self.open >= self.limit:
                return False
            self.open += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.open -= 1


def stream_slots(ctx: EdgeContext) -> StreamSlots:
    # one per context: the stream counts, the overview shows (tests run several apps at once)
    slots = getattr(ctx, "_stream_slots", None)
    if slots is None:
        slots = StreamSlots(ctx.settings.page_streams_max)
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
    from scanedge.printers.queue import order_jobs

    return [job.to_json() for job in order_jobs(ctx.store.read(), order_id)][-5:]


def open_order_view(ctx: EdgeContext, station: str) -> dict[str, Any] | None:
    db = ctx.store.read()
    order_id = open_order_id(db, station)
    state = load_pack_state(db, order_id) if order_id else None
    if state is None:
        return None
    view = order_view(state, bench_view(db, state, station, ctx.settings.print_policy))
    view["jobs"] = order_jobs_view(ctx, state.order.order_id)
    from scanedge.edge.store.orders import load_freeze

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


def _check_station(station: str) -> str:
    if len(station) > 64:
        raise Refusal("bad_request", "station: at most 64 characters")
    return station


@bp.get("/page-state")
def get_page_state():
    """What the stream's first ``state`` event holds (for a page that cannot stream)."""
    ctx = context()
    station = _check_station(request.args.get("station") or ctx.settings.station)
    return jsonify(page_state(ctx, station))


# --- the stream ----------------------------------------------------------------------------------


def sse(event: str, data: Any, id_: int | None = None) -> bytes:
    lines = []
    if id_ is not None:
        lines.append(f"id: {id_}")
    lines.append(f"event: {event}")
    # json.dumps never emits a raw newline, so one data line is always enough
    lines.append("data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n\n").encode()


def message_bytes(message: Message) -> bytes:
    return sse(message.kind, message.data, message.id)


def status_bytes(ctx: EdgeContext) -> bytes:
    """The heartbeat (in a thread: it reads the outbox)."""
    return sse("status", {"time": time.time(), "sync": sync_view(ctx),
                          "printer": printer_view(ctx)})


class SharedStatus:
    """The heartbeat's ``status`` event, shared by every stream: it says the same to all pages.

    Computed in a thread at most once per ``max_age``; streams asking while it is being computed
    wait for that one computation.
    """

    def __init__(self, compute: Callable[[], bytes], max_age: float = STATUS_MAX_AGE_S) -> None:
        self._compute = compute
        self.max_age = max_age
        self._value: bytes | None = None
        self._at = float("-inf")
        self._running: asyncio.Future[bytes] | None = None

    async def current(self) -> bytes:
        loop = asyncio.get_running_loop()
        if self._value is not None and loop.time() - self._at < self.max_age:
            return self._value
        if self._running is None:
            started = loop.time()
            self._running = loop.run_in_executor(None, self._compute)
            self._running.add_done_callback(lambda f: self._computed(f, started))
        # shielded: a stream that goes away while waiting must not cancel the others' status
        return await asyncio.shield(self._running)

    def _computed(self, future: asyncio.Future[bytes], started: float) -> None:
        self._running = None
        if not future.cancelled() and future.exception() is None:
            self._value, self._at = future.result(), started


@dataclass(frozen=True)
class StreamParams:
    station: str  # the station whose state the page starts from
    everything: bool  # every message, not only the station's and the device's
    after: int | None
    heartbeat: float


def stream_params(request: Request, default_station: str) -> StreamParams:
    query = request.query_params
    station = _check_station(query.get("station") or default_station)
    everything = not query.get("station") or query.get("all", "") in ("1", "true", "yes")
    raw = request.headers.get("last-event-id") or query.get("after")
    try:
        after = max(0, int(raw)) if raw else None
    except ValueError:
        raise Refusal("bad_request", "Last-Event-ID / after: expected a message id") from None
    try:  # tests and slow links may ask for another heartbeat interval
        heartbeat = float(query.get("heartbeat", HEARTBEAT_S))
        if not math.isfinite(heartbeat):  # nan would reach the event loop's timer
            raise ValueError
        heartbeat = min(max(heartbeat, 0.2), 30.0)
    except ValueError:
        raise Refusal("bad_request", "heartbeat: expected seconds") from None
    return StreamParams(station, everything, after, heartbeat)


HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"),
           (b"cache-control", b"no-cache, no-store"),
           (b"x-accel-buffering", b"no")]  # a reverse proxy must not buffer it


class PageStreams:
    """``GET /api/v1/stream`` as an ASGI app: one coroutine per open page, no thread.

    Errors before the response starts are raised as :class:`Refusal`; the ASGI app answers
    them as JSON like the Flask API does (edge/web/asgi.py).
    """

    def __init__(self, ctx: EdgeContext) -> None:
        self.ctx = ctx
        self.slots = stream_slots(ctx)
        self.status = SharedStatus(lambda: status_bytes(ctx))
        self._fanout: AsyncFanout | None = None

    def fanout(self) -> AsyncFanout:
        if self._fanout is None:  # bound to the loop that serves the streams
            self._fanout = AsyncFanout(self.ctx.bus, asyncio.get_running_loop(), message_bytes)
        return self._fanout

    def close(self) -> None:
        if self._fanout is not None:
            self._fanout.close()

    def end_all(self) -> None:
        """Any thread (a signal handler): end every open stream now, not after the grace."""
        if self._fanout is not None:
            self._fanout.end_all()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        if request.method != "GET":
            raise Refusal("method_not_allowed", "GET only")
        principal = await asyncio.to_thread(principal_from, self.ctx, request.headers,
                                            request.cookies)
        problem = refusal(principal, STREAM_ACTION, request.query_params.get("station"))
        if problem is not None:
            raise problem
        assert principal is not None
        params = stream_params(request, principal.station or self.ctx.settings.station)
        if not self.slots.take():
            raise Refusal("too_many_streams",
                           f"{self.slots.limit} live pages are open already; this one retries",
                           retry_after_s=RETRY_AFTER_S)
        try:
            await self._serve(params, receive, send)
        finally:
            self.slots.give()

    async def _serve(self, params: StreamParams, receive: Receive, send: Send) -> None:
        # subscribed before the state is read: nothing published meanwhile is missed
        sub = self.fanout().subscribe(None if params.everything else params.station,
                                      after=params.after)
        try:
            state = await asyncio.to_thread(page_state, self.ctx, params.station)
            await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
            first = [f"retry: {RETRY_MS}\n\n".encode(), sse("state", state), *sub.take()]
            await send({"type": "http.response.body", "body": b"".join(first), "more_body": True})
            await self._stream(sub, params, receive, send)
        finally:
            sub.close()

    async def _stream(self, sub: AsyncSubscription, params: StreamParams, receive: Receive,
                      send: Send) -> None:
        watcher = asyncio.create_task(_watch_disconnect(receive, sub))
        try:
            # the safety net: a client that stopped reading blocks a write until TCP gives up
            async with asyncio.timeout(MAX_STREAM_S + STUCK_GRACE_S):
                await self._pump(sub, params.heartbeat, send)
        except TimeoutError:
            log.warning("a page stream of %s stopped reading: cut", params.station)
        except asyncio.CancelledError:
            # the server is stopping and its grace period is over: end the response (the page
            # reconnects to the next process) rather than log a traceback per open page
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()

    async def _pump(self, sub: AsyncSubscription, heartbeat: float, send: Send) -> None:
        """Write what arrives, a burst in one write, and a heartbeat every ``heartbeat`` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_STREAM_S
        next_beat = loop.time() + heartbeat
        timer = loop.call_at(next_beat, sub.poke)
        try:
            while True:
                await sub.wait()
                if sub.closed:  # the client left (a no-op then) or the server is stopping
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                chunk = sub.take()
                now = loop.time()
                if now >= next_beat:
                    chunk.append(await self.status.current())
                    next_beat = now + heartbeat
                    timer = loop.call_at(min(next_beat, deadline), sub.poke)
                if chunk:
                    await send({"type": "http.response.body", "body": b"".join(chunk),
                                "more_body": True})
                if now >= deadline:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
        finally:
            timer.cancel()


async def _watch_disconnect(receive: Receive, sub: AsyncSubscription) -> None:
    """Wake the stream when its client goes away (uvicorn reports it; writes would not fail)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    sub.closed = True
    sub.poke()


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
        "streams": {"open": stream_slots(ctx).open, "limit": stream_slots(ctx).limit},
        "time": time.time(),
    })
