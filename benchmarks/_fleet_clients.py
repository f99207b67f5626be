"""Lightweight simulated devices for benchmarks/fleet.py: hand-written HTTP/1.1 on asyncio.

Only the standard library (``asyncio.open_connection``, ``http.client``) and python-ulid, so
thousands of simulated devices fit in one process:
- :class:`HttpConnection`: one keep-alive HTTP/1.1 connection (Content-Length and chunked bodies);
- :class:`DeviceStream`: a device holding ``GET /api/v1/sync/stream`` open, parsing the
  Server-Sent Events and noting when each freeze arrived and any change of another site;
- :func:`push_device`: a device pushing 200-event batches as fast as the hub takes them;
- :func:`admin_loop`: the order system's requests, run in a process of its own.
Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import re
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

HOST = "127.0.0.1"
STREAM_PATH = "/api/v1/sync/stream"
PUSH_PATH = "/api/v1/sync/push"
SKU = "6901234567892"
ALL_SITES = "*"
MAX_WAIT_S = 60.0  # the longest Retry-After honoured
NET_ERRORS = (OSError, EOFError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
              TimeoutError, ValueError)


def order_body(site: str) -> dict[str, Any]:
    return {"lines": [{"sku": SKU, "qty": 1}], "priority": "P1", "site": site}


def admin_order_site(n: int, sites: list[str]) -> str:
    """The site of the admin loop's order ``ADM-<n>`` (known to the streams' site check)."""
    return sites[n % len(sites)]


def retry_after(headers: dict[str, str], default: float = 1.0) -> float:
    """The Retry-After of an answer in seconds (at most MAX_WAIT_S)."""
    try:
        return min(MAX_WAIT_S, max(0.0, float(headers.get("retry-after", default))))
    except ValueError:
        return default


# -- HTTP/1.1 -----------------------------------------------------------------------------------
@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """The status line and headers of a response."""
    line = await reader.readline()
    if not line:
        raise ConnectionResetError("the server closed the connection")
    parts = line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError(f"not an HTTP response: {line[:80]!r}")
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n"):
            return int(parts[1]), headers
        if not line:
            raise asyncio.IncompleteReadError(b"", None)
        name, _, value = line.decode("latin-1").partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()


def is_chunked(headers: dict[str, str]) -> bool:
    return "chunked" in headers.get("transfer-encoding", "").lower()


async def read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    """A whole response body: chunked, by Content-Length, or up to the end of the connection."""
    if is_chunked(headers):
        out = bytearray()
        while True:
            size = int((await reader.readline()).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(out)
            out += await reader.readexactly(size)
            await reader.readexactly(2)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read()


class ChunkedDecoder:
    """Incremental ``Transfer-Encoding: chunked`` decoding of a body that never ends."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._left: int | None = None  # bytes left in the current chunk; None: a size line next
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while not self.done:
            if self._left is None:
                end = self._buf.find(b"\r\n")
                if end < 0:
                    break
                size = int(bytes(self._buf[:end]).split(b";")[0].strip() or b"0", 16)
                del self._buf[:end + 2]
                if size == 0:
                    self.done = True
                    break
                self._left = size
                continue
            take = min(self._left, len(self._buf))
            out += self._buf[:take]
            del self._buf[:take]
            self._left -= take
            if self._left or len(self._buf) < 2:
                break
            del self._buf[:2]  # the CRLF after the chunk's data
            self._left = None
        return bytes(out)


class HttpConnection:
    """One keep-alive HTTP/1.1 connection to the hub on 127.0.0.1 (reopened when it was closed)."""

    def __init__(self, port: int, *, timeout: float = 30.0, token: str | None = None) -> None:
        self.port = port
        self.timeout = timeout
        self.token = token
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: Any = None) -> Response:
        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}", "Accept: application/json"]
        if self.token:
            head.append(f"Authorization: Bearer {self.token}")
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + data
        for attempt in range(2):
            reused = self._writer is not None
            if self._writer is None:
                self._reader, self._writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, self.port), self.timeout)
            assert self._reader is not None
            try:
                self._writer.write(raw)
                await self._writer.drain()
                status, headers = await asyncio.wait_for(read_head(self._reader), self.timeout)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if reused and attempt == 0:  # the server closed an idle keep-alive connection
                    continue
                raise
            except BaseException:
                self.close()
                raise
            try:
                payload = await asyncio.wait_for(read_body(self._reader, headers), self.timeout)
            except BaseException:
                self.close()
                raise
            if headers.get("connection", "").lower() == "close":
                self.close()
            return Response(status, headers, payload)
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


# -- Server-Sent Events ---------------------------------------------------------------------------
@dataclass
class SseEvent:
    event: str
    data: str
    id: str | None


