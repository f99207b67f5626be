"""A bare Server-Sent Events reader for tests (the pages' stream, the hub's device streams)."""

from __future__ import annotations

import json
import re
import socket
import time


class SseClient:
    """A bare Server-Sent Events reader over a socket (what EventSource does, minus reconnects)."""

    def __init__(self, port: int, path: str, headers: dict[str, str] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n{extra}\r\n"
                          .encode())
        self.buf = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split()[1])
        self.headers = head.decode("latin-1")

    def _until(self, sep: bytes) -> bytes:
        while sep not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("stream closed")
            self.buf += chunk
        head, self.buf = self.buf.split(sep, 1)
        return head

    def event(self, timeout: float = 5.0) -> dict:
        """The next event (chunked transfer framing is skipped: it never splits our lines)."""
        self.sock.settimeout(timeout)
        fields: dict[str, str] = {}
        while True:
            line = self._until(b"\n").decode().rstrip("\r")
            if re.fullmatch(r"[0-9a-fA-F]+", line):  # a chunk size line
                continue
            if line == "":
                if "event" in fields or "data" in fields:
                    return {"id": fields.get("id"), "event": fields.get("event"),
                            "data": json.loads(fields["data"]) if "data" in fields else None}
                continue
            key, _, value = line.partition(": ")
            fields[key] = value

    def body(self) -> dict:
        """The JSON body of a refused stream (Content-Length framed)."""
        length = int(re.search(r"(?im)^content-length: *(\d+)", self.headers).group(1))
        while len(self.buf) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        return json.loads(self.buf[:length])

    def message(self, timeout: float = 5.0) -> dict:
        """The next bus message (heartbeats skipped)."""
        while True:
            ev = self.event(timeout)
            if ev["event"] != "status":
                return ev

    def until(self, kind: str, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ev = self.event(timeout=max(0.1, deadline - time.monotonic()))
            if ev["event"] == kind:
                return ev
        raise AssertionError(f"no {kind} event within {timeout} s")

    def close(self) -> None:
        self.sock.close()
