"""Fleet: thousands of device streams on the hub, freeze fan-out, the order system beside them.

    .venv/bin/python benchmarks/fleet.py                               # every scenario, full size
    .venv/bin/python benchmarks/fleet.py --scenario sqlite --devices 30 --freezes 3
    .venv/bin/python benchmarks/fleet.py --scenario postgres --postgres postgresql://postgres@127.0.0.1/scanedge_bench
    .venv/bin/python benchmarks/fleet.py --scenario ingest --storage sqlite --json fleet.json

Real ``scanedge hub`` processes on loopback; the devices are lightweight asyncio clients in this
process (benchmarks/_fleet_clients.py: hand-written HTTP/1.1 and Server-Sent Events) holding real
streams and pushing real events. Scenarios (``--scenario``):

- ``sqlite``: one hub process on SQLite, 2,000 streams over 4 sites. Measures how long opening
  every stream takes (100 connects in flight; a 429 is retried after its Retry-After), the hub's
  memory before and with the streams (``/proc/<pid>/status`` VmRSS, VmHWM), the freeze fan-out
  (20 freezes, one a second, rotating over the sites' orders: POST /freeze sent -> the change on
  every stream of the order's site; a change of another site on a stream is a cross-site leak),
  and the order system's API latency meanwhile (10 requests/s from a process of its own:
  ``GET /freezes?limit=50`` and ``PUT /orders/ADM-<n>``).
- ``postgres``: the same with 3 hub processes on one PostgreSQL database and 5,000 streams spread
  round-robin; freezes go to process 0 only, the others learn of them by LISTEN/NOTIFY.
- ``ingest``: 20 devices pushing 200-event batches for 10 s (PostgreSQL; ``--storage sqlite``),
  then ``GET /events?after=`` must list every stored event once with ``hub_seq`` 1..N. The
  baseline is the same number of rows inserted directly (psycopg / sqlite3, multi-row INSERTs
  of 200 into a table of the same columns, 20 connections at once) in the same run.

The PostgreSQL database named by ``--postgres`` is dropped and created again for each scenario.
The client shares the machine's cores with the hubs: its own CPU time is shown beside the fan-out.
Runs ``--repeat`` times (default 2: all three scenarios take ~2 min a run) and prints a markdown
table of the median [min-max] of the runs; ``--json FILE`` writes the raw numbers of each run.
"""

# ruff: noqa: E402  (the path fix below must run before the project imports)
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's folder comes first on sys.path and `sync` would mean sync.py here.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field, fields, is_dataclass
from functools import partial
from typing import Any

from benchmarks import _common as bench
from benchmarks._fleet_clients import (
    NET_ERRORS,
    DeviceStream,
    HttpConnection,
    PushStats,
    SiteMap,
    admin_loop,
    admin_order_site,
    make_events,
    order_body,
    push_device,
)

SCANEDGE = str(Path(sys.executable).with_name("scanedge"))
ADMIN = "bench-admin"
DEFAULT_PG = "postgresql://postgres@127.0.0.1/scanedge_bench"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
EVENT_COLUMNS = ("event_id", "device_id", "seq", "type", "order_id", "payload", "device_time",
                 "hlc", "received_at", "site")


def log(message: str) -> None:
    print(f"fleet: {message}", file=sys.stderr, flush=True)


def interrupt_on_sigterm() -> None:
    """SIGTERM ends the run like Ctrl-C: the ``finally`` blocks stop the hubs."""
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def raise_nofile() -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (the hubs inherit it); returns the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def latency_cells(values: list[float]) -> list[bench.Cell]:
    """p50, p99 and max of one run's latencies (s) in ms, as table cells."""
    if not values:
        return ["-", "-", "-"]
    return [bench.Num(bench.percentile(values, q) * 1000) for q in (0.5, 0.99, 1.0)]


