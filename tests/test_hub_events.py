"""The hub's event store (issue 13): event ids unique per device, not across the fleet (schema 3,
with the upgrade of a schema-2 database in place); every pushed event checked on its own, so one
bad event (too large, an integer out of range, a bad field) is rejected alone and never makes the
whole push a 500; and who the hub is, in every answer a device gets.

The hub is the real ASGI app on loopback (tests/test_hub_fleet.py's ``Hub``), over SQLite and
PostgreSQL (the ``hub_database`` fixture).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from ulid import ULID

from scanedge.sync.hub.storage import MIGRATIONS, SCHEMA_VERSION, Device, _schema, open_storage, token_hash
from scanedge.sync.protocol import MAX_EVENT_BYTES
from tests.test_hub_fleet import Hub, event


@pytest.fixture
def hub(hub_database):
    h = Hub(hub_database)
    yield h
    h.close()


def push(hub: Hub, token: str, events: list) -> tuple[int, dict]:
    status, answer, _ = hub.call("POST", "/api/v1/sync/push", token, {"events": events})
    return status, answer


def call_raw(hub: Hub, path: str, token: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(hub.server.url + path, method="POST", data=body, headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def statuses(answer: dict) -> list[str]:
    return [r["status"] for r in answer["results"]]


# -- event ids are unique per device ------------------------------------------------------------
def test_the_same_event_id_from_two_devices_is_two_events(hub):
    """Before: the second device's event was answered "duplicate" and lost."""
    token_a, token_b = hub.storage.add_device("dev-a"), hub.storage.add_device("dev-b")
    shared = str(ULID())
    a, b = {**event("dev-a", 1), "event_id": shared}, {**event("dev-b", 1), "event_id": shared}
    assert statuses(push(hub, token_a, [a])[1]) == ["accepted"]
    assert statuses(push(hub, token_b, [b])[1]) == ["accepted"]
    assert statuses(push(hub, token_b, [b])[1]) == ["duplicate"]  # still once per device
    listed = hub.ok("GET", "/api/v1/events")["events"]
    assert sorted((e["device_id"], e["event_id"]) for e in listed) == [
        ("dev-a", shared), ("dev-b", shared)]
    assert [e["hub_seq"] for e in listed] == [1, 2]


SCHEMA_2_EVENTS = ["01JDZZZZZZZZZZZZZZZZZZZZZ1", "01JDZZZZZZZZZZZZZZZZZZZZZ2",
                   "01JDZZZZZZZZZZZZZZZZZZZZZ3"]


def _make_schema_2(database: str) -> None:
    """``database`` as the hub of schema 2 left it: devices at sites, published events, an
    event id unique across the fleet."""
    postgres = database.startswith("postgresql")
    schema = (_schema("BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BIGINT") if postgres
              else _schema("INTEGER PRIMARY KEY AUTOINCREMENT", "INTEGER"))
    stmts = [*schema, *MIGRATIONS[2]]
    rows = [
        ("INSERT INTO hub_meta (key, value) VALUES ('schema_version', '2')", []),
        ("INSERT INTO hub_meta (key, value) VALUES ('admin_token_hash', ?)", [token_hash("adm")]),
        ("INSERT INTO devices (device_id, token_hash, created_at, site) VALUES ('old-a', ?,"
         " '2026-01-01T00:00:00Z', 'sh')", [token_hash("token-a")]),
        ("INSERT INTO devices (device_id, token_hash, created_at, site) VALUES ('old-b', ?,"
         " '2026-01-01T00:00:00Z', 'sh')", [token_hash("token-b")]),
        *[("INSERT INTO events (event_id, device_id, seq, type, order_id, payload, device_time,"
           " received_at, site, pub_seq) VALUES (?, 'old-a', ?, 'scan', 'SO-1', '{\"n\": 1}',"
           " '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'sh', ?)", [eid, i + 1, i + 1])
          for i, eid in enumerate(SCHEMA_2_EVENTS)],
    ]
    tables = ("hub_meta", "devices", "orders", "changes", "events", "order_versions",
              "freeze_acks", "order_conflicts", "admin_tokens")
    if postgres:
        import psycopg

        with psycopg.connect(database, autocommit=True) as conn:
            for t in tables:
                conn.execute(f"DROP TABLE IF EXISTS {t}")
            for stmt in stmts:
                conn.execute(stmt)
            for sql, params in rows:
                conn.execute(sql.replace("?", "%s"), params)
    else:
        import sqlite3

        conn = sqlite3.connect(database)
        for t in tables:
            conn.execute(f"DROP TABLE IF EXISTS {t}")
        for stmt in stmts:
            conn.execute(stmt)
        for sql, params in rows:
            conn.execute(sql, params)
        conn.commit()
        conn.close()


