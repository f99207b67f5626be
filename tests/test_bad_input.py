"""Malformed input answers 4xx JSON, never 500 (issue 13, item 6; docs/security.md "Limits and
bad input"): the edge and the hub on real servers on 127.0.0.1, and the CLI as a real process."""

from __future__ import annotations

import http.client
import json
import subprocess
from pathlib import Path

import pytest

from scanedge.edge.config import load_settings
from tests.support import ROOT, SCANEDGE, cli_env, run_cli

ADMIN = "admin-token-for-bad-input"


def request(url: str, method: str, path: str, body: bytes | str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict]:
    """A raw HTTP request (any bytes, any header); the answer must be JSON."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        conn.close()
    assert resp.getheader("Content-Type", "").startswith("application/json"), raw[:200]
    return resp.status, json.loads(raw)


def assert_4xx(answer: tuple[int, dict], status: int | tuple[int, ...] = 400) -> dict:
    code, body = answer
    wanted = status if isinstance(status, tuple) else (status,)
    assert code in wanted, (code, body)
    assert isinstance(body.get("error"), str) and isinstance(body.get("message"), str)
    return body


# -- the edge ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def edge(tmp_path_factory):
    from scanedge.edge.commands import load_demo_orders
    from scanedge.edge.context import EdgeContext
    from scanedge.edge.lifecycle import BackgroundServer
    from scanedge.edge.web.asgi import create_asgi_app

    data = tmp_path_factory.mktemp("edge")
    settings = load_settings(env={}, data_dir=str(data), device_id="bad-input", station="bench-1")
    ctx = EdgeContext.open(settings)
    load_demo_orders(ctx.store)
    server = BackgroundServer(create_asgi_app(settings, ctx)).start()
    server.ctx = ctx
    yield server
    server.stop()
    ctx.close()


BAD_SCAN_BODIES = {
    "lone surrogate": '{"code": "\\ud800"}',
    "surrogate in a key": '{"code": "SO-1001", "\\udc00": 1}',
    "raw surrogate bytes": '{"code": "\ud800"}',  # CESU-8 on the wire: not UTF-8
    # 30,000 levels fit the edge's 64 KiB JSON cap (100,000 are a 413 before parsing, below)
    "nested 30,000 deep": "[" * 30_000 + "]" * 30_000,
    "nested 30,000 deep in an object": '{"code": "SO-1001", "x": ' + "[" * 30_000 + "]" * 30_000 + "}",
    "nested 500 deep": '{"code": "SO-1001", "x": ' + "[" * 500 + "]" * 500 + "}",
    "NaN": '{"code": "SO-1001", "x": NaN}',
    "Infinity": '{"code": "SO-1001", "x": -Infinity}',
    "1e999": '{"code": "SO-1001", "x": 1e999}',
    "integer beyond 64 bits": '{"code": "SO-1001", "x": 18446744073709551616}',
    "5,000-digit integer": '{"code": "SO-1001", "x": ' + "9" * 5000 + "}",
    "not JSON": "{code: SO-1001}",
    "not UTF-8": b'{"code": "\xff\xfe"}',
    "a list": '["SO-1001"]',
    "null": "null",
    "code a number": '{"code": 1001}',
    "code null": '{"code": null}',
    "code a list": '{"code": ["SO-1001"]}',
    "station an object": '{"code": "SO-1001", "station": {}}',
    "station a surrogate": '{"code": "SO-1001", "station": "\\udfff"}',
    "scan_id a number": '{"code": "SO-1001", "scan_id": 12}',
    "scan_id 60,000 characters": json.dumps({"code": "SO-1001", "scan_id": "k" * 60_000}),
}


@pytest.mark.parametrize("body", BAD_SCAN_BODIES.values(), ids=BAD_SCAN_BODIES.keys())
def test_a_malformed_scan_is_a_400(edge, body):
    assert_4xx(request(edge.url, "POST", "/api/v1/scans", body))


def test_json_nested_100000_deep_is_refused_unread(edge):
    assert_4xx(request(edge.url, "POST", "/api/v1/scans", "[" * 100_000 + "]" * 100_000), 413)


def test_nothing_of_a_refused_scan_is_stored(edge):
    assert_4xx(request(edge.url, "POST", "/api/v1/scans",
                       json.dumps({"code": "SO-1001", "scan_id": "k" * 60_000})))
    db = edge.ctx.store.read()
    assert db.execute("SELECT COUNT(*) FROM scan_requests WHERE length(scan_id) > 128").fetchone()[0] == 0


def test_a_scan_code_is_at_most_4096_characters(edge):
    code = "0" * 4096
    status, body = request(edge.url, "POST", "/api/v1/scans", json.dumps({"code": code}))
    assert status == 200 and body["verdict"] == "unknown"
    body = assert_4xx(request(edge.url, "POST", "/api/v1/scans", json.dumps({"code": code + "0"})),
                      413)
    assert body["error"] == "too_large" and "4096" in body["message"]
    # megabytes are refused before they are read (JSON bodies: 64 KiB on the edge)
    body = assert_4xx(request(edge.url, "POST", "/api/v1/scans",
                              json.dumps({"code": "x" * 10_000_000})), 413)
    assert body["error"] == "too_large"
    longest = edge.ctx.store.read().execute(
        "SELECT MAX(length(payload)) FROM events WHERE type = 'scan'").fetchone()[0]
    assert longest < 4096 + 1000


BAD_PRINT_BODIES = {
    "copies beyond 64 bits": '{"order_id": "SO-1001", "copies": 100000000000000000000000}',
    "copies a float": '{"order_id": "SO-1001", "copies": 1.5}',
    "copies a string": '{"order_id": "SO-1001", "copies": "2"}',
    "order_id a surrogate": '{"order_id": "\\ud800"}',
    "order_id a list": '{"order_id": ["SO-1001"]}',
    "idempotency_key too long": json.dumps({"order_id": "SO-1001", "idempotency_key": "k" * 200}),
}


@pytest.mark.parametrize("body", BAD_PRINT_BODIES.values(), ids=BAD_PRINT_BODIES.keys())
def test_a_malformed_print_job_is_a_400(edge, body):
    assert_4xx(request(edge.url, "POST", "/api/v1/print-jobs", body))


def test_idempotency_keys_are_capped_and_never_stored(edge):
    body = json.dumps({"order_id": "SO-1001"})
    assert_4xx(request(edge.url, "POST", "/api/v1/print-jobs", body,
                       {"Idempotency-Key": "k" * 60_000}), 431)
    assert_4xx(request(edge.url, "POST", "/api/v1/print-jobs", body,
                       {"Idempotency-Key": "k" * 129}), 400)
    longest = edge.ctx.store.read().execute(
        "SELECT MAX(length(idempotency_key)) FROM print_jobs").fetchone()[0]
    assert longest is None or longest <= 128


def test_headers_and_urls_are_capped(edge):
    assert_4xx(request(edge.url, "GET", "/api/v1/orders/" + "x" * 10_000), 414)
    assert_4xx(request(edge.url, "GET", "/api/v1/alarms?station=" + "x" * 10_000), 414)
    many = {f"X-Filler-{i}": "v" for i in range(150)}
    assert_4xx(request(edge.url, "GET", "/api/v1/alarms", headers=many), 431)
    assert_4xx(request(edge.url, "GET", "/api/v1/stream", headers={"Cookie": "c" * 20_000}), 431)


@pytest.mark.parametrize("query,headers", [
    ("heartbeat=nan", {}),  # before: the stream started, then died in the event loop's timer
    ("heartbeat=inf", {}),
    ("heartbeat=fast", {}),
    ("after=1e5", {}),
    ("station=" + "x" * 65, {}),
    ("", {"Last-Event-ID": "x" * 100}),
])
def test_the_page_stream_refuses_bad_parameters_before_it_starts(edge, query, headers):
    assert_4xx(request(edge.url, "GET", "/api/v1/stream?" + query, None, headers))


@pytest.mark.parametrize("path,body", [
    ("/api/v1/session", '{"badge": "\\ud800"}'),
    ("/api/v1/session", "[" * 30_000),
    ("/api/v1/session", '{"user_id": 7, "pin": 1234}'),
    ("/api/v1/waybills/01ABC/confirm", "[" * 30_000 + "]" * 30_000),
    ("/api/v1/waybills/01ABC/confirm", '{"tracking_number": "\\ud800"}'),
    ("/api/v1/waybills/01ABC/confirm", '{"tracking_number": 1174567041595}'),
    ("/api/v1/alarms/01ABC/ack", '{"x": NaN}'),
    ("/api/v1/print-jobs/01ABC/reprint", '{"reason": "\\ud800"}'),
    ("/api/v1/print-jobs/01ABC/confirm", '{"outcome": 1e999}'),
])
def test_other_json_endpoints_refuse_malformed_bodies(edge, path, body):
    assert_4xx(request(edge.url, "POST", path, body), (400, 404))


# -- the hub ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from scanedge.edge.lifecycle import BackgroundServer
    from scanedge.sync.hub.asgi import create_hub_asgi
    from scanedge.sync.hub.storage import open_storage

    storage = open_storage(str(tmp_path_factory.mktemp("hub") / "hub.db"))
    storage.ensure_admin_token(ADMIN)
    server = BackgroundServer(create_hub_asgi(storage)).start()
    server.storage = storage
    server.device_token = storage.add_device("dev-bad")
    yield server
    server.stop()
    storage.close()


def admin(hub, method: str, path: str, body: bytes | str | None = None, **headers: str):
    return request(hub.url, method, path, body, {"Authorization": f"Bearer {ADMIN}", **headers})


LINE = {"sku": "6901234567892", "qty": 1}
BAD_ORDERS = {
    "lone surrogate": '{"lines": [{"sku": "1", "qty": 1, "name": "\\ud800"}]}',
    "nested 100,000 deep": '{"lines": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "recipient nested 40 deep": json.dumps({"lines": [LINE], "recipient": {"x": json.loads(
        "[" * 40 + "]" * 40)}}),
    "version 2**64": json.dumps({"lines": [LINE], "version": 2**64}),
    "version 2**62": json.dumps({"lines": [LINE], "version": 2**62}),
    "version 1e999": '{"lines": [{"sku": "1", "qty": 1}], "version": 1e999}',
    "version NaN": '{"lines": [{"sku": "1", "qty": 1}], "version": NaN}',
    "version a float": json.dumps({"lines": [LINE], "version": 1.5}),
    "qty 10**30": json.dumps({"lines": [{"sku": "1", "qty": 10**30}]}),
    "sku 10**30": json.dumps({"lines": [{"sku": 10**30, "qty": 1}]}),
    "5,000 lines": json.dumps({"lines": [LINE] * 5000}),
    "a 100,000-character name": json.dumps({"lines": [{**LINE, "name": "n" * 100_000}]}),
    "a 1 MB recipient": json.dumps({"lines": [LINE], "recipient": {"x": "r" * 1_000_000}}),
    "site a number": json.dumps({"lines": [LINE], "site": 5}),
    "lines an object": json.dumps({"lines": {"sku": "1"}}),
    "a list": json.dumps([{"lines": [LINE]}]),
    "order_id differs": json.dumps({"lines": [LINE], "order_id": 5}),
}


@pytest.mark.parametrize("body", BAD_ORDERS.values(), ids=BAD_ORDERS.keys())
def test_the_hub_refuses_absurd_orders(hub, body):
    assert_4xx(admin(hub, "PUT", "/api/v1/orders/SO-BAD", body))
    status, _ = admin(hub, "GET", "/api/v1/events")
    assert status == 200


def test_the_hub_admin_api_refuses_bad_ids_and_numbers(hub):
    assert_4xx(admin(hub, "POST", "/api/v1/orders/" + "x" * 300 + "/freeze", '{"reason": "cancel"}'))
    assert_4xx(admin(hub, "POST", "/api/v1/orders/SO-1/freeze", '{"reason": "cancel", "site": 5}'))
    assert_4xx(admin(hub, "POST", "/api/v1/orders/SO-1/freeze", '{"reason": ["cancel"]}'))
    assert_4xx(admin(hub, "POST", "/api/v1/orders/SO-1/unfreeze", '{"site": "\\ud800"}'))
    assert_4xx(admin(hub, "POST", "/api/v1/orders/SO-1/decide",
                     '{"decision": "ship", "operator": 12}'))
    for query in ("within_s=nan", "within_s=inf", "within_s=-1", "limit=99999999999999999999",
                  "limit=0"):
        assert_4xx(admin(hub, "GET", "/api/v1/freezes?" + query))
    assert_4xx(admin(hub, "GET", "/api/v1/events?after=-1"))
    assert_4xx(admin(hub, "GET", "/api/v1/reports/interceptions?since=99999999999999999999"))
    assert_4xx(admin(hub, "GET", "/api/v1/orders/SO-1/x" + "y" * 10_000), 414)
    assert_4xx(admin(hub, "GET", "/api/v1/events", **{"X-Big": "b" * 10_000}), 431)
    # nothing of it reached the change log
    assert hub.storage.last_change_seq() == 0


def test_device_calls_refuse_malformed_bodies(hub):
    auth = {"Authorization": f"Bearer {hub.device_token}"}
    for body in ('{"events": "\\ud800"}', "[" * 100_000, '{"events": NaN}', '{"acks": [1]}'):
        path = "/api/v1/sync/acks" if "acks" in body else "/api/v1/sync/push"
        assert_4xx(request(hub.url, "POST", path, body, auth))
    assert_4xx(request(hub.url, "GET", "/api/v1/sync/pull?cursor=abc", None, auth))


# -- the CLI ----------------------------------------------------------------------------------
def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr


def run_raw(args: list[str | bytes], data_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SCANEDGE, *args], capture_output=True, text=True, timeout=120,
                          env=cli_env(data_dir), errors="replace")


@pytest.mark.slow
def test_scan_from_the_cli_refuses_bad_codes(tmp_path):
    run_cli("orders", "import", "--demo", data_dir=tmp_path)
    # a code typed in another encoding (Latin-1 bytes: a lone surrogate in Python)
    assert "Unicode" in one_line_error(run_raw(["scan", b"SO-\xff1001"], tmp_path))
    assert "4096" in one_line_error(run_raw(["scan", "0" * 5000], tmp_path))
    assert "Unicode" in one_line_error(run_raw(["scan", "SO-1001", "--operator", b"\xe9"], tmp_path))
    ok = run_cli("scan", "SO-1001", data_dir=tmp_path)
    assert ok.stdout.startswith("ok:")


@pytest.mark.parametrize("args", [
    ["freeze", "SO-1"],  # --reason missing
    ["freeze", "SO-1", "--reason", "because"],
    ["nosuch"],
    [],
    ["orders"],
    ["scan"],
    ["scan", "SO-1001", "--bogus"],
    ["backup", "--keep", "many"],
])
def test_argument_errors_are_one_line(tmp_path, args):
    err = one_line_error(run_raw(args, tmp_path))
    assert err.startswith("scanedge") and "usage:" not in err


@pytest.mark.parametrize("name,content", [
    ("deep.json", "[" * 100_000 + "]" * 100_000),
    ("big.csv", "order_id,sku,qty\nA,\"" + "x" * 200_000 + "\",1\n"),
])
def test_orders_import_of_malformed_files_is_one_line(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    one_line_error(run_raw(["orders", "import", str(path)], tmp_path / "var"))


@pytest.mark.slow
def test_freeze_and_unfreeze_take_order_ids_only(tmp_path):
    for args in (["freeze", b"SO-\xff", "--reason", "cancel"], ["unfreeze", b"\xe9"],
                 ["freeze", "x" * 100_000, "--reason", "hold"], ["unfreeze", "a b"]):
        assert "order id" in one_line_error(run_raw(args, tmp_path))
    assert run_cli("outbox", "--json", data_dir=tmp_path).stdout.count('"pending": 0') == 1


def test_label_of_a_malformed_file_is_one_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    one_line_error(run_raw(["label", str(path), "--png", str(tmp_path / "out.png")], tmp_path))


def test_orders_import_rejects_unstorable_orders_by_name(tmp_path):
    path = tmp_path / "orders.json"
    path.write_text('[{"order_id": "A", "lines": [{"sku": "1", "qty": 1, "name": "\\ud800"}]},'
                    ' {"order_id": "B", "version": 1e999, "lines": [{"sku": "1", "qty": 1}]},'
                    ' {"order_id": "C", "version": 100000000000000000000000,'
                    '  "lines": [{"sku": "1", "qty": 1}]},'
                    ' {"order_id": "D", "lines": [{"sku": "1", "qty": 1}]}]')
    proc = run_cli("orders", "import", str(path), data_dir=tmp_path / "var")
    assert "Traceback" not in proc.stderr
    assert proc.stdout.count("rejected #") == 3
    assert "1 orders imported" in proc.stdout


def test_the_cli_module_stays_light():
    # the store's error class is not imported to be caught: `scanedge --help` stays instant
    out = subprocess.run([str(Path(SCANEDGE).with_name("python")), "-c",
                          "import sys, scanedge.edge.cli; print('scanedge.edge.store' in sys.modules)"],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow  # waits out the real 20 s head deadline; tests/test_http_guard.py is quicker
def test_a_request_that_stops_halfway_is_cut_off_while_scans_go_on(edge):
    """Slowloris against the edge's real app and limits (edge/web/http_guard.py)."""
    import socket
    import time

    from scanedge.edge.web.http_guard import HEAD_TIMEOUT_S

    stuck = [socket.create_connection((edge.host, edge.port), timeout=60) for _ in range(20)]
    t0 = time.monotonic()
    for sock in stuck:
        sock.sendall(b"POST /api/v1/scans HTTP/1.1\r\nHost: x\r\nContent-")
    status, body = request(edge.url, "POST", "/api/v1/scans", '{"code": "SO-1001"}')
    assert status == 200 and body["verdict"] == "ok"  # the others are not held up
    for sock in stuck:
        assert sock.recv(1024) == b""  # closed by the server
    assert time.monotonic() - t0 >= HEAD_TIMEOUT_S * 0.5
