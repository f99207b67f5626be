"""Scan ingest: latency at a sustained rate and peak throughput of ``POST /api/v1/scans``.

    .venv/bin/python benchmarks/scan_ingest.py            # 3 runs, each on its own server
    .venv/bin/python benchmarks/scan_ingest.py --url http://127.0.0.1:8080   # an existing one
    .venv/bin/python benchmarks/scan_ingest.py --code-root /tmp/before   # another checkout's code

Client processes (separate from the server, as a fleet of PDAs would be) send scans over
keep-alive connections. The sustained phase is open-loop: each scan has a scheduled send time
and its latency counts from that time, so a stalled server cannot hide its queueing
(no coordinated omission). The peak phase is closed-loop with many connections. At the end the
outbox row count is compared with the number of answered scans: every answered scan committed.
Runs ``--repeat`` times (a fresh server each) and prints a markdown table of the median and the
range [min-max] of the runs, under the machine's facts (CPUs, load average, Python): the client
and the server share the machine, so its load moves the numbers. The server's CPU time per scan
(from /proc) moves less with the load than the throughput does.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import cpu_seconds, free_port, import_root, load_now, machine_facts, spread, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
SCANEDGE = str(Path(sys.executable).with_name("scanedge"))
CODES = ["SO-1001", "4006381333931", "6901234567892", "SO-1002", "SELLER-CASE-07",
         "9787115428028", "SO-1003", "SF1385628716739"]


def _client(host: str, port: int, schedule: list[float] | None, duration: float, threads: int,
            offset: int, out: mp.Queue) -> None:
    """One client process: ``threads`` connections; returns latencies (s) and errors."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    t0 = time.perf_counter()
    jobs = iter(schedule) if schedule is not None else None

    def worker(w: int) -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(host, port, timeout=30)
        i = 0
        while True:
            if jobs is not None:
                with lock:
                    due = next(jobs, None)
                if due is None:
                    break
                wait = t0 + due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                start = t0 + due
            else:
                start = time.perf_counter()
                if start - t0 > duration:
                    break
            body = json.dumps({"code": CODES[(w + i) % len(CODES)],
                               "station": f"bench-{(offset + w) % 50}"})
            i += 1
            try:
                conn.request("POST", "/api/v1/scans", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=30)
            elapsed = time.perf_counter() - start
            with lock:
                if ok:
                    latencies.append(elapsed)
                else:
                    errors += 1

    ts = [threading.Thread(target=worker, args=(w,)) for w in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put((latencies, errors, time.perf_counter() - t0))


def run_phase(host: str, port: int, *, rate: float | None, duration: float, processes: int,
              threads: int, latencies: list[float] | None = None) -> dict[str, float]:
    """One phase's numbers; ``latencies`` (a list) also gets every answered scan's seconds, for a
    caller that pools several phases (benchmarks/evidence.py)."""
    out: mp.Queue = mp.Queue()
    procs = []
    for p in range(processes):
        schedule = None
        if rate is not None:
            n = int(rate * duration)
            schedule = [i / rate for i in range(p, n, processes)]
        procs.append(mp.Process(target=_client, args=(host, port, schedule, duration, threads,
                                                      p * threads, out)))
    for pr in procs:
        pr.start()
    results = [out.get() for _ in procs]
    for pr in procs:
        pr.join()
    lat = sorted(x for r in results for x in r[0])
    if latencies is not None:
        latencies.extend(lat)
    wall = max(r[2] for r in results)
    return {
        "scans": len(lat),
        "errors": sum(r[1] for r in results),
        "per_s": len(lat) / wall,
        "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
        "max_ms": 1000 * lat[-1] if lat else float("nan"),
    }


def one_run(args: argparse.Namespace, code_root: str | None) -> dict[str, dict[str, float]]:
    """One run: a fresh server (unless ``--url``), warm-up, sustained phase, peak phase."""
    server = None
    tmp = None
    if args.url:
        host, port = args.url.split("//", 1)[1].rstrip("/").split(":")
        port = int(port)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="scanedge-bench-")
        data_dir = Path(tmp.name) / "var"
        host, port = "127.0.0.1", free_port()
        env = {**os.environ, "SCANEDGE_DATA_DIR": str(data_dir),
               "SCANEDGE_LISTEN": f"{host}:{port}", "SCANEDGE_DEVICE_ID": "bench"}
        command = [SCANEDGE]
        if code_root:  # the server from another checkout (e.g. a worktree of an earlier commit)
            env["PYTHONPATH"] = import_root(code_root)
            command = [sys.executable, "-c", "import sys; from scanedge.edge.cli import main; "
                       "sys.exit(main(sys.argv[1:]))"]
        subprocess.run([*command, "orders", "import", "--demo"], env=env, check=True,
                       capture_output=True, cwd=tmp.name)
        server = subprocess.Popen([*command, "serve"], env=env, stderr=subprocess.DEVNULL,
                                  cwd=tmp.name)
        wait_healthy(f"http://{host}:{port}/healthz")
    phases: dict[str, dict[str, float]] = {}
    try:
        half = max(1, args.peak_connections // 2)
        plan = (("warmup", None, 1.0, 1, 2), ("sustained", args.rate, args.duration, 2, 8),
                ("peak", None, args.duration, 2, half))
        for name, rate, duration, processes, threads in plan:
            cpu0 = cpu_seconds(server.pid) if server is not None else float("nan")
            phases[name] = run_phase(host, port, rate=rate, duration=duration,
                                     processes=processes, threads=threads)
            cpu = (cpu_seconds(server.pid) if server is not None else float("nan")) - cpu0
            phases[name]["server_cpu_ms"] = 1000 * cpu / max(1, phases[name]["scans"])
            phases[name]["load"] = load_now()
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
    if tmp is not None:
        db = sqlite3.connect(Path(tmp.name) / "var" / "edge.db")
        committed = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
        db.close()
        answered = sum(int(p["scans"]) for p in phases.values())
        phases["check"] = {"answered": answered, "committed": committed}
        tmp.cleanup()
    return phases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="an already running edge service (default: start one per run)")
    ap.add_argument("--rate", type=float, default=200.0, help="sustained scans/s (default 200)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    ap.add_argument("--peak-connections", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs, each on a fresh server; tables give median [min-max] (default 3)")
    ap.add_argument("--code-root", action="append",
                    help="run the server from this checkout (first on PYTHONPATH), e.g. a git "
                         "worktree of an earlier commit; twice or more: their runs alternate "
                         "(before, after, before, ...) and each gets its table")
    args = ap.parse_args()

    print(f"machine: {machine_facts()}")
    roots = args.code_root or [None]
    if args.url:
        roots = [None]
    runs: dict[str | None, list[dict[str, dict[str, float]]]] = {root: [] for root in roots}
    for i in range(args.repeat):
        for root in roots:
            r = one_run(args, root)
            runs[root].append(r)
            print(f"run {i + 1} of {_name(args, root)}: sustained p99 "
                  f"{r['sustained']['p99_ms']:.2f} ms, peak {r['peak']['per_s']:.0f} scans/s "
                  f"(p99 {r['peak']['p99_ms']:.1f} ms), server CPU "
                  f"{r['peak']['server_cpu_ms']:.2f} ms/scan at peak, load "
                  f"{r['peak']['load']:.2f} after", flush=True)
    status = 0
    for root in roots:
        print(f"\nserver: {_name(args, root)}; {args.repeat} run(s), {args.duration:g} s per phase")
        status |= report(args, runs[root])
    return status