def test_a_schema_2_database_is_upgraded_in_place(hub_database):
    """Schema 2 -> 3: the events and their numbers stay, the same id from another device is
    stored, a repeat from the same device is still a duplicate, numbering goes on without a gap
    or a reuse, and the database gets its id."""
    open_storage(hub_database).close()  # the database exists (PostgreSQL: the test's own)
    _make_schema_2(hub_database)
    storage = open_storage(hub_database)
    try:
        assert storage.migrated_from == 2 and SCHEMA_VERSION >= 3  # and every later one
        listed = storage.list_events()
        assert [(e["hub_seq"], e["event_id"], e["payload"]) for e in listed] == [
            (i + 1, eid, {"n": 1}) for i, eid in enumerate(SCHEMA_2_EVENTS)]
        a = storage.device_for_token("token-a")
        b = storage.device_for_token("token-b")
        assert a == Device("old-a", "sh") and b == Device("old-b", "sh")
        same_id = {**event("old-b", 1), "event_id": SCHEMA_2_EVENTS[0]}
        assert [r["status"] for r in storage.store_events(b, [same_id])] == ["accepted"]
        again = {**event("old-a", 9), "event_id": SCHEMA_2_EVENTS[1]}
        assert [r["status"] for r in storage.store_events(a, [again])] == ["duplicate"]
        listed = storage.list_events()
        assert [e["hub_seq"] for e in listed] == [1, 2, 3, 4]
        assert (listed[-1]["device_id"], listed[-1]["event_id"]) == ("old-b", SCHEMA_2_EVENTS[0])
        with storage.transaction() as tx:  # the row numbers go on after the old ones
            assert tx.one("SELECT MAX(hub_seq) FROM events")[0] == 4
        database_id = storage.hub_info()["database_id"]
        assert len(database_id) == 32
    finally:
        storage.close()
    storage = open_storage(hub_database)  # opening it again changes nothing
    try:
        assert storage.migrated_from == SCHEMA_VERSION
        assert storage.hub_info()["database_id"] == database_id
        assert len(storage.list_events()) == 4
    finally:
        storage.close()


# -- every event checked on its own -------------------------------------------------------------
def test_one_bad_event_is_rejected_alone_never_a_500(hub):
    """Before: a seq >= 2^63 made the whole push a 500, a 4 MB event was stored."""
    token = hub.storage.add_device("dev-1")
    big = {**event("dev-1", 2), "payload": {"text": "x" * (MAX_EVENT_BYTES + 1)}}
    batch = [event("dev-1", 1), big, {**event("dev-1", 3), "seq": 2**63},
             {**event("dev-1", 4), "seq": 10**30}, {**event("dev-1", 5), "payload": {"n": 2**64}},
             {**event("dev-1", 6), "hlc": {"wall": 1}}, {**event("dev-1", 7), "hlc": "1" * 65},
             {**event("dev-1", 8), "device_time": "2026" * 100},
             {**event("dev-1", 9), "order_id": "S" * 65},
             {**event("dev-1", 10), "event_id": "x" * 10_000}, event("dev-1", 11)]
    status, answer = push(hub, token, batch)
    assert status == 200, answer
    assert statuses(answer) == [
        "accepted", "rejected:too_large", "rejected:bad_seq", "rejected:bad_seq",
        "rejected:out_of_range", "rejected:bad_hlc", "rejected:bad_hlc", "rejected:bad_device_time",
        "rejected:bad_order_id", "rejected:bad_event_id", "accepted"]
    assert len(answer["results"][9]["event_id"]) <= 64  # a long id is not echoed whole
    assert [e["seq"] for e in hub.ok("GET", "/api/v1/events")["events"]] == [1, 11]
    # an event just under the limit is stored
    fits = {**event("dev-1", 12), "payload": {"text": "x" * (MAX_EVENT_BYTES - 400)}}
    assert statuses(push(hub, token, [fits])[1]) == ["accepted"]


