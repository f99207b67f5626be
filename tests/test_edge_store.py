"""The local store: pragmas, migrations, atomic state + event, group commit."""

import sqlite3
import threading

import pytest

from scanedge.edge.domain.orders import parse_order
from scanedge.edge.store import Store, StoreError
from scanedge.edge.store.db import Migration, connect, migrate
from scanedge.edge.store.orders import load_pack_state, save_order
from scanedge.edge.store.outbox import append_event, outbox_status


def test_pragmas_and_schema_version(tmp_path):
    store = Store(tmp_path / "edge.db")
    db = store.read()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    rows = db.execute("SELECT component, version FROM schema_version").fetchall()
    assert rows == [("edge", 1), ("edge", 2), ("edge", 3), ("edge", 4), ("edge", 5)]
    assert {"orders", "order_lines", "order_gifts", "freezes", "stations", "events"} <= set(
        db.table_names())
    store.close()
    # reopening runs nothing again
    Store(tmp_path / "edge.db").close()


def test_forward_migrations_run_once_and_in_order(tmp_path):
    db = connect(tmp_path / "x.db")
    calls = []
    steps = [Migration(1, "a", lambda d: calls.append(1) or d.execute("CREATE TABLE a (x)")),
             Migration(2, "b", lambda d: calls.append(2) or d.execute("CREATE TABLE b (x)"))]
    assert migrate(db, "thing", steps[:1]) == 1
    assert migrate(db, "thing", steps) == 2
    assert migrate(db, "thing", steps) == 2
    assert calls == [1, 2]
    with pytest.raises(StoreError, match="newer than this program"):
        migrate(db, "thing", steps[:1])


def test_failed_migration_leaves_nothing(tmp_path):
    db = connect(tmp_path / "x.db")

    def bad(d):
        d.execute("CREATE TABLE half (x)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        migrate(db, "thing", [Migration(1, "bad", bad)])
    assert "half" not in db.table_names()
    assert db.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 0


def test_foreign_keys_enforced(tmp_path):
    store = Store(tmp_path / "edge.db")
    with pytest.raises(sqlite3.IntegrityError):
        store.write(lambda db: db.execute(
            "INSERT INTO order_lines (order_id, line_no, sku, qty) VALUES ('nope', 0, 'x', 1)"))
    store.close()


def test_state_change_and_event_commit_together_or_not_at_all(tmp_path):
    store = Store(tmp_path / "edge.db")
    order = parse_order({"order_id": "SO-1", "lines": [{"sku": "x", "qty": 1}]})

    def half_done(db):
        save_order(db, order)
        append_event(db, "dev", "order_saved", {}, order_id="SO-1")
        raise ValueError("after both writes")

    with pytest.raises(ValueError):
        store.write(half_done)
    db = store.read()
    assert load_pack_state(db, "SO-1") is None
    assert outbox_status(db).pending == 0
    store.close()


def test_group_commit_isolates_a_failing_job(tmp_path):
    """Many threads write at once; one job fails; the others all commit with unique seqs."""
    store = Store(tmp_path / "edge.db")
    results, errors = [], []

    def worker(i):
        def job(db):
            ev = append_event(db, "dev", "t", {"i": i})
            if i == 13:
                raise KeyError("job 13 fails")
            return ev.seq
        try:
            results.append(store.write(job))
        except KeyError as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1 and len(results) == 63
    db = store.read()
    seqs = [r[0] for r in db.execute("SELECT seq FROM events ORDER BY seq")]
    assert sorted(results) == seqs and len(set(seqs)) == 63
    store.close()


def test_sequence_never_reused_after_purge(tmp_path):
    store = Store(tmp_path / "edge.db")
    first = store.write(lambda db: append_event(db, "dev", "t", {}).seq)
    store.write(lambda db: db.execute("DELETE FROM events"))
    second = store.write(lambda db: append_event(db, "dev", "t", {}).seq)
    assert second == first + 1
    store.close()


def test_reimport_keeps_progress_of_unchanged_lines(tmp_path):
    store = Store(tmp_path / "edge.db")
    v1 = parse_order({"order_id": "SO-1", "lines": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1}]})
    store.write(lambda db: save_order(db, v1))
    store.write(lambda db: db.execute("UPDATE order_lines SET packed = 2 WHERE sku = 'a'"))
    v2 = parse_order({"order_id": "SO-1", "version": 2,
                      "lines": [{"sku": "b", "qty": 1}, {"sku": "a", "qty": 3}]})
    assert store.write(lambda db: save_order(db, v2)) == "updated"
    state = load_pack_state(store.read(), "SO-1")
    assert state.packed == (0, 2)
    assert store.write(lambda db: save_order(db, v2)) == "unchanged"
    store.close()


def test_a_submitted_job_is_answered_by_callback_after_its_commit(tmp_path):
    """``Store.submit`` (the event loop's way in): the callback runs once the job's transaction
    committed, or with the job's own error, which rolls back that job alone."""
    store = Store(tmp_path / "edge.db")
    answers: list[tuple[object, BaseException | None, int]] = []
    done = threading.Semaphore(0)

    def on_done(result, error):  # on the writer thread: what was on disk when it ran
        seen = sqlite3.connect(tmp_path / "edge.db").execute("SELECT COUNT(*) FROM events")
        answers.append((result, error, seen.fetchone()[0]))
        done.release()

    def good(db):
        return append_event(db, "dev", "t", {}).seq

    def bad(db):
        append_event(db, "dev", "t", {})
        raise KeyError("refused")

    for job in (good, bad, good):
        store.submit(job, on_done)
    for _ in range(3):
        assert done.acquire(timeout=30)
    results = sorted(answers, key=lambda a: str(a[0]))
    assert [a[0] for a in results] == [1, 2, None]
    assert isinstance(results[2][1], KeyError) and results[0][1] is None
    assert all(a[2] >= 1 for a in answers if a[1] is None)  # committed before the callback
    assert store.read().execute("SELECT COUNT(*) FROM events").fetchone()[0] == 2

    store.submit(lambda db: (_ for _ in ()).throw(RuntimeError("x")),
                 lambda r, e: (_ for _ in ()).throw(ValueError("a broken callback")))
    assert store.write(good) == 3  # a callback that raises does not stop the writer
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.submit(good, on_done)
