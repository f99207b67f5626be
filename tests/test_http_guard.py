"""Slow clients cannot hold connections (edge/web/http_guard.py): a real uvicorn over loopback,
with short limits so that the test waits fractions of a second; what a slow machine changes is
only how long the test waits for a close, never whether it comes."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from scanedge.edge.lifecycle import BackgroundServer
from scanedge.edge.web.http_guard import guarded_protocol

HEAD_S, BODY_IDLE_S, IDLE_S = 0.5, 1.0, 1.0


async def echo(scope, receive, send) -> None:
    """Answers every request with the length of its body, after reading all of it (on
    ``/slow``, after a pause longer than the body's idle limit: a busy app)."""
    if scope["type"] == "lifespan":
        while True:
            kind = (await receive())["type"]
            await send({"type": kind + ".complete"})
            if kind == "lifespan.shutdown":
                return
    if scope["path"] == "/slow":
        await asyncio.sleep(BODY_IDLE_S * 1.3)
    size, more = 0, True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = json.dumps({"size": size}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def server():
    server = BackgroundServer(echo, http=guarded_protocol(HEAD_S, BODY_IDLE_S),
                              timeout_keep_alive=IDLE_S).start()
    yield server
    server.stop()


def closed_by_server(sock: socket.socket, within_s: float = 30.0) -> bool:
    """True once the server closed the connection (recv gives b""), False if it answered."""
    sock.settimeout(within_s)
    return sock.recv(1024) == b""


def connect(server) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=30)


def test_half_a_request_line_is_cut_off(server):
    sock = connect(server)
    sock.sendall(b"POST /api/v1/scans HTTP/1.1\r\nHost: x\r\n")  # and nothing more
    assert closed_by_server(sock)


def test_a_connection_that_never_sends_is_closed_like_an_idle_one(server):
    t0 = time.monotonic()
    sock = connect(server)
    assert closed_by_server(sock)
    assert time.monotonic() - t0 > HEAD_S * 1.4  # the keep-alive limit, not the head's


def test_a_body_that_stops_is_cut_off(server):
    sock = connect(server)
    sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
    assert closed_by_server(sock)


def test_a_body_that_keeps_coming_slowly_is_read_whole(server):
    """Pieces well inside the idle limit: the whole body arrives, longer than the limit in all."""
    sock = connect(server)
    pieces = 30
    sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (pieces * 100))
    for _ in range(pieces):
        time.sleep(BODY_IDLE_S / 50)
        sock.sendall(b"y" * 100)
    sock.settimeout(30)
    answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"size": 3000}')


def test_a_body_the_app_is_slow_to_take_is_not_cut_off(server):
    """uvicorn stops reading a body the app has not taken (flow control): that pause is the
    server's, not the client's, and does not count against the idle limit."""
    sock = connect(server)
    size = 1024 * 1024  # far over uvicorn's 64 KiB buffer: it pauses reading
    sock.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
    sock.sendall(b"z" * size)
    sock.settimeout(30)
    assert sock.recv(4096).endswith(b'{"size": %d}' % size)


def test_a_client_waiting_for_100_continue_is_not_cut_off(server):
    sock = connect(server)
    sock.sendall(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 b"Expect: 100-continue\r\n\r\n")
    sock.settimeout(30)
    assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue")  # once the app reads
    sock.sendall(b"hello")
    assert sock.recv(4096).endswith(b'{"size": 5}')


def test_a_kept_alive_connection_serves_request_after_request(server):
    sock = connect(server)
    for _ in range(3):
        sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab")
        sock.settimeout(30)
        assert sock.recv(4096).endswith(b'{"size": 2}')


def test_the_servers_run_with_the_guard():
    from scanedge.edge.lifecycle import _uvicorn_config
    from scanedge.edge.web.http_guard import BODY_IDLE_S as DEFAULT_BODY
    from scanedge.edge.web.http_guard import GuardedHttpTools

    config = _uvicorn_config(echo)
    assert config.http is GuardedHttpTools and GuardedHttpTools.body_idle_s == DEFAULT_BODY