def test_events_the_database_cannot_hold_are_rejected_by_the_storage_too(hub_database):
    """The same checks hold for a caller of the storage (not only for JSON that the hub's
    parser already refused): no UTF-8 form, NaN, nesting beyond what JSON encodes."""
    storage = open_storage(hub_database)
    try:
        device = Device("dev-1", "default")
        storage.add_device("dev-1")
        deep: dict = {}
        for _ in range(5000):
            deep = {"a": deep}
        results = storage.store_events(device, [
            {**event("dev-1", 1), "payload": {"t": "\ud800"}},
            {**event("dev-1", 2), "payload": {"f": float("nan")}},
            {**event("dev-1", 3), "payload": deep}, event("dev-1", 4)])
        assert [r["status"] for r in results] == [
            "rejected:bad_text", "rejected:bad_number", "rejected:too_deep", "accepted"]
    finally:
        storage.close()


def test_a_body_with_nan_or_a_surrogate_is_a_400_not_a_500(hub):
    token = hub.storage.add_device("dev-1")
    for raw in ('{"events": [{"payload": NaN}]}', '{"events": ["\\ud800"]}'):
        status, answer = call_raw(hub, "/api/v1/sync/push", token, raw.encode())
        assert status == 400 and answer["error"] == "bad_request", raw


# -- who answers ------------------------------------------------------------------------------
def test_every_answer_names_the_hub(hub):
    token = hub.storage.add_device("dev-1")
    hub.ok("PUT", "/api/v1/orders/SO-1", body={"lines": [{"sku": "6901234567892", "qty": 1}]})
    info = hub.storage.hub_info()
    health = hub.ok("GET", "/healthz")
    assert (health["signing_key_id"], health["database_id"]) == (info["key_id"],
                                                                 info["database_id"])
    pulled = hub.ok("GET", "/api/v1/sync/pull?cursor=0", token)
    assert pulled["hub"] == {**info, "last_seq": 1, "from_mark": None}
    again = hub.ok("GET", "/api/v1/sync/pull?cursor=1", token)
    assert again["hub"]["from_mark"] and again["hub"]["last_seq"] == 1
    pushed = hub.ok("POST", "/api/v1/sync/push", token, {"events": [event("dev-1", 1)]})
    assert pushed["hub"] == info
    stream = hub.stream(token, cursor=1)
    hello = stream.event(timeout=10)
    assert hello["event"] == "hello"
    assert hello["data"]["hub"] == {**info, "last_seq": 1,
                                    "from_mark": again["hub"]["from_mark"]}
    beat = stream.until("heartbeat", timeout=10)
    assert {k: beat["data"]["hub"][k] for k in info} == info
    other = open_storage(":memory:")  # another database: another id
    assert other.hub_info()["database_id"] != info["database_id"]
    other.close()


def test_a_cursor_beyond_the_hub_is_answered_with_the_hubs_last_change(hub):
    token = hub.storage.add_device("dev-1")
    answer = hub.ok("GET", f"/api/v1/sync/pull?cursor={10**12}", token)
    assert answer["changes"] == [] and answer["hub"]["last_seq"] == 0
    status, _, _ = hub.call("GET", f"/api/v1/sync/pull?cursor={2**63}", token)
    assert status == 400
    stream = hub.stream(token, cursor=10**12)
    assert stream.event(timeout=10)["data"]["hub"]["last_seq"] == 0


def test_order_ids_in_paths_and_long_headers_are_a_4xx(hub):
    status, answer, _ = hub.call("POST", f"/api/v1/orders/{'S' * 65}/freeze",
                                 body={"reason": "cancel"})
    assert (status, answer["error"]) == (400, "bad_request")
    status, _, _ = hub.call("POST", f"/api/v1/orders/{'S' * 10_000}/freeze",
                            body={"reason": "cancel"})
    assert 400 <= status < 500
    status, _, _ = hub.call("GET", "/api/v1/devices", token="x" * 60_000)
    assert 400 <= status < 500
    assert json.dumps(hub.ok("GET", "/api/v1/freezes"))  # the hub still answers
