"""The device's HTTP client for the hub: push, pull, stream. Standard library only.

Whatever the hub or the network does, these raise one of two errors and never return something
half-understood: :class:`HubUnavailable` (try again later: down, timeout, 5xx, garbage) and
:class:`HubRefused` (a 4xx the device must fix: bad token, unregistered device).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sync.protocol import ACCEPTED, DUPLICATE


class HubUnavailable(Exception):
    """The hub could not be reached or gave an answer we cannot trust; retry later."""


class HubRefused(Exception):
    """The hub refused the device (4xx): retrying the same request will not help."""


@dataclass(frozen=True)
class StreamMessage:
    event: str  # "change" | "heartbeat"
    id: int | None
    data: dict[str, Any]


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

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=timeout)

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        conn = self._connection(self.timeout)
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        try:
            conn.request(method, self._prefix + path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise HubUnavailable(f"{method} {path}: {e.__class__.__name__}: {e}") from None
        finally:
            conn.close()
        if resp.status >= 500 or resp.status in (408, 429):
            raise HubUnavailable(f"{method} {path}: hub answered {resp.status}")
        try:
            answer = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise HubUnavailable(f"{method} {path}: hub answered {resp.status} with non-JSON "
                                 f"({raw[:60]!r})") from None
        if resp.status >= 400:
            message = answer.get("message") if isinstance(answer, dict) else answer
            raise HubRefused(f"{method} {path}: {resp.status} {message}")
        return answer

    def push(self, events: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
        """Send a batch; return (event_id, status) for exactly the events sent, in order."""
        answer = self._request("POST", "/api/v1/sync/push", {"events": list(events)})
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(events):
            raise HubUnavailable("push: the hub's answer does not list every event sent")
        out = []
        for sent, got in zip(events, results, strict=True):
            status = got.get("status") if isinstance(got, dict) else None
            if (not isinstance(got, dict) or got.get("event_id") != sent["event_id"]
                    or not isinstance(status, str)
                    or not (status in (ACCEPTED, DUPLICATE) or status.startswith("rejected:"))):
                raise HubUnavailable("push: the hub's answer does not match the events sent")
            out.append((sent["event_id"], status))
        return out

    def pull(self, cursor: int, limit: int = 500) -> tuple[list[dict[str, Any]], int, bool]:
        answer = self._request("GET", f"/api/v1/sync/pull?cursor={cursor}&limit={limit}")
        try:
            changes = answer["changes"]
            new_cursor = int(answer["cursor"])
            more = bool(answer.get("more", False))
            if not isinstance(changes, list) or any(
                    not isinstance(c, dict) or not isinstance(c.get("seq"), int) for c in changes):
                raise TypeError
        except (KeyError, TypeError, ValueError):
            raise HubUnavailable("pull: the hub's answer is not a change list") from None
        return changes, new_cursor, more

    def stream(self, cursor: int, *, read_timeout: float) -> Iterator[StreamMessage]:
        """Server-Sent Events from ``cursor`` on. Ends (raises HubUnavailable) when the link does;
        ``read_timeout`` without a byte (heartbeats come every few seconds) counts as a break."""
        conn = self._connection(read_timeout)
        try:
            conn.request("GET", self._prefix + "/api/v1/sync/stream", headers={
                "Authorization": f"Bearer {self._token}", "Accept": "text/event-stream",
                "Last-Event-ID": str(cursor)})
            resp = conn.getresponse()
            if resp.status != 200:
                body = resp.read(500)
                if 400 <= resp.status < 500 and resp.status not in (408, 429):
                    raise HubRefused(f"stream: {resp.status} {body[:200]!r}")
                raise HubUnavailable(f"stream: hub answered {resp.status}")
            yield from _parse_sse(resp)
            raise HubUnavailable("stream: the hub closed the stream")
        except (TimeoutError, OSError, http.client.HTTPException) as e:
            raise HubUnavailable(f"stream: {e.__class__.__name__}: {e}") from None
        finally:
            conn.close()


def _parse_sse(resp: http.client.HTTPResponse) -> Iterator[StreamMessage]:
    event, data_lines, last_id = "message", [], None
    while True:
        raw = resp.readline(1 << 20)
        if not raw:
            return
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line == "":
            if data_lines:
                try:
                    data = json.loads("\n".join(data_lines))
                except ValueError:
                    raise HubUnavailable("stream: an event whose data is not JSON") from None
                if isinstance(data, dict):
                    yield StreamMessage(event, last_id, data)
            event, data_lines = "message", []
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
                raise HubUnavailable("stream: an event id that is not a number") from None
