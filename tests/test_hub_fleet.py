"""A hub for a fleet: streams on the event loop, caps and rate limits, sites, scoped tokens,
gap-free event ingest without a shared lock, and the upgrade of an existing hub database.

The hub runs as its real ASGI app on uvicorn on 127.0.0.1 (in a thread), spoken to over real
sockets; the storages are SQLite and PostgreSQL (the ``hub_database`` fixture runs both).
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import pytest
from ulid import ULID

from scanedge.edge.lifecycle import BackgroundServer
from scanedge.sync.enroll import parse_enrollment
from scanedge.sync.hub.app import HubOptions
from scanedge.sync.hub.asgi import create_hub_asgi
from scanedge.sync.hub.limits import Rate, RateLimiter
from scanedge.sync.hub.storage import SCHEMA_VERSION, Device, _schema, open_storage
from tests.sse import SseClient
from tests.support import run_cli

ADMIN = "fleet-admin-token"
ORDER = {"lines": [{"sku": "6901234567892", "qty": 1}]}
UNLIMITED = {kind: Rate(1e6, 1e6) for kind in ("pull", "push", "ack", "stream")}


class Hub:
    """A hub app served on loopback, with helpers for admin and device calls."""

    def __init__(self, database: str, **options) -> None:
        self.storage = open_storage(database)
        self.storage.ensure_admin_token(ADMIN)
        options.setdefault("rates", UNLIMITED)
        options.setdefault("reread_s", 600.0)  # only wake-ups move the feed in these tests
        self.app = create_hub_asgi(self.storage, HubOptions(heartbeat_s=0.3, **options))
        self.server = BackgroundServer(self.app).start()
        self.port = self.server.port
        self.streams: list[SseClient] = []

    def call(self, method: str, path: str, token: str = ADMIN, body=None) -> tuple[int, dict, dict]:
        req = urllib.request.Request(
            self.server.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, json.loads(r.read()), r.headers
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read()), e.headers

    def ok(self, method: str, path: str, token: str = ADMIN, body=None) -> dict:
        status, answer, _ = self.call(method, path, token, body)
        assert status in (200, 202), (status, answer)
        return answer

    def stream(self, token: str, cursor: int = 0) -> SseClient:
        client = SseClient(self.port, "/api/v1/sync/stream",
                           {"Authorization": f"Bearer {token}", "Last-Event-ID": str(cursor)})
        self.streams.append(client)
        return client

    def close(self) -> None:
        for s in self.streams:
            s.close()
        self.server.stop()
        self.storage.close()


@pytest.fixture
def hub(hub_database):
    h = Hub(hub_database)
    yield h
    h.close()


def changes_of(client: SseClient, n: int) -> list[dict]:
    out = []
    while len(out) < n:
        out.append(client.until("change", timeout=20)["data"])
    return out


def event(device_id: str, seq: int) -> dict:
    return {"event_id": str(ULID()), "device_id": device_id, "seq": seq, "type": "scan",
            "order_id": "SO-1", "payload": {"code": "x"}, "device_time": "2026-11-30T00:00:00Z"}


# -- streams ------------------------------------------------------------------------------------
def test_stream_resumes_after_last_event_id(hub):
    token = hub.storage.add_device("dev-1")
    for i in range(3):
        hub.ok("PUT", f"/api/v1/orders/SO-{i}", body=ORDER)
    stream = hub.stream(token, cursor=1)
    assert stream.status == 200 and "text/event-stream" in stream.headers
    assert [c["seq"] for c in changes_of(stream, 2)] == [2, 3]
    assert stream.until("heartbeat")["data"]["cursor"] == 3


def test_streams_hold_no_thread_and_one_wakeup_reads_the_log_once(hub_database):
    """60 streams on a hub with 2 + 2 threads: the order system still answers, every stream
    gets the change, and the change log was read once for all of them."""
    hub = Hub(hub_database, admin_threads=2, device_threads=2, streams_per_device=2)
    try:
        tokens = [hub.storage.add_device(f"dev-{i:02d}") for i in range(30)]
        streams = [hub.stream(t) for t in tokens for _ in range(2)]
        for s in streams:
            s.until("heartbeat")  # open and waiting
        reads = hub.app.feed.reads
        hub.ok("PUT", "/api/v1/orders/SO-1", body=ORDER)
        assert all(changes_of(s, 1)[0]["order_id"] == "SO-1" for s in streams)
        assert hub.app.feed.reads - reads == 1
        assert hub.app.feed.open_streams == 60
    finally:
        hub.close()


def test_a_third_stream_of_a_device_closes_the_oldest(hub):
    token = hub.storage.add_device("dev-1")
    first, second = hub.stream(token), hub.stream(token)
    first.until("heartbeat")
    second.until("heartbeat")
    third = hub.stream(token)
    third.until("heartbeat")
    with pytest.raises(EOFError):  # the oldest is ended by the hub
        while True:
            first.event(timeout=10)
    hub.ok("PUT", "/api/v1/orders/SO-1", body=ORDER)
    assert changes_of(second, 1)[0]["order_id"] == "SO-1"
    assert changes_of(third, 1)[0]["order_id"] == "SO-1"
    assert hub.app.streams.count("dev-1") == 2


def test_rate_limits_answer_429_with_retry_after(hub_database):
    # a rate so slow no token comes back during the test: the burst is all a device gets
    slow = {"pull": Rate(0.001, 3), "push": Rate(0.001, 2), "ack": Rate(0.001, 2),
            "stream": Rate(0.001, 1)}
    hub = Hub(hub_database, rates=slow)
    try:
        token = hub.storage.add_device("dev-1")
        other = hub.storage.add_device("dev-2")
        pulls = [hub.call("GET", "/api/v1/sync/pull?cursor=0", token)[0] for _ in range(4)]
        assert pulls == [200, 200, 200, 429]
        status, answer, headers = hub.call("GET", "/api/v1/sync/pull?cursor=0", token)
        assert status == 429 and answer["error"] == "rate_limited"
        assert int(headers["Retry-After"]) >= 1
        assert hub.call("GET", "/api/v1/sync/pull?cursor=0", other)[0] == 200  # per device
        pushes = [hub.call("POST", "/api/v1/sync/push", token, {"events": [event("dev-1", i)]})[0]
                  for i in (1, 2, 3)]
        assert pushes == [200, 200, 429]
        assert hub.stream(token).status == 200
        refused = hub.stream(token)
        assert refused.status == 429 and "retry-after" in refused.headers.lower()
        assert hub.call("GET", "/api/v1/devices")[0] == 200  # the order system is not limited
    finally:
        hub.close()


def test_rate_limiter_refills_at_its_rate():
    now = [100.0]
    limiter = RateLimiter({"pull": Rate(2.0, 2.0)}, lambda: now[0])
    assert limiter.check("pull", "a") is None and limiter.check("pull", "a") is None
    assert limiter.check("pull", "a") == pytest.approx(0.5)  # one token comes back in 0.5 s
    now[0] += 0.5
    assert limiter.check("pull", "a") is None
    assert limiter.check("pull", "b") is None  # buckets are per key


def test_rate_limiter_memory_is_bounded():
    now = [0.0]
    limiter = RateLimiter({"pull": Rate(1.0, 5.0)}, lambda: now[0], max_keys=100)
    for i in range(1000):
        now[0] += 1.0  # every earlier bucket refills
        limiter.check("pull", f"dev-{i}")
    assert len(limiter._buckets) <= 101


# -- sites ----------------------------------------------------------------------------------
def test_a_device_sees_only_its_sites_changes(hub):
    token_a = hub.storage.add_device("pda-a", "site-a")
    token_b = hub.storage.add_device("pda-b", "site-b")
    stream_a = hub.stream(token_a)
    stream_a.until("heartbeat")
    hub.ok("PUT", "/api/v1/orders/B-1", body={**ORDER, "site": "site-b",
                                               "recipient": {"name": "张三", "phone": "13800000000"}})
    hub.ok("POST", "/api/v1/orders/B-1/freeze", body={"reason": "cancel"})
    hub.ok("PUT", "/api/v1/orders/A-1", body={**ORDER, "site": "site-a"})
    hub.ok("POST", "/api/v1/orders/A-1/freeze", body={"reason": "cancel"})
    hub.storage.put_setting("offline_print", "hold_p0")  # a setting is for every site
    seen = changes_of(stream_a, 3)
    assert [(c["kind"], c["order_id"]) for c in seen] == [
        ("order", "A-1"), ("freeze", "A-1"), ("setting", None)]
    pulled = hub.ok("GET", "/api/v1/sync/pull?cursor=0", token_a)
    assert [c["order_id"] for c in pulled["changes"]] == ["A-1", "A-1", None]
    assert pulled["cursor"] == hub.storage.last_change_seq()  # resumes past site-b's too
    again = hub.ok("GET", f"/api/v1/sync/pull?cursor={pulled['cursor']}", token_a)
    assert again["changes"] == []
    assert "B-1" not in json.dumps(pulled) and "13800000000" not in json.dumps(pulled)
    # a stream that catches up from the database filters the same way
    late = hub.stream(token_a, cursor=0)
    assert [c["order_id"] for c in changes_of(late, 3)] == ["A-1", "A-1", None]
    b = hub.ok("GET", "/api/v1/sync/pull?cursor=0", token_b)
    assert [c["order_id"] for c in b["changes"]] == ["B-1", "B-1", None]


def test_a_device_cannot_ack_another_sites_freeze(hub):
    token_a = hub.storage.add_device("pda-a", "site-a")
    hub.storage.add_device("pda-b", "site-b")
    hub.ok("PUT", "/api/v1/orders/B-1", body={**ORDER, "site": "site-b"})
    freeze = hub.ok("POST", "/api/v1/orders/B-1/freeze", body={"reason": "cancel"})
    answer = hub.ok("POST", "/api/v1/sync/acks", token_a,
                    {"acks": [{"command_id": freeze["command_id"], "order_id": "B-1"}]})
    assert answer["stored"] == 0
    [listed] = hub.ok("GET", "/api/v1/freezes?acks=all")["freezes"]
    assert [a["device_id"] for a in listed["acks"]] == ["pda-b"]  # only site-b's device expected
    assert (listed["expected"], listed["acked"]) == (1, 0)


def test_an_order_system_token_is_limited_to_its_sites(hub):
    hub.storage.add_device("pda-a", "site-a")
    token_b = hub.storage.add_device("pda-b", "site-b")
    b_only = hub.storage.add_admin_token("oms-b", ["site-b"])
    # a new order without a site goes to the token's one site
    assert hub.ok("PUT", "/api/v1/orders/B-1", b_only, ORDER)["site"] == "site-b"
    status, answer, _ = hub.call("PUT", "/api/v1/orders/A-1", b_only, {**ORDER, "site": "site-a"})
    assert (status, answer["error"]) == (403, "forbidden")
    hub.ok("PUT", "/api/v1/orders/A-1", body={**ORDER, "site": "site-a"})  # the hub's admin
    status, answer, _ = hub.call("POST", "/api/v1/orders/A-1/freeze", b_only, {"reason": "cancel"})
    assert (status, answer["error"]) == (404, "not_found")
    hub.ok("POST", "/api/v1/orders/B-1/freeze", b_only, {"reason": "cancel"})
    status, answer, _ = hub.call("PUT", "/api/v1/orders/A-1", body={**ORDER, "site": "site-b"})
    assert (status, answer["error"]) == (409, "site_change")  # an order does not move
    hub.ok("POST", "/api/v1/sync/push", token_b, {"events": [event("pda-b", 1)]})
    assert [d["device_id"] for d in hub.ok("GET", "/api/v1/devices", b_only)["devices"]] == ["pda-b"]
    assert [f["order_id"] for f in hub.ok("GET", "/api/v1/freezes", b_only)["freezes"]] == ["B-1"]
    assert {e["site"] for e in hub.ok("GET", "/api/v1/events", b_only)["events"]} == {"site-b"}
    assert len(hub.ok("GET", "/api/v1/devices")["devices"]) == 2  # the admin sees every site
    assert hub.call("GET", "/api/v1/devices", "not-a-token")[0] == 403


@pytest.mark.slow
def test_hub_cli_registers_devices_and_tokens_per_site(tmp_path):
    env = {"SCANEDGE_HUB_DATABASE": str(tmp_path / "hub.db")}
    enrolment = run_cli("hub", "add-device", "pda-7", "--site", "shanghai", data_dir=tmp_path,
                        **env).stdout.strip()
    token = parse_enrollment(enrolment)["hub_token"]
    oms = run_cli("hub", "add-token", "oms-sh", "--site", "shanghai", data_dir=tmp_path,
                  **env).stdout.strip()
    listed = run_cli("hub", "devices", data_dir=tmp_path, **env).stdout
    assert "pda-7\tsite shanghai" in listed
    storage = open_storage(str(tmp_path / "hub.db"))
    try:
        assert storage.device_for_token(token) == Device("pda-7", "shanghai")
        assert storage.admin_scope(oms).sites == frozenset({"shanghai"})
    finally:
        storage.close()
    bad = run_cli("hub", "add-token", "oms", data_dir=tmp_path, check=False, **env)
    assert bad.returncode == 2 and "--site" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_cli("hub", "add-device", "x", "--site", "no spaces", data_dir=tmp_path, check=False,
                  **env)
    assert bad.returncode == 2 and "site" in bad.stderr


# -- event ingest -------------------------------------------------------------------------------
def test_concurrent_pushes_are_listed_gap_free(hub_database):
    """Eight devices push at once (no lock shared between them on PostgreSQL) while a reader
    follows ``events?after=``: it sees every event exactly once, numbered without a gap."""
    storage = open_storage(hub_database)
    try:
        devices = [Device(f"dev-{i}", "default") for i in range(8)]
        for d in devices:
            storage.add_device(d.device_id)
        done = threading.Event()
        seen: list[dict] = []

        def follow() -> None:
            cursor = 0
            while True:
                last_round = done.is_set()
                page = storage.list_events(after=cursor, limit=300)
                seen.extend(page)
                cursor = page[-1]["hub_seq"] if page else cursor
                if last_round and not page:
                    return

        def push(device: Device) -> None:
            for batch in range(10):
                storage.store_events(device, [event(device.device_id, batch * 50 + i + 1)
                                              for i in range(50)])

        reader = threading.Thread(target=follow)
        reader.start()
        pushers = [threading.Thread(target=push, args=(d,)) for d in devices]
        for t in pushers:
            t.start()
        for t in pushers:
            t.join()
        done.set()
        reader.join(60)
        assert not storage.unpublished()
        numbers = [e["hub_seq"] for e in seen]
        assert numbers == list(range(1, 4001))  # in order, once each, no gap
        assert len({e["event_id"] for e in seen}) == 4000
    finally:
        storage.close()


def test_a_batch_with_one_event_twice_stores_it_once(hub):
    token = hub.storage.add_device("dev-1")
    e = event("dev-1", 1)
    answer = hub.ok("POST", "/api/v1/sync/push", token, {"events": [e, e, event("dev-1", 0)]})
    assert [r["status"] for r in answer["results"]] == ["accepted", "duplicate", "rejected:bad_seq"]
    again = hub.ok("POST", "/api/v1/sync/push", token, {"events": [e]})
    assert again["results"][0]["status"] == "duplicate"
    assert [x["event_id"] for x in hub.ok("GET", "/api/v1/events")["events"]] == [e["event_id"]]


# -- upgrading an existing hub ------------------------------------------------------------------
def test_an_existing_hub_database_is_upgraded_in_place(hub_database):
    """A database written by the hub before sites (schema 1) opens with its devices, orders,
    changes, events and admin token intact, all at the default site."""
    from scanedge.sync.hub.storage import token_hash

    storage = open_storage(hub_database)  # only to reach a transaction of the right dialect
    storage.close()
    _make_schema_1(hub_database)
    storage = open_storage(hub_database)
    try:
        assert storage.migrated_from == 1
        assert storage.admin_scope("old-admin") is not None
        device = storage.device_for_token("old-device-token")
        assert device == Device("old-dev", "default")
        assert token_hash("old-device-token")
        changes, cursor, more = storage.pull("default", 0, 100)
        assert (cursor, more) == (1, False)
        assert [(c.seq, c.kind, c.order_id) for c in changes] == [(1, "order", "SO-OLD")]
        assert [e["event_id"] for e in storage.list_events()] == [OLD_EVENT]
        new = storage.store_events(device, [event("old-dev", 2)])
        assert new[0]["status"] == "accepted"
        assert [e["hub_seq"] for e in storage.list_events()] == [1, 2]
    finally:
        storage.close()
    storage = open_storage(hub_database)  # and opening it again changes nothing
    try:
        assert storage.migrated_from == SCHEMA_VERSION
    finally:
        storage.close()


OLD_EVENT = "01JDZZZZZZZZZZZZZZZZZZZZZZ"


def _make_schema_1(database: str) -> None:
    """Rewrite ``database`` as the hub before sites left it: its schema and a few rows."""
    from scanedge.sync.hub.storage import token_hash

    order = json.dumps({"order_id": "SO-OLD", "version": 1, "lines": [{"sku": "1", "qty": 1}]})
    rows = [
        ("INSERT INTO hub_meta (key, value) VALUES ('admin_token_hash', ?)", [token_hash("old-admin")]),
        ("INSERT INTO devices (device_id, token_hash, created_at) VALUES ('old-dev', ?, "
         "'2026-01-01T00:00:00Z')", [token_hash("old-device-token")]),
        ("INSERT INTO orders (order_id, version, doc, updated_at) VALUES ('SO-OLD', 1, ?, "
         "'2026-01-01T00:00:00Z')", [order]),
        ("INSERT INTO changes (kind, order_id, payload, created_at) VALUES ('order', 'SO-OLD', ?, "
         "'2026-01-01T00:00:00Z')", [order]),
        ("INSERT INTO events (event_id, device_id, seq, type, order_id, payload, device_time,"
         " received_at) VALUES (?, 'old-dev', 1, 'scan', 'SO-OLD', '{}', '2026-01-01T00:00:00Z',"
         " '2026-01-01T00:00:00Z')", [OLD_EVENT]),
    ]
    tables = ("hub_meta", "devices", "orders", "changes", "events", "order_versions",
              "freeze_acks", "order_conflicts", "admin_tokens")
    if database.startswith("postgresql"):
        import psycopg

        with psycopg.connect(database, autocommit=True) as conn:
            for t in tables:
                conn.execute(f"DROP TABLE IF EXISTS {t}")
            for stmt in _schema("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BIGINT"):
                conn.execute(stmt)
            for sql, params in rows:
                conn.execute(sql.replace("?", "%s"), params)
    else:
        import sqlite3

        conn = sqlite3.connect(database)
        for t in tables:
            conn.execute(f"DROP TABLE IF EXISTS {t}")
        for stmt in _schema("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER"):
            conn.execute(stmt)
        for sql, params in rows:
            conn.execute(sql, params)
        conn.commit()
        conn.close()
