"""Freeze interception: time from the hub's commit of a freeze to a device refusing a scan of it.

    .venv/bin/python benchmarks/freeze.py                       # 3 runs of 600 freezes, 20 devices
    .venv/bin/python benchmarks/freeze.py --freezes 200 --devices 5 --rate 20

A real ``scanedge hub`` process (SQLite) and N simulated devices over real HTTP. A device is what
``scanedge serve`` runs for sync: a Store, the scan service and a SyncWorker holding the hub's
stream, plus the freeze acknowledgement sender; devices are spread over a few processes (the
machine has 2 cores; 20 full edge services would measure the scheduler). Every device receives
every freeze; the moment a freeze is applied (the ``on_applied`` listener, after the commit) the
device scans the order and records when the scan came back ``frozen``.

Latency = (refused scan answered on the device) - (the admin's POST /freeze sent). The hub
commits inside that POST, so this over-states the commit-to-refusal time by at most the POST's
own duration (shown in the table). Also measured: freeze acks that reached the hub later than
3 s (``GET /api/v1/freezes?unacked=1``) and, for scale, the raw cost of an Ed25519 signature check
(``cryptography``) beside the device's whole command check. Runs ``--repeat`` times (a fresh hub
and devices each) and prints markdown tables of the median [min-max] of the runs.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SCANEDGE = str(Path(sys.executable).with_name("scanedge"))

import _common as bench  # noqa: E402

ADMIN = "bench-admin"


def _admin(url: str, method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(url + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {ADMIN}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def _devices(work: Path, hub_url: str, devices: list[tuple[str, str]], expect: int,
             ready: mp.Queue, results: mp.Queue, stop: mp.Event, hub_key: str) -> None:
    """One process running several devices until ``stop``; sends (device, order, t) results."""
    import logging

    logging.basicConfig(level=logging.ERROR)
    from scanedge.edge.config import load_settings
    from scanedge.edge.freezes.effects import AckSender
    from scanedge.edge.scanning import ScanService
    from scanedge.edge.store import Store
    from scanedge.sync import command_log
    from scanedge.sync.worker import SyncWorker

    running = []
    for device_id, token in devices:
        settings = load_settings(env={}, data_dir=str(work / device_id), device_id=device_id,
                                 station="bench", hub_url=hub_url, hub_token=token,
                                 hub_public_key=hub_key, sync_poll_s=2.0, hub_timeout_s=10.0)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(settings.edge_db_path)
        command_log.ensure_schema(store)
        scans = ScanService(store, settings)
        worker = SyncWorker(store, settings)
        acks = AckSender(store, worker.client).start()
        refused: list[tuple[str, str, float]] = []

        def on_applied(applied, scans=scans, store=store, acks=acks, refused=refused,
                       device_id=device_id) -> None:
            for freeze in applied.freezes:
                order_id = freeze["order_id"]
                answer = scans.scan(order_id, station="bench", operator="bench")
                if answer["verdict"] == "frozen":
                    refused.append((device_id, order_id, time.time()))
            # what FreezeEffects does after its work: mark the follow-ups done, ack at once
            for f in command_log.pending_effects(store.read()):
                store.write(lambda db, f=f: command_log.mark_effects(db, f.command_id, {}),
                            essential=True)
            acks.wake()

        worker.bus.on("hub_applied", on_applied)
        worker.start()
        running.append((device_id, store, worker, acks, refused))
    for device_id, store, *_ in running:  # caught up with the orders?
        while store.read().execute("SELECT COUNT(*) FROM orders").fetchone()[0] < expect:
            time.sleep(0.1)
        ready.put(device_id)
    stop.wait()
    for device_id, store, worker, acks, refused in running:
        results.put((device_id, refused))
        acks.stop()
        worker.stop()
        store.close()


def run(freezes: int, n_devices: int, rate: float, procs: int,
        keep: bool) -> dict[str, list[list[bench.Cell]]]:
    """One run on a fresh hub and fresh devices: the rows of the run's tables."""
    work = Path(tempfile.mkdtemp(prefix="scanedge-freeze-bench-"))
    port = bench.free_port()
    hub_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANEDGE_")}
    env.update(SCANEDGE_DATA_DIR=str(work / "hub"), SCANEDGE_HUB_LISTEN=f"127.0.0.1:{port}",
               SCANEDGE_HUB_DATABASE=str(work / "hub" / "hub.db"), SCANEDGE_HUB_ADMIN_TOKEN=ADMIN,
               SCANEDGE_HUB_THREADS=str(n_devices * 2 + 16), SCANEDGE_CONFLICT_WINDOW_S="15")
    from scanedge.sync.hub.storage import open_storage

    storage = open_storage(str(work / "hub" / "hub.db"))  # set up before the hub serves
    tokens = [(f"bench-{i:02d}", storage.add_device(f"bench-{i:02d}")) for i in range(n_devices)]
    hub_key = storage.signer().public_b64  # the devices are enrolled: their key is pinned
    orders = [f"BF-{i:05d}" for i in range(freezes)]
    for order_id in orders:
        storage.upsert_order({"order_id": order_id, "lines": [{"sku": "6901234567892", "qty": 1}]})
    storage.close()
    hub = subprocess.Popen([SCANEDGE, "hub"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    ctx = mp.get_context("spawn")
    ready, results, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    workers = []
    try:
        bench.wait_healthy(hub_url + "/healthz", timeout=30)
        for p in range(procs):
            mine = tokens[p::procs]
            if mine:
                w = ctx.Process(target=_devices, args=(work, hub_url, mine, freezes, ready,
                                                       results, stop, hub_key), daemon=True)
                w.start()
                workers.append(w)
        for _ in range(n_devices):
            ready.get(timeout=600)
        time.sleep(1.0)  # every stream settled into its wait
        sent: dict[str, tuple[float, float]] = {}
        post_s: list[float] = []
        start = time.perf_counter()

        def issue(order_id: str) -> None:
            t0 = time.time()
            _admin(hub_url, "POST", f"/api/v1/orders/{order_id}/freeze", {"reason": "cancel"})
            t1 = time.time()
            sent[order_id] = (t0, t1)
            post_s.append(t1 - t0)

        pool: list[threading.Thread] = []
        for i, order_id in enumerate(orders):  # open loop at ``rate`` freezes a second
            wait = start + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            t = threading.Thread(target=issue, args=(order_id,))
            t.start()
            pool.append(t)
        for t in pool:
            t.join()
        issue_s = time.perf_counter() - start
        deadline = time.monotonic() + 120
        # every device refused every order? (each device reports only at the end)
        time.sleep(2.0)
        while time.monotonic() < deadline:
            late = _admin(hub_url, "GET", "/api/v1/freezes?unacked=1&within_s=3&limit=5000")
            pending = [f for f in late["freezes"] if f["acked"] < f["expected"]]
            if not pending:
                break
            time.sleep(1.0)
        late_acks = sum(len(f["late"]) for f in late["freezes"])
        stop.set()
        got: dict[str, list] = {}
        for _ in range(n_devices):
            device_id, refused = results.get(timeout=60)
            got[device_id] = refused
    finally:
        stop.set()
        for w in workers:
            w.join(10)
        hub.terminate()
        hub.wait(10)
        if not keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)
    from_sent = [t - sent[o][0] for refused in got.values() for _, o, t in refused]
    from_answer = [t - sent[o][1] for refused in got.values() for _, o, t in refused]
    expected = freezes * n_devices
    return {"summary": [[f"{rate:g}/s", bench.Num(issue_s, "{:.1f}"), f"{len(from_sent)} of {expected}",
                         f"{late_acks} of {expected}"]],
            "latency": [_row("POST /freeze sent -> scan refused (upper bound of commit -> "
                             "refusal)", from_sent),
                        _row("POST /freeze answered -> scan refused (lower bound)", from_answer),
                        _row("the POST itself (hub: sign, bump version, commit)", post_s)],
            "verify": _verify_cost()}


def _row(name: str, values: list[float]) -> list[bench.Cell]:
    ms = [v * 1000 for v in values]
    return [name, str(len(ms)), *(bench.Num(bench.percentile(ms, q)) for q in (0.5, 0.95, 0.99)),
            bench.Num(max(ms))]


def _verify_cost(n: int = 2000) -> list[list[bench.Cell]]:
    """Raw cryptography Ed25519 verify vs. the device's whole check (canonical JSON + verify +
    pin lookup + replay lookup, in a transaction of a real store)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    from scanedge.edge.store import Store
    from scanedge.sync import command_log
    from scanedge.sync.pinning import pin_key, verify_command
    from scanedge.sync.signing import HubSigner, _unb64, signed_bytes

    signer = HubSigner.generate()
    payload = signer.sign({"command_id": "c", "order_id": "SO-1", "kind": "freeze",
                           "issued_at": "2026-11-22T08:00:00.000Z", "version": 3,
                           "reason": "cancel"})
    key = Ed25519PublicKey.from_public_bytes(_unb64(signer.public_b64))
    sig, data = _unb64(payload["signature"]), signed_bytes(payload)
    t = time.perf_counter()
    for _ in range(n):
        key.verify(sig, data)
    raw = (time.perf_counter() - t) / n
    with tempfile.TemporaryDirectory() as d:
        store = Store(Path(d) / "edge.db")
        change = {"seq": 1, "kind": "freeze", "order_id": "SO-1", "payload": payload}

        def check(db) -> float:
            command_log.ensure_tables(db)
            # an enrolled device: the hub's key pinned (with no pin every command is refused)
            pin_key(db, "dev", signer.public_b64, "config")
            t = time.perf_counter()
            for _ in range(n):
                assert verify_command(db, "dev", change) is None
                command_log.seen(db, "c")
            return (time.perf_counter() - t) / n

        ours = store.write(check)
        store.close()
    return [["raw `cryptography` Ed25519 verify", bench.Num(raw * 1e6), "1"],
            ["device: canonical JSON + verify + pinned key + replay lookup", bench.Num(ours * 1e6),
             bench.Num(ours / raw, "{:.2f}")]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--freezes", type=int, default=600,
                    help="freezes per run (default 600: 30 s of issuing at 20/s)")
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--rate", type=float, default=20.0, help="freezes issued per second")
    ap.add_argument("--procs", type=int, default=4, help="processes the devices run in")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    bench.add_repeat(ap, why="a run takes ~1 min")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)  # the TOFU warning of the verify-cost store
    started = time.monotonic()
    runs, loads = bench.run_repeated(args.repeat, lambda: run(args.freezes, args.devices, args.rate,
                                                              args.procs, args.keep))
    print(f"{args.freezes} freezes to {args.devices} devices per run\n")
    print(bench.table(["issued at", "issued in s", "refused scans recorded",
                       "acks later than 3 s at the hub"], [r["summary"] for r in runs]))
    print()
    print(bench.table(["time to refusal (ms)", "samples", "p50", "p95", "p99", "max"],
                      [r["latency"] for r in runs]))
    print()
    print(bench.table(["command check", "µs per command", "x raw verify"],
                      [r["verify"] for r in runs]))
    print(f"\n{bench.runs_footer(loads, started)}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