# -- hub processes ------------------------------------------------------------------------------
class HubProcess:
    """``scanedge hub`` on a free loopback port; its stderr goes to ``hub-<n>.log``."""

    def __init__(self, workdir: Path, database: str, index: int,
                 extra_env: dict[str, str] | None = None) -> None:
        self.index = index
        self.port = bench.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"hub-{index}.log"
        data_dir = workdir / f"hub-{index}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("SCANEDGE_")},
                    "SCANEDGE_DATA_DIR": str(data_dir), "SCANEDGE_HUB_DATABASE": database,
                    "SCANEDGE_HUB_LISTEN": f"127.0.0.1:{self.port}",
                    "SCANEDGE_HUB_ADMIN_TOKEN": ADMIN, **(extra_env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> HubProcess:
        with open(self.log_path, "wb") as err:
            self.proc = subprocess.Popen([SCANEDGE, "hub"], env=self.env, stdout=subprocess.DEVNULL,
                                         stderr=err)
        return self

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise SystemExit(f"hub {self.index} exited:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise SystemExit(f"hub {self.index} did not answer /healthz:\n{self.log_tail()}")

    def memory(self) -> dict[str, int]:
        """VmRSS and VmHWM in kB (0 once the process is gone)."""
        out = {"VmRSS": 0, "VmHWM": 0}
        assert self.proc is not None
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in out:
                    out[key] = int(value.split()[0])
        return out

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def hubs_running(workdir: Path, database: str, processes: int, extra_env: dict[str, str]):
    hubs = [HubProcess(workdir, database, i, extra_env) for i in range(processes)]
    try:
        for hub in hubs:
            hub.start()
        for hub in hubs:
            hub.wait_healthy()
        yield hubs
    finally:
        for hub in hubs:
            hub.stop()


def fresh_postgres(url: str) -> str:
    """Drop and create the database of ``url`` (connecting to ``postgres`` on the same server)."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    name, host = params.get("dbname"), str(params.get("host") or "")
    if not name or name in ("postgres", "template0", "template1"):
        raise SystemExit(f"--postgres: name a database of its own (it is dropped): {url}")
    if host and not host.startswith("/") and host not in LOOPBACK:
        raise SystemExit(f"--postgres: only a server on this machine (127.0.0.1): {url}")
    with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return url


@dataclass
class Device:
    device_id: str
    token: str
    site: str


def register_devices(database: str, count: int, sites: list[str]) -> tuple[list[Device], bool]:
    """Devices ``dev-00001``.. round-robin over ``sites``, through the hub's storage (before a
    hub serves). Returns them and whether the storage knew sites."""
    from scanedge.sync.hub.storage import open_storage

    storage = open_storage(database)
    devices, with_sites = [], True
    try:
        for i in range(count):
            device_id, site = f"dev-{i + 1:05d}", sites[i % len(sites)]
            try:
                token = storage.add_device(device_id, site=site)
            except TypeError:  # a storage without sites: every device at the default site
                token, with_sites = storage.add_device(device_id), False
            devices.append(Device(device_id, token, site))
    finally:
        storage.close()
    return devices, with_sites


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- streams, freezes, the order system -------------------------------------------------------------
@dataclass
class FreezeSent:
    order_id: str
    site: str
    sent: float  # perf_counter just before the POST
    answered_s: float
    status: int
    command_id: str | None
    unfreeze_status: int = 0


@dataclass
class StreamResult:
    name: str
    processes: int
    devices: int
    sites: int
    with_sites: bool
    open_s: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    memory_before: list[dict[str, int]] = field(default_factory=list)
    memory_streams: list[dict[str, int]] = field(default_factory=list)
    memory_end: list[dict[str, int]] = field(default_factory=list)
    freezes: list[FreezeSent] = field(default_factory=list)
    expected: int = 0
    latencies: list[float] = field(default_factory=list)  # s, per delivery
    fanout_done: list[float] = field(default_factory=list)  # s, last delivery of each freeze
    leaks: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    dropped: int = 0
    heartbeats: int = 0
    changes: int = 0
    changes_expected: int = 0
    admin: dict[str, Any] = field(default_factory=dict)
    phase_s: float = 0.0
    client_cpu_s: float = 0.0


class AdminProcess:
    """The order system's request loop in a process of its own (no GIL shared with the streams)."""

    def __init__(self, hub: HubProcess, args: argparse.Namespace, sites: list[str]) -> None:
        ctx = mp.get_context("spawn")
        self.timeout = args.admin_seconds + 60
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=admin_loop, args=(hub.port, ADMIN, args.admin_seconds,
                                                         args.admin_rate, sites, child),
                                daemon=True)

    def start(self) -> AdminProcess:
        self.proc.start()
        if not self.pipe.poll(60) or self.pipe.recv() != "ready":
            raise SystemExit("the admin request process did not start")
        return self

    def go(self) -> None:
        self.pipe.send("go")

    def result(self) -> dict[str, Any]:
        if not self.pipe.poll(self.timeout):
            return {"get": [], "put": [], "errors": {"no answer from the admin process": 1}}
        return self.pipe.recv()

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.terminate()
        self.proc.join(5)


