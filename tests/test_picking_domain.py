"""Picking rules, pure: the layout file, location codes, routes (against brute force), waves."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime, timedelta

import pytest

from scanedge.edge.domain.layout import Layout, LayoutError, parse_layout
from scanedge.edge.domain.orders import OrderError, parse_order
from scanedge.edge.domain.routing import (
    distance,
    held_karp,
    route,
    rr_order,
    s_shape_order,
    tour_length,
)
from scanedge.edge.domain.waves import Candidate, WaveLimits, build_waves

DESIGN_LAYOUT = """
aisles = 20            # aisles 1..20, left to right, aisle_pitch_m apart (x = (aisle - 1) * pitch)
bins = 60              # bin positions 1..60 along each aisle (y = bin * bin_pitch_m)
levels = 5
aisle_pitch_m = 3.0
bin_pitch_m = 1.0
depot_aisle = 1        # the depot is at the front end (y = 0) of this aisle
"""


def test_design_layout_file_reads():
    layout = parse_layout(DESIGN_LAYOUT)
    assert (layout.aisles, layout.bins, layout.levels, layout.depth_m) == (20, 60, 5, 61.0)
    loc = layout.location("A-03-17-2")
    assert (loc.zone, loc.aisle, loc.bin, loc.level) == ("A", 3, 17, 2)


@pytest.mark.parametrize("text, problem", [
    ("bins = 5", "aisles is required"),
    ("aisles = 0\nbins = 5", "aisles = 0"),
    ("aisles = 3\nbins = 5\ndepot_aisle = 4", "depot_aisle = 4"),
    ("aisles = 3\nbins = 5\naisle_pitch_m = -1", "aisle_pitch_m"),
    ("aisles = 3\nbins = 5\ncolour = 'red'", "unknown key 'colour'"),
    ("aisles = 3\nbins = ", "not valid TOML"),
    ("aisles = 3\nbins = 5\nzones = ['a']", "zones"),
])
def test_bad_layouts_say_why(text, problem):
    with pytest.raises(LayoutError, match=problem):
        parse_layout(text)


@pytest.mark.parametrize("code, problem", [
    ("A-3-17", "expected ZONE-AA-BB-L"),
    ("A-21-01-1", "aisle 21 outside 1..20"),
    ("A-01-61-1", "bin 61 outside 1..60"),
    ("A-01-01-6", "level 6 outside 1..5"),
    ("B-01-01-1", "zone B is not in this layout"),
    (17, "expected text"),
])
def test_bad_locations_say_why(code, problem):
    layout = Layout(zones=("A",))
    with pytest.raises(LayoutError, match=problem):
        layout.location(code)


def test_order_fields_for_picking():
    order = parse_order({"order_id": "SO-1", "ship_by": "2026-05-01T16:00:00+08:00",
                         "category": "cosmetics",
                         "lines": [{"sku": "1", "qty": 1, "location": "a-03-17-2"},
                                   {"sku": "2", "qty": 1}]})
    assert order.lines[0].location == "A-03-17-2" and order.lines[1].location is None
    assert order.ship_by == datetime(2026, 5, 1, 8, tzinfo=UTC)
    assert parse_order(order.to_json()) == order
    with pytest.raises(OrderError, match="location"):
        parse_order({"order_id": "SO-2", "lines": [{"sku": "1", "qty": 1, "location": "shelf 3"}]})
    with pytest.raises(OrderError, match="ship_by"):
        parse_order({"order_id": "SO-2", "ship_by": "tomorrow", "lines": [{"sku": "1", "qty": 1}]})


# -- routes -------------------------------------------------------------------------------------
def brute_force(layout, points):
    pts = sorted(set(points))
    return min((tour_length(layout, list(p)) for p in itertools.permutations(pts)), default=0.0)


@pytest.mark.parametrize("p, q, metres", [
    ((1, 5.0), (1, 9.0), 4.0),               # same aisle
    ((1, 5.0), (2, 4.0), 3.0 + 9.0),         # via the front
    ((1, 55.0), (3, 58.0), 6.0 + 6.0 + 3.0),  # via the back (61 - 55 + 61 - 58)
])
def test_walking_model(p, q, metres):
    assert distance(Layout(), p, q) == metres


@pytest.mark.parametrize("points, expected", [
    ([], 0.0),
    ([(1, 10.0)], 20.0),                            # in and back out of the depot's aisle
    ([(1, 10.0), (1, 50.0)], 100.0),
    ([(2, 30.0)], 3 + 30 + 30 + 3),
    ([(1, 60.0), (2, 60.0)], 61 + 3 + 61 + 3),       # a loop: one traversal each way
])
def test_known_routes(points, expected):
    layout = Layout()
    _, length = rr_order(layout, points)
    assert length == pytest.approx(expected)


@pytest.mark.parametrize("depot_aisle", [1, 3, 6])
def test_optimal_router_matches_brute_force(depot_aisle):
    layout = Layout(aisles=6, bins=10, levels=2, depot_aisle=depot_aisle)
    rnd = random.Random(depot_aisle)
    for _ in range(150):
        points = [(rnd.randint(1, 6), float(rnd.randint(1, 10))) for _ in range(rnd.randint(1, 7))]
        order, length = rr_order(layout, points)
        assert sorted(order) == sorted(set(points))
        best = brute_force(layout, points)
        assert length == pytest.approx(best)
        assert tour_length(layout, order) == pytest.approx(best)
        assert tour_length(layout, s_shape_order(points)) >= best - 1e-9


def test_optimal_router_matches_held_karp_on_the_design_layout():
    layout = Layout()
    rnd = random.Random(7)
    for _ in range(40):
        points = [(rnd.randint(1, 20), float(rnd.randint(1, 60))) for _ in range(rnd.randint(8, 11))]
        assert rr_order(layout, points)[1] == pytest.approx(held_karp(layout, points))


def test_route_lists_every_code_once_in_order_and_picks_the_better():
    layout = Layout()
    codes = ["A-05-10-1", "A-01-40-3", "A-05-10-4", "A-12-59-1", "A-01-40-3"]
    r = route(layout, [layout.location(c) for c in codes])
    assert sorted(r.stops) == sorted(codes)
    assert r.stops.index("A-05-10-1") + 1 == r.stops.index("A-05-10-4")  # same bin together
    s = route(layout, [layout.location(c) for c in codes], "s_shape")
    assert r.length_m <= s.length_m
    assert route(layout, []).as_json() == {"stops": [], "length_m": 0.0, "method": "empty"}


# -- waves --------------------------------------------------------------------------------------
NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def cand(oid, priority="P2", ship_in_h=None, carrier="SF", lines=1, units=1, **kw):
    ship = NOW + timedelta(hours=ship_in_h) if ship_in_h is not None else None
    return Candidate(oid, priority, ship, carrier, lines, units, **kw)


@pytest.mark.parametrize("orders, expected_first", [
    ([cand("late", ship_in_h=48), cand("p0", "P0")], ["p0", "late"]),
    ([cand("tomorrow", ship_in_h=20), cand("today", ship_in_h=6)], ["today", "tomorrow"]),
    ([cand("none"), cand("later", ship_in_h=100), cand("sooner", ship_in_h=50)],
     ["sooner", "later", "none"]),
    ([cand("p3-today", "P3", ship_in_h=2), cand("p1", "P1", ship_in_h=30)], ["p3-today", "p1"]),
])
def test_urgent_first(orders, expected_first):
    plan = build_waves(orders, now=NOW)
    assert list(plan.waves[0].order_ids) == expected_first


def test_carrier_capacity_leaves_the_rest_waiting_with_a_reason():
    orders = [cand(f"O{i}", carrier="SF", ship_in_h=i) for i in range(5)] + [cand("J", carrier="JT")]
    plan = build_waves(orders, now=NOW, carrier_capacity={"SF": 3}, carrier_used={"SF": 1})
    placed = [o for w in plan.waves for o in w.order_ids]
    assert placed == ["O0", "O1", "J"]
    assert {(w.order_id, w.reason) for w in plan.waiting} == {("O2", "carrier_capacity"),
                                                              ("O3", "carrier_capacity"),
                                                              ("O4", "carrier_capacity")}


@pytest.mark.parametrize("limits, sizes, expected", [
    (WaveLimits(max_orders=2), [1, 1, 1], [["A", "B"], ["C"]]),
    (WaveLimits(max_lines=4), [3, 1, 2], [["A", "B"], ["C"]]),
    (WaveLimits(max_totes=2, units_per_tote=10), [15, 5, 1], [["A"], ["B", "C"]]),
])
def test_limits(limits, sizes, expected):
    orders = [cand(oid, ship_in_h=i, lines=n if limits.max_lines != 60 else 1,
                   units=n if limits.max_totes != 12 else 1)
              for i, (oid, n) in enumerate(zip("ABC", sizes, strict=True))]
    plan = build_waves(orders, now=NOW, limits=limits)
    assert [list(w.order_ids) for w in plan.waves] == expected


def test_too_large_frozen_and_pack_only_orders():
    orders = [cand("big", lines=100), cand("cold", frozen=True), cand("pack", has_locations=False),
              cand("ok")]
    plan = build_waves(orders, now=NOW)
    assert [list(w.order_ids) for w in plan.waves] == [["ok"]]
    assert {(w.order_id, w.reason) for w in plan.waiting} == {("big", "too_large"),
                                                              ("cold", "frozen")}


def test_recompute_never_moves_a_started_order_and_is_stable():
    orders = [cand(f"O{i}", ship_in_h=24 + i) for i in range(30)]
    first = build_waves(orders, now=NOW, limits=WaveLimits(max_orders=5))
    started = set(first.waves[1].order_ids)
    again = [Candidate(**{**c.__dict__, "started": c.order_id in started}) for c in orders]
    second = build_waves([*again, cand("new-p0", "P0")], now=NOW, limits=WaveLimits(max_orders=5))
    placed = [o for w in second.waves for o in w.order_ids]
    assert not started & set(placed)
    assert placed[0] == "new-p0"
    assert build_waves(orders, now=NOW, limits=WaveLimits(max_orders=5)) == first  # reproducible


# -- the interception report's stages -----------------------------------------------------------
@pytest.mark.parametrize("actions, expected", [
    ([("pick", 2.0)], {"pick": (1, 1, 2.0), "pack": (0, 0, None), "print": (0, 0, None),
                       "dock": (0, 0, None)}),
    ([("pick", 2.0), ("scan", 30.0), ("scan", 31.0), ("print", 90.0)],
     {"pick": (1, 1, 2.0), "pack": (1, 2, 30.0), "print": (1, 1, 90.0), "dock": (0, 0, None)}),
    ([("waybill", 5.0)], {"pick": (0, 0, None), "pack": (1, 1, 5.0), "print": (0, 0, None),
                          "dock": (0, 0, None)}),
    ([("dock", 600.0)], {"pick": (0, 0, None), "pack": (0, 0, None), "print": (0, 0, None),
                         "dock": (1, 1, 600.0)}),
])
def test_interception_report_per_stage(actions, expected):
    from scanedge.edge.domain.interception_report import DeviceEvent, FreezeRecord, build_report, format_table

    issued = datetime(2026, 5, 1, 9, tzinfo=UTC)
    freeze = FreezeRecord("c1", "SO-1", "cancel", issued)
    events = [DeviceEvent("gw", "interception", "SO-1", issued + timedelta(seconds=s),
                          {"action": a, "station": "pda-1", "seconds_since_freeze": s,
                           "freeze_issued_at": issued.isoformat()}) for a, s in actions]
    report = build_report(issued - timedelta(days=1), [freeze], [], events)
    got = {s.stage: (s.freezes, s.interceptions, s.median_s) for s in report.stages}
    assert got == expected
    assert "| pick |" in format_table(report)
