"""Pack evidence: upload throughput to the hub and the scans' latency while a video uploads.

    .venv/bin/python benchmarks/evidence.py                  # 3 runs, 50 MB, throttled and not
    .venv/bin/python benchmarks/evidence.py --mb 50 --rate 200 --upload-mbps 4 --upload-mbps 1000

Each run starts a real ``scanedge hub`` and, per ``--upload-mbps``, a real ``scanedge serve``
enrolled at it (``evidence_upload_mbps``), with the demo's orders. Then:

1. *alone*: scans at ``--rate``/s for ``--duration`` s, open-loop (the scan client of
   benchmarks/scan_ingest.py: latency counts from each scan's scheduled time);
2. the bench sends a ``--mb`` MB video to ``POST /api/v1/orders/SO-1004/evidence`` (kept on the
   device: the time is the device's local store), and at once
3. *uploading*: scans at the same rate, in 1 s slices for as long as the device's uploader sends
   the video to the hub in 1 MB checksummed chunks (their latencies pooled); the upload's time
   runs until ``GET /api/v1/evidence/uploads`` says nothing is pending (the hub verified and
   stored the whole).

The table gives each number as median [min-max] of the runs, under the machine's facts: client,
edge and hub share the machine, so its load moves the numbers; the edge process's CPU (user +
system, per wall second, from /proc) alone and while uploading moves less with the load and
says what the upload costs the device.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from _common import Num, cpu_seconds, free_port, run_repeated, table, wait_healthy
from scan_ingest import SCANEDGE, run_phase

ROOT = Path(__file__).resolve().parent.parent
SLICE_S = 1.0  # scans while uploading are sent in slices of this, until the upload ends


def _hub_class() -> type:
    """benchmarks/sync.py's ``Hub`` (a ``scanedge hub`` process and ``add-device``)."""
    spec = importlib.util.spec_from_file_location("bench_sync", Path(__file__).with_name("sync.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Hub


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def one_edge(args: argparse.Namespace, hub, workdir: Path, mbps: float) -> dict[str, float]:
    """One device at ``mbps``: scans alone, the video stored, scans while it uploads."""
    name = f"ev-{int(mbps)}"
    token = hub.add_device(name)
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SCANEDGE_")},
           "SCANEDGE_DATA_DIR": str(workdir / name), "SCANEDGE_LISTEN": f"127.0.0.1:{port}",
           "SCANEDGE_DEVICE_ID": name, "SCANEDGE_HUB_URL": hub.url, "SCANEDGE_HUB_TOKEN": token,
           "SCANEDGE_HUB_TRUST_FIRST_KEY": "true", "SCANEDGE_EVIDENCE_UPLOAD_MBPS": str(mbps),
           "SCANEDGE_EVIDENCE_CLIP_MAX_MB": str(args.mb + 10)}
    subprocess.run([SCANEDGE, "orders", "import", "--demo"], env=env, check=True,
                   capture_output=True)
    server = subprocess.Popen([SCANEDGE, "serve"], env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    out: dict[str, float] = {}
    try:
        wait_healthy(base + "/healthz")
        run_phase("127.0.0.1", port, rate=None, duration=1.0, processes=1, threads=2)  # warm-up
        cpu0, w0 = cpu_seconds(server.pid), time.perf_counter()
        alone = run_phase("127.0.0.1", port, rate=args.rate, duration=args.duration,
                          processes=2, threads=8)
        cpu_alone = (cpu_seconds(server.pid) - cpu0) / (time.perf_counter() - w0)
        video = b"\x1aE\xdf\xa3" + os.urandom(int(args.mb * 1024 * 1024) - 4)
        t0 = time.perf_counter()
        req = urllib.request.Request(base + "/api/v1/orders/SO-1004/evidence?duration_s=30",
                                     data=video, method="POST",
                                     headers={"Content-Type": "video/webm"})
        with urllib.request.urlopen(req, timeout=120) as r:
            assert r.status == 201, r.status
        stored_s = time.perf_counter() - t0
        done: dict[str, float] = {}

        def watch() -> None:  # the upload's end, seen from the device's API
            while time.perf_counter() - t0 < 600:
                if _get(base + "/api/v1/evidence/uploads")["pending_blobs"] == 0:
                    done["at"] = time.perf_counter()
                    return
                time.sleep(0.1)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        # scans in slices of SLICE_S for as long as the upload runs (one slice at least): the
        # numbers are of scans made while it uploads, however fast it goes
        pooled: list[float] = []
        errors, slices = 0, 0
        cpu0, w0 = cpu_seconds(server.pid), time.perf_counter()
        while slices == 0 or ("at" not in done and time.perf_counter() - t0 < 600):
            errors += run_phase("127.0.0.1", port, rate=args.rate, duration=SLICE_S,
                                processes=2, threads=8, latencies=pooled)["errors"]
            slices += 1
        scans_end = time.perf_counter()
        cpu_busy = (cpu_seconds(server.pid) - cpu0) / (scans_end - w0)
        watcher.join(600)
        upload_s = done.get("at", float("nan")) - (t0 + stored_s)
        pooled.sort()
        out = {"alone_p50": alone["p50_ms"], "alone_p99": alone["p99_ms"],
               "busy_p50": 1000 * statistics.median(pooled),
               "busy_p99": 1000 * pooled[min(len(pooled) - 1, int(len(pooled) * 0.99))],
               "busy_max": 1000 * pooled[-1], "busy_scans": len(pooled),
               "errors": alone["errors"] + errors,
               "cpu_alone": 100 * cpu_alone, "cpu_busy": 100 * cpu_busy,
               "store_mbs": args.mb / stored_s, "upload_s": upload_s,
               "upload_mbs": args.mb / upload_s,
               # how much of the pooled scan time ran with the upload going
               "overlap": min(1.0, (min(done.get("at", scans_end), scans_end) - t0 - stored_s)
                              / (scans_end - t0 - stored_s))}
    finally:
        server.terminate()
        server.wait(20)
    return out


def one_run(args: argparse.Namespace) -> dict[float, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="scanedge-evidence-") as tmp, \
            tempfile.TemporaryDirectory(prefix="scanedge-evidence-hub-", dir=args.hub_dir) as hub_tmp:
        workdir = Path(tmp)
        hub = _hub_class()(Path(hub_tmp), str(Path(hub_tmp) / "hub.db"))
        try:
            return {mbps: one_edge(args, hub, workdir, mbps) for mbps in args.upload_mbps}
        finally:
            hub.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=50.0, help="the video's size (default 50 MB)")
    ap.add_argument("--rate", type=float, default=200.0, help="scans/s (default 200)")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per scan phase")
    ap.add_argument("--upload-mbps", type=float, action="append",
                    help="evidence_upload_mbps of a device (repeatable; default 4 and 1000)")
    ap.add_argument("--repeat", type=int, default=3, help="runs (default 3)")
    ap.add_argument("--hub-dir", help="where the hub keeps its data and blobs (default: beside the "
                    "device's; /dev/shm stands for a hub on another machine's disk)")
    args = ap.parse_args()
    args.upload_mbps = args.upload_mbps or [4.0, 1000.0]
    runs, loads = run_repeated(args.repeat, lambda: one_run(args), lambda r: "; ".join(
        f"{m:g} MB/s: upload {v['upload_mbs']:.1f} MB/s, scan p99 {v['alone_p99']:.1f} -> "
        f"{v['busy_p99']:.1f} ms" for m, v in r.items()))
    header = ["evidence_upload_mbps", "video stored on the device MB/s", "upload to the hub MB/s",
              "upload s", "scan time uploading %", f"scan p99 ms alone ({args.rate:g}/s)",
              "scans uploading", "scan p50 ms uploading", "scan p99 ms uploading", "scan max ms uploading",
              "edge CPU % alone", "edge CPU % uploading", "errors"]
    rows = [[[Num(m, "{:g}"), Num(v["store_mbs"]), Num(v["upload_mbs"], "{:.1f}"),
              Num(v["upload_s"], "{:.1f}"), Num(100 * v["overlap"]),
              Num(v["alone_p99"], "{:.2f}"), Num(v["busy_scans"]), Num(v["busy_p50"], "{:.2f}"),
              Num(v["busy_p99"], "{:.2f}"), Num(v["busy_max"], "{:.1f}"),
              Num(v["cpu_alone"]), Num(v["cpu_busy"]), Num(v["errors"])] for m, v in r.items()] for r in runs]
    print(f"\n{args.mb:g} MB video; {args.duration:g} s per scan phase; the hub's data in "
          f"{args.hub_dir or 'the temporary folder beside the device'}; load average (1 min) "
          "after each run: " + ", ".join(f"{x:.2f}" for x in loads))
    print(table(header, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
