"""Each parcel of a split order is weighed on its own (docs/parcels.md, docs/scale.md): with a
virtual scale on a real TCP port, a parcel's label is held against its own items' unit weights
(not the order's), refused outside the tolerance, and prints the weight the scale gave; and
every paper's parcel label reads back."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from scanedge.edge.domain.orders import parse_order
from scanedge.printers.layout import load_template
from scanedge.printers.parcel_label import parcel_fields, render_parcel_label
from scanedge.printers.selfcheck import decode_symbols, decode_symbols_zbar
from tests import test_scale_bench
from tests.test_scale_bench import events, on_scale

MUG = "6901234567021"  # SO-1004: 2 mugs of 0.35 kg


# the weight check's bench with a virtual scale on TCP, and its helpers
scale, bench = test_scale_bench.scale, test_scale_bench.bench


def test_each_parcel_is_weighed_against_its_own_items(bench, scale) -> None:
    ctx, client = bench
    scale.set_weight(0.35)
    assert client.post("/api/v1/scans", json={"code": "SO-1004"}).status_code == 200
    assert client.post("/api/v1/orders/SO-1004/parcels", json={"count": 2}).status_code == 200
    for parcel_no in (1, 2):
        client.post("/api/v1/orders/SO-1004/parcels/open", json={"parcel_no": parcel_no})
        assert client.post("/api/v1/scans", json={"code": MUG}).get_json()["verdict"] == "ok"

    # one mug on the scale: parcel 1 weighs what one mug should (the order's 0.70 kg would fail)
    on_scale(client, 0.35)
    r = client.post("/api/v1/orders/SO-1004/parcels/1/label", json={})
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["payload"]["weight_kg"] == 0.35

    scale.set_weight(0.9)  # parcel 2 with something else in it: refused, nothing queued
    on_scale(client, 0.9)
    r = client.post("/api/v1/orders/SO-1004/parcels/2/label", json={})
    assert r.status_code == 409 and [p["code"] for p in r.get_json()["problems"]] == ["weight_off"]

    weighed = events(ctx, "parcel_weighed")
    assert [(e["parcel_no"], e["measured_kg"], e["expected_kg"]) for e in weighed] == [
        (1, 0.35, 0.35), (2, 0.9, 0.35)]
    (refused,) = events(ctx, "print_refused")
    assert refused["parcel_no"] == 2 and refused["problems"] == ["weight_off"]
    assert [e["parcel_no"] for e in events(ctx, "parcel_label")] == [1]


ORDER = parse_order({
    "order_id": "SO-9/A", "tracking_number": "SF1385628716739", "carrier": "SF", "priority": "P0",
    "sub_tracking_numbers": ["SF1385628716740"],
    "recipient": {"name": "王五", "phone": "13800001234", "address": "上海市浦东新区世纪大道 100 号"},
    "gifts": [{"name": "帆布包"}],
    "lines": [{"sku": MUG, "name": "马克杯", "qty": 3}]})


@pytest.mark.parametrize("paper", ["58", "80", "100x150", "100x180"])
@pytest.mark.parametrize(("parcel_no", "tracking"), [(1, "SF1385628716739"),
                                                     (2, "SF1385628716740")])
def test_a_parcel_label_reads_back_on_every_paper(paper: str, parcel_no: int,
                                                  tracking: str) -> None:
    payload = {"parcel_no": parcel_no, "count": 2, "packed": [parcel_no],
               "tracking_number": tracking, "weight_kg": 1.25}
    image = np.array(render_parcel_label(ORDER, payload, load_template(f"standard_{paper}"),
                                         station="bench-1", printed_at=datetime(2026, 5, 1))
                     .convert("L"))
    for read in (decode_symbols, decode_symbols_zbar):
        assert {f"SO-9/A:L1:P{parcel_no}", tracking} <= {s.text for s in read(image)}, read


def test_a_parcel_label_counts_its_own_items_and_carries_the_gift_in_the_first_box() -> None:
    payload = {"parcel_no": 2, "count": 2, "packed": [1], "weight_kg": 0.4}
    shipped, fields = parcel_fields(ORDER, payload, station="b", printed_at=datetime(2026, 5, 1))
    assert (fields["parcel"], fields["items"], fields["weight"]) == ("2/2", "1", "0.400kg")
    assert fields["gifts"] == "" and shipped.total_items == 1
    first, _ = parcel_fields(ORDER, {**payload, "parcel_no": 1, "packed": [2]}, station="b",
                             printed_at=datetime(2026, 5, 1))
    assert first.gifts and first.total_items == 2
