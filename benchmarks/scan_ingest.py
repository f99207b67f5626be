"""Scan ingest: latency at a sustained rate and peak throughput of ``POST /api/v1/scans``.

    .venv/bin/python benchmarks/scan_ingest.py            # starts its own server in a temp dir
    .venv/bin/python benchmarks/scan_ingest.py --url http://127.0.0.1:8080   # an existing one

Client processes (separate from the server, as a fleet of PDAs would be) send scans over
keep-alive connections. The sustained phase is open-loop: each scan has a scheduled send time
and its latency counts from that time, so a stalled server cannot hide its queueing
(no coordinated omission). The peak phase is closed-loop with many connections. At the end the
outbox row count is compared with the number of answered scans: every answered scan committed.
Prints a markdown table.
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

from _common import free_port, wait_healthy

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
              threads: int) -> dict[str, float]:
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
    wall = max(r[2] for r in results)
    return {
        "scans": len(lat),
        "errors": sum(r[1] for r in results),
        "per_s": len(lat) / wall,
        "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
        "max_ms": 1000 * lat[-1] if lat else float("nan"),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="an already running edge service (default: start one)")
    ap.add_argument("--rate", type=float, default=200.0, help="sustained scans/s (default 200)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    ap.add_argument("--peak-connections", type=int, default=16)
    args = ap.parse_args()

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
        subprocess.run([SCANEDGE, "orders", "import", "--demo"], env=env, check=True,
                       capture_output=True)
        server = subprocess.Popen([SCANEDGE, "serve"], env=env, stderr=subprocess.DEVNULL)
        wait_healthy(f"http://{host}:{port}/healthz")
    try:
        warmup = run_phase(host, port, rate=None, duration=1.0, processes=1, threads=2)
        sustained = run_phase(host, port, rate=args.rate, duration=args.duration, processes=2,
                              threads=8)
        half = max(1, args.peak_connections // 2)
        peak = run_phase(host, port, rate=None, duration=args.duration, processes=2, threads=half)
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
    committed = None
    if tmp is not None:
        db = sqlite3.connect(Path(tmp.name) / "var" / "edge.db")
        committed = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]

    print("| phase | scans answered | errors | scans/s | p50 ms | p99 ms | max ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, r in ((f"sustained {args.rate:.0f}/s, 16 connections", sustained),
                    (f"peak, {2 * half} connections", peak)):
        print(f"| {name} | {r['scans']} | {r['errors']} | {r['per_s']:.0f} | {r['p50_ms']:.2f} "
              f"| {r['p99_ms']:.2f} | {r['max_ms']:.1f} |")
    if committed is not None:
        answered = warmup["scans"] + sustained["scans"] + peak["scans"]
        verdict = "every answered scan is committed" if committed >= answered else "MISSING EVENTS"
        print(f"\nanswered scans (incl. warm-up): {answered}; outbox rows after the run: "
              f"{committed} -> {verdict} (synchronous=FULL)")
    if tmp is not None:
        tmp.cleanup()
    return 0






if __name__ == "__main__":
    sys.exit(main())
