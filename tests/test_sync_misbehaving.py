"""A misbehaving hub (issue 13, item 8): empty pages that say ``more``, garbage, answers of 300 MB,
silence, streams without a hello or with endless lines. Each costs the device at most a backoff,
never counts as contact, and is never read whole into memory.

The "hub" here is a tiny HTTP server on 127.0.0.1 (:class:`FakeHub`) that answers what a test
tells it to; the device is a real store and SyncWorker with its real HTTP client.
"""

from __future__ import annotations

import json
import random
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from scanedge.edge.config import load_settings
from scanedge.edge.store import Store
from scanedge.edge.store.outbox import append_event, outbox_status
from scanedge.edge.store.syncstate import get_cursor
from scanedge.sync.client import HubClient, HubProtocolError, HubUnavailable
from scanedge.sync.protocol import MAX_PULL_ANSWER_BYTES, MAX_SSE_LINE_BYTES
from scanedge.sync.worker import SyncWorker

IDENTITY = {"key_id": "0123456789abcdef", "database_id": "f" * 32}
MB = 1024 * 1024


class FakeHub:
    """An HTTP server on loopback answering pulls, pushes and streams as told.

    ``pull`` / ``push``: a dict (sent as JSON), bytes (sent as they are), or a callable
    ``(handler) -> None`` that writes the answer itself; ``pull_for``, when set, makes the pull
    answer from the cursor asked. ``stream``: bytes to send after the 200 header (then the
    connection is held until the test ends), or None for a 503."""

    def __init__(self) -> None:
        self.pull: Any = {"changes": [], "cursor": 0, "more": False,
                          "hub": {**IDENTITY, "last_seq": 0}}
        self.pull_for: Any = None  # (cursor) -> answer
        self.push: Any = b"{}"
        self.stream: bytes | None = None
        self.requests: list[str] = []
        self.sent = 0  # bytes of the last streamed body that went out
        self.release = threading.Event()  # ends held connections
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, what: Any) -> None:
                if callable(what):
                    what(self)
                    return
                body = what if isinstance(what, bytes) else json.dumps(what).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                fake.requests.append(self.path)
                if self.path.startswith("/api/v1/sync/pull"):
                    query = parse_qs(urlsplit(self.path).query)
                    cursor = int(query.get("cursor", ["0"])[0])
                    self._answer(fake.pull if fake.pull_for is None else fake.pull_for(cursor))
                elif self.path.startswith("/api/v1/sync/stream") and fake.stream is not None:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    self.wfile.write(fake.stream)
                    self.wfile.flush()
                    fake.release.wait(30)
                else:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def do_POST(self) -> None:
                fake.requests.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer(fake.push)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.port = self.server.server_address[1]
        # a short poll interval: shutdown() waits for it (0.5 s by default, per test)
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()

    def pulls(self) -> int:
        return sum(p.startswith("/api/v1/sync/pull") for p in self.requests)

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def endless(fake: FakeHub, *, length_header: bool, total: int = 300 * MB) -> Any:
    """An answer of ``total`` bytes, written 1 MB at a time until the client hangs up."""

    def write(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if length_header:
            handler.send_header("Content-Length", str(total))
        else:
            handler.send_header("Connection", "close")
        handler.end_headers()
        block = b"[" * MB
        fake.sent = 0
        try:
            while fake.sent < total:
                handler.wfile.write(block)
                fake.sent += len(block)
        except OSError:  # the device closed the connection: what we want
            pass
        handler.close_connection = True

    return write


@pytest.fixture
def fake():
    f = FakeHub()
    yield f
    f.close()


@pytest.fixture
def worker(tmp_path, fake):
    settings = load_settings(env={}, data_dir=str(tmp_path / "dev"), device_id="dev-1",
                             hub_url=fake.url, hub_token="t" * 43, hub_timeout_s=2.0,
                             sync_poll_s=0.5)
    store = Store(settings.edge_db_path)
    w = SyncWorker(store, settings, rng=random.Random(7))
    yield w
    w.stop()
    store.close()


def test_an_empty_page_that_says_more_is_an_error_not_a_loop(fake, worker):
    """Before: the device pulled the same empty page again at once, 438 times a second, and
    counted each answer as contact."""
    fake.pull = {"changes": [], "cursor": 0, "more": True, "hub": {**IDENTITY, "last_seq": 5}}
    with pytest.raises(HubProtocolError, match="more"):
        worker.pull_once()
    assert fake.pulls() == 1  # one request per attempt, not a spin
    assert not worker.online and worker.status()["last_contact"] is None


def test_the_poll_loop_backs_off_from_a_misbehaving_hub(fake, worker):
    """Each failed pull waits longer: exponential with jitter from sync_poll_s, capped at 30 s
    (the waits are recorded, not slept)."""
    fake.pull = {"changes": [], "cursor": 0, "more": True, "hub": {**IDENTITY, "last_seq": 5}}
    waits: list[float] = []

    class Recorder:
        def clear(self) -> None:
            pass

        def set(self) -> None:
            pass

        def wait(self, timeout: float) -> bool:
            waits.append(timeout)
            if len(waits) == 8:
                worker._stop.set()
            return False

    worker._poll_now = Recorder()
    worker._poll_loop()
    assert fake.pulls() == 8 and worker.pull_failures == 8
    base = worker.settings.sync_poll_s
    for attempt, wait in enumerate(waits, 1):  # uniform in [d/2, d], d = base * 2^attempt
        d = min(30.0, base * 2 ** attempt)
        assert d / 2 <= wait <= d, (attempt, wait)
    assert waits[-1] >= 15.0
    assert not worker.online


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b"[1, 2, 3]",
                                  b'{"changes": "all", "cursor": 1}',
                                  b'{"changes": [{"seq": 3}, {"seq": 2}], "cursor": 3}',
                                  b"[" * 100_000])
