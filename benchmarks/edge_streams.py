"""Page streams: scan latency on one edge with hundreds of pages live on ``GET /api/v1/stream``.

    .venv/bin/python benchmarks/edge_streams.py            # 300 streams, 200 scans/s, 10 s
    .venv/bin/python benchmarks/edge_streams.py --streams 600 --json out.json

Starts ``scanedge serve`` (its own data dir in a temp dir, the demo orders imported). A client
process opens the page streams with bare asyncio connections (SSE parsed by hand), spread over
``--stations`` station names as the PDA pages do (``?station=``), plus ``--everything`` streams
that get every message (``?all=1``, the supervisor page). Another process drives scans at
``--rate`` per second, open-loop (each scan has a scheduled send time and its latency counts from
it, so a stalled server cannot hide its queueing) over a few keep-alive connections, each scan
for the next station in turn. The same scan load runs first with no stream open: the baseline.
Reports scan latency, the bus messages the streams received against what their stations make
expected, and the edge's RSS. Runs ``--repeat`` times (a fresh edge each) and prints a markdown
table of the median [min-max] of the runs, with each run's p99 with streams as a ratio to its
p99 without.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from _common import (
    Cell,
    Num,
    add_repeat,
    cpu_seconds,
    free_port,
    run_repeated,
    runs_footer,
    table,
    wait_healthy,
)

SCANEDGE = str(Path(sys.executable).with_name("scanedge"))
CODES = ["SO-1001", "4006381333931", "6901234567892", "SO-1002", "SELLER-CASE-07",
         "9787115428028", "SO-1003", "SF1385628716739"]
CONNECTIONS = 8  # keep-alive connections of the scan driver


# --- the scan driver (a process of its own) -------------------------------------------------------


def _scan_load(host: str, port: int, rate: float, duration: float, stations: int,
               out: mp.Queue) -> None:
    """Open-loop scans: scan i is due at i / rate s, for station i mod ``stations``."""
    due = iter(range(int(rate * duration)))
    lock = threading.Lock()
    latencies: list[float] = []
    answered: Counter[str] = Counter()
    errors = 0
    t0 = time.perf_counter() + 0.05

    def worker() -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(host, port, timeout=30)
        while True:
            with lock:
                i = next(due, None)
            if i is None:
                break
            start = t0 + i / rate
            if (wait := start - time.perf_counter()) > 0:
                time.sleep(wait)
            station = f"bench-{i % stations}"
            body = json.dumps({"code": CODES[i % len(CODES)], "station": station})
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
                    answered[station] += 1
                else:
                    errors += 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(CONNECTIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put({"latencies": latencies, "errors": errors, "wall": time.perf_counter() - t0,
             "answered": dict(answered)})


def run_scans(host: str, port: int, rate: float, duration: float, stations: int) -> dict:
    out: mp.Queue = mp.Queue()
    proc = mp.Process(target=_scan_load, args=(host, port, rate, duration, stations, out))
    proc.start()
    result = out.get()
    proc.join()
    lat = sorted(result["latencies"])
    return {
        "scans": len(lat),
        "errors": result["errors"],
        "per_s": len(lat) / result["wall"],
        "p50_ms": 1000 * statistics.median(lat) if lat else float("nan"),
        "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan"),
        "max_ms": 1000 * lat[-1] if lat else float("nan"),
        "answered": result["answered"],
    }


# --- the page streams (a process of its own, one event loop) --------------------------------------


class StreamCounts:
    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.state = False
        self.error: str | None = None


async def _read_stream(host: str, port: int, path: str, counts: StreamCounts) -> None:
    """One page: GET the stream, then count SSE events (chunked framing undone by hand)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: text/event-stream\r\n\r\n"
                     .encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 200:
            counts.error = f"HTTP {status}"
            return
        buffer = b""
        while True:
            size = int((await reader.readline()).strip() or b"0", 16)
            if size == 0:
                return  # the edge ended the stream
            buffer += (await reader.readexactly(size + 2))[:-2]
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                for line in event.split(b"\n"):
                    if line.startswith(b"event: "):
                        kind = line[7:].decode()
                        counts.kinds[kind] += 1
                        counts.state = counts.state or kind == "state"
    except (OSError, asyncio.IncompleteReadError, ValueError) as e:
        counts.error = f"{e.__class__.__name__}: {e}"
    finally:
        writer.close()


