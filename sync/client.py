"""The device's HTTP client for the hub: push, pull, stream. Standard library only.

Whatever the hub or the network does, these raise one of two errors and never return something
half-understood: :class:`HubUnavailable` (try again later: down, timeout, 5xx, garbage) and
:class:`HubRefused` (a 4xx the device must fix: bad token, unregistered device). An answer that
breaks the protocol (garbage, an empty page that says ``more``, a cursor that goes backwards, an
answer without the hub's identity, more bytes than :mod:`sync.protocol` allows) is a
:class:`HubProtocolError`, a kind of HubUnavailable: the device backs off and does not count it
as contact. Answers are read with a size cap: a 300 MB answer is never held in memory.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scanedge.sync.protocol import (
    ACCEPTED,
    DUPLICATE,
    INT64_MAX,
    MAX_ANSWER_BYTES,
    MAX_PULL_ANSWER_BYTES,
    MAX_SSE_LINE_BYTES,
    MAX_TEXT,
)


class HubUnavailable(Exception):
    """The hub could not be reached or gave an answer we cannot trust; retry later."""


class HubProtocolError(HubUnavailable):
    """The hub answered, but not as the protocol says: not contact; back off and retry."""


class HubRefused(Exception):
    """The hub refused the device (4xx): retrying the same request will not help. ``status``
    and ``code`` (the answer's ``error``) and ``hub_message`` when the hub said them."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 hub_message: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.hub_message = status, code, hub_message


@dataclass(frozen=True)
class HubInfo:
    """Who answered and how far its change log goes (sync/protocol.py)."""

    key_id: str
    database_id: str
    last_seq: int | None = None  # None: a push answer (no log position)
    from_mark: str | None = None  # the mark of the change at the cursor asked from

    @property
    def identity(self) -> tuple[str, str]:
        return self.key_id, self.database_id


@dataclass(frozen=True)
class PullAnswer:
    changes: list[dict[str, Any]]
    cursor: int
    more: bool
    hub: HubInfo


@dataclass(frozen=True)
class StreamMessage:
    event: str  # "hello" | "change" | "heartbeat"
    id: int | None
    data: dict[str, Any]
    hub: HubInfo | None = None  # hello and heartbeat: who the hub is


def _seq(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT64_MAX


def _text(value: Any, optional: bool = False) -> bool:
    if value is None:
        return optional
    return isinstance(value, str) and 0 < len(value) <= MAX_TEXT


def parse_hub_info(raw: Any, where: str, *, log_position: bool = True) -> HubInfo:
    """The ``hub`` object of an answer; a HubProtocolError if it is missing or malformed."""
    if (not isinstance(raw, dict) or not _text(raw.get("key_id"))
            or not _text(raw.get("database_id"))
            or (log_position and not _seq(raw.get("last_seq")))
            or not _text(raw.get("from_mark"), optional=True)):
        raise HubProtocolError(f"{where}: the answer does not say which hub it is (a hub older "
                               "than this device, or not a scanedge hub)")
    return HubInfo(raw["key_id"], raw["database_id"],
                   raw.get("last_seq") if log_position else None, raw.get("from_mark"))


def _read_capped(resp: http.client.HTTPResponse, cap: int, where: str) -> bytes:
    """The body, unless it is longer than ``cap`` bytes: then a HubProtocolError, having read
    at most ``cap + 1`` bytes of it (the connection is closed right after)."""
    length = resp.getheader("Content-Length")
    if length is not None and length.strip().isdigit() and int(length) > cap:
        raise HubProtocolError(f"{where}: the answer is {int(length)} bytes, more than the "
                               f"{cap} this device reads")
    raw = resp.read(cap + 1)
    if len(raw) > cap:
        raise HubProtocolError(f"{where}: the answer is longer than the {cap} bytes this "
                               "device reads")
    return raw


class HubClient:
    def __init__(self, base_url: str, token: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"hub_url {base_url!r}: expected http(s)://HOST[:PORT]")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path
        self._token = token
        self.timeout = timeout
        self._streams: set[socket.socket] = set()  # the open streams' sockets: close_streams()

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout)

    def call(self, method: str, path: str, body: Any = None, *,
             timeout: float | None = None) -> Any:
        """A JSON call to the hub with the device's token (acks, conflicts, decisions): the
        answer, or HubUnavailable / HubRefused as for push and pull."""
        return self._request(method, path, body, timeout=timeout)

    def exchange(self, method: str, path: str, body: Any = None, *,
                 timeout: float | None = None) -> tuple[int, Any]:
        """A JSON call whose refusals the device reads in full (status, answer) whatever the
        status (the e-waybill call: a 502 from the hub carries the carrier's code). Only a
        network failure or a non-JSON answer raise (HubUnavailable, HubProtocolError)."""
        data = json.dumps(body if body is not None else {}, ensure_ascii=False).encode()
        return self._exchange(method, path, data, "application/json", {}, timeout)

    def put_bytes(self, path: str, data: bytes, headers: dict[str, str], *,
                  timeout: float | None = None) -> tuple[int, Any]:
        """Raw bytes to the hub (a pack-evidence chunk, sync/blob_upload.py), answered as
        :meth:`exchange`."""
        return self._exchange("PUT", path, data, "application/octet-stream", headers, timeout)

    def _exchange(self, method: str, path: str, data: bytes, content_type: str,
                  headers: dict[str, str], timeout: float | None) -> tuple[int, Any]:
        conn = self._connection(self.timeout if timeout is None else timeout)
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json",
                   "Content-Type": content_type, **headers}
        where = f"{method} {path.split('?')[0]}"
        try:
            conn.request(method, self._prefix + path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = _read_capped(resp, MAX_ANSWER_BYTES, where)
        except (OSError, http.client.HTTPException) as e:
            raise HubUnavailable(f"{where}: {e.__class__.__name__}: {e}") from None
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise HubProtocolError(f"{where}: hub answered {resp.status} with non-JSON "
                                   f"({raw[:60]!r})") from None

    def _request(self, method: str, path: str, body: Any = None, *,
                 cap: int = MAX_ANSWER_BYTES, timeout: float | None = None) -> Any:
        conn = self._connection(self.timeout if timeout is None else timeout)
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        where = f"{method} {path.split('?')[0]}"
        try:
            conn.request(method, self._prefix + path, body=data, headers=headers)
            resp = conn.getresponse()
            if resp.status >= 500 or resp.status in (408, 429):
                raise HubUnavailable(f"{where}: hub answered {resp.status}")
            raw = _read_capped(resp, cap, where)
        except (OSError, http.client.HTTPException) as e:
            raise HubUnavailable(f"{where}: {e.__class__.__name__}: {e}") from None
        finally:
            conn.close()
        try:
            answer = json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise HubProtocolError(f"{where}: hub answered {resp.status} with non-JSON "
                                   f"({raw[:60]!r})") from None
        if resp.status >= 400:
            message = answer.get("message") if isinstance(answer, dict) else answer
            code = answer.get("error") if isinstance(answer, dict) else None
            raise HubRefused(f"{where}: {resp.status} {str(message)[:200]}", status=resp.status,
                             code=code if isinstance(code, str) else None,
                             hub_message=str(message)[:500])
        return answer

    def push(self, events: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
        """Send a batch; return (event_id, status) for exactly the events sent, in order."""
        return self.push_answer(events)[0]

    def push_answer(self, events: Sequence[dict[str, Any]]) -> tuple[list[tuple[str, str]],
                                                                       HubInfo]:
        """:meth:`push`, with who answered."""
        answer = self._request("POST", "/api/v1/sync/push", {"events": list(events)})
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(events):
            raise HubProtocolError("push: the hub's answer does not list every event sent")
        out = []
        for sent, got in zip(events, results, strict=True):
            status = got.get("status") if isinstance(got, dict) else None
            if (not isinstance(got, dict) or got.get("event_id") != sent["event_id"]
                    or not isinstance(status, str) or len(status) > 80
                    or not (status in (ACCEPTED, DUPLICATE) or status.startswith("rejected:"))):
                raise HubProtocolError("push: the hub's answer does not match the events sent")
            out.append((sent["event_id"], status))
        return out, parse_hub_info(answer.get("hub"), "push", log_position=False)

    def pull(self, cursor: int, limit: int = 500) -> PullAnswer:
        """The changes after ``cursor``, checked: every change numbered after ``cursor`` and
        in order, none beyond the answer's cursor or the hub's last change, a page that says
        ``more`` must hold changes and move the cursor on."""
        answer = self._request("GET", f"/api/v1/sync/pull?cursor={cursor}&limit={limit}",
                               cap=MAX_PULL_ANSWER_BYTES)
        if not isinstance(answer, dict):
            raise HubProtocolError("pull: the hub's answer is not a change list")
        changes, new_cursor, more = answer.get("changes"), answer.get("cursor"), answer.get("more")
        if (not isinstance(changes, list) or not _seq(new_cursor)
                or not isinstance(more, bool | None)
                or any(not isinstance(c, dict) or not _seq(c.get("seq")) for c in changes)):
            raise HubProtocolError("pull: the hub's answer is not a change list")
        hub = parse_hub_info(answer.get("hub"), "pull")
        seqs = [c["seq"] for c in changes]
        if any(b <= a for a, b in zip([cursor, *seqs], seqs, strict=False)):
            raise HubProtocolError("pull: changes not numbered after the cursor, in order")
        if new_cursor < cursor or (seqs and seqs[-1] > new_cursor):
            raise HubProtocolError(f"pull: the cursor went from {cursor} to {new_cursor}")
        assert hub.last_seq is not None
        if (seqs and seqs[-1] > hub.last_seq) or new_cursor > max(cursor, hub.last_seq):
            raise HubProtocolError(f"pull: changes or a cursor beyond the hub's last change "
                                   f"({hub.last_seq})")
        if more and (not changes or new_cursor <= cursor):
            raise HubProtocolError("pull: a page that says 'more' but brings no change")
        return PullAnswer(changes, new_cursor, bool(more), hub)

    def stream(self, cursor: int, *, read_timeout: float) -> Iterator[StreamMessage]:
        """Server-Sent Events from ``cursor`` on. Ends (raises HubUnavailable) when the link does;
        ``read_timeout`` without a byte (heartbeats come every few seconds) counts as a break."""
        conn = self._connection(read_timeout)
        sock = None
        try:
            conn.request("GET", self._prefix + "/api/v1/sync/stream", headers={
                "Authorization": f"Bearer {self._token}", "Accept": "text/event-stream",
                "Last-Event-ID": str(cursor)})
            sock = conn.sock  # the response keeps reading it after conn lets go of it
            if sock is not None:
                self._streams.add(sock)
            resp = conn.getresponse()
            if resp.status != 200:
                body = resp.read(500)
                if 400 <= resp.status < 500 and resp.status not in (408, 429):
                    raise HubRefused(f"stream: {resp.status} {body[:200]!r}")
                raise HubUnavailable(f"stream: hub answered {resp.status}")
            yield from _checked_stream(_parse_sse(resp))
            raise HubUnavailable("stream: the hub closed the stream")
        except (TimeoutError, OSError, http.client.HTTPException) as e:
            raise HubUnavailable(f"stream: {e.__class__.__name__}: {e}") from None
        finally:
            self._streams.discard(sock)
            conn.close()

    def close_streams(self) -> None:
        """End the open streams now (from another thread, on stop): a read waiting for the next
        heartbeat returns at once instead of after its timeout."""
        for sock in list(self._streams):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _checked_stream(messages: Iterator[StreamMessage]) -> Iterator[StreamMessage]:
    """The stream's messages, checked: ``hello`` first (who the hub is), heartbeats naming the
    same hub, changes numbered in order."""
    hello: HubInfo | None = None
    last_id = -1
    for msg in messages:
        if msg.event == "hello":
            if hello is not None:
                raise HubProtocolError("stream: a second hello")
            hello = parse_hub_info(msg.data.get("hub"), "stream hello")
            yield StreamMessage(msg.event, msg.id, msg.data, hello)
            continue
        if hello is None:
            raise HubProtocolError("stream: no hello first (a hub older than this device, or "
                                   "not a scanedge hub)")
        if msg.event == "heartbeat":
            info = parse_hub_info(msg.data.get("hub"), "stream heartbeat")
            if info.identity != hello.identity:
                raise HubProtocolError("stream: a heartbeat from another hub than the hello's")
            yield StreamMessage(msg.event, msg.id, msg.data, info)
        elif msg.event == "change":
            seq = msg.data.get("seq")
            if not _seq(seq) or msg.id != seq or seq <= last_id:
                raise HubProtocolError("stream: a change out of order or without its number")
            last_id = seq
            yield msg
        # other event names: ignored (room for later messages)


def _parse_sse(resp: http.client.HTTPResponse) -> Iterator[StreamMessage]:
    event, data_lines, last_id, size = "message", [], None, 0
    while True:
        raw = resp.readline(MAX_SSE_LINE_BYTES + 1)
        if not raw:
            return
        size += len(raw)
        if size > MAX_SSE_LINE_BYTES:  # one line, or the lines of one event
            raise HubProtocolError(f"stream: an event longer than {MAX_SSE_LINE_BYTES} bytes")
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line == "":
            if data_lines:
                try:
                    data = json.loads("\n".join(data_lines))
                except (ValueError, RecursionError):
                    raise HubProtocolError("stream: an event whose data is not JSON") from None
                if isinstance(data, dict):
                    yield StreamMessage(event, last_id, data)
            event, data_lines, size = "message", [], 0
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            event = value
        elif name == "data":
            data_lines.append(value)
        elif name == "id":
            try:
                last_id = int(value)
            except ValueError:
                raise HubProtocolError("stream: an event id that is not a number") from None
