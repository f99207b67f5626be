"""Labels and printing: render + encode time and bytes per label for each paper, and a burst
through the virtual printer over TCP.

    .venv/bin/python benchmarks/print.py [ORDERS.json] [--burst 200] [--labels 30] [--repeat 3]

Orders default to ../shared/data/orders.json when present, else the demo orders. Baseline in
the same run: python-escpos encoding the same image on its own, with our encode's time as a
ratio to it.
Runs ``--repeat`` times; the tables give each number as median [min-max] of the runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from _common import Cell, Num, add_repeat, percentile, run_repeated, runs_footer, table  # noqa: E402

from scanedge.edge.domain.orders import parse_order  # noqa: E402
from scanedge.printers.encode import label_bytes  # noqa: E402
from scanedge.printers.layout import load_template, render_label  # noqa: E402
from scanedge.printers.models import get_model  # noqa: E402


def _orders(path: str | None) -> list:
    candidates = [Path(path)] if path else [ROOT.parent / "shared" / "data" / "orders.json",
                                             ROOT / "edge" / "demo" / "orders.json"]
    for p in candidates:
        if p.is_file():
            doc = json.loads(p.read_text(encoding="utf-8"))
            docs = doc if isinstance(doc, list) else [doc]
            out = []
            for d in docs:
                with contextlib.suppress(ValueError):
                    out.append(parse_order(d))
            print(f"orders: {p} ({len(out)})\n")
            return out
    raise SystemExit("no orders file")


def _ms(samples: list[float]) -> list[Cell]:
    """p50 and p95 of one run's times (seconds) in ms."""
    return [Num(1000 * percentile(samples, q), "{:.1f}") for q in (0.5, 0.95)]


def bench_render(orders: list, repeat: int) -> list[list[Cell]]:
    from escpos.printer import Dummy

    rows: list[list[Cell]] = []
    for paper in ("58", "80", "100x150"):
        template = load_template(f"standard_{paper}")
        model = get_model(f"generic-{paper}")
        render_s, encode_s, sizes, raw_s = [], [], [], []
        when = datetime(2025, 3, 1, 9, 30)
        render_label(orders[0], template, printed_at=when)  # warm the font cache
        for i in range(repeat):
            order = orders[i % len(orders)]
            t0 = time.perf_counter()
            image, _ = render_label(order, template, printed_at=when)
            t1 = time.perf_counter()
            data = label_bytes([image], model)
            t2 = time.perf_counter()
            render_s.append(t1 - t0)
            encode_s.append(t2 - t1)
            sizes.append(len(data))
            # raw library: python-escpos on its own, same image, no model table
            t3 = time.perf_counter()
            d = Dummy()
            d.profile.profile_data = {**d.profile.profile_data, "media": {"width": {"pixels": model.dots}}}
            d.image(image)
            d.cut()
            raw_s.append(time.perf_counter() - t3)
        total = [a + b for a, b in zip(render_s, encode_s, strict=True)]
        rows.append([paper, template.name, model.name, *_ms(render_s), *_ms(encode_s),
                     Num(statistics.median(total) * 1000, "{:.1f}"),
                     Num(statistics.median(sizes)), Num(statistics.median(raw_s) * 1000, "{:.1f}"),
                     Num(statistics.median(encode_s) / statistics.median(raw_s), "{:.2f}")])
    return rows


def bench_burst(orders: list, count: int, speed: float) -> list[Cell]:
    from scanedge.edge.config import load_settings
    from scanedge.edge.importing import import_orders
    from scanedge.edge.store import Store
    from scanedge.printers.service import PrintService
    from scanedge.printers.sim import VirtualPrinter

    with tempfile.TemporaryDirectory() as tmp, VirtualPrinter(speed_mm_s=speed) as sim:
        # print_policy off: the burst measures the queue and the printer, not the bench's gate
        # (nothing is packed here; with the default 'strict' every submit is refused)
        settings = load_settings(env={}, data_dir=tmp, device_id="bench", printer=sim.address,
                                 printer_model="generic-80", print_policy="off")
        store = Store(settings.edge_db_path)
        import_orders(store, [(f"#{i}", o.to_json()) for i, o in enumerate(orders)])
        service = PrintService(store, settings, poll_interval=0.05, start=False)
        jobs = [service.submit(orders[i % len(orders)].order_id) for i in range(count)]
        t0 = time.perf_counter()
        service.start()
        ok = sim.wait_labels(count, timeout=600)
        done = 0
        for _ in range(500):  # the last job is recorded after its status poll
            done = sum(1 for j in jobs if (service.get(j.job_id) or j).state == "printed")
            if done == count:
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - t0
        service.stop()
        store.close()
        label = f"{speed:.0f} mm/s" if speed else "instant"
        return [str(count), label, Num(elapsed, "{:.2f}"), Num(count / elapsed, "{:.1f}"),
                Num(len(sim.labels)), Num(done), Num(len(sim.received) / count / 1024, "{:.1f}"),
                "yes" if ok else "NO"]


