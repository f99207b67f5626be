"""The ASGI -> WSGI bridge the edge's Flask API runs behind (edge/web/wsgi_bridge.py)."""

from __future__ import annotations

import asyncio
import json

import pytest

from scanedge.edge.web.wsgi_bridge import WsgiBridge


def echo_app(environ, start_response):
    """Answers the body it read, ``times`` times (query string), and what it was sent as."""
    body = environ["wsgi.input"].read()
    times = int(environ["QUERY_STRING"] or 1)
    start_response("201 Created", [("Content-Type", "application/octet-stream"),
                                   ("X-Length", str(len(body)))])
    return [body] * times


def call(app, body: bytes, *, query: str = "", chunk: int = 1 << 20, length: bool = True):
    """Drive the ASGI app once; returns (status, headers, body, messages sent)."""
    chunks = [body[i:i + chunk] for i in range(0, len(body), chunk)] or [b""]
    incoming = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
                for i, c in enumerate(chunks)]
    sent: list[dict] = []
    headers = [(b"content-type", b"application/json")]
    if length:
        headers.append((b"content-length", str(len(body)).encode()))
    scope = {"type": "http", "method": "POST", "path": "/x", "root_path": "",
             "query_string": query.encode(), "http_version": "1.1", "headers": headers,
             "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 5000), "scheme": "http"}

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    assert start["type"] == "http.response.start"
    assert sent[-1]["type"] == "http.response.body" and not sent[-1].get("more_body")
    return (start["status"], dict(start["headers"]),
            b"".join(m.get("body", b"") for m in sent[1:]), sent)


def test_a_short_call_is_read_first_and_answered_in_one_piece():
    status, headers, body, sent = call(WsgiBridge(echo_app, 2), b'{"code": "SO-1001"}')
    assert (status, body) == (201, b'{"code": "SO-1001"}')
    assert headers[b"x-length"] == b"19" and headers[b"content-type"] == b"application/octet-stream"
    assert len(sent) == 2  # start, then the whole body


def test_a_large_or_chunked_body_is_read_from_the_thread_as_it_comes():
    big = bytes(range(256)) * 1000  # 256 KB in 10 KB pieces, over the 64 KB read up front
    assert call(WsgiBridge(echo_app, 2), big, chunk=10_000)[2] == big
    assert call(WsgiBridge(echo_app, 2), b"abc" * 10, chunk=7, length=False)[2] == b"abc" * 10


def test_a_large_response_is_streamed_with_every_byte():
    piece = b"x" * 100_000
    status, _, body, sent = call(WsgiBridge(echo_app, 2, buffer_response=150_000), piece,
                                 query="5")
    assert status == 201 and body == piece * 5
    assert len(sent) > 3 and all(m.get("more_body") for m in sent[1:-1])


def test_an_error_before_the_answer_is_a_json_500_and_logged(caplog):
    def broken(environ, start_response):
        raise LookupError("boom")

    status, headers, body, _ = call(WsgiBridge(broken, 1), b"{}")
    assert status == 500 and headers[b"content-type"] == b"application/json"
    assert json.loads(body) == {"error": "internal_error", "message": "internal error"}
    assert "boom" in caplog.text  # the traceback is the operator's, not the client's


def test_an_error_after_a_streamed_answer_started_ends_the_call():
    def fails_midway(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        yield b"x" * 200_000  # over the buffer: the start and this chunk go out at once
        raise LookupError("midway")

    with pytest.raises(LookupError, match="midway"):
        call(WsgiBridge(fails_midway, 1, buffer_response=100_000), b"{}")


def test_calls_run_on_the_bridge_threads_and_several_at_once():
    import threading

    names: set[str] = set()
    both_in = threading.Barrier(2, timeout=10)

    def app(environ, start_response):
        names.add(threading.current_thread().name)
        both_in.wait()  # two calls inside the app at the same time, or this times out
        start_response("200 OK", [])
        return [b"ok"]

    bridge = WsgiBridge(app, 2, name="bench")

    async def two():
        return await asyncio.gather(*(run(bridge) for _ in range(2)))

    async def run(app_):
        sent: list[dict] = []

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            sent.append(message)

        await app_({"type": "http", "method": "GET", "path": "/", "root_path": "",
                    "query_string": b"", "http_version": "1.1", "headers": [],
                    "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 5000),
                    "scheme": "http"}, receive, send)
        return sent[0]["status"]

    assert asyncio.run(two()) == [200, 200]
    assert names == {"bench-0", "bench-1"}
    bridge.close()
