"""Sign-in on the device: badges and PINs, sessions bound to a station, roles, tokens, open mode
on loopback only, failed sign-ins throttled, HTTPS. Through the real Flask app and, for the
start-up rules, the stream and TLS, a real ``scanedge serve`` process."""

from __future__ import annotations

import datetime as dt
import json
import ssl
import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from scanedge.edge.domain.access import PERMISSIONS, ROLES, Principal, SigninThrottle
from scanedge.edge.web.app import create_app
from scanedge.edge.web.auth import ENDPOINT_ACTIONS, PUBLIC
from tests.sse import SseClient
from tests.support import SCANEDGE, EdgeServer, cli_env, free_port, run_cli


@pytest.fixture
def people(demo_ctx):
    a = demo_ctx.accounts
    a.add_user("p1", "Picker One", "picker", badge="BADGE-PICKER-1")
    a.add_user("k1", "张三", "packer", badge="BADGE-PACKER-1", pin="4711")
    a.add_user("s1", "李四", "supervisor", badge="BADGE-SUPER-1")
    a.add_user("d1", "Distributor", "distributor", badge="BADGE-DISTR-1")
    return demo_ctx


def sign_in(client, **body):
    return client.post("/api/v1/session", json=body)


def test_every_route_is_public_or_has_an_action(demo_ctx):
    app = create_app(demo_ctx.settings, demo_ctx)
    endpoints = {r.endpoint for r in app.url_map.iter_rules()}
    unclassified = endpoints - PUBLIC - set(ENDPOINT_ACTIONS)
    assert not unclassified, f"routes with no permission: {unclassified}"
    assert set(ENDPOINT_ACTIONS.values()) <= set(PERMISSIONS)
    assert all(set(roles) <= set(ROLES) for roles in PERMISSIONS.values())


def test_without_a_session_nothing_but_health_and_sign_in_answers(client, people):
    assert client.post("/api/v1/scans", json={"code": "SO-1001"}).status_code == 401
    assert client.get("/api/v1/alarms").status_code == 401
    assert client.post("/api/v1/print-jobs", json={"order_id": "SO-1001"}).status_code == 401
    assert client.get("/healthz").status_code == 200
    assert client.get("/scan").status_code == 200  # the page shows the sign-in screen
    r = client.get("/api/v1/session")
    assert r.status_code == 401 and r.get_json()["error"] == "unauthorized"


def test_badge_sign_in_sets_a_strict_http_only_cookie_and_acts_as_that_person(client, people):
    r = sign_in(client, badge="BADGE-PACKER-1")
    assert r.status_code == 200
    assert r.get_json() | {"expires_at": None} == {
        "kind": "user", "user_id": "k1", "name": "张三", "role": "packer", "station": "bench-1",
        "expires_at": None, "operator": "k1"}
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    scan = client.post("/api/v1/scans", json={"code": "SO-1001", "operator": "someone else"})
    assert scan.status_code == 200
    row = people.store.read().execute(
        "SELECT payload FROM events WHERE type = 'scan' ORDER BY seq DESC").fetchone()
    assert json.loads(row[0])["operator"] == "k1"
    assert client.get("/api/v1/session").get_json()["user_id"] == "k1"
    assert client.delete("/api/v1/session").get_json() == {"signed_out": True}
    assert client.post("/api/v1/scans", json={"code": "SO-1001"}).status_code == 401
    types = [r[0] for r in people.store.read().execute("SELECT type FROM events ORDER BY seq")]
    assert "signin" in types and "signout" in types


def test_pin_sign_in_and_wrong_pins_say_nothing_more(client, people):
    assert sign_in(client, user_id="k1", pin="4711").status_code == 200
    client.delete("/api/v1/session")
    for body in ({"user_id": "k1", "pin": "0000"}, {"user_id": "nobody", "pin": "4711"},
                 {"badge": "NOT-A-BADGE"}, {"user_id": "k1", "pin": "x" * 100}):
        r = sign_in(client, **body)
        assert (r.status_code, r.get_json()["message"]) == (401, "wrong badge, user or PIN")
    assert sign_in(client).status_code == 400
    assert sign_in(client, badge=["list"]).status_code == 400


