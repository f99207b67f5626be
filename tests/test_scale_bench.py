"""The weight check at the bench through the device API, with a virtual scale on a real TCP port:
the label is refused outside weight_tolerance, a supervisor's override is audited, the weight
goes into the events, onto the label and into the lane rule (docs/scale.md)."""

import json
from dataclasses import replace
from datetime import datetime

import pytest

from scanedge.edge.domain.orders import parse_order
from scanedge.edge.scale_sim import VirtualScale
from scanedge.edge.store import weighings
from scanedge.edge.store.orders import load_order
from scanedge.printers.layout import label_fields, load_template, render_label, sorting_lane
from tests.support import wait_until

MUG = "6901234567021"  # SO-1004: 2 mugs of 0.35 kg, nothing else: 0.70 kg expected


@pytest.fixture
def scale():
    with VirtualScale(weight_kg=1.234, interval=0.02) as sim:
        yield sim


@pytest.fixture
def bench(settings, scale):
    from scanedge.edge.commands import load_demo_orders
    from scanedge.edge.context import EdgeContext
    from scanedge.edge.web.app import create_app

    ctx = EdgeContext.open(replace(settings, scale=scale.address, weight_tolerance="0.05kg, 5%"))
    load_demo_orders(ctx.store)
    try:
        yield ctx, create_app(ctx.settings, ctx).test_client()
    finally:
        ctx.close()


def events(ctx, type_):
    return [json.loads(p) for (p,) in ctx.store.read().execute(
        "SELECT payload FROM events WHERE type = ? ORDER BY seq", [type_])]


def pack_so_1004(client):
    for code in ("SO-1004", MUG, MUG):
        assert client.post("/api/v1/scans", json={"code": code}).get_json()["verdict"] == "ok"


def on_scale(client, kg):
    """Wait until the bench sees ``kg`` settled (the parcel put down and the reading steady)."""
    wait_until(lambda: client.get("/api/v1/scale").get_json()["weight_kg"] == kg, timeout=10,
               what=f"{kg} kg on the scale")


def test_without_a_scale_the_bench_says_so_and_prints_as_before(client):
    view = client.get("/api/v1/scale?order_id=SO-1004").get_json()
    assert view["configured"] is False and view["check"] is None
    pack_so_1004(client)
    assert client.post("/api/v1/print-jobs", json={"order_id": "SO-1004"}).status_code == 202


def test_the_bench_shows_expected_against_measured(bench, scale):
    _, client = bench
    on_scale(client, 1.234)
    view = client.get("/api/v1/scale?order_id=SO-1004").get_json()
    assert view["configured"] is True and view["state"] == "stable"
    assert view["scale"].startswith("tcp://127.0.0.1:") and view["tolerance"] == "0.05 kg / 5%"
    assert view["expected_kg"] == 0.7
    check = view["check"]
    assert (check["verdict"], check["measured_kg"], check["allowed_kg"]) == ("too_heavy", 1.234, 0.05)
    assert check["passes"] is False and "1.234" in check["zh"] and "too heavy" in check["en"]
    no_weights = client.get("/api/v1/scale?order_id=SO-1001").get_json()["check"]
    assert no_weights["verdict"] == "unchecked" and no_weights["passes"] is True
    assert client.get("/api/v1/scale?order_id=NOPE").status_code == 404
    assert client.get("/api/v1/scale?order_id=" + "x" * 65).status_code == 400


def test_a_label_outside_the_tolerance_is_refused_and_prints_once_the_weight_fits(bench, scale):
    ctx, client = bench
    pack_so_1004(client)
    on_scale(client, 1.234)
    r = client.post("/api/v1/print-jobs", json={"order_id": "SO-1004"})
    assert (r.status_code, r.get_json()["error"]) == (409, "not_ready")
    (problem,) = r.get_json()["problems"]
    assert problem["code"] == "weight_off" and "0.700" in problem["zh"]
    (refused,) = events(ctx, "print_refused")
    assert refused["problems"] == ["weight_off"]
    assert refused["weight"]["verdict"] == "too_heavy" and refused["weight"]["measured_kg"] == 1.234

    scale.set_weight(0.72)  # the packer finds the extra item and takes it out
    on_scale(client, 0.72)
    r = client.post("/api/v1/print-jobs", json={"order_id": "SO-1004"})
    assert r.status_code == 202
    weighed = events(ctx, "parcel_weighed")
    assert [(w["measured_kg"], w["verdict"]) for w in weighed] == [(1.234, "too_heavy"), (0.72, "ok")]
    assert weighed[-1]["expected_kg"] == 0.7 and weighed[-1]["station"] == "bench-1"
    db = ctx.store.read()
    assert weighings.latest_weight(db, "SO-1004") == 0.72
    assert [w.check.verdict for w in weighings.history(db, "SO-1004")] == ["too_heavy", "ok"]