async def open_streams(streams: list[DeviceStream], cursor: int, args: argparse.Namespace) -> float:
    gate = asyncio.Semaphore(args.connects)
    t0 = time.perf_counter()
    await asyncio.gather(*(s.connect(cursor, gate, timeout=args.connect_timeout,
                                     max_retries=args.max_retries) for s in streams))
    return time.perf_counter() - t0


async def issue_freezes(conn: HttpConnection, orders: dict[str, str],
                        count: int) -> list[FreezeSent]:
    """``count`` freezes one a second, rotating over ``orders`` (order -> site); each is lifted
    half a second later, so the next freeze of the order is a new command."""
    sent: list[FreezeSent] = []
    start = time.perf_counter()
    cycle = list(orders.items())
    for i in range(count):
        order_id, site = cycle[i % len(cycle)]
        await asyncio.sleep(max(0.0, start + i - time.perf_counter()))
        t0 = time.perf_counter()
        status, answer = await command(conn, order_id, "freeze", {"reason": "hold"})
        answered = time.perf_counter() - t0
        sent.append(FreezeSent(order_id, site, t0, answered, status,
                               answer.get("command_id") if status == 202 else None))
        await asyncio.sleep(max(0.0, start + i + 0.5 - time.perf_counter()))
        sent[-1].unfreeze_status, _ = await command(conn, order_id, "unfreeze", {})
    return sent


