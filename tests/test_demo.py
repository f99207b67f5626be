"""The README's first command: `scanedge serve --demo` runs a whole site in one process."""

import json
import urllib.request

import pytest

from tests.support import EdgeServer, free_port, run_cli, wait_until

pytestmark = pytest.mark.slow


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_demo_scans_prints_syncs_and_freezes(tmp_path):
    hub_port = free_port()
    server = EdgeServer(tmp_path / "var", SCANEDGE_HUB_LISTEN=f"127.0.0.1:{hub_port}")
    server.command = ("serve", "--demo")
    server.start()
    try:
        # the demo orders come down from the local hub
        wait_until(lambda: server.post("/api/v1/scans", {"code": "SO-1001"})[1]["verdict"] == "ok",
                   timeout=15, what="demo order SO-1001 synced")
        # the README's sequence: pack it, the gift, then the label (the print gate)
        for code in ("]C1010690123456789210L2301", "]C1010690123456789210L2301", "4006381333931"):
            assert server.post("/api/v1/scans", {"code": code})[1]["verdict"] == "ok"
        status, refused = server.post("/api/v1/print-jobs", {"order_id": "SO-1001"})
        assert (status, refused["error"]) == (409, "not_ready")
        assert server.post("/api/v1/orders/SO-1001/gifts/0/confirm", {})[0] == 200
        status, job = server.post("/api/v1/print-jobs", {"order_id": "SO-1001"})
        assert status == 202
        wait_until(lambda: get(f"{server.url}/api/v1/print-jobs/{job['job_id']}")["state"]
                   == "printed", timeout=20, what="the label printed on the virtual printer")
        admin = (tmp_path / "var" / "demo" / "admin_token").read_text().strip()
        req = urllib.request.Request(
            f"http://127.0.0.1:{hub_port}/api/v1/orders/SO-1002/freeze", method="POST",
            data=b'{"reason": "cancel"}', headers={"Authorization": f"Bearer {admin}",
                                                    "Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5).close()

        def scan_seen(code: str) -> str:
            """A scan by the person at the bench, who sees the alarms (a scan that reached the
            order before the freeze opened it here, so the freeze raised an alarm at this bench:
            the scan is held until acknowledged, docs/freeze.md "Alarm holds")."""
            answer = server.post("/api/v1/scans", {"code": code})[1]
            if answer["verdict"] == "alarm_pending":
                answer = server.post("/api/v1/scans", {"code": code, "acks": answer["alarms"]})[1]
            return answer["verdict"]

        wait_until(lambda: scan_seen("SO-1002") == "frozen", timeout=10,
                   what="the freeze from the hub")
        health = get(f"{server.url}/healthz")
        assert health["sync"]["online"] is True
        wait_until(lambda: get(f"{server.url}/healthz")["outbox"]["pending"] == 0, timeout=15,
                   what="events pushed to the local hub")
        # the commands next to the demo show the settings it runs with, and say so
        shown = run_cli("config", "--json", data_dir=tmp_path / "var")
        assert json.loads(shown.stdout)["hub_url"] == f"http://127.0.0.1:{hub_port}"
        assert "demo/scanedge.toml" in shown.stderr
        sync = json.loads(run_cli("sync", "status", "--json", data_dir=tmp_path / "var").stdout)
        assert sync["hub_url"] == f"http://127.0.0.1:{hub_port}" and sync["last_push_ok"]
    finally:
        server.stop()


def demo(var, hub_port, *args):
    server = EdgeServer(var, SCANEDGE_HUB_LISTEN=f"127.0.0.1:{hub_port}")
    server.command = ("serve", "--demo", *args)
    server.start()
    wait_until(lambda: server.post("/api/v1/scans", {"code": "SO-1001"})[1]["verdict"] == "ok",
               timeout=15, what="demo order SO-1001 synced")
    return server


def test_demo_fresh_starts_the_readme_over_and_says_what_it_removed(tmp_path):
    var, hub_port = tmp_path / "var", free_port()
    server = demo(var, hub_port)
    try:
        assert server.post("/api/v1/scans", {"code": "4006381333931"})[1]["verdict"] == "ok"
    finally:
        server.stop()
    server = demo(var, hub_port, "--fresh")
    try:  # without --fresh, the pen would be one too many (over_scan)
        assert server.post("/api/v1/scans", {"code": "4006381333931"})[1]["verdict"] == "ok"
    finally:
        server.stop()
    said = server.proc.stderr.read().decode()
    assert "removed the last demo's data" in said and str(var / "edge.db") in said


def test_demo_fresh_removes_nothing_from_a_data_dir_that_is_no_demo(tmp_path):
    (tmp_path / "edge.db").write_bytes(b"a bench's data")
    proc = run_cli("serve", "--demo", "--fresh", data_dir=tmp_path, check=False)
    assert proc.returncode == 2 and "holds no demo" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert (tmp_path / "edge.db").read_bytes() == b"a bench's data"


def test_sigterm_ends_the_demo_at_once_with_its_work_on_disk(tmp_path):
    import signal
    import sqlite3
    import subprocess

    server = demo(tmp_path / "var", free_port())
    try:  # the hub's device stream is open (it waits for the next heartbeat), a page's too
        wait_until(lambda: get(f"{server.url}/healthz")["sync"].get("stream_connected"),
                   timeout=15, what="the device stream to the hub")
        page = urllib.request.urlopen(f"{server.url}/api/v1/stream", timeout=10)
        page.readline()
        answer = server.post("/api/v1/scans", {"code": "4006381333931"})[1]
        server.proc.send_signal(signal.SIGTERM)
        try:  # it took 5-7 s: the stream thread sat in its read until the heartbeat timeout
            assert server.proc.wait(3) == 0
        except subprocess.TimeoutExpired:
            pytest.fail("scanedge serve --demo still running 3 s after SIGTERM")
        page.close()
    finally:
        server.stop()
    with sqlite3.connect(tmp_path / "var" / "edge.db") as db:
        assert db.execute("SELECT COUNT(*) FROM events WHERE event_id = ?",
                          [answer["event_id"]]).fetchone() == (1,)