def _name(args: argparse.Namespace, root: str | None) -> str:
    if args.url:
        return args.url
    path = Path(root).resolve() if root else ROOT
    return f"scanedge serve from {path} ({_commit(path)})"


def report(args: argparse.Namespace, runs: list[dict[str, dict[str, float]]]) -> int:
    """The table of several runs (median [min-max]) and the outbox check; 1 if scans are missing."""
    half = max(1, args.peak_connections // 2)
    print("| phase | scans answered | errors | scans/s | p50 ms | p99 ms | max ms "
          "| server CPU ms/scan |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, key in ((f"sustained {args.rate:.0f}/s, 16 connections", "sustained"),
                      (f"peak, {2 * half} connections", "peak")):
        col = {k: [r[key][k] for r in runs] for k in runs[0][key]}
        print(f"| {name} | {spread(col['scans'])} | {sum(col['errors']):.0f} "
              f"| {spread(col['per_s'])} | {spread(col['p50_ms'], '{:.2f}')} "
              f"| {spread(col['p99_ms'], '{:.2f}')} | {spread(col['max_ms'], '{:.1f}')} "
              f"| {spread(col['server_cpu_ms'], '{:.2f}')} |")
    print(f"\nmedian [min-max] of {len(runs)} run(s); load average (1 min) after each run: "
          + ", ".join(f"{r['peak']['load']:.2f}" for r in runs))
    checks = [r["check"] for r in runs if "check" in r]
    if checks:
        answered = sum(c["answered"] for c in checks)
        committed = sum(c["committed"] for c in checks)
        ok = all(c["committed"] >= c["answered"] for c in checks)
        print(f"answered scans (incl. warm-up): {answered}; outbox rows after the runs: "
              f"{committed} -> {'every answered scan is committed' if ok else 'MISSING EVENTS'} "
              f"(synchronous=FULL)")
        return 0 if ok else 1
    return 0


def _commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "not a git checkout"
    except OSError:
        return "git not found"


if __name__ == "__main__":
    sys.exit(main())