def bench_ewaybills(repeat: int) -> list[list[Cell]]:
    """Carrier labels (docs/printing.md, "Carrier labels"): render, encode, and the self-check
    that submit_ewaybill runs before queueing (zxing-cpp and zbar on the rendered image)."""
    import numpy as np

    from scanedge.edge.domain.ewaybill import EWaybill
    from scanedge.printers.ewaybill_label import CARRIERS, SIZES, ewaybill_template, render_ewaybill
    from scanedge.printers.selfcheck import ewaybill_problems

    data = ROOT / "tests" / "data" / "printers"
    order = parse_order(json.loads((data / "order_p0_gift.json").read_text(encoding="utf-8")))
    rows: list[list[Cell]] = []
    for carrier in CARRIERS:
        doc = json.loads((data / f"ewaybill_{carrier.lower()}.json").read_text(encoding="utf-8"))
        ewb = EWaybill.from_json({**doc, "order_id": order.order_id})
        for size in SIZES:
            template = ewaybill_template(carrier, size)
            model = get_model("generic-80" if size == "76x130" else f"generic-{size}")
            render, encode, check, problems, size_bytes = [], [], [], [], 0
            for _ in range(repeat):
                t0 = time.perf_counter()
                image, _ = render_ewaybill(ewb, template, order=order, station="bench-1")
                t1 = time.perf_counter()
                size_bytes = len(label_bytes([image], model))
                t2 = time.perf_counter()
                problems = ewaybill_problems(np.asarray(image.convert("L")), ewb.number, ewb.qr)
                t3 = time.perf_counter()
                render.append(t1 - t0)
                encode.append(t2 - t1)
                check.append(t3 - t2)
            med = [Num(statistics.median(x) * 1000, "{:.1f}") for x in (render, encode, check)]
            rows.append([carrier, size, model.name, *med, Num(size_bytes),
                         str(problems) if problems else "yes"])
    return rows


def one_run(orders: list, args: argparse.Namespace) -> dict[str, list[list[Cell]]]:
    return {"render": bench_render(orders, args.labels),
            "ewaybill": bench_ewaybills(max(3, args.labels // 3)),
            "burst": [bench_burst(orders, args.burst, 0.0),
                      bench_burst(orders, max(10, args.burst // 10), args.speed)]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("orders", nargs="?")
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--labels", type=int, default=30,
                    help="labels rendered per paper in a run (a third of it per carrier label)")
    ap.add_argument("--speed", type=float, default=150.0,
                    help="emulated print speed for the second burst (mm/s; typical heads 150-250)")
    add_repeat(ap, why="~1 min a run")
    args = ap.parse_args()
    started = time.monotonic()
    orders = _orders(args.orders)
    runs, loads = run_repeated(args.repeat, lambda: one_run(orders, args))
    print("### Render and encode, per label\n")
    print(table(["paper", "template", "model", "render ms p50", "render ms p95", "encode ms p50",
                 "encode ms p95", "total ms p50", "bytes per label", "raw escpos encode ms p50",
                 "our encode / raw"], [r["render"] for r in runs]))
    print("\n### Carrier labels, per label\n")
    print(table(["carrier", "stock", "model", "render ms p50", "encode ms p50",
                 "self-check ms p50", "bytes", "reads back"], [r["ewaybill"] for r in runs]))
    print("\n### Burst through the virtual printer (TCP, status polled before and after each job)\n")
    print(table(["labels", "printer speed", "seconds", "labels/s", "labels printed", "jobs printed",
                 "KiB per label", "all printed"], [r["burst"] for r in runs]))
    print(f"\n{runs_footer(loads, started)}")


if __name__ == "__main__":
    main()