def test_a_session_is_bound_to_its_station(client, people):
    sign_in(client, badge="BADGE-PACKER-1", station="bench-1")
    assert client.post("/api/v1/scans", json={"code": "SO-1001", "station": "bench-1"}).status_code == 200
    other = client.post("/api/v1/scans", json={"code": "SO-1001", "station": "bench-2"})
    assert (other.status_code, other.get_json()["error"]) == (403, "wrong_station")
    assert client.get("/api/v1/alarms?station=bench-2").status_code == 403
    # a scan that names no station is taken at the session's
    client.post("/api/v1/scans", json={"code": "SO-1002"})
    row = people.store.read().execute(
        "SELECT payload FROM events WHERE type = 'scan' ORDER BY seq DESC").fetchone()
    assert json.loads(row[0])["station"] == "bench-1"


@pytest.mark.parametrize(("badge", "allowed", "refused"), [
    ("BADGE-PICKER-1", ["scan", "ack"], ["print", "overview"]),
    ("BADGE-PACKER-1", ["scan", "print", "ack"], ["overview"]),
    ("BADGE-SUPER-1", ["scan", "print", "ack", "overview"], []),
    ("BADGE-DISTR-1", [], ["scan", "print", "ack", "overview"]),
])
def test_roles_decide_what_each_may_do(client, people, badge, allowed, refused):
    calls = {
        "scan": lambda: client.post("/api/v1/scans", json={"code": "SO-1001"}),
        "print": lambda: client.post("/api/v1/print-jobs", json={"order_id": "SO-1001"}),
        "ack": lambda: client.post("/api/v1/alarms/NO-SUCH-ALARM/ack", json={}),
        "overview": lambda: client.get("/api/v1/overview"),
    }
    sign_in(client, badge=badge)
    for name in allowed:
        assert calls[name]().status_code not in (401, 403), name
    for name in refused:
        r = calls[name]()
        assert (r.status_code, r.get_json()["error"]) == (403, "forbidden"), name


def test_tokens_for_scripts(client, people):
    token = people.accounts.add_token("oms", "packer")
    auth = {"Authorization": f"Bearer {token}"}
    r = client.post("/api/v1/scans", json={"code": "SO-1001"}, headers=auth)
    assert r.status_code == 200
    row = people.store.read().execute(
        "SELECT payload FROM events WHERE type = 'scan' ORDER BY seq DESC").fetchone()
    assert json.loads(row[0])["operator"] == "token:oms"
    bad = client.post("/api/v1/scans", json={"code": "SO-1001"},
                      headers={"Authorization": "Bearer se_wrong"})
    assert bad.status_code == 401
    assert people.accounts.revoke_token("oms")
    assert client.post("/api/v1/scans", json={"code": "SO-1001"}, headers=auth).status_code == 401
    stored = people.store.read().execute("SELECT token_hash FROM api_tokens").fetchone()[0]
    assert token not in stored and len(stored) == 64  # hashed


def test_open_mode_only_without_people_and_never_through_a_proxy(client, demo_ctx):
    assert client.post("/api/v1/scans", json={"code": "SO-1001"}).status_code == 200
    assert client.get("/api/v1/session").get_json()["kind"] == "local"
    proxied = client.post("/api/v1/scans", json={"code": "SO-1001"},
                          headers={"X-Forwarded-For": "10.0.0.9"})
    assert proxied.status_code == 401
    bad_token = client.post("/api/v1/scans", json={"code": "SO-1001"},
                            headers={"Authorization": "Bearer nope"})
    assert bad_token.status_code == 401  # a wrong token is not the local operator