class SseParser:
    """The ``text/event-stream`` format: ``field: value`` lines, a blank line ends an event
    (lines end in LF or CRLF; ``retry:`` and ``:`` comments are ignored)."""

    def __init__(self) -> None:
        self._buf = b""
        self._event = ""
        self._data: list[str] = []
        self.last_id: str | None = None

    def feed(self, data: bytes) -> list[SseEvent]:
        *lines, self._buf = (self._buf + data).split(b"\n")
        out = []
        for raw in lines:
            line = raw.rstrip(b"\r").decode()
            if not line:
                if self._data:
                    out.append(SseEvent(self._event or "message", "\n".join(self._data),
                                        self.last_id))
                self._event, self._data = "", []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id":
                self.last_id = value
        return out


# -- device streams ---------------------------------------------------------------------------
class SiteMap:
    """Which site each order belongs to, as far as the benchmark created them."""

    def __init__(self, sites: list[str]) -> None:
        self.sites = sites
        self.orders: dict[str, str] = {}

    def site_of(self, order_id: str | None) -> str | None:
        if order_id is None:
            return None
        if order_id in self.orders:
            return self.orders[order_id]
        match = re.fullmatch(r"ADM-(\d+)", order_id)
        return admin_order_site(int(match.group(1)), self.sites) if match else None


@dataclass
class Arrival:
    order_id: str | None
    at: float  # time.perf_counter() when the bytes were read


class DeviceStream:
    """A device holding its stream open: what arrived, and when."""

    def __init__(self, device_id: str, token: str, site: str, port: int, sitemap: SiteMap) -> None:
        self.device_id = device_id
        self.token = token
        self.site = site
        self.port = port
        self.sitemap = sitemap
        self.status: int | None = None  # of the last connect attempt
        self.error: str | None = None
        self.retries = 0  # reconnects after a 429
        self.opened_at: float | None = None
        self.dropped_at: float | None = None
        self.changes = 0
        self.heartbeats = 0
        self.leaks: list[tuple[str | None, str | None]] = []  # (order_id, site) of other sites
        self.freezes: dict[str, Arrival] = {}  # by command id (else "seq:<n>")
        self._task: asyncio.Task[None] | None = None
        self._writer: asyncio.StreamWriter | None = None

    @property
    def open(self) -> bool:
        return self.opened_at is not None and self.dropped_at is None

    def outcome(self) -> str:
        if self.opened_at is not None:
            return "200"
        return self.error or str(self.status)

    async def connect(self, cursor: int, gate: asyncio.Semaphore, *, timeout: float,
                      max_retries: int) -> None:
        """Open the stream; a 429 is retried after its Retry-After (``gate`` bounds the
        connects in flight, not the waits)."""
        while True:
            async with gate:
                wait = await self._attempt(cursor, timeout)
            if wait is None or self.retries >= max_retries:
                return
            self.retries += 1
            await asyncio.sleep(wait)

    async def _attempt(self, cursor: int, timeout: float) -> float | None:
        """One connect; returns the Retry-After of a 429, else None."""
        request = (f"GET {STREAM_PATH} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                   f"Authorization: Bearer {self.token}\r\nAccept: text/event-stream\r\n"
                   f"Last-Event-ID: {cursor}\r\n\r\n").encode()
        writer = None
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, self.port),
                                                    timeout)
            writer.write(request)
            await writer.drain()
            self.status, headers = await asyncio.wait_for(read_head(reader), timeout)
        except NET_ERRORS as e:
            self.error = type(e).__name__
            if writer is not None:
                writer.close()
            return None
        if self.status != 200:
            with contextlib.suppress(*NET_ERRORS):
                await asyncio.wait_for(read_body(reader, headers), 5.0)
            writer.close()
            return retry_after(headers) if self.status == 429 else None
        self.error = None
        self.opened_at = time.perf_counter()
        self._writer = writer
        self._task = asyncio.get_running_loop().create_task(
            self._read(reader, ChunkedDecoder() if is_chunked(headers) else None))
        return None

    async def _read(self, reader: asyncio.StreamReader, chunks: ChunkedDecoder | None) -> None:
        parser = SseParser()
        try:
            while True:
                data = await reader.read(65536)
                at = time.perf_counter()
                if not data:
                    break
                for event in parser.feed(chunks.feed(data) if chunks else data):
                    self._on_event(event, at)
                if chunks is not None and chunks.done:
                    break
        except NET_ERRORS:
            pass
        self.dropped_at = time.perf_counter()

    def _on_event(self, event: SseEvent, at: float) -> None:
        if event.event == "heartbeat":
            self.heartbeats += 1
            return
        if event.event != "change":
            return
        self.changes += 1
        change = json.loads(event.data)
        order_id = change.get("order_id")
        for site in (change.get("site"), self.sitemap.site_of(order_id)):
            if site is not None and site not in (self.site, ALL_SITES):
                self.leaks.append((order_id, site))
                break
        if change.get("kind") == "freeze":
            payload = change.get("payload") or {}
            key = payload.get("command_id") or f"seq:{change.get('seq')}"
            self.freezes[key] = Arrival(order_id, at)

    def arrival(self, command_id: str | None, order_id: str, sent: float) -> float | None:
        """When the freeze ``command_id`` arrived (without an id: the first freeze of the
        order after ``sent``)."""
        if command_id is not None:
            hit = self.freezes.get(command_id)
            return hit.at if hit else None
        times = [a.at for a in self.freezes.values() if a.order_id == order_id and a.at >= sent]
        return min(times) if times else None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._writer is not None:
            self._writer.close()


