"""Sync: drain a 50,000-event backlog, live push latency, hub ingest from 20 devices.

    .venv/bin/python benchmarks/sync.py                      # SQLite hub
    .venv/bin/python benchmarks/sync.py --postgres postgresql://postgres@127.0.0.1/postgres

The hub is a real `scanedge hub` process on loopback; devices are real stores with the real sync
worker. The baseline is the hub's storage taking the same batches in-process, without HTTP or
the device (what the database alone costs), in the same run; the drain's time is given as a
ratio to it. The hub's per-device push limit is raised out of the way (with the default 20
pushes/s, burst 60, a 50,000 backlog takes at least 9.5 s). Runs ``--repeat`` times (fresh hubs
and databases each) and prints a markdown table of the median [min-max] of the runs.
"""

# ruff: noqa: E402  (the path fix below must run before the project imports)
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and `sync` would mean this file.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import multiprocessing as mp
import os
import subprocess
import tempfile
import time
import uuid
from datetime import datetime

from scanedge.edge.config import load_settings
from scanedge.edge.store import Store
from scanedge.edge.store.outbox import append_event, pending_batch
from scanedge.sync.protocol import MAX_BATCH_EVENTS
from scanedge.sync.worker import SyncWorker

# _common by its package name: this folder is off sys.path (above), the repository's root at its end
sys.path.append(str(Path(__file__).resolve().parent.parent))
from benchmarks import _common as bench

SCANEDGE = str(Path(sys.executable).with_name("scanedge"))
PAYLOAD = {"code": "6901234567892", "kind": "gtin", "verdict": "ok", "reason": "item_counted",
           "station": "bench-1", "operator": "张三", "line_no": 0}


