"""Clock jumps on a device without a real-time clock reorder and lose nothing."""

import json

from scanedge.edge.domain.hlc import Hlc, observe, tick
from scanedge.edge.store import DiskFull, Store
from scanedge.edge.store.outbox import append_event


def test_tick_is_monotonic_when_the_clock_goes_back():
    a = tick(None, 1_000)
    b = tick(a, 2_000)
    c = tick(b, 500)  # the wall clock jumped back 1.5 s
    d = tick(c, 500)
    assert a < b < c < d
    assert (c.wall_ms, c.counter) == (2_000, 1)
    assert str(d) > str(c) > str(b)  # the text form sorts the same way
    assert Hlc.parse(str(d)) == d


def test_observe_moves_past_a_remote_time():
    local = tick(None, 1_000)
    merged = observe(local, Hlc(5_000, 3), now_ms=1_200)
    assert merged > Hlc(5_000, 3) and tick(merged, 1_300) > merged


def test_events_keep_sequence_and_hlc_order_across_a_clock_jump_and_restart(tmp_path, monkeypatch):
    import scanedge.edge.store.outbox as outbox

    clock = iter([1_800_000_000.0, 1_800_000_001.0, 0.0, 0.0, 1_800_000_002.0]).__next__
    monkeypatch.setattr(outbox.time, "time", clock)
    store = Store(tmp_path / "edge.db")
    for _ in range(3):
        store.write(lambda db: append_event(db, "dev", "scan", {}))
    store.close()  # a reboot, and the clock is back at 1970
    store = Store(tmp_path / "edge.db")
    for _ in range(2):
        store.write(lambda db: append_event(db, "dev", "scan", {}))
    rows = store.read().execute("SELECT seq, hlc FROM events ORDER BY seq").fetchall()
    store.close()
    assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    hlcs = [r[1] for r in rows]
    assert hlcs == sorted(hlcs) and len(set(hlcs)) == 5


def test_low_disk_refuses_new_work_but_not_essential_writes(tmp_path, client, demo_ctx):
    store = Store(tmp_path / "edge.db", min_free_mb=10**9)  # more than any disk has
    try:
        store.write(lambda db: append_event(db, "dev", "scan", {}))
        raise AssertionError("a write below the reserve went through")
    except DiskFull as e:
        assert "min_free_mb" in str(e)
    store.write(lambda db: append_event(db, "dev", "freeze_applied", {}), essential=True)
    assert store.read().execute("SELECT type FROM events").fetchall() == [("freeze_applied",)]
    store.close()
    # over HTTP: a clear 507, nothing recorded
    demo_ctx.store.min_free_bytes = 10**18
    demo_ctx.store._free_checked = (0.0, 0)
    resp = client.post("/api/v1/scans", json={"code": "SO-1001"})
    assert resp.status_code == 507 and resp.get_json()["error"] == "disk_full"
    assert demo_ctx.store.read().execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
    assert json.loads(client.get("/healthz").get_data())["status"] == "ok"