def test_failed_sign_ins_are_throttled_and_logged(client, people, caplog):
    people.accounts.monotonic = lambda: 1000.0  # the clock stands still: no lock runs out
    statuses = [sign_in(client, user_id="k1", pin="0000").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [401]  # the sixth failure starts the lock
    r = sign_in(client, user_id="k1", pin="4711")  # even the right PIN waits now
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 30
    assert "failed sign-in" in caplog.text
    failed = people.store.read().execute(
        "SELECT COUNT(*) FROM events WHERE type = 'signin_failed'").fetchone()[0]
    assert failed == 6
    people.accounts.monotonic = lambda: 1031.0  # the lock is over
    assert sign_in(client, user_id="k1", pin="4711").status_code == 200


def test_throttle_doubles_and_forgets():
    t = SigninThrottle(free=2, base_s=10, cap_s=25)
    assert [t.failed("a", 0.0) for _ in range(5)] == [0, 0, 10, 20, 25]
    assert t.wait_s("a", 5.0) == 20.0
    t.succeeded("a")
    assert t.wait_s("a", 5.0) == 0


def test_sessions_end_after_session_hours_and_when_the_user_is_disabled(client, people):
    now = [datetime(2026, 11, 30, 8, 0, tzinfo=UTC)]
    people.accounts.clock = lambda: now[0]
    sign_in(client, badge="BADGE-PACKER-1")
    now[0] += timedelta(hours=11, minutes=59)
    assert client.get("/api/v1/session").status_code == 200
    now[0] += timedelta(minutes=2)
    assert client.get("/api/v1/session").status_code == 401
    sign_in(client, badge="BADGE-PACKER-1")
    assert people.accounts.disable_user("k1")
    assert client.get("/api/v1/session").status_code == 401
    assert sign_in(client, badge="BADGE-PACKER-1").status_code == 401


def test_principal_names_the_operator():
    assert Principal("user", "k1", "张三", "packer").operator == "k1"
    assert Principal("token", "oms", "oms", "admin").operator == "token:oms"
    assert Principal("local", "local", "本机", "admin").operator == "local"


# -- real processes -----------------------------------------------------------------------------
def test_listening_beyond_loopback_with_nobody_refuses_to_start(tmp_path):
    port = free_port()
    proc = subprocess.run([SCANEDGE, "serve"], capture_output=True, text=True, timeout=60,
                          env=cli_env(tmp_path / "var", SCANEDGE_LISTEN=f"0.0.0.0:{port}",
                                      SCANEDGE_PRINTER="dummy://"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "no user and no token" in lines[0], proc.stderr


def test_the_page_stream_needs_a_session_when_people_exist(tmp_path):
    data = tmp_path / "var"
    run_cli("user", "add", "k1", "--name", "张三", "--role", "packer", "--badge", "BADGE-PACKER-1",
            data_dir=data)
    server = EdgeServer(data, SCANEDGE_PRINTER="dummy://").start()
    try:
        refused = SseClient(server.port, "/api/v1/stream?station=bench-1")
        assert refused.status == 401
        refused.close()
        req = urllib.request.Request(server.url + "/api/v1/session", method="POST",
                                     data=json.dumps({"badge": "BADGE-PACKER-1"}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            cookie = r.headers["Set-Cookie"].split(";", 1)[0]
        stream = SseClient(server.port, "/api/v1/stream", {"Cookie": cookie})
        assert stream.status == 200 and stream.until("state")["data"]["station"] == "bench-1"
        stream.close()
        other = SseClient(server.port, "/api/v1/stream?station=bench-9", {"Cookie": cookie})
        assert other.status == 403
        other.close()
    finally:
        server.stop()


def test_https_with_tls_cert_and_key(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    bad = subprocess.run([SCANEDGE, "serve"], capture_output=True, text=True, timeout=60,
                         env=cli_env(tmp_path / "var", SCANEDGE_TLS_CERT=str(tmp_path / "cert.pem")))
    assert bad.returncode == 2 and "tls_key" in bad.stderr
    port = free_port()
    env = cli_env(tmp_path / "var", SCANEDGE_LISTEN=f"127.0.0.1:{port}", SCANEDGE_PRINTER="dummy://",
                  SCANEDGE_TLS_CERT=str(tmp_path / "cert.pem"), SCANEDGE_TLS_KEY=str(tmp_path / "key.pem"))
    proc = subprocess.Popen([SCANEDGE, "serve"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    try:
        from tests.support import wait_until

        def healthy():
            try:
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", timeout=2,
                                            context=insecure) as r:
                    return r.status == 200
            except (OSError, urllib.error.URLError):
                return False

        assert wait_until(healthy, timeout=30, what="https healthz")
        with pytest.raises(OSError):  # plain HTTP is not served (URLError and resets are OSErrors)
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
    finally:
        proc.terminate()
        proc.wait(20)