def test_no_steady_weight_is_no_label(bench, scale):
    ctx, client = bench
    pack_so_1004(client)
    scale.set_mode("unstable")
    wait_until(lambda: client.get("/api/v1/scale").get_json()["state"] == "unstable", timeout=10)
    r = client.post("/api/v1/print-jobs", json={"order_id": "SO-1004"})
    assert r.status_code == 409 and r.get_json()["problems"][0]["code"] == "weight_missing"
    scale.set_mode("overload")
    wait_until(lambda: client.get("/api/v1/scale").get_json()["state"] == "overload", timeout=10)
    r = client.post("/api/v1/print-jobs", json={"order_id": "SO-1004"})
    assert "overloaded" in r.get_json()["problems"][0]["en"]
    assert events(ctx, "parcel_weighed") == []  # no weight, nothing weighed
    # an order that expects no weight still needs a steady scale to record what it ships at
    for code in ("SO-1003", "]C1010001234560001210B7", "]C1010001234560001210B7"):
        client.post("/api/v1/scans", json={"code": code})
    client.post("/api/v1/orders/SO-1003/gifts/0/confirm", json={})
    r = client.post("/api/v1/print-jobs", json={"order_id": "SO-1003"})
    assert r.status_code == 409 and [p["code"] for p in r.get_json()["problems"]] == ["weight_missing"]


def test_a_supervisor_overrides_the_weight_with_a_reason_and_it_is_audited(bench, scale):
    ctx, client = bench
    ctx.accounts.add_user("k1", "张三", "packer", badge="BADGE-PACKER-1")
    ctx.accounts.add_user("s1", "李四", "supervisor", badge="BADGE-SUPER-1")
    client.post("/api/v1/session", json={"badge": "BADGE-PACKER-1"})
    pack_so_1004(client)
    on_scale(client, 1.234)
    body = {"order_id": "SO-1004", "override": {"reason": "客户加购一只杯子,已核对"}}
    assert client.post("/api/v1/print-jobs", json=body).status_code == 403  # a packer may not
    client.delete("/api/v1/session")
    client.post("/api/v1/session", json={"badge": "BADGE-SUPER-1"})
    assert client.post("/api/v1/print-jobs", json=body).status_code == 202
    (audit,) = events(ctx, "print_override")
    assert audit["operator"] == "s1" and audit["reason"] == "客户加购一只杯子,已核对"
    assert audit["problems"] == ["weight_off"]
    assert audit["weight"] == {"verdict": "too_heavy", "measured_kg": 1.234, "expected_kg": 0.7,
                               "allowed_kg": 0.05, "difference_kg": 0.534}


def test_the_printed_label_carries_the_weight_and_the_lane_follows_it(bench, scale):
    ctx, client = bench
    pack_so_1004(client)
    scale.set_weight(0.69)
    on_scale(client, 0.69)
    r = client.post("/api/v1/print-jobs", json={"order_id": "SO-1004"})
    assert r.status_code == 202
    job = ctx.printing.get(r.get_json()["job_id"])
    order = load_order(ctx.store.read(), "SO-1004")
    template = load_template(ctx.printing.template_name)
    for _ in range(3):  # the label prints the minute: compare within one
        minute = datetime.now().strftime("%H:%M")
        payload = ctx.printing.render(job)  # what the worker sends to the printer
        now = datetime.now()
        if now.strftime("%H:%M") == minute:
            break

    def label(**weight):
        image, _ = render_label(order, template, station="bench-1", printed_at=now, **weight)
        return image.tobytes()

    assert payload.images[0].tobytes() == label(weight_kg=0.69) != label()
    fields = label_fields(order, station="bench-1", printed_at=datetime(2026, 1, 1), weight_kg=0.69)
    assert fields["weight"] == "0.690kg" and fields["lane"] == "A"