async def _streams_main(host: str, port: int, paths: list[str], ready: mp.Queue,
                        stop: Any, out: mp.Queue) -> None:
    counts = [StreamCounts() for _ in paths]
    tasks = [asyncio.create_task(_read_stream(host, port, path, c))
             for path, c in zip(paths, counts, strict=True)]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(c.state or c.error for c in counts):
        await asyncio.sleep(0.05)
    ready.put(sum(c.state and not c.error for c in counts))
    await asyncio.get_running_loop().run_in_executor(None, stop.wait)
    alive = sum(not t.done() for t in tasks)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    total: Counter[str] = Counter()
    for c in counts:
        total.update(c.kinds)
    out.put({"alive_at_end": alive, "kinds": dict(total),
             "errors": [c.error for c in counts if c.error][:5],
             "scans_by_path": [c.kinds["scan"] for c in counts]})


def _streams_process(host: str, port: int, paths: list[str], ready: mp.Queue, stop: Any,
                     out: mp.Queue) -> None:
    asyncio.run(_streams_main(host, port, paths, ready, stop, out))


def stream_paths(streams: int, stations: int, everything: int) -> list[str]:
    everything = min(everything, streams)
    paths = [f"/api/v1/stream?station=bench-{i % stations}" for i in range(streams - everything)]
    return paths + ["/api/v1/stream?station=bench-0&all=1"] * everything


def expected_messages(paths: list[str], answered: dict[str, int]) -> int:
    """Each scan reaches its station's streams and the streams that get everything."""
    total = 0
    for path in paths:
        station = path.split("station=", 1)[1].split("&", 1)[0]
        total += sum(answered.values()) if path.endswith("all=1") else answered.get(station, 0)
    return total


# --- the edge process ----------------------------------------------------------------------------


def measured(pid: int, phase: Any) -> dict:
    """Run ``phase()``; adds the edge's CPU ms per answered scan over it."""
    before = cpu_seconds(pid)
    result = phase()
    result["edge_cpu_ms_per_scan"] = 1000 * (cpu_seconds(pid) - before) / max(1, result["scans"])
    return result


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_edge(data_dir: Path) -> tuple[subprocess.Popen, str, int]:
    host, port = "127.0.0.1", free_port()
    env = {**os.environ, "SCANEDGE_DATA_DIR": str(data_dir), "SCANEDGE_LISTEN": f"{host}:{port}",
           "SCANEDGE_DEVICE_ID": "bench"}
    subprocess.run([SCANEDGE, "orders", "import", "--demo"], env=env, check=True,
                   capture_output=True)
    server = subprocess.Popen([SCANEDGE, "serve"], env=env, stderr=subprocess.DEVNULL)
    wait_healthy(f"http://{host}:{port}/healthz")
    return server, host, port


def open_streams_now(host: str, port: int) -> int:
    with urllib.request.urlopen(f"http://{host}:{port}/api/v1/overview", timeout=10) as r:
        return json.loads(r.read())["streams"]["open"]


