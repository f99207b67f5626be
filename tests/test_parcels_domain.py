"""Multi-parcel orders, the pure rules (edge/domain/parcels.py, docs/parcels.md)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from scanedge.edge.domain.labels import label_id, parcel_of, parse_label_id
from scanedge.edge.domain.orders import OrderError, parse_order
from scanedge.edge.domain.parcels import (
    Misplaced,
    ParcelError,
    Split,
    make_split,
    open_parcel,
    parcel_order,
    parcel_problems,
    parse_plan,
    place,
    sub_tracking_numbers,
    tracking_number,
    view,
)

ORDER = parse_order({
    "order_id": "SO-7", "tracking_number": "SF1234567890", "carrier": "SF",
    "expected_weight_kg": 3.0, "sub_tracking_numbers": ["sf1234567891", "SF 1234567892"],
    "gifts": [{"name": "贴纸"}],
    "lines": [{"sku": "A", "name": "水壶", "qty": 2, "unit_weight_kg": 1.0},
              {"sku": "B", "name": "杯子", "qty": 1, "unit_weight_kg": 0.5}]})


def codes(problems: list) -> list[str]:
    return [p.code for p in problems]


@pytest.mark.parametrize(("count", "packed", "plan", "expect"), [
    (2, (0, 0), None, ((0, 0), (0, 0))),
    (2, (2, 1), None, ((2, 1), (0, 0))),  # packed before the split: parcel 1
    (3, (1, 0), ((1, 0), (1, 0), (0, 1)), ((1, 0), (0, 0), (0, 0))),
    (3, (2, 0), ((1, 0), (1, 0), (0, 1)), ((1, 0), (1, 0), (0, 0))),  # by the plan
])
def test_a_first_split_puts_what_was_packed_in_the_first_parcels_with_room(
        count: int, packed: tuple, plan: tuple | None, expect: tuple) -> None:
    assert make_split(ORDER, count, packed, plan=plan).packed == expect


@pytest.mark.parametrize(("count", "message"), [
    (0, "from 1 to 50"), (51, "from 1 to 50"), ("2", "from 1 to 50"), (True, "from 1 to 50"),
])
def test_a_bad_parcel_count_is_refused_with_words(count: object, message: str) -> None:
    with pytest.raises(ParcelError, match=message):
        make_split(ORDER, count, (0, 0))


@pytest.mark.parametrize(("plan", "message"), [
    ([[2, 1]], "a list of 2 parcels"),
    ([[2, 1], [0, 0]], "parcel 2 holds nothing"),
    ([[1, 0], [0, 1]], "line 0 .* has 2 items, the plan puts 1"),
    ([[2, 0], [0, -1]], r"plan\[1\]: expected 2 whole numbers"),
    ([[2, 0], [0, "1"]], r"plan\[1\]"),
    ({"1": [2, 1]}, "a list of 2 parcels"),
])
def test_a_plan_must_put_every_item_in_exactly_one_parcel(plan: object, message: str) -> None:
    with pytest.raises(ParcelError, match=message):
        parse_plan(ORDER, 2, plan)


def test_a_resplit_keeps_the_parcels_contents_and_never_drops_a_full_one() -> None:
    split = make_split(ORDER, 3, (0, 0))
    split = place(open_parcel(split, 3), 0)
    assert isinstance(split, Split)
    with pytest.raises(ParcelError, match="parcel 3 holds items"):
        make_split(ORDER, 2, (1, 0), previous=split)
    bigger = make_split(ORDER, 4, (1, 0), previous=split)
    assert bigger.packed == ((0, 0), (0, 0), (1, 0), (0, 0)) and bigger.open_parcel == 3


@pytest.mark.parametrize(("plan", "open_no", "line", "expect"), [
    (None, 1, 0, ((1, 0), (0, 0))),
    (None, 2, 1, ((0, 0), (0, 1))),
    (((2, 0), (0, 1)), 1, 0, ((1, 0), (0, 0))),
    (((2, 0), (0, 1)), 1, 1, Misplaced(1, 2)),  # the cup belongs in parcel 2
    (((1, 1), (1, 0)), 2, 1, Misplaced(2, 1)),
])
def test_a_counted_item_goes_into_the_open_parcel_unless_the_plan_says_otherwise(
        plan: tuple | None, open_no: int, line: int, expect: object) -> None:
    split = open_parcel(make_split(ORDER, 2, (0, 0), plan=plan), open_no)
    placed = place(split, line)
    assert (placed.packed if isinstance(placed, Split) else placed) == expect


def _packed(*contents: tuple[int, int], plan: tuple | None = None, closed: frozenset[int] =
            frozenset()) -> Split:
    return Split(len(contents), tuple(contents), plan, 1, closed)


PLAN = ((2, 0), (0, 1))


@pytest.mark.parametrize(("split", "parcel_no", "expect"), [
    (_packed((0, 0), (0, 0)), 1, ["parcel_empty"]),
    (_packed((1, 0), (0, 0)), 1, ["parcel_open"]),  # still being packed, no plan
    (_packed((1, 0), (0, 0), closed=frozenset({1})), 1, []),  # the packer moved on
    (_packed((2, 0), (0, 1)), 1, []),  # everything packed
    (_packed((2, 0), (0, 1)), 2, []),
    (_packed((1, 0), (0, 0), plan=PLAN), 1, ["parcel_unpacked"]),
    (_packed((2, 0), (0, 0), plan=PLAN), 1, []),  # its plan is met
    (_packed((2, 0), (0, 0), plan=PLAN), 2, ["parcel_empty"]),
])
def test_a_parcel_is_verified_by_its_own_counts(split: Split, parcel_no: int,
                                                expect: list[str]) -> None:
    assert codes(parcel_problems(ORDER, split, parcel_no)) == expect


def test_a_missing_item_of_a_planned_parcel_is_named_in_both_languages() -> None:
    (problem,) = parcel_problems(ORDER, _packed((1, 0), (0, 0), plan=PLAN), 1)
    assert "水壶×1" in problem.zh and "1/2" in problem.zh and "水壶 x1" in problem.en


@pytest.mark.parametrize(("parcel_no", "expect"), [
    (1, "SF1234567890"), (2, "SF1234567891"), (3, "SF1234567892"), (4, None)])
def test_parcel_one_ships_under_the_master_number_the_others_under_their_sub_numbers(
        parcel_no: int, expect: str | None) -> None:
    assert tracking_number(ORDER, parcel_no) == expect


@pytest.mark.parametrize("value", ["SF1", [1, 2], ["", "x"], ["x" * 65], ["x"] * 50])
def test_bad_sub_tracking_numbers_are_refused_with_the_order(value: object) -> None:
    with pytest.raises(OrderError, match="SO-7: sub_tracking_numbers: expected a list"):
        parse_order({**ORDER.to_json(), "sub_tracking_numbers": value})
    # an order stored before the check: the split says so
    stored = replace(ORDER, extra={**ORDER.extra, "sub_tracking_numbers": value})
    with pytest.raises(ParcelError, match="sub_tracking_numbers"):
        sub_tracking_numbers(stored)


def test_a_parcel_ships_its_own_items_number_and_weight_basis() -> None:
    split = _packed((2, 0), (0, 1))
    first, second = parcel_order(ORDER, split, 1), parcel_order(ORDER, split, 2)
    assert [(line.sku, line.qty) for line in first.lines] == [("A", 2)]
    assert first.gifts and not second.gifts  # the gift travels in the first box
    assert second.tracking_number == "SF1234567891" and second.total_items == 1
    # the order's expected weight is for both boxes: each is held against its unit weights
    assert first.expected_weight_kg is None and second.expected_weight_kg is None
    assert parcel_order(ORDER, _packed((2, 1)), 1).expected_weight_kg == 3.0


def test_the_bench_view_lists_each_parcel_with_its_label_and_lines() -> None:
    parcels = view(ORDER, _packed((2, 0), (0, 1), plan=PLAN))
    assert [(p["label"], p["items"], p["planned_items"], p["problems"]) for p in parcels] == [
        ("1/2", 2, 2, []), ("2/2", 1, 1, [])]
    assert parcels[1]["lines"] == [
        {"line_no": 1, "sku": "B", "name": "杯子", "packed": 1, "planned": 1}]


def test_a_split_survives_its_json() -> None:
    split = Split(2, ((1, 0), (0, 1)), PLAN, 2, frozenset({1}))
    assert Split.from_json(split.as_json()) == split


@pytest.mark.parametrize(("text", "order_id", "parcel"), [
    ("SO-7:L1", "SO-7", None), ("SO-7:L2:P3", "SO-7", 3), ("a/b.c:L1:P12", "a/b.c", 12),
    ("SO-7:L1:P0", None, None), ("SO-7:L1:P", None, None), ("SO-7:P1", None, None),
])
def test_a_parcel_label_names_its_order_generation_and_parcel(
        text: str, order_id: str | None, parcel: int | None) -> None:
    parsed = parse_label_id(text)
    assert (parsed[0] if parsed else None) == order_id
    assert parcel_of(text) == parcel
    if parsed and parcel:
        assert label_id(order_id or "", parsed[1], parcel) == text
