"""kill -9 of the edge server in the middle of a burst of scans loses and doubles nothing.

Every scan that got an answer must be in the outbox exactly once after a restart; scans whose
answer was lost are retried with their scan_id and must then be counted once, not twice.
"""

import http.client
import json
import sqlite3
import threading
import uuid

import pytest

from tests.support import DEMO_ORDERS, EdgeServer, run_cli

CODES = ["SO-1001", "4006381333931", "6901234567892", "SO-1002", "SELLER-CASE-07", "9787115428028",
         "garbage", "SF1385628716739"]


def burst(server: EdgeServer, n_threads: int, per_thread: int, answered: dict, lost: dict,
          stop_after: int, killed: threading.Event) -> None:
    lock = threading.Lock()

    def worker(t: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        for i in range(per_thread):
            scan_id = f"t{t}-{uuid.uuid4().hex[:12]}"
            code = CODES[(t + i) % len(CODES)]
            body = json.dumps({"code": code, "station": f"bench-{t % 3}", "scan_id": scan_id})
            try:
                conn.request("POST", "/api/v1/scans", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = json.loads(resp.read())
                assert resp.status == 200, data
                with lock:
                    answered[scan_id] = (code, t, data["event_id"])
                    if len(answered) >= stop_after and not killed.is_set():
                        killed.set()
                        server.kill()
            except (OSError, http.client.HTTPException, json.JSONDecodeError):
                with lock:
                    lost[scan_id] = (code, t)
                return  # the server is gone: this worker stops

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()


@pytest.mark.slow
@pytest.mark.parametrize("stop_after", [37, 400])
def test_kill_9_mid_burst_loses_and_doubles_nothing(tmp_path, stop_after):
    data_dir = tmp_path / "var"
    run_cli("orders", "import", str(DEMO_ORDERS), data_dir=data_dir)
    server = EdgeServer(data_dir).start()
    answered: dict[str, tuple] = {}
    lost: dict[str, tuple] = {}
    killed = threading.Event()
    try:
        burst(server, n_threads=8, per_thread=200, answered=answered, lost=lost,
              stop_after=stop_after, killed=killed)
    finally:
        server.kill()
    assert killed.is_set(), "the burst ended before the kill"
    assert len(answered) >= stop_after

    # Restart, retry the scans whose answer was lost, with the same scan_id.
    server.start()
    try:
        retried = {}
        for scan_id, (code, t) in lost.items():
            status, data = server.post("/api/v1/scans",
                                       {"code": code, "station": f"bench-{t % 3}", "scan_id": scan_id})
            assert status == 200
            retried[scan_id] = data
    finally:
        server.stop()

    db = sqlite3.connect(data_dir / "edge.db")
    events = dict(db.execute("SELECT event_id, seq FROM events").fetchall())
    for scan_id, (_, _, event_id) in answered.items():
        assert event_id in events, f"answered scan {scan_id} lost"
    # answered before the crash: a retry would replay, never add
    for data in retried.values():
        assert data["event_id"] in events
    requests = dict(db.execute("SELECT scan_id, event_id FROM scan_requests").fetchall())
    assert set(requests) == set(answered) | set(retried)
    # one event per scan request, no more: nothing doubled
    assert len(events) == len(requests)
    seqs = sorted(events.values())
    assert seqs == list(range(1, len(seqs) + 1)), "the per-device sequence has a gap or a repeat"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
