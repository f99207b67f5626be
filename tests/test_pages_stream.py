"""The pages' live stream and page routes: a real ``scanedge serve`` (uvicorn), raw HTTP."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from pathlib import Path

import pytest

from tests.sse import SseClient
from tests.support import EdgeServer, run_cli, wait_until

API_THREADS = 4
STREAMS_MAX = 32


@pytest.fixture(scope="module")
def edge(tmp_path_factory) -> EdgeServer:
    data = tmp_path_factory.mktemp("pages-stream") / "var"
    run_cli("orders", "import", "--demo", data_dir=data)
    # 4 API threads and many more pages: streams take no thread; the cap is page_streams_max
    server = EdgeServer(data, SCANEDGE_HTTP_THREADS=str(API_THREADS),
                        SCANEDGE_PAGE_STREAMS_MAX=str(STREAMS_MAX),
                        SCANEDGE_PRINTER="dummy://",
                        SCANEDGE_PRINT_POLICY="off").start()  # streams, not the print gate
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


def test_many_more_streams_than_api_threads_and_the_cap(edge: EdgeServer) -> None:
    wait_until(lambda: _open_streams(edge) == 0, timeout=10, what="earlier streams to end")
    streams = [SseClient(edge.port, f"/api/v1/stream?station=bench-{i % 5}") for i in range(30)]
    try:
        for s in streams:
            assert s.status == 200
            s.until("state")
        assert _open_streams(edge) == 30
        # 30 pages live on 4 API threads, and scans still answer, several at once
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda i: edge.post("/api/v1/scans", {
                "code": "SO-1003", "station": f"bench-{i % 5}"}), range(16)))
        assert [status for status, _ in answers] == [200] * 16
        # each page got the scans of its own station, in order, right after its state
        for i, s in enumerate(streams[:5]):
            got = [s.message()["data"]["station"] for _ in range(16 // 5 + (i < 16 % 5))]
            assert got == [f"bench-{i}"] * len(got)
        streams += [SseClient(edge.port, "/api/v1/stream") for _ in range(STREAMS_MAX - 30)]
        assert all(s.status == 200 for s in streams)
        # one more than page_streams_max: refused like any API error, with Retry-After
        refused = SseClient(edge.port, "/api/v1/stream?station=bench-9")
        assert refused.status == 503
        assert re.search(r"(?im)^retry-after: *5\r?$", refused.headers)
        body = refused.body()
        assert body["error"] == "too_many_streams" and body["retry_after_s"] == 5
        assert str(STREAMS_MAX) in body["message"]
        refused.close()
        # a closed page gives its slot back at once (uvicorn reports the disconnect)
        streams.pop().close()
        wait_until(lambda: _open_streams(edge) == STREAMS_MAX - 1, timeout=10,
                   what="the slot to be returned")
        again = SseClient(edge.port, "/api/v1/stream")
        assert again.status == 200
        streams.append(again)
    finally:
        for s in streams:
            s.close()
    wait_until(lambda: _open_streams(edge) == 0, timeout=10, what="slots to be returned")


def test_a_station_stream_gets_its_station_and_the_device(edge: EdgeServer) -> None:
    bench1 = SseClient(edge.port, "/api/v1/stream?station=bench-1")
    bench2 = SseClient(edge.port, "/api/v1/stream?station=bench-2")
    supervisor = SseClient(edge.port, "/api/v1/stream?station=bench-1&all=1")
    try:
        for s in (bench1, bench2, supervisor):
            assert s.until("state")["data"]["station"] in ("bench-1", "bench-2")
        status, _ = edge.post("/api/v1/scans", {"code": "SO-1002", "station": "bench-2"})
        assert status == 200
        status, _ = edge.post("/api/v1/print-jobs", {"order_id": "SO-1002"})
        assert status == 202
        scan = bench2.message()
        assert scan["event"] == "scan" and scan["data"]["station"] == "bench-2"
        assert supervisor.message()["id"] == scan["id"]
        # bench-1's page skips bench-2's scan: its next message is the device-wide print job
        job = bench1.message()
        assert job["event"] == "job" and int(job["id"]) > int(scan["id"])
        assert bench2.message()["id"] == job["id"] == supervisor.message()["id"]
    finally:
        for s in (bench1, bench2, supervisor):
            s.close()


def test_stream_errors_are_json_like_the_api(edge: EdgeServer) -> None:
    bad = SseClient(edge.port, "/api/v1/stream", {"Last-Event-ID": "yesterday"})
    try:
        assert bad.status == 400 and "application/json" in bad.headers
        assert bad.body() == {"error": "bad_request",
                              "message": "Last-Event-ID / after: expected a message id"}
    finally:
        bad.close()
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(edge.url + "/api/v1/stream?station=" + "x" * 65, timeout=10)
    assert e.value.code == 400 and json.loads(e.value.read())["error"] == "bad_request"
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(edge.url + "/api/v1/stream", data=b"",
                                                      method="POST"), timeout=10)
    assert e.value.code == 405 and json.loads(e.value.read())["error"] == "method_not_allowed"


def test_pages_render_in_both_languages_with_versioned_assets(edge: EdgeServer) -> None:
    def get(path: str) -> tuple[int, str, Message]:
        with urllib.request.urlopen(edge.url + path, timeout=10) as r:
            return r.status, r.read().decode(), r.headers  # names in any case (HTTP/1.1)

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
    assert o["streams"]["limit"] == STREAMS_MAX
