"""scanedge backup / restore on real files, while a real server takes scans."""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.request
from pathlib import Path

import pytest

from scanedge.edge.backup import CODE_MARKER, NAME_RE, code_identity, list_backups
from scanedge.edge.store.db import connect, migrate
from scanedge.edge.store.schema import EDGE_MIGRATIONS
from tests.support import EdgeServer, run_cli


def _events(db: Path) -> tuple[list[tuple[int, str]], int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = conn.execute("SELECT seq, event_id FROM events ORDER BY seq").fetchall()
        counter = conn.execute("SELECT value FROM counters WHERE name = 'event_seq'").fetchone()
        return rows, counter[0] if counter else 0
    finally:
        conn.close()


class Scanner(threading.Thread):
    """Posts scans as fast as the server answers; remembers the answered (seq, event_id)."""

    def __init__(self, server: EdgeServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.answered: dict[int, str] = {}
        self.stop = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            code = "SO-1001" if i % 5 == 0 else f"UNKNOWN-{i}"
            status, body = self.server.post("/api/v1/scans", {"code": code, "operator": "t"})
            if status != 200:
                self.errors.append(f"{status} {body}")
            else:
                self.answered[body["seq"]] = body["event_id"]
            i += 1


@pytest.mark.slow
def test_backup_while_serving_is_a_consistent_prefix_and_restores(tmp_path: Path):
    data = tmp_path / "var"
    run_cli("orders", "import", "--demo", data_dir=data)
    server = EdgeServer(data).start()
    scanner = Scanner(server)
    backups: list[tuple[Path, int]] = []
    try:
        scanner.start()
        for _ in range(3):
            while len(scanner.answered) < len(backups) * 40 + 30:
                scanner.stop.wait(0.02)
            answered_before = max(scanner.answered)  # committed before the backup began
            out = run_cli("backup", data_dir=data).stdout.split()
            assert len(out) == 1 and NAME_RE.match(Path(out[0]).name), out
            backups.append((Path(out[0]), answered_before))
        scanner.stop.set()
        scanner.join(30)
        assert not scanner.errors
        total = max(scanner.answered)

        for path, answered_before in backups:
            assert path.parent == data / "backups"
            rows, counter = _events(path)
            seqs = [s for s, _ in rows]
            # a prefix: 1..N without a hole, the counter agrees, every event is the one served
            assert seqs == list(range(1, len(seqs) + 1)) and counter == len(seqs)
            assert answered_before <= len(seqs) <= total
            assert all(scanner.answered[s] == e for s, e in rows)
            assert not Path(f"{path}-wal").exists()  # one self-contained file

        # restore refuses while the service runs
        refused = run_cli("restore", str(backups[0][0]), data_dir=data, check=False)
        assert refused.returncode == 2 and "running" in refused.stderr
    finally:
        scanner.stop.set()
        server.stop()

    restored = run_cli("restore", str(backups[0][0]), data_dir=data)
    assert "restored" in restored.stdout
    safety = list_backups(data / "backups")[-1]  # the database as it was before the restore
    assert safety.path not in {p for p, _ in backups}
    assert len(_events(safety.path)[0]) == total
    rows, _ = _events(data / "edge.db")
    assert len(rows) == len(_events(backups[0][0])[0])

    server = EdgeServer(data).start()  # the restored database serves, and numbering goes on
    try:
        status, body = server.post("/api/v1/scans", {"code": "SO-1002", "operator": "t"})
        assert status == 200 and body["seq"] == len(rows) + 1
    finally:
        server.stop()


@pytest.mark.slow
def test_restore_with_force_while_running(tmp_path: Path):
    data = tmp_path / "var"
    server = EdgeServer(data).start()
    try:
        for i in range(3):
            server.post("/api/v1/scans", {"code": f"X-{i}", "operator": "t"})
        first = Path(run_cli("backup", data_dir=data).stdout.strip())
        for i in range(3):
            server.post("/api/v1/scans", {"code": f"Y-{i}", "operator": "t"})
        assert _health(server)["outbox"]["pending"] == 6
        run_cli("restore", "--force", str(first), data_dir=data)
        # the live service reads the restored content at once (it went in through SQLite's locks)
        assert _health(server)["outbox"]["pending"] == 3
        rows, counter = _events(data / "edge.db")
        assert len(rows) == 3 and counter == 3
    finally:
        server.stop()


def _health(server: EdgeServer) -> dict:
    with urllib.request.urlopen(server.url + "/healthz", timeout=10) as r:
        return json.loads(r.read())


def test_restore_validates_the_file(tmp_path: Path):
    data = tmp_path / "var"
    run_cli("orders", "import", "--demo", data_dir=data)
    good = Path(run_cli("backup", data_dir=data).stdout.strip())
    bad = tmp_path / "edge-bad.db"
    raw = bytearray(good.read_bytes())
    raw[4096:8192] = b"\xff" * 4096  # a page of garbage in the middle of the file
    bad.write_bytes(bytes(raw))
    out = run_cli("restore", str(bad), data_dir=data, check=False)
    assert out.returncode == 2 and "not a sound database" in out.stderr
    junk = tmp_path / "notes.txt"
    junk.write_text("hello")
    out = run_cli("restore", str(junk), data_dir=data, check=False)
    assert out.returncode == 2
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    out = run_cli("restore", str(other), data_dir=data, check=False)
    assert out.returncode == 2 and "neither an edge nor a hub" in out.stderr


def test_retention_keeps_the_newest_by_number_not_clock(tmp_path: Path):
    data = tmp_path / "var"
    run_cli("orders", "import", "--demo", data_dir=data)
    hub = data / "hub.db"
    run_cli("hub", "add-device", "dev-1", data_dir=data)  # makes a SQLite hub.db beside edge.db
    assert hub.exists()
    to = tmp_path / "elsewhere"
    # a leftover from a clock that ran ahead: later by name's time, but older by number
    to.mkdir()
    (to / "edge-000001-29991231T000000Z.db").write_bytes(b"")
    made = []
    for _ in range(3):
        made.append(run_cli("backup", "--to", str(to), "--keep", "2", data_dir=data).stdout.split())
    assert all(len(m) == 2 for m in made)  # edge.db and hub.db each time
    left = list_backups(to)
    assert [(b.kind, b.seq) for b in left] == [("edge", 3), ("hub", 3), ("edge", 4), ("hub", 4)]
    hub_copy = next(b.path for b in left if b.kind == "hub")
    assert sqlite3.connect(hub_copy).execute("SELECT device_id FROM devices").fetchall() == [
        ("dev-1",)]


@pytest.mark.slow
def test_serve_backs_up_before_migrating_after_an_upgrade(tmp_path: Path):
    data = tmp_path / "var"
    data.mkdir()
    db = connect(data / "edge.db")  # a database left by a version that had only migration 1
    migrate(db, "edge", EDGE_MIGRATIONS[:1])
    db.execute("INSERT INTO counters (name, value) VALUES ('event_seq', 41)")
    db.close()
    server = EdgeServer(data).start()
    server.stop()
    copies = list_backups(data / "backups")
    assert [b.kind for b in copies] == ["edge"]
    old = sqlite3.connect(copies[0].path)
    assert old.execute("SELECT MAX(version) FROM schema_version WHERE component='edge'"
                       ).fetchone() == (1,)  # the copy is from before the migration
    assert old.execute("SELECT value FROM counters").fetchone() == (41,)
    assert _events(data / "edge.db")[1] == 41  # and the migrated database kept the data

    EdgeServer(data).start().stop()  # same code again: no copy
    assert len(list_backups(data / "backups")) == 1
    (data / CODE_MARKER).write_text("an-older-scanedge\n")  # what an upgrade looks like
    EdgeServer(data).start().stop()
    assert len(list_backups(data / "backups")) == 2
    assert (data / CODE_MARKER).read_text().strip() == code_identity()


@pytest.mark.slow
def test_fresh_device_makes_no_backup(tmp_path: Path):
    data = tmp_path / "var"
    EdgeServer(data).start().stop()
    assert list_backups(data / "backups") == []


def test_backup_with_nothing_to_back_up(tmp_path: Path):
    out = run_cli("backup", data_dir=tmp_path / "empty")
    assert out.stdout == "" and "nothing to back up" in out.stderr


@pytest.mark.parametrize("keep", ["0", "-1"])
def test_backup_rejects_a_bad_keep(tmp_path: Path, keep: str):
    run_cli("orders", "import", "--demo", data_dir=tmp_path / "var")
    out = run_cli("backup", "--keep", keep, data_dir=tmp_path / "var", check=False)
    assert out.returncode == 2
