"""The scan answered on the event loop (edge/web/scan_route.py) answers as the Flask route does.

Two devices with the same demo orders: one behind Flask's test client (the route in
edge/web/api.py), one behind the real ASGI app on uvicorn over loopback. The same requests go
to both, in the same order; statuses, bodies and Retry-After must be equal (event ids aside:
ULIDs). The ASGI side records what reached Flask, so the common shape provably took the loop's
route and the rarer shapes provably did not.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

import pytest

from scanedge.edge.config import load_settings
from scanedge.edge.web.scan_route import SCANS_PATH

JSON = {"Content-Type": "application/json"}


class ToFlask:
    """The EdgeAsgi's Flask side, noting each request that reaches it."""

    def __init__(self, bridge: Any) -> None:
        self.bridge = bridge
        self.seen: list[tuple[str, str]] = []

    async def __call__(self, scope, receive, send) -> None:
        self.seen.append((scope["method"], scope["path"]))
        await self.bridge(scope, receive, send)

    def close(self) -> None:
        self.bridge.close()


def _device(tmp_path_factory, name: str):
    from scanedge.edge.commands import load_demo_orders
    from scanedge.edge.context import EdgeContext

    settings = load_settings(env={}, data_dir=str(tmp_path_factory.mktemp(name)),
                             device_id="route", station="bench-1")
    ctx = EdgeContext.open(settings)
    load_demo_orders(ctx.store)
    return settings, ctx


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    from scanedge.edge.lifecycle import BackgroundServer
    from scanedge.edge.web.app import create_app
    from scanedge.edge.web.asgi import create_asgi_app

    settings_f, ctx_f = _device(tmp_path_factory, "flask")
    settings_a, ctx_a = _device(tmp_path_factory, "asgi")
    app = create_asgi_app(settings_a, ctx_a)
    app.api = ToFlask(app.api)
    server = BackgroundServer(app).start()
    both = Pair(create_app(settings_f, ctx_f).test_client(), server, app.api, ctx_f, ctx_a)
    yield both
    server.stop()
    ctx_f.close()
    ctx_a.close()


class Pair:
    def __init__(self, flask_client, server, to_flask: ToFlask, ctx_f, ctx_a) -> None:
        self.flask = flask_client
        self.server = server
        self.to_flask = to_flask
        self.ctx_f, self.ctx_a = ctx_f, ctx_a
        self.cookies: dict[str, str] = {}  # the HTTP side's session cookie

    def both(self, body: bytes | str, headers: dict[str, str] | None = None, *,
             flask_headers: dict[str, str] | None = None, path: str = SCANS_PATH,
             asgi_headers: dict[str, str] | None = None) -> tuple[Any, Any]:
        """(Flask's answer, the server's answer), each as (status, body, Retry-After)."""
        raw = body.encode() if isinstance(body, str) else body
        headers = {**JSON, **(headers or {})}
        r = self.flask.post(path, data=raw, headers={**headers, **(flask_headers or {})})
        flask = (r.status_code, _comparable(r.get_json()), r.headers.get("Retry-After"))
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=30)
        try:
            conn.request("POST", path, raw, {**headers, **(asgi_headers or {})})
            resp = conn.getresponse()
            data = resp.read()
            assert resp.getheader("Content-Type") == "application/json"
            asgi = (resp.status, _comparable(json.loads(data)), resp.getheader("Retry-After"))
        finally:
            conn.close()
        return flask, asgi


def _comparable(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: _comparable(v) for k, v in body.items() if k != "event_id"}
    return body


# the common shape: a JSON body, no query string; answered on the loop
COMMON = [
    ('{"code": "SO-1001"}', 200),
    ('{"code": "4006381333931"}', 200),
    ('{"code": "4006381333931", "station": "bench-1"}', 200),
    ('{"code": "SO-1002", "station": "bench-2"}', 200),
    ('{"code": "6901234567892", "station": "bench-2", "scan_id": "pda7-000001"}', 200),
    ('{"code": "6901234567892", "station": "bench-2", "scan_id": "pda7-000001"}', 200),  # replay
    ('{"code": "NOT-A-KNOWN-CODE-77"}', 200),
    ('{"code": "SF1385628716739"}', 200),
    ('{"code": 5}', 400),
    ("{}", 400),
    ("[1, 2]", 400),
    ('{"code": "SO', 400),
    ('{"code": "\\ud800"}', 400),
    ('{"code": NaN}', 400),
    ('{"code": "SO-1001", "n": 1180591620717411303424}', 400),
    ("[" * 80 + "]" * 80, 400),
    ("", 400),
    ('{"code": "SO-1001", "station": "bad station!"}', 400),
    ('{"code": "SO-1001", "station": 7}', 400),
    ('{"code": "SO-1001", "scan_id": ""}', 400),
    ('{"code": "SO-1001", "acks": "all"}', 400),
    ('{"code": "' + "9" * 5000 + '"}', 413),
]