def test_garbage_is_no_contact(fake, worker, body):
    fake.pull = body
    with pytest.raises(HubProtocolError):
        worker.pull_once()
    assert not worker.online and get_cursor(worker.store.read()) == 0


def test_answers_without_the_hubs_identity_or_beyond_its_log_are_refused(fake, worker):
    change = {"seq": 7, "kind": "setting", "order_id": None, "payload": {"key": "k", "value": 1},
              "created_at": "2026-11-30T00:00:00.000Z", "site": "*"}
    for answer in (
            {"changes": [change], "cursor": 7, "more": False},  # who is this?
            {"changes": [change], "cursor": 7, "more": False,
             "hub": {**IDENTITY, "last_seq": 6}},  # a change beyond its own last one
            {"changes": [change], "cursor": 5, "more": False,
             "hub": {**IDENTITY, "last_seq": 7}},  # a cursor behind its own change
            {"changes": [], "cursor": 10**12, "more": False,
             "hub": {**IDENTITY, "last_seq": 7}}):  # a cursor beyond its log
        fake.pull = answer
        with pytest.raises(HubProtocolError):
            worker.pull_once()
    assert get_cursor(worker.store.read()) == 0 and not worker.online


@pytest.mark.parametrize("length_header", [True, False], ids=["content-length", "no-length"])
def test_a_300_mb_answer_is_not_read_into_memory(fake, worker, length_header):
    fake.pull = endless(fake, length_header=length_header)
    with pytest.raises(HubProtocolError, match="bytes"):
        worker.pull_once()
    fake.release.set()
    # the device stopped reading at the cap: what went out is the cap plus socket buffers
    assert fake.sent < MAX_PULL_ANSWER_BYTES + 48 * MB
    if length_header:
        assert fake.sent < 48 * MB  # refused on the header, before reading
    assert not worker.online


def test_silence_is_a_timeout_not_contact(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)  # accepts connections (the kernel does) and never answers
    try:
        client = HubClient(f"http://127.0.0.1:{listener.getsockname()[1]}", "t", timeout=0.5)
        with pytest.raises(HubUnavailable):
            client.pull(0)
        with pytest.raises(HubUnavailable):
            list(client.stream(0, read_timeout=0.5))
    finally:
        listener.close()


def test_a_push_answer_must_say_which_hub_took_the_events(fake, worker):
    event = worker.store.write(lambda db: append_event(db, "dev-1", "scan", {}))
    fake.push = {"results": [{"event_id": event.event_id, "status": "accepted"}]}
    with pytest.raises(HubProtocolError, match="which hub"):
        worker.push_once()
    assert outbox_status(worker.store.read()).pending == 1 and not worker.online
    fake.push = b"x" * (2 * MB)  # an answer bigger than any push answer
    with pytest.raises(HubProtocolError):
        worker.push_once()
    fake.push = {"results": [{"event_id": event.event_id, "status": "accepted"}],
                 "hub": IDENTITY}
    assert worker.push_once().acked == 1 and worker.online


def _hello(last_seq: int = 0) -> bytes:
    return (b"event: hello\ndata: " + json.dumps({"hub": {**IDENTITY, "last_seq": last_seq}})
            .encode() + b"\n\n")


@pytest.mark.parametrize("stream, problem", [
    (b"event: heartbeat\ndata: {\"cursor\": 0}\n\n", "no hello"),
    (_hello() + b"event: heartbeat\ndata: {\"cursor\": 0}\n\n", "which hub"),
    (_hello() + b"event: heartbeat\ndata: " + json.dumps(
        {"hub": {**IDENTITY, "database_id": "e" * 32, "last_seq": 0}}).encode() + b"\n\n",
     "another hub"),
    (_hello() + b"data: " + b"x" * (MAX_SSE_LINE_BYTES + 10) + b"\n\n", "longer"),
    (_hello() + b"id: 9\nevent: change\ndata: {\"seq\": 8}\n\n", "order"),
], ids=["no-hello", "anonymous-heartbeat", "other-hub-heartbeat", "endless-line", "bad-number"])
def test_a_stream_that_breaks_the_protocol_moves_nothing(fake, worker, stream, problem):
    """Only what follows a hello that names the hub counts (the hello itself is contact)."""
    fake.stream = stream
    with pytest.raises(HubProtocolError, match=problem):
        worker.stream_once()
    assert get_cursor(worker.store.read()) == 0
    assert worker.online is (problem != "no hello")