class Hub:
    def __init__(self, workdir: Path, database: str) -> None:
        self.port = bench.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("SCANEDGE_")},
                    "SCANEDGE_DATA_DIR": str(workdir), "SCANEDGE_HUB_DATABASE": database,
                    "SCANEDGE_HUB_LISTEN": f"127.0.0.1:{self.port}",
                    "SCANEDGE_HUB_ADMIN_TOKEN": "bench-admin",
                    # the hub's per-device push limit (20/s, burst 60: 429 then) would set the
                    # drain's pace, and SyncWorker.drain stops at a 429: measure the hub instead
                    "SCANEDGE_HUB_PUSH_RATE": "10000", "SCANEDGE_HUB_PUSH_BURST": "10000"}
        self.proc = subprocess.Popen([SCANEDGE, "hub"], env=self.env, stderr=subprocess.DEVNULL)
        bench.wait_healthy(self.url + "/healthz", timeout=30)

    def add_device(self, device_id: str) -> str:
        from scanedge.sync.enroll import parse_enrollment  # add-device prints an enrolment string

        done = subprocess.run([SCANEDGE, "hub", "add-device", device_id], env=self.env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"scanedge hub add-device {device_id}: exit {done.returncode}: "
                             f"{done.stderr.strip()[-500:]}")
        return parse_enrollment(done.stdout)["hub_token"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def fill(store: Store, device_id: str, n: int) -> None:
    def job(db):
        for _ in range(n):
            append_event(db, device_id, "scan", PAYLOAD, order_id="SO-1001")
    store.write(job)


def device_settings(workdir: Path, device_id: str, hub: Hub, token: str):
    return load_settings(env={}, data_dir=str(workdir / device_id), device_id=device_id,
                         hub_url=hub.url, hub_token=token)


def drain_backlog(workdir: Path, hub: Hub, n: int) -> float:
    token = hub.add_device("backlog")
    settings = device_settings(workdir, "backlog", hub, token)
    store = Store(settings.edge_db_path)
    fill(store, "backlog", n)
    worker = SyncWorker(store, settings)
    t0 = time.perf_counter()
    result = worker.drain()
    elapsed = time.perf_counter() - t0
    assert result.acked == n, result
    store.close()
    return elapsed


def baseline_storage(workdir: Path, database: str, n: int) -> float:
    """The hub's storage alone taking the same batches (no HTTP, no device bookkeeping)."""
    from scanedge.sync.hub.storage import Device, open_storage

    storage = open_storage(database)
    storage.add_device("baseline")
    store = Store(workdir / "baseline-src" / "edge.db")
    fill(store, "baseline", n)
    # the same batch shapes the device sends (events here are far below the byte limit)
    events = [dict(e, device_id="baseline")
              for e in pending_batch(store.read(), n, 1 << 40)]
    batches = [events[i:i + MAX_BATCH_EVENTS] for i in range(0, n, MAX_BATCH_EVENTS)]
    t0 = time.perf_counter()
    for batch in batches:
        storage.store_events(Device("baseline", "default"), batch)
    elapsed = time.perf_counter() - t0
    assert len(events) == n
    store.close()
    storage.close()
    return elapsed


def _device_process(workdir: str, hub_url: str, token: str, device_id: str, n: int,
                    out: mp.Queue, go: mp.Event) -> None:
    settings = load_settings(env={}, data_dir=str(Path(workdir) / device_id), device_id=device_id,
                             hub_url=hub_url, hub_token=token)
    store = Store(settings.edge_db_path)
    fill(store, device_id, n)
    out.put(("ready",))
    go.wait()
    worker = SyncWorker(store, settings)
    t0 = time.perf_counter()
    result = worker.drain()
    out.put(("done", time.perf_counter() - t0, result.acked))
    store.close()


def fleet_ingest(workdir: Path, hub: Hub, devices: int, per_device: int) -> tuple[float, int]:
    tokens = {f"fleet-{i:02d}": hub.add_device(f"fleet-{i:02d}") for i in range(devices)}
    out: mp.Queue = mp.Queue()
    go = mp.Event()
    procs = [mp.Process(target=_device_process, args=(str(workdir), hub.url, tok, dev,
                                                      per_device, out, go))
             for dev, tok in tokens.items()]
    for p in procs:
        p.start()
    for _ in procs:
        assert out.get()[0] == "ready"  # every backlog written before the clock starts
    t0 = time.perf_counter()
    go.set()
    acked = 0
    done = 0
    while done < devices:
        msg = out.get()
        if msg[0] == "done":
            done += 1
            acked += msg[2]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    return wall, acked


def live_latency(workdir: Path, hub: Hub, n: int, rate: float) -> list[float]:
    """Events written one by one at ``rate``/s with the worker running: device time -> hub."""
    from scanedge.edge.context import EdgeContext

    token = hub.add_device("live")
    ctx = EdgeContext.open(device_settings(workdir, "live", hub, token))
    try:
        time.sleep(1.0)  # stream connected, worker idle
        for i in range(n):
            ctx.scans.scan(f"LIVE-{i}")
            time.sleep(1 / rate)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pending = ctx.store.read().execute(
                "SELECT COUNT(*) FROM events WHERE state = 'pending'").fetchone()[0]
            if pending == 0:
                break
            time.sleep(0.05)
    finally:
        ctx.close()
    from scanedge.sync.hub.storage import open_storage

    storage = open_storage(hub.env["SCANEDGE_HUB_DATABASE"])
    events = storage.list_events(device_id="live", limit=100_000)
    storage.close()

    def ts(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    return [ts(e["received_at"]) - ts(e["device_time"]) for e in events]


def run(database_kind: str, database: str, args, workdir: Path) -> list[list[bench.Cell]]:
    """One storage's rows: drain, live push, fleet ingest, and the storage alone (baseline)."""
    hub = Hub(workdir / "hub", database)
    rows: list[list[bench.Cell]] = []
    na = ["-", "-", "-"]
    try:
        t_backlog = drain_backlog(workdir, hub, args.backlog)
        rows.append([database_kind, f"drain {args.backlog:,} backlog, 1 device",
                     bench.Num(t_backlog, "{:.2f}"), bench.Num(args.backlog / t_backlog, "{:,.0f}"),
                     *na, "-"])
        lat = [1000 * x for x in live_latency(workdir, hub, args.live, args.live_rate)]
        rows.append([database_kind, f"live push, {args.live} events at {args.live_rate:.0f}/s "
                     "(device time -> hub receive)", "-", "-",
                     *(bench.Num(bench.percentile(lat, q)) for q in (0.5, 0.99, 1.0)), "-"])
        wall, acked = fleet_ingest(workdir, hub, args.devices, args.per_device)
        rows.append([database_kind, f"hub ingest, {args.devices} devices x {args.per_device:,}",
                     bench.Num(wall, "{:.2f}"), bench.Num(acked / wall, "{:,.0f}"), *na, "-"])
    finally:
        hub.stop()
    base_db = (str(workdir / "baseline.db") if database_kind == "sqlite"
               else _fresh_pg(database))
    t_base = baseline_storage(workdir, base_db, args.backlog)
    rows.append([database_kind, f"baseline: hub storage alone, same {args.backlog:,} events",
                 bench.Num(t_base, "{:.2f}"), bench.Num(args.backlog / t_base, "{:,.0f}"), *na,
                 bench.Num(t_backlog / t_base, "{:.1f}")])
    return rows


def one_run(args) -> list[list[bench.Cell]]:
    with tempfile.TemporaryDirectory(prefix="scanedge-sync-bench-") as tmp:
        workdir = Path(tmp)
        rows = run("sqlite", str(workdir / "hub" / "hub.db"), args, workdir / "sqlite")
        if args.postgres:
            try:
                rows += run("postgresql", _fresh_pg(args.postgres), args, workdir / "pg")
            finally:
                _drop_created(args.postgres)
    return rows


CREATED: list[str] = []  # this run's PostgreSQL databases, dropped at its end


def _fresh_pg(url: str) -> str:
    import psycopg

    name = f"scanedge_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    CREATED.append(name)
    return url.rsplit("/", 1)[0] + "/" + name


def _drop_created(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        while CREATED:
            conn.execute(f"DROP DATABASE IF EXISTS {CREATED.pop()} WITH (FORCE)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--postgres", help="also run against PostgreSQL (admin URL; a database is "
                                       "created per run)")
    ap.add_argument("--backlog", type=int, default=50_000)
    ap.add_argument("--live", type=int, default=300)
    ap.add_argument("--live-rate", type=float, default=20.0)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--per-device", type=int, default=2_500)
    bench.add_repeat(ap, why="~40 s a run, ~95 s with --postgres")
    args = ap.parse_args()
    started = time.monotonic()
    runs, loads = bench.run_repeated(args.repeat, lambda: one_run(args))
    print(bench.table(["hub storage", "what", "s", "events/s", "p50 ms", "p99 ms", "max ms",
                       "drain over HTTP / storage alone"], runs))
    print(f"\n{bench.runs_footer(loads, started)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