@pytest.mark.parametrize(("doc", "measured", "lane"), [
    ({}, None, "-"),  # nothing known: the default
    ({}, 0.69, "A"),  # the scale's weight
    ({}, 3.2, "B"),
    ({"weight_kg": 0.5}, 7.5, "C"),  # the scale wins over the order's declared weight
    ({"weight_kg": 7.5}, None, "C"),
    ({"expected_weight_kg": 3.0}, None, "B"),  # before weighing: what it should weigh
    ({"lane": "Z"}, 3.2, "Z"),  # a lane the order names is kept
])
def test_the_lane_rule_uses_the_measured_weight(doc, measured, lane):
    order = parse_order({"order_id": "L-1", "lines": [{"sku": "A", "qty": 1}], **doc})
    assert sorting_lane(order, measured) == lane


def test_csv_orders_carry_weights_and_a_bad_one_is_refused_by_name(edge_ctx, tmp_path):
    from scanedge.edge.importing import import_orders, read_documents

    path = tmp_path / "orders.csv"
    path.write_text("order_id,sku,qty,unit_weight_kg,expected_weight_kg\n"
                    "W-1,6901234567021,2,0.35,\n"
                    "W-2,6901234567021,1,,0.5\n"
                    "W-3,6901234567021,1,heavy,\n", encoding="utf-8")
    docs, rejected = read_documents(path)
    report = import_orders(edge_ctx.store, docs)
    assert report.created == 2 and not rejected
    (where, why), = report.rejected
    assert "W-3" in where and "unit_weight_kg" in why
    db = edge_ctx.store.read()
    assert load_order(db, "W-1").lines[0].unit_weight_kg == 0.35
    assert load_order(db, "W-2").expected_weight_kg == 0.5


def test_the_carrier_label_waits_for_the_weight_too(bench, scale):
    _, client = bench
    pack_so_1004(client)
    on_scale(client, 1.234)
    r = client.post("/api/v1/orders/SO-1004/ewaybill", json={})
    assert (r.status_code, r.get_json()["error"]) == (409, "ewaybill_gate")
    assert [p["code"] for p in r.get_json()["problems"]] == ["weight_off"]
    scale.set_weight(0.7)
    on_scale(client, 0.7)
    r = client.post("/api/v1/orders/SO-1004/ewaybill", json={})
    assert r.get_json()["error"] == "hub_unreachable"  # past the gate: this device has no hub


def test_an_edge_database_from_before_weights_is_upgraded_in_place(tmp_path):
    from scanedge.edge.store import Store
    from scanedge.edge.store.db import connect, migrate
    from scanedge.edge.store.orders import load_pack_state, save_order
    from scanedge.edge.store.schema import EDGE_MIGRATIONS

    path = tmp_path / "edge.db"
    old = connect(path)
    migrate(old, "edge", EDGE_MIGRATIONS[:4])  # the schema before migration 5
    old.execute("INSERT INTO orders (order_id, version, priority, recipient, extra, updated_at)"
                " VALUES ('OLD-1', 1, 'P2', '{}', '{}', 't')")
    old.execute("INSERT INTO order_lines (order_id, line_no, sku, name, qty, packed)"
                " VALUES ('OLD-1', 0, 'A', 'cup', 2, 1)")
    old.conn.commit()
    old.close()
    store = Store(path)
    try:
        db = store.read()
        kept = load_pack_state(db, "OLD-1")
        assert kept.packed == (1,) and kept.order.expected_weight_kg is None
        assert kept.order.lines[0].unit_weight_kg is None
        order = parse_order({"order_id": "NEW-1", "expected_weight_kg": 1.5,
                             "lines": [{"sku": "A", "qty": 1, "unit_weight_kg": 0.4}]})
        store.write(lambda d: save_order(d, order))
        assert load_pack_state(store.read(), "NEW-1").order == order
    finally:
        store.close()