async def command(conn: HttpConnection, order_id: str, kind: str,
                  body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST /orders/<id>/<kind>: (status, answer); status 0 when no answer came."""
    try:
        resp = await conn.request("POST", f"/api/v1/orders/{order_id}/{kind}", body)
    except NET_ERRORS as e:
        log(f"{kind} {order_id}: {type(e).__name__} {e}")
        return 0, {}
    if resp.status != 202:
        log(f"{kind} {order_id}: HTTP {resp.status} {resp.body[:200]!r}")
        return resp.status, {}
    return resp.status, resp.json()


def deliveries(streams: list[DeviceStream], sent: list[FreezeSent]) -> tuple[int, list[float],
                                                                             list[float]]:
    """(expected deliveries, latency of each delivery, time to the last delivery per freeze)."""
    expected, latencies, done = 0, [], []
    by_site: dict[str, list[DeviceStream]] = {}
    for s in streams:
        if s.opened_at is not None:
            by_site.setdefault(s.site, []).append(s)
    for f in sent:
        if f.status != 202:
            continue
        site_streams = by_site.get(f.site, [])
        expected += len(site_streams)
        got = [t - f.sent for s in site_streams
               if (t := s.arrival(f.command_id, f.order_id, f.sent)) is not None]
        latencies += got
        if got and len(got) == len(site_streams):
            done.append(max(got))
    return expected, latencies, done


async def wait_for_deliveries(streams: list[DeviceStream], sent: list[FreezeSent],
                              settle_s: float) -> None:
    deadline = time.perf_counter() + settle_s
    while time.perf_counter() < deadline:
        expected, got, _ = deliveries(streams, sent)
        if len(got) >= expected:
            return
        await asyncio.sleep(0.5)


def site_changes(orders: dict[str, str], sent: list[FreezeSent], admin_puts: list[int],
                 sites: list[str]) -> Counter[str]:
    """How many changes the phase made at each site: orders, freezes, unfreezes."""
    made = Counter(orders.values())
    for f in sent:
        made[f.site] += (f.status == 202) + (f.unfreeze_status == 202)
    made.update(admin_order_site(k, sites) for k in admin_puts)
    return made


async def wait_for_changes(streams: list[DeviceStream], made: Counter[str], settle_s: float) -> int:
    """Until every open stream received every change of its site (or ``settle_s``); returns how
    many deliveries that is in all."""
    expected = sum(made[s.site] for s in streams if s.opened_at is not None)
    deadline = time.perf_counter() + settle_s
    while sum(s.changes for s in streams) < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.2)
    return expected


async def put_site_orders(conn: HttpConnection, sites: list[str], sitemap: SiteMap) -> dict[str, str]:
    orders = {}
    for n, site in enumerate(sites, 1):
        order_id = f"FL-{n:03d}"
        sitemap.orders[order_id] = site
        resp = await conn.request("PUT", f"/api/v1/orders/{order_id}", order_body(site))
        if resp.status != 200:
            raise SystemExit(f"PUT /orders/{order_id}: HTTP {resp.status} {resp.body[:300]!r}")
        orders[order_id] = site
    return orders


async def fleet_phase(hubs: list[HubProcess], devices: list[Device], sites: list[str],
                      admin: AdminProcess, args: argparse.Namespace, out: StreamResult) -> None:
    """Streams open, then freezes and the order system's requests at once, then the tally."""
    sitemap = SiteMap(sites)
    conn = HttpConnection(hubs[0].port, token=ADMIN)
    streams = [DeviceStream(d.device_id, d.token, d.site, hubs[i % len(hubs)].port, sitemap)
               for i, d in enumerate(devices)]
    try:
        cursor = (await conn.request("GET", "/healthz")).json()["last_change"]
        out.memory_before = [h.memory() for h in hubs]
        log(f"{out.name}: opening {len(streams)} streams from change {cursor}")
        out.open_s = await open_streams(streams, cursor, args)
        out.outcomes = Counter(s.outcome() for s in streams)
        out.retries = sum(s.retries for s in streams)
        log(f"{out.name}: {out.outcomes['200']} streams open in {out.open_s:.1f} s")
        await asyncio.sleep(1.0)  # the last streams' first bytes sent, memory settled
        out.memory_streams = [h.memory() for h in hubs]
        orders = await put_site_orders(conn, sites, sitemap)
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        admin.go()
        out.freezes = await issue_freezes(conn, orders, args.freezes)
        await wait_for_deliveries(streams, out.freezes, args.settle)
        out.admin = await asyncio.to_thread(admin.result)
        out.phase_s, out.client_cpu_s = time.perf_counter() - t0, cpu_seconds() - cpu0
        out.memory_end = [h.memory() for h in hubs]
        out.changes_expected = await wait_for_changes(streams, site_changes(
            orders, out.freezes, out.admin.get("put_ok", []), sites), args.settle)
        out.expected, out.latencies, out.fanout_done = deliveries(streams, out.freezes)
        out.leaks = [(s.device_id, *leak) for s in streams for leak in s.leaks]
        out.dropped = sum(1 for s in streams if s.opened_at is not None and not s.open)
        out.heartbeats = sum(s.heartbeats for s in streams)
        out.changes = sum(s.changes for s in streams)
    finally:
        conn.close()
        await asyncio.gather(*(s.close() for s in streams))


def run_streams(name: str, database: str, devices_n: int, processes: int,
                args: argparse.Namespace, workdir: Path) -> StreamResult:
    sites = [f"site-{i}" for i in range(1, args.sites + 1)]
    log(f"{name}: registering {devices_n} devices over {len(sites)} sites")
    devices, with_sites = register_devices(database, devices_n, sites)
    out = StreamResult(name, processes, devices_n, len(sites), with_sites)
    with hubs_running(workdir, database, processes, args.hub_env) as hubs:
        admin = AdminProcess(hubs[0], args, sites).start()
        try:
            asyncio.run(fleet_phase(hubs, devices, sites, admin, args, out))
        finally:
            admin.stop()
            for hub in hubs:
                if hub.proc is not None and hub.proc.poll() is not None:
                    log(f"hub {hub.index} exited early:\n{hub.log_tail()}")
    return out


# -- ingest ------------------------------------------------------------------------------------
@dataclass
class IngestResult:
    name: str
    processes: int
    devices: int
    batch: int
    seconds: float
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    pushes: list[PushStats] = field(default_factory=list)
    listed: int = 0
    listed_twice: int = 0
    missing: int = 0
    unexpected: int = 0
    gap_free: bool = False
    verify_note: str = ""
    baseline_s: float = 0.0
    baseline_rows: int = 0

    @property
    def accepted(self) -> int:
        return sum(p.accepted for p in self.pushes)


async def push_all(hubs: list[HubProcess], devices: list[Device], args: argparse.Namespace
                   ) -> tuple[list[PushStats], float]:
    t0 = time.perf_counter()
    until = t0 + args.seconds
    pushes = await asyncio.gather(*(push_device(hubs[i % len(hubs)].port, d.device_id, d.token,
                                                until=until, batch=args.batch)
                                    for i, d in enumerate(devices)))
    return list(pushes), max(p.last_answer for p in pushes) - t0


async def list_all_events(port: int, expected: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Every event of ``GET /api/v1/events?after=`` (paged by ``next``); waits up to ``timeout``
    for ``expected`` of them (PostgreSQL numbers events just after their commit)."""
    conn = HttpConnection(port, token=ADMIN)
    events: list[dict[str, Any]] = []
    after, deadline = 0, time.perf_counter() + timeout
    try:
        while True:
            resp = await conn.request("GET", f"/api/v1/events?after={after}&limit=5000")
            if resp.status != 200:
                raise SystemExit(f"GET /events: HTTP {resp.status} {resp.body[:300]!r}")
            page = resp.json()
            events += page["events"]
            if page["events"]:
                after = page["next"]
                continue
            if len(events) >= expected or time.perf_counter() > deadline:
                return events
            await asyncio.sleep(0.2)
    finally:
        conn.close()


def verify_events(out: IngestResult, events: list[dict[str, Any]]) -> None:
    stored = Counter(i for p in out.pushes for i in p.stored_ids)
    listed = Counter(e["event_id"] for e in events)
    out.listed = len(events)
    out.listed_twice = sum(1 for n in listed.values() if n > 1)
    out.missing = sum(1 for i in stored if i not in listed)
    out.unexpected = sum(1 for i in listed if i not in stored)
    seqs = [e["hub_seq"] for e in events]
    out.gap_free = seqs == list(range(1, len(seqs) + 1))
    if not out.gap_free:
        first_bad = next((n for n, s in enumerate(seqs, 1) if s != n), None)
        out.verify_note = f"hub_seq differs from 1..N first at position {first_bad}"


def baseline_rows(n: int, connections: int, batch: int) -> list[list[list[Any]]]:
    """``n`` event rows for each of ``connections`` in batches of ``batch`` (built before the clock)."""
    per = [n // connections + (1 if i < n % connections else 0) for i in range(connections)]
    received = "2026-11-30T00:00:01.000Z"
    out = []
    for c, count in enumerate(per):
        device_id = f"raw-{c:02d}"
        rows = [[e["event_id"], device_id, e["seq"], e["type"], e["order_id"],
                 json.dumps(e["payload"], ensure_ascii=False), e["device_time"], e["hlc"],
                 received, "site-1"] for e in make_events(device_id, 1, count)]
        out.append([rows[i:i + batch] for i in range(0, len(rows), batch)])
    return out


def _run_threads(jobs: list[Any]) -> float:
    """Every ``job()`` in a thread of its own, started at once; wall seconds until all ended."""
    go = threading.Barrier(len(jobs) + 1)

    def run(job: Any) -> None:
        go.wait()
        job()

    threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in jobs]
    for t in threads:
        t.start()
    go.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return time.perf_counter() - t0


def baseline_postgres(url: str, work: list[list[list[Any]]]) -> float:
    import psycopg

    cols = ", ".join(EVENT_COLUMNS)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw_events")
        conn.execute("CREATE TABLE bench_raw_events (hub_seq BIGINT GENERATED ALWAYS AS IDENTITY"
                     " PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, device_id TEXT NOT NULL,"
                     " seq BIGINT NOT NULL, type TEXT NOT NULL, order_id TEXT, payload TEXT NOT NULL,"
                     " device_time TEXT NOT NULL, hlc TEXT, received_at TEXT NOT NULL, site TEXT)")
    conns = [psycopg.connect(url) for _ in work]
    one = "(" + ", ".join(["%s"] * len(EVENT_COLUMNS)) + ")"

    def insert(conn: Any, batches: list[list[Any]]) -> None:
        for rows in batches:  # a transaction per batch, as a push
            with conn.transaction():
                conn.execute(f"INSERT INTO bench_raw_events ({cols}) VALUES "
                             + ", ".join([one] * len(rows)), [v for r in rows for v in r])

    try:
        return _run_threads([partial(insert, c, b) for c, b in zip(conns, work, strict=True)])
    finally:
        for conn in conns:
            conn.close()


def baseline_sqlite(path: Path, work: list[list[list[Any]]]) -> float:
    cols = ", ".join(EVENT_COLUMNS)
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode = WAL")
    setup.execute("CREATE TABLE bench_raw_events (hub_seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                  " event_id TEXT NOT NULL UNIQUE, device_id TEXT NOT NULL, seq INTEGER NOT NULL,"
                  " type TEXT NOT NULL, order_id TEXT, payload TEXT NOT NULL,"
                  " device_time TEXT NOT NULL, hlc TEXT, received_at TEXT NOT NULL, site TEXT)")
    setup.close()
    one = "(" + ", ".join(["?"] * len(EVENT_COLUMNS)) + ")"

    def insert(batches: list[list[Any]]) -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)
        conn.execute("PRAGMA synchronous = FULL")  # as the hub's storage
        for rows in batches:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute(f"INSERT INTO bench_raw_events ({cols}) VALUES "
                         + ", ".join([one] * len(rows)), [v for r in rows for v in r])
            conn.execute("COMMIT")
        conn.close()

    return _run_threads([partial(insert, b) for b in work])


def run_ingest(args: argparse.Namespace, workdir: Path) -> IngestResult:
    kind = args.storage
    database = (fresh_postgres(args.postgres) if kind == "postgres"
                else str(workdir / "hub.db"))
    name = f"ingest, {'postgresql' if kind == 'postgres' else 'sqlite'}"
    out = IngestResult(name, args.ingest_processes, args.ingest_devices, args.batch, args.seconds)
    devices, _ = register_devices(database, args.ingest_devices, ["site-1"])
    with hubs_running(workdir, database, args.ingest_processes, args.hub_env) as hubs:
        log(f"{name}: {len(devices)} devices pushing for {args.seconds:g} s")
        cpu0 = cpu_seconds()
        out.pushes, out.wall_s = asyncio.run(push_all(hubs, devices, args))
        out.client_cpu_s = cpu_seconds() - cpu0
        stored = sum(len(p.stored_ids) for p in out.pushes)
        log(f"{name}: {out.accepted} accepted; listing them back")
        try:
            verify_events(out, asyncio.run(list_all_events(hubs[0].port, stored)))
        except SystemExit as e:  # an error answer: this run's check fails, the other runs count
            out.verify_note = f"{e}; hub log: " + hubs[0].log_tail(5).replace("\n", " / ")
            log(f"{name}: {out.verify_note}")
    out.baseline_rows = out.accepted or args.batch
    work = baseline_rows(out.baseline_rows, args.ingest_devices, args.batch)
    log(f"{name}: baseline, {out.baseline_rows} rows over {len(work)} connections")
    out.baseline_s = (baseline_postgres(database, work) if kind == "postgres"
                      else baseline_sqlite(workdir / "baseline.db", work))
    return out


# -- the report ---------------------------------------------------------------------------------
def stream_rows(r: StreamResult) -> list[list[bench.Cell]]:
    """One run's rows: [scenario, what, result, p50 ms, p99 ms, max ms]."""
    tag = r.name
    na: list[bench.Cell] = ["-", "-", "-"]
    opened = r.outcomes.get("200", 0)
    failed = ", ".join(f"{k}: {v}" for k, v in sorted(r.outcomes.items()) if k != "200") or "none"
    before = sum(m["VmRSS"] for m in r.memory_before) / 1024
    with_streams = sum(m["VmRSS"] for m in r.memory_streams) / 1024
    peak = sum(m["VmHWM"] for m in r.memory_end) / 1024
    summed = ", summed over the processes" if r.processes > 1 else ""
    rows: list[list[bench.Cell]] = [
        [tag, f"streams opened (HTTP 200) of {r.devices:,} ({r.sites} sites, {r.processes} "
         f"process{'es' if r.processes > 1 else ''})", bench.Num(opened, "{:,.0f}"), *na],
        [tag, "seconds to open them", bench.Num(r.open_s, "{:.1f}"), *na],
        [tag, "connects failed; retries after 429", f"{failed}; {r.retries}", *na],
        [tag, f"hub MB before streams (VmRSS{summed})", bench.Num(before), *na],
        [tag, f"hub MB with the streams open (VmRSS{summed})", bench.Num(with_streams), *na],
        [tag, "hub KB per stream", bench.Num(1024 * (with_streams - before) / opened
                                       if opened else math.nan, "{:.1f}"), *na],
        [tag, f"hub MB peak (VmHWM{summed})", bench.Num(peak), *na],
    ]
    ok = [f for f in r.freezes if f.status == 202]
    rows += [
        [tag, f"freeze fan-out: POST /freeze sent -> change on each stream of the site "
         f"({len(ok)} of {len(r.freezes)} freezes accepted)",
         f"{len(r.latencies):,} of {r.expected:,} deliveries", *latency_cells(r.latencies)],
        [tag, "freeze fan-out complete (last stream of the site)",
         f"{len(r.fanout_done)} freezes reached every stream", *latency_cells(r.fanout_done)],
        [tag, "the POST /freeze itself", f"{len(r.freezes)} sent",
         *latency_cells([f.answered_s for f in r.freezes])],
        [tag, "cross-site leaks (changes of another site on a stream)", bench.Num(len(r.leaks)), *na],
    ]
    gets, puts = r.admin.get("get", []), r.admin.get("put", [])
    errors = r.admin.get("errors", {})
    rows += [
        [tag, "admin API during the fan-out: GET /freezes?limit=50 (answered)", bench.Num(len(gets)),
         *latency_cells(gets)],
        [tag, "admin API: largest GET /freezes answer, KB",
         bench.Num(max(r.admin.get("get_bytes") or [0]) / 1024), *na],
        [tag, "admin API during the fan-out: PUT /orders/ADM-n (answered)", bench.Num(len(puts)),
         *latency_cells(puts)],
        [tag, "admin API errors", f"{sum(errors.values())}"
         f"{' ' + json.dumps(errors) if errors else ''}", *na],
        [tag, "streams open at the end", bench.Num(opened - r.dropped, "{:,.0f}"), *na],
        [tag, "streams dropped", bench.Num(r.dropped), *na],
        [tag, "changes received of those made on the stream's site",
         f"{r.changes:,} of {r.changes_expected:,}", *na],
        [tag, "the phase (streams open, freezes, admin API), s", bench.Num(r.phase_s, "{:.1f}"),
         *na],
        [tag, "client CPU s during the phase", bench.Num(r.client_cpu_s, "{:.1f}"), *na],
    ]
    if not r.with_sites:
        rows.append([tag, "note", "the hub storage has no sites: devices at its default site", *na])
    return rows


def ingest_rows(r: IngestResult) -> list[list[bench.Cell]]:
    """One run's rows, the hub's rate also as a ratio to the raw INSERTs' of this run."""
    tag = r.name
    na: list[bench.Cell] = ["-", "-", "-"]
    throttled = sum(p.throttled for p in r.pushes)
    dup = sum(p.duplicate for p in r.pushes)
    rejected = sum((p.rejected for p in r.pushes), Counter())
    errors = sum((p.errors for p in r.pushes), Counter())
    lost = sum(p.lost_batches for p in r.pushes)
    rate = r.accepted / r.wall_s if r.wall_s else math.nan
    raw = r.baseline_rows / r.baseline_s if r.baseline_s else math.nan
    lat = [x for p in r.pushes for x in p.latencies]
    ok = r.gap_free and not (r.listed_twice or r.missing or r.unexpected)
    raw_name = "psycopg" if "postgresql" in tag else "sqlite3"
    return [
        [tag, f"hub ingest: {r.devices} devices x {r.batch}-event pushes for {r.seconds:g} s "
         f"({r.processes} process{'es' if r.processes > 1 else ''}), events/s",
         bench.Num(rate, "{:,.0f}"), *na],
        [tag, "events accepted", bench.Num(r.accepted, "{:,.0f}"), *na],
        [tag, "duplicates, rejected, 429 answers (honoured), errors, batches lost",
         f"{dup}, {sum(rejected.values())}, {throttled}, {sum(errors.values())}, {lost}", *na],
        [tag, f"one push ({r.batch} events)", f"{len(lat):,} pushes", *latency_cells(lat)],
        [tag, "client CPU s during the pushes", bench.Num(r.client_cpu_s, "{:.1f}"), *na],
        [tag, "GET /events?after= lists them back: twice, missing, unknown; hub_seq 1..N "
         "gap-free", f"{r.listed_twice}, {r.missing}, {r.unexpected}; "
         f"{'yes' if r.gap_free else 'NO'}{': ' + r.verify_note if r.verify_note else ''} "
         f"-> {'ok' if ok else 'FAILED'}", *na],
        [tag, f"baseline: raw {raw_name} multi-row INSERTs of {r.batch}, {r.devices} connections "
         "at once, same rows, events/s", bench.Num(raw, "{:,.0f}"), *na],
        [tag, "hub rate / raw rate (same run)", bench.Num(rate / raw, "{:.2f}"), *na],
    ]


def plain(obj: Any) -> Any:
    """Dataclasses, Counters and tuples as JSON values."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, dict):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if isinstance(obj, float):
        return round(obj, 6)
    return obj


def as_json(result: StreamResult | IngestResult) -> dict[str, Any]:
    doc = plain(result)
    if isinstance(result, IngestResult):
        for p in doc["pushes"]:
            p["stored"] = len(p.pop("stored_ids"))
        doc["accepted"] = result.accepted
    return doc


# -- main ----------------------------------------------------------------------------------------
def hub_env(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.startswith("SCANEDGE_"):
        raise argparse.ArgumentTypeError("expected SCANEDGE_NAME=VALUE")
    return name, value


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", choices=("sqlite", "postgres", "ingest", "all"), default="all")
    ap.add_argument("--postgres", default=DEFAULT_PG,
                    help="PostgreSQL database URL (dropped and created again per scenario)")
    ap.add_argument("--devices", type=int, help="device streams (default 2,000 on SQLite, "
                                                "5,000 on PostgreSQL)")
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--processes", type=int, default=3, help="hub processes (postgres)")
    ap.add_argument("--freezes", type=int, default=20, help="freezes, one a second")
    ap.add_argument("--settle", type=float, default=10.0,
                    help="seconds to wait for the last freeze's deliveries")
    ap.add_argument("--connects", type=int, default=100, help="stream connects in flight")
    ap.add_argument("--connect-timeout", type=float, default=30.0)
    ap.add_argument("--max-retries", type=int, default=10, help="stream connects after a 429")
    ap.add_argument("--admin-seconds", type=float, default=20.0)
    ap.add_argument("--admin-rate", type=float, default=10.0, help="admin requests a second")
    ap.add_argument("--storage", choices=("postgres", "sqlite"), default="postgres",
                    help="the ingest scenario's hub database")
    ap.add_argument("--ingest-processes", type=int, default=1)
    ap.add_argument("--ingest-devices", type=int, default=20)
    ap.add_argument("--batch", type=int, default=200, help="events per push")
    ap.add_argument("--seconds", type=float, default=10.0, help="ingest duration")
    ap.add_argument("--json", type=Path, help="write the raw numbers here")
    ap.add_argument("--hub-env", type=hub_env, action="append", default=[], metavar="NAME=VALUE",
                    help="a setting for the hubs, e.g. SCANEDGE_HUB_PUSH_RATE=5 (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    bench.add_repeat(ap, 2, why="a run of every scenario takes ~2 min on 2 busy cores")
    args = ap.parse_args()
    args.hub_env = dict(args.hub_env)
    limit = raise_nofile()
    interrupt_on_sigterm()
    started = time.monotonic()
    runs, loads = bench.run_repeated(args.repeat, lambda: one_run(args))
    print(bench.table(["scenario", "what", "result", "p50 ms", "p99 ms", "max ms"],
                      [[row for rows, _ in run for row in rows] for run in runs]))
    print(f"\n{bench.runs_footer(loads, started)}")
    if args.json:
        raw = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
               "nofile": limit, "runs": [dict(doc for _, doc in run) for run in runs]}
        args.json.write_text(json.dumps(raw, indent=1, default=str))
    return 0


def one_run(args: argparse.Namespace) -> list[tuple[list[list[bench.Cell]], tuple[str, Any]]]:
    """Every wanted scenario once, on fresh hubs and databases: each one's rows and raw numbers."""
    wanted = ("sqlite", "postgres", "ingest") if args.scenario == "all" else (args.scenario,)
    out: list[tuple[list[list[bench.Cell]], tuple[str, Any]]] = []
    work = Path(tempfile.mkdtemp(prefix="scanedge-fleet-bench-"))
    try:
        if "sqlite" in wanted:
            r = run_streams("sqlite", str(work / "sqlite" / "hub.db"), args.devices or 2000, 1,
                            args, work / "sqlite")
            out.append((stream_rows(r), ("sqlite", as_json(r))))
        if "postgres" in wanted:
            r = run_streams("postgresql", fresh_postgres(args.postgres), args.devices or 5000,
                            args.processes, args, work / "postgres")
            out.append((stream_rows(r), ("postgres", as_json(r))))
        if "ingest" in wanted:
            (work / "ingest").mkdir(parents=True, exist_ok=True)
            ri = run_ingest(args, work / "ingest")
            out.append((ingest_rows(ri), ("ingest", as_json(ri))))
    finally:
        if args.keep:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return out


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("fleet: interrupted (hubs stopped)", file=sys.stderr)
        sys.exit(130)
