"""The pages' live stream and page routes: a real ``scanedge serve`` on waitress, raw HTTP."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import EdgeServer, run_cli, wait_until


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

    def until(self, kind: str, timeout: float = 5.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ev = self.event(timeout=max(0.1, deadline - time.monotonic()))
            if ev["event"] == kind:
                return ev
        raise AssertionError(f"no {kind} event within {timeout} s")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def edge(tmp_path_factory) -> EdgeServer:
    data = tmp_path_factory.mktemp("pages-stream") / "var"
    run_cli("orders", "import", "--demo", data_dir=data)
    # 6 threads: at most 2 streams (4 are kept for the API), so the cap is testable
    server = EdgeServer(data, SCANEDGE_HTTP_THREADS="6", SCANEDGE_PRINTER="dummy://").start()
    yield server
    server.stop()


def test_stream_starts_with_state_then_live_messages_with_ids(edge: EdgeServer) -> None:
    sse = SseClient(edge.port, "/api/v1/stream?heartbeat=0.5")
    try:
        assert sse.status == 200 and "text/event-stream" in sse.headers
        state = sse.until("state")["data"]
        assert state["station"] == "bench-1" and state["alarms"] == []
        assert state["sync"]["hub"] is False and state["printer"]["printer"].startswith("dummy")
        t0 = time.monotonic()
        status, body = edge.post("/api/v1/scans", {"code": "SO-1002", "scan_id": "s-1"})
        assert status == 200 and body["verdict"] == "ok"
        scan = sse.until("scan")
        assert time.monotonic() - t0 < 1.0
        assert int(scan["id"]) > state["last_id"] and scan["data"]["order_id"] == "SO-1002"
        beat = sse.until("status", timeout=3)  # the heartbeat carries sync and printer status
        assert "sync" in beat["data"] and beat["id"] is None
        last_id = scan["id"]
    finally:
        sse.close()
    # missed while away: replayed after Last-Event-ID, in order, after a fresh state
    edge.post("/api/v1/scans", {"code": "9787115428028", "scan_id": "s-2"})
    edge.post("/api/v1/scans", {"code": "SELLER-CASE-07", "scan_id": "s-3"})
    again = SseClient(edge.port, "/api/v1/stream?heartbeat=0.5", {"Last-Event-ID": last_id})
    try:
        assert again.event()["event"] == "state"
        codes = [again.until("scan")["data"]["code"]["text"] for _ in range(2)]
        assert codes == ["9787115428028", "SELLER-CASE-07"]
    finally:
        again.close()


def _open_streams(edge: EdgeServer) -> int:
    with urllib.request.urlopen(edge.url + "/api/v1/overview", timeout=10) as r:
        return json.loads(r.read())["streams"]["open"]


def test_open_streams_are_capped_and_never_starve_the_api(edge: EdgeServer) -> None:
    # streams closed by the test before are noticed at their next heartbeat (3 s)
    wait_until(lambda: _open_streams(edge) == 0, timeout=10, what="earlier streams to end")
    streams = [SseClient(edge.port, "/api/v1/stream?heartbeat=0.5") for _ in range(2)]
    try:
        for s in streams:
            assert s.status == 200
            s.until("state")
        refused = SseClient(edge.port, "/api/v1/stream")
        assert refused.status == 503
        refused.close()
        # every remaining worker still answers the API, several calls at once
        t0 = time.monotonic()
        for _ in range(5):
            status, _ = edge.post("/api/v1/scans", {"code": "SO-1003"})
            assert status == 200
        assert time.monotonic() - t0 < 5
    finally:
        for s in streams:
            s.close()
    # a closed page gives its slot back (noticed at the next heartbeat write)
    wait_until(lambda: _open_streams(edge) == 0, timeout=10, what="slots to be returned")


def test_pages_render_in_both_languages_with_versioned_assets(edge: EdgeServer) -> None:
    def get(path: str) -> tuple[int, str, dict]:
        with urllib.request.urlopen(edge.url + path, timeout=10) as r:
            return r.status, r.read().decode(), dict(r.headers)

    for page in ("/", "/scan", "/bench", "/waybill", "/supervisor"):
        status, html, _ = get(page)
        assert status == 200 and 'lang="zh-CN"' in html and 'name="viewport"' in html
    _, html, headers = get("/scan?lang=en")
    assert 'lang="en"' in html and "Scan a barcode" in html
    assert "scanedge_lang=en" in headers.get("Set-Cookie", "")
    assets = re.findall(r'(?:src|href)="(/static/[^"?]+)\?v=([0-9a-f]{12})"', html)
    assert {a for a, _ in assets} >= {"/static/app.css", "/static/common.js", "/static/scanner.js"}
    for path, _ in assets:
        assert get(path)[0] == 200
    # nothing from the network: every script and stylesheet is our own
    assert not re.search(r'(?:src|href)="(?:https?:)?//', html)
    # a station name from the URL cannot break out of the embedded JSON
    _, html, _ = get("/scan?station=%3C/script%3E%3Cscript%3Ealert(1)%3C/script%3E")
    assert "<script>alert(1)" not in html


def test_label_preview_is_a_png(edge: EdgeServer) -> None:
    with urllib.request.urlopen(edge.url + "/api/v1/label-preview/SO-1001", timeout=10) as r:
        assert r.headers["Content-Type"] == "image/png"
        assert r.read()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(edge.url + "/api/v1/label-preview/NOPE", timeout=10)
    assert e.value.code == 404


def test_overview_for_the_supervisor(edge: EdgeServer) -> None:
    run_cli("freeze", "SO-1001", "--reason", "cancel", data_dir=Path(edge.data_dir))
    status, body = edge.post("/api/v1/scans", {"code": "SO-1001", "operator": "li"})
    assert status == 200 and body["verdict"] == "frozen"
    with urllib.request.urlopen(edge.url + "/api/v1/overview", timeout=10) as r:
        o = json.loads(r.read())
    assert [a["order_id"] for a in o["unacked_freeze_alarms"]] == ["SO-1001"]
    assert o["freezes"][0]["order_id"] == "SO-1001" and o["freezes"][0]["unacked_alarms"]
    assert o["interceptions"]["count"] == 1 and o["interceptions"]["by_action"] == {"scan": 1}
    assert o["sync"]["hub"] is False and o["sync"]["outbox_pending"] > 0
    assert o["streams"]["limit"] == 2
