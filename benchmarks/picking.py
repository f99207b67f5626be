"""Picking benchmark: wave building and pick routes on a 20 aisles x 60 bins x 5 levels layout.

    .venv/bin/python benchmarks/picking.py [--lists 1000] [--orders 10000] [--seed 1] [--repeat 3]

Every run starts from the same seed (the same orders and lists), so the lengths are the same in
each run and only the times spread. Prints a markdown table (docs/benchmarks.md, "Picking").
"Optimum" is the Ratliff-Rosenthal dynamic programme run on its own (exact for one block);
each run first proves it against Held-Karp (exact over the metric closure) on small lists
and stops if they ever disagree.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import Cell, Num, add_repeat, percentile, run_repeated, runs_footer, table

from scanedge.edge.domain.layout import Layout, Location
from scanedge.edge.domain.routing import held_karp, point, route, rr_order
from scanedge.edge.domain.waves import Candidate, WaveLimits, build_waves


def random_locations(layout: Layout, rnd: random.Random, n: int) -> list[Location]:
    out = []
    for _ in range(n):
        a, b, lv = rnd.randint(1, layout.aisles), rnd.randint(1, layout.bins), rnd.randint(1, layout.levels)
        out.append(Location(f"A-{a:02d}-{b:02d}-{lv}", "A", a, b, lv))
    return out


def one_run(args: argparse.Namespace) -> list[list[Cell]]:
    """One run from the seed: the same layouts and lists every run, so only the times move."""
    rnd = random.Random(args.seed)
    layout = Layout(aisles=20, bins=60, levels=5)

    # 1. the DP is exact: against Held-Karp on small lists
    checked = 0
    for _ in range(200):
        pts = [point(layout, loc) for loc in random_locations(layout, rnd, rnd.randint(2, 10))]
        dp, hk = rr_order(layout, pts)[1], held_karp(layout, pts)
        if abs(dp - hk) > 1e-6:
            raise SystemExit(f"DP {dp} != Held-Karp {hk} on {pts}")
        checked += 1

    # 2. waves for N open orders
    now = datetime(2026, 5, 1, 9, tzinfo=UTC)
    cands = [Candidate(f"SO-{i}", rnd.choice(("P0", "P1", "P2", "P2", "P3")),
                       now + timedelta(hours=rnd.randint(-4, 96)), rnd.choice(("SF", "ZTO", "JT", "YTO")),
                       rnd.randint(1, 6), rnd.randint(1, 12)) for i in range(args.orders)]
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        plan = build_waves(cands, now=now, limits=WaveLimits(),
                           carrier_capacity={"SF": 3000, "ZTO": 3000, "JT": 3000, "YTO": 3000})
        times.append(time.perf_counter() - t0)
    wave_s = statistics.median(times)

    # 3. routes
    s_len, r_len, opt_len, ratio, worse_than_s = [], [], [], [], 0
    per_list_ms, at60_ms = [], []
    for _ in range(args.lists):
        n = rnd.randint(5, 60)
        locs = random_locations(layout, rnd, n)
        t0 = time.perf_counter()
        best = route(layout, locs)
        ms = (time.perf_counter() - t0) * 1000
        per_list_ms.append(ms)
        if n >= 55:
            at60_ms.append(ms)
        s = route(layout, locs, "s_shape").length_m
        opt = rr_order(layout, [point(layout, loc) for loc in locs])[1]
        s_len.append(s)
        r_len.append(best.length_m)
        opt_len.append(opt)
        ratio.append(best.length_m / opt)
        worse_than_s += best.length_m > s + 1e-9

    saving = (1 - statistics.mean(r_len) / statistics.mean(s_len)) * 100
    m1, m2 = "{:.1f}", "{:.2f}"
    return [
        ["wave build, open orders", f"{args.orders:,}"],
        ["wave build, median of 5, ms", Num(wave_s * 1000)],
        ["waves built / orders waiting", f"{len(plan.waves)} / {len(plan.waiting)}"],
        ["pick lists (5-60 stops, uniform)", f"{args.lists:,}"],
        ["mean length: S-shape, m", Num(statistics.mean(s_len), m1)],
        ["mean length: router (best of S-shape, Ratliff-Rosenthal), m",
         Num(statistics.mean(r_len), m1)],
        ["mean length: optimum, m", Num(statistics.mean(opt_len), m1)],
        ["router vs optimum: mean, +%", Num((statistics.mean(ratio) - 1) * 100, m2)],
        ["router vs optimum: worst, +%", Num((max(ratio) - 1) * 100, m2)],
        ["router vs S-shape: mean saving, %", Num(saving, m1)],
        ["lists where the router is worse than S-shape", f"{worse_than_s}"],
        ["router time per list: mean, ms", Num(statistics.mean(per_list_ms), m2)],
        ["router time per list: p95, ms", Num(percentile(per_list_ms, 0.95), m2)],
        ["router time, 55-60 stops: mean, ms", Num(statistics.mean(at60_ms), m2)],
        ["router time, 55-60 stops: max, ms", Num(max(at60_ms), m2)],
        ["DP checked against Held-Karp (2-10 stops)", f"{checked} lists, all equal"],
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lists", type=int, default=1000)
    ap.add_argument("--orders", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    add_repeat(ap)
    args = ap.parse_args()
    started = time.monotonic()
    runs, loads = run_repeated(args.repeat, lambda: one_run(args))
    print(table(["measure", "result"], runs))
    print(f"\n{runs_footer(loads, started)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