def test_the_common_scan_answers_as_the_flask_route_and_never_reaches_flask(pair):
    before = len(pair.to_flask.seen)
    for body, status in COMMON:
        flask, asgi = pair.both(body)
        assert flask == asgi, body
        assert flask[0] == status, (body, flask)
    json_suffix = pair.both('{"code": "SO-1003"}', {"Content-Type": "application/scan+json"})
    assert json_suffix[0] == json_suffix[1] and json_suffix[0][0] == 200
    assert pair.to_flask.seen[before:] == []  # every one of them answered on the loop
    # and both devices recorded the same events
    counts = [ctx.store.read().execute("SELECT COUNT(*) FROM events").fetchone()[0]
              for ctx in (pair.ctx_f, pair.ctx_a)]
    assert counts[0] == counts[1] > 0


def test_other_shapes_of_a_scan_go_to_flask_and_answer_alike(pair):
    before = len(pair.to_flask.seen)
    for body, headers, path in [
        ('{"code": "SO-1001"}', {}, SCANS_PATH + "?station=bench-2"),  # a query string
        ("code=SO-1001", {"Content-Type": "application/x-www-form-urlencoded"}, SCANS_PATH),
        ('{"code": "SO-1001"}', {"Content-Type": "text/plain"}, SCANS_PATH),
        ('{"code": "' + "x" * 70_000 + '"}', {}, SCANS_PATH),  # over the JSON cap: 413
    ]:
        flask, asgi = pair.both(body, headers, path=path)
        assert flask == asgi, (body[:40], headers, path)
    assert [p for _, p in pair.to_flask.seen[before:]] == [SCANS_PATH] * 4


def test_who_may_scan_is_decided_alike_on_both_routes(pair):
    """Open mode ends with the first user; tokens, roles and station-bound sessions apply."""
    tokens = {}
    for side, ctx in (("flask", pair.ctx_f), ("asgi", pair.ctx_a)):
        ctx.accounts.add_user("k1", "张三", "packer", badge="BADGE-PACKER-1")
        tokens[side] = (ctx.accounts.add_token("scanner-7", "packer"),
                        ctx.accounts.add_token("distributor-9", "distributor"))
    scan = '{"code": "SO-1004"}'

    def with_token(i: int) -> dict[str, Any]:
        return {"flask_headers": {"Authorization": f"Bearer {tokens['flask'][i]}"},
                "asgi_headers": {"Authorization": f"Bearer {tokens['asgi'][i]}"}}

    cases = {
        "nobody": ({}, 401),
        "a bad token": ({"headers": {"Authorization": "Bearer nope"}}, 401),
        "a packer's token": (with_token(0), 200),
        "a distributor's token (may not scan)": (with_token(1), 403),
        "open mode is no more behind a proxy either": (
            {"headers": {"X-Forwarded-For": "10.0.0.9"}}, 401),
    }
    for what, (kwargs, status) in cases.items():
        flask, asgi = pair.both(scan, **kwargs)
        assert flask == asgi, what
        assert flask[0] == status, (what, flask)

    # a session signed in at bench-1 may scan there, not at bench-2
    r = pair.flask.post("/api/v1/session", json={"badge": "BADGE-PACKER-1", "station": "bench-1"})
    assert r.status_code == 200
    conn = http.client.HTTPConnection(pair.server.host, pair.server.port, timeout=30)
    conn.request("POST", "/api/v1/session", '{"badge": "BADGE-PACKER-1", "station": "bench-1"}',
                 JSON)
    resp = conn.getresponse()
    resp.read()
    cookie = resp.getheader("Set-Cookie").split(";")[0]
    conn.close()
    for body, status in [('{"code": "SO-1004"}', 200),
                         ('{"code": "SO-1004", "station": "bench-2"}', 403)]:
        flask, asgi = pair.both(body, asgi_headers={"Cookie": cookie})
        assert flask == asgi, body
        assert flask[0] == status, (body, flask)
        if status == 200:
            assert flask[1]["station"] == "bench-1"


def test_concurrent_scans_on_the_loop_are_each_committed_once(tmp_path_factory):
    """8 connections at once, every scan sent twice with its scan_id (a PDA retrying): each is
    answered after its commit, the retry from the stored answer, and the outbox holds one event
    per scan."""
    import threading

    from scanedge.edge.lifecycle import BackgroundServer
    from scanedge.edge.web.asgi import create_asgi_app

    settings, ctx = _device(tmp_path_factory, "burst")
    server = BackgroundServer(create_asgi_app(settings, ctx)).start()
    answers: dict[str, list[dict]] = {}
    lock = threading.Lock()

    def pda(n: int) -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        for i in range(25):
            scan_id = f"pda{n}-{i:03d}"
            body = json.dumps({"code": "4006381333931", "station": f"bench-{n}",
                               "scan_id": scan_id})
            for _ in range(2):
                conn.request("POST", SCANS_PATH, body, JSON)
                resp = conn.getresponse()
                assert resp.status == 200
                with lock:
                    answers.setdefault(scan_id, []).append(json.loads(resp.read()))
        conn.close()

    try:
        threads = [threading.Thread(target=pda, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.stop()
    events = ctx.store.read().execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events"
                                      " WHERE type = 'scan'").fetchone()
    ctx.close()
    assert len(answers) == 200 and events == (200, 200)
    for first, retry in answers.values():
        assert "replayed" not in first and retry["replayed"] is True
        assert retry["event_id"] == first["event_id"]