# -- pushing events ---------------------------------------------------------------------------
@dataclass
class PushStats:
    device_id: str
    accepted: int = 0
    duplicate: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    throttled: int = 0  # 429 answers (each honoured)
    errors: Counter[str] = field(default_factory=Counter)
    lost_batches: int = 0
    stored_ids: list[str] = field(default_factory=list)  # accepted or duplicate: at the hub
    latencies: list[float] = field(default_factory=list)  # s, answered pushes
    last_answer: float = 0.0


def make_events(device_id: str, first_seq: int, n: int) -> list[dict[str, Any]]:
    from ulid import ULID

    return [{"event_id": str(ULID()), "device_id": device_id, "seq": first_seq + i, "type": "scan",
             "order_id": "SO-1", "payload": {"code": "4006381333931", "station": "b1"},
             "device_time": "2026-11-30T00:00:00Z", "hlc": None} for i in range(n)]


async def push_device(port: int, device_id: str, token: str, *, until: float, batch: int,
                      max_tries: int = 5, timeout: float = 60.0, grace_s: float = 60.0) -> PushStats:
    """Push ``batch``-event pushes back to back until ``until`` (perf_counter); a 429 is
    honoured (sleep Retry-After, the same batch again) for up to ``grace_s`` past ``until``."""
    stats = PushStats(device_id)
    conn = HttpConnection(port, timeout=timeout, token=token)
    seq = 1
    try:
        while time.perf_counter() < until:
            events = make_events(device_id, seq, batch)
            seq += batch
            await _push_batch(conn, json.dumps({"events": events}).encode(), stats, max_tries,
                              until + grace_s)
    finally:
        conn.close()
    return stats


async def _push_batch(conn: HttpConnection, body: bytes, stats: PushStats, max_tries: int,
                      give_up: float) -> None:
    failures = 0
    while failures < max_tries and time.perf_counter() < give_up:
        sent = time.perf_counter()
        try:
            resp = await conn.request("POST", PUSH_PATH, body)
        except NET_ERRORS as e:
            stats.errors[type(e).__name__] += 1
            failures += 1
            await asyncio.sleep(0.5)
            continue
        stats.last_answer = time.perf_counter()
        if resp.status == 429:
            stats.throttled += 1
            await asyncio.sleep(retry_after(resp.headers))
            continue
        if resp.status != 200:
            stats.errors[f"HTTP {resp.status}"] += 1
            failures += 1
            await asyncio.sleep(0.5)
            continue
        stats.latencies.append(stats.last_answer - sent)
        for result in resp.json()["results"]:
            status = result["status"]
            if status == "accepted":
                stats.accepted += 1
            elif status == "duplicate":
                stats.duplicate += 1
            else:
                stats.rejected[status] += 1
                continue
            stats.stored_ids.append(result["event_id"])
        return
    stats.lost_batches += 1


# -- the order system (run in a process of its own) ---------------------------------------------
def admin_loop(port: int, token: str, seconds: float, rate: float, sites: list[str],
               pipe: Connection) -> None:
    """``rate`` requests a second for ``seconds``, alternately ``GET /api/v1/freezes?limit=50``
    and ``PUT /api/v1/orders/ADM-<n>``, over one keep-alive ``http.client`` connection.
    Sends "ready", waits for "go", then sends {"get": [s], "put": [s], "put_ok": [n],
    "get_bytes": [n], "errors": {...}}: latencies of the answered requests, the orders stored,
    the sizes of the GET answers."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the benchmark ends this process
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    out: dict[str, Any] = {"get": [], "put": [], "put_ok": [], "get_bytes": [], "errors": {}}
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    pipe.send("ready")
    if pipe.recv() != "go":
        return
    start = time.perf_counter()
    for n in range(int(seconds * rate)):
        wait = start + n / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        elif -wait > seconds + 30:
            break  # far behind: the hub stopped answering in time
        if n % 2 == 0:
            kind, method, path, body = "get", "GET", "/api/v1/freezes?limit=50", None
        else:
            k = n // 2
            kind, method, path = "put", "PUT", f"/api/v1/orders/ADM-{k}"
            body = json.dumps(order_body(admin_order_site(k, sites))).encode()
        t0 = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            size = len(resp.read())
            status = resp.status
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            status = type(e).__name__
        if status == 200:
            out[kind].append(time.perf_counter() - t0)
            if kind == "put":
                out["put_ok"].append(n // 2)
            else:
                out["get_bytes"].append(size)
        else:
            key = f"{method} {status}"
            out["errors"][key] = out["errors"].get(key, 0) + 1
    conn.close()
    pipe.send(out)