def one_run(args: argparse.Namespace) -> dict:
    """One run on a fresh edge: the baseline scan load, then the same with the streams open."""
    tmp = tempfile.TemporaryDirectory(prefix="scanedge-streams-")
    server, host, port = start_edge(Path(tmp.name) / "var")
    paths = stream_paths(args.streams, args.stations, args.everything)
    try:
        run_scans(host, port, args.rate, 1.0, args.stations)  # warm-up
        rss_idle = rss_mib(server.pid)
        baseline = measured(server.pid, lambda: run_scans(host, port, args.rate, args.duration,
                                                          args.stations))
        ready: mp.Queue = mp.Queue()
        out: mp.Queue = mp.Queue()
        stop = mp.Event()
        client = mp.Process(target=_streams_process, args=(host, port, paths, ready, stop, out))
        client.start()
        opened = ready.get()
        time.sleep(1.0)  # the first heartbeats
        rss_streams = rss_mib(server.pid)
        loaded = measured(server.pid, lambda: run_scans(host, port, args.rate, args.duration,
                                                        args.stations))
        open_at_end = open_streams_now(host, port)
        rss_after = rss_mib(server.pid)
        stop.set()
        streams = out.get()
        client.join()
    finally:
        server.terminate()
        server.wait(15)
        tmp.cleanup()

    expected = expected_messages(paths, loaded["answered"])
    raw = {"args": {k: str(v) for k, v in vars(args).items()}, "baseline": baseline,
           "loaded": loaded, "streams_opened": opened, "streams_open_at_end": open_at_end,
           "stream_events": streams["kinds"], "stream_errors": streams["errors"],
           "scan_messages_expected": expected, "rss_mib": {
               "idle": rss_idle, "streams_open": rss_streams, "after_load": rss_after}}
    for phase in (baseline, loaded):
        del phase["answered"]
    return raw


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--streams", type=int, default=300, help="page streams open (default 300)")
    ap.add_argument("--stations", type=int, default=100, help="station names they spread over")
    ap.add_argument("--everything", type=int, default=5,
                    help="of the streams, how many get every message (?all=1, the supervisor)")
    ap.add_argument("--rate", type=float, default=200.0, help="scans/s (default 200)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    ap.add_argument("--json", type=Path, help="write the raw numbers here")
    add_repeat(ap, why="~30 s a run")
    args = ap.parse_args()
    started = time.monotonic()
    runs, loads = run_repeated(args.repeat, lambda: one_run(args))
    print_table(args, runs)
    print(f"\n{runs_footer(loads, started)}")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, default=str))
    return 0


def rows(args: argparse.Namespace, raw: dict) -> list[list[Cell]]:
    """One run's two table rows; the loaded row's p99 also as a ratio to the baseline's."""
    base, loaded = raw["baseline"], raw["loaded"]
    received = raw["stream_events"].get("scan", 0)
    out: list[list[Cell]] = []
    for name, phase, open_, messages, rss, ratio in (
            ("baseline: no stream", base, "0", "-", raw["rss_mib"]["idle"], "1"),
            (f"{args.streams} streams over {args.stations} stations (+{args.everything} all)",
             loaded, Num(raw["streams_open_at_end"]),
             f"{received} of {raw['scan_messages_expected']} expected",
             raw["rss_mib"]["streams_open"],
             Num(loaded["p99_ms"] / base["p99_ms"], "{:.2f}") if base["p99_ms"] else "-")):
        out.append([name, open_, Num(phase["scans"]), Num(phase["errors"]), Num(phase["per_s"]),
                    Num(phase["p50_ms"], "{:.2f}"), Num(phase["p99_ms"], "{:.2f}"),
                    Num(phase["max_ms"], "{:.1f}"), ratio, messages,
                    Num(phase["edge_cpu_ms_per_scan"], "{:.2f}"), Num(rss)])
    return out


def print_table(args: argparse.Namespace, runs: list[dict]) -> None:
    print(table([f"phase ({args.rate:.0f} scans/s, {args.duration:.0f} s, {CONNECTIONS} "
                 "connections)", "page streams open", "scans answered", "errors", "scans/s",
                 "p50 ms", "p99 ms", "max ms", "p99 / no stream's", "scan messages received by "
                 "the streams", "edge CPU ms per scan", "edge RSS MiB"],
                [rows(args, raw) for raw in runs]))
    met = sum(raw["loaded"]["p99_ms"] < 10 for raw in runs)
    print(f"\naim p99 < 10 ms with {args.streams} streams: met in {met} of {len(runs)} run(s). "
          "Streams opened per run: "
          + ", ".join(f"{raw['streams_opened']} of {args.streams}" for raw in runs)
          + "; events received per run: " + "; ".join(str(raw["stream_events"]) for raw in runs))
    errors = [e for raw in runs for e in raw["stream_errors"]]
    if errors:
        print(f"stream errors: {errors[:5]}")


if __name__ == "__main__":
    sys.exit(main())
