"""kill -9 of the device at every point of a push, over many seeded rounds: the hub ends up
holding each event exactly once. Plus replayed batches and a hub that answers garbage."""

import http.server
import json
import sqlite3
import subprocess
import threading
from typing import ClassVar

import pytest

from scanedge.edge.config import load_settings
from scanedge.edge.store import Store
from scanedge.edge.store.outbox import append_event, outbox_status, pending_batch
from scanedge.sync.client import HubClient, HubUnavailable
from scanedge.sync.faults import POINTS
from tests.support import SCANEDGE, HubServer, cli_env

pytestmark = pytest.mark.slow


@pytest.fixture
def hub(tmp_path, hub_database):
    server = HubServer(tmp_path / "hubdata", hub_database)
    yield server
    server.stop()


def fill(data_dir, n, device_id="dev-1"):
    store = Store(data_dir / "edge.db")
    for i in range(n):
        store.write(lambda db, i=i: append_event(db, device_id, "scan", {"i": i}))
    store.close()


@pytest.mark.parametrize("point", POINTS)
def test_kill_9_at_each_push_point_over_seeded_rounds(tmp_path, hub, point):
    token = hub.add_device("dev-1")
    hub.start()
    data_dir = tmp_path / "edge"
    fill(data_dir, 1200)  # 6 batches of 200
    env = cli_env(data_dir, SCANEDGE_HUB_URL=hub.url, SCANEDGE_HUB_TOKEN=token,
                  SCANEDGE_DEVICE_ID="dev-1")
    crashes = 0
    for seed in range(40):
        proc = subprocess.run([SCANEDGE, "sync", "--once"], env={
            **env, "SCANEDGE_FAULT": f"{point}:0.5:{seed}"}, capture_output=True, text=True,
            timeout=120)
        if proc.returncode == -9:
            crashes += 1
            continue
        assert proc.returncode == 0, proc.stderr
        break
    assert crashes >= 2, "the fault never fired: the test proves nothing"
    final = subprocess.run([SCANEDGE, "sync", "--once"], env=env, capture_output=True, text=True,
                           timeout=120)
    assert final.returncode == 0, final.stderr
    db = sqlite3.connect(data_dir / "edge.db")
    mine = {r[0] for r in db.execute("SELECT event_id FROM events")}
    states = dict(db.execute("SELECT state, COUNT(*) FROM events GROUP BY state").fetchall())
    assert states == {"acked": 1200}
    theirs = [e["event_id"] for e in hub.events(device_id="dev-1")]
    assert len(theirs) == len(set(theirs)) == 1200 and set(theirs) == mine


def test_replayed_batches_are_duplicates_not_doubles(tmp_path, hub):
    token = hub.add_device("dev-1")
    hub.start()
    fill(tmp_path / "edge", 50)
    store = Store(tmp_path / "edge" / "edge.db")
    batch = pending_batch(store.read(), 200, 256 * 1024)
    client = HubClient(hub.url, token)
    assert {s for _, s in client.push(batch)} == {"accepted"}
    for _ in range(3):
        assert {s for _, s in client.push(batch)} == {"duplicate"}
    assert {s for _, s in client.push(batch[::-1])} == {"duplicate"}
    assert len(hub.events()) == 50
    store.close()


class _Garbage(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[list[tuple[int, bytes]]] = [
        (200, b"<html>proxy login</html>"),
        (200, b'{"results": "all good"}'),
        (200, b'{"results": []}'),
        (200, b'{"results": [{"event_id": "other", "status": "accepted"}]}'),
        (502, b"bad gateway"),
    ]
    index = 0

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body = self.answers[type(self).index % len(self.answers)]
        type(self).index += 1
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_hub_answering_garbage_marks_nothing(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Garbage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = load_settings(env={}, data_dir=str(tmp_path / "edge"), device_id="dev-1",
                             hub_url=f"http://127.0.0.1:{server.server_port}", hub_token="t")
    fill(tmp_path / "edge", 5)
    from scanedge.sync.worker import SyncWorker

    store = Store(settings.edge_db_path)
    worker = SyncWorker(store, settings)
    try:
        for _ in range(len(_Garbage.answers)):
            with pytest.raises(HubUnavailable):
                worker.push_once()
        assert outbox_status(store.read()).pending == 5
    finally:
        store.close()
        server.shutdown()


def test_sync_status_command(tmp_path, hub):
    token = hub.add_device("dev-1")
    hub.start()
    fill(tmp_path / "edge", 3)
    env = cli_env(tmp_path / "edge", SCANEDGE_HUB_URL=hub.url, SCANEDGE_HUB_TOKEN=token,
                  SCANEDGE_DEVICE_ID="dev-1")
    before = json.loads(subprocess.run([SCANEDGE, "sync", "status", "--json"], env=env,
                                       capture_output=True, text=True, check=True).stdout)
    assert before["pending"] == 3 and before["last_push_ok"] is None
    out = subprocess.run([SCANEDGE, "sync", "--once"], env=env, capture_output=True, text=True,
                         check=True).stdout
    assert "pushed 3 events (3 acknowledged, 0 parked)" in out
    after = json.loads(subprocess.run([SCANEDGE, "sync", "status", "--json"], env=env,
                                      capture_output=True, text=True, check=True).stdout)
    assert after["pending"] == 0 and after["acked"] == 3 and after["last_push_ok"]
    down = subprocess.run([SCANEDGE, "sync", "--once"], capture_output=True, text=True,
                          env={**env, "SCANEDGE_HUB_URL": "http://127.0.0.1:9"})
    assert down.returncode == 2 and len(down.stderr.strip().splitlines()) == 1


def test_rejected_event_is_parked_and_never_blocks_the_queue(tmp_path, hub):
    token = hub.add_device("dev-1")
    hub.start()
    fill(tmp_path / "edge", 3)
    store = Store(tmp_path / "edge" / "edge.db")
    store.write(lambda db: append_event(db, "dev-1", "Not A Valid Type!", {}))
    after = store.write(lambda db: append_event(db, "dev-1", "scan", {"after": True}))
    settings = load_settings(env={}, data_dir=str(tmp_path / "edge"), device_id="dev-1",
                             hub_url=hub.url, hub_token=token)
    from scanedge.sync.worker import SyncWorker

    result = SyncWorker(store, settings).drain()
    assert (result.sent, result.acked, result.parked) == (5, 4, 1)
    status = outbox_status(store.read())
    assert (status.pending, status.parked, status.acked) == (0, 1, 4)
    error = store.read().execute("SELECT error FROM events WHERE state = 'parked'").fetchone()[0]
    assert error == "rejected:bad_type"
    assert after.event_id in {e["event_id"] for e in hub.events()}
    store.close()


def test_purge_removes_only_old_acknowledged_events(tmp_path):
    from scanedge.edge.store.outbox import mark_results, purge_acked

    store = Store(tmp_path / "edge.db")
    ids = [store.write(lambda db: append_event(db, "d", "scan", {})).event_id for _ in range(3)]
    store.write(lambda db: mark_results(db, [(ids[0], "accepted"), (ids[1], "rejected:bad")]))
    assert store.write(lambda db: purge_acked(db, "2000-01-01T00:00:00Z")) == 0  # too recent
    assert store.write(lambda db: purge_acked(db, "9999-01-01T00:00:00Z")) == 1
    left = dict(store.read().execute("SELECT event_id, state FROM events").fetchall())
    assert left == {ids[1]: "parked", ids[2]: "pending"}
    store.close()
