"""Multi-parcel orders through the device API (docs/parcels.md): split, scans into the open
parcel, each parcel's label printed at the virtual printer and decoded back."""

from __future__ import annotations

import time

import numpy as np
import pytest

from scanedge.edge.config import load_settings
from scanedge.edge.context import EdgeContext
from scanedge.edge.domain.orders import parse_order
from scanedge.edge.store.orders import save_order
from scanedge.edge.web.app import create_app
from scanedge.printers.selfcheck import decode_symbols, decode_symbols_zbar, ocr
from scanedge.printers.sim import VirtualPrinter
from tests.test_scale_bench import events

MUG, CUP = "6901234567892", "4006381333931"
ORDER = {"order_id": "SO-77", "tracking_number": "SF1385628716739", "carrier": "SF",
         "station": "bench-1", "sub_tracking_numbers": ["SF1385628716740"],
         "recipient": {"name": "王五", "phone": "13800001234", "address": "上海市浦东新区"},
         "lines": [{"sku": MUG, "name": "马克杯", "qty": 2},
                   {"sku": CUP, "name": "水杯", "qty": 1}]}


@pytest.fixture
def rig(tmp_path):
    with VirtualPrinter() as sim:
        settings = load_settings(env={}, data_dir=str(tmp_path / "var"), device_id="test-dev",
                                 station="bench-1", printer=sim.address, print_policy="strict")
        ctx = EdgeContext.open(settings)
        ctx.store.write(lambda db: save_order(db, parse_order(ORDER)))
        ctx.printing.poll_interval = 0.05
        yield ctx, create_app(settings, ctx).test_client(), sim
        ctx.close()


def scan(client, code: str) -> dict:
    r = client.post("/api/v1/scans", json={"code": code, "station": "bench-1"})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def wait_printed(client, job_id: str) -> None:
    deadline = time.monotonic() + 10
    while client.get(f"/api/v1/print-jobs/{job_id}").get_json()["state"] != "printed":
        assert time.monotonic() < deadline, f"job {job_id} never printed"
        time.sleep(0.02)


def mark_text(image: np.ndarray) -> str:
    """OCR of the parcel's white-on-black band (the rows mostly black), turned black on white."""
    rows = np.flatnonzero((image < 128).mean(axis=1) > 0.6)
    band = rows[(rows >= rows[0]) & (rows <= rows[0] + 120)]  # the first band from the top
    cols = np.flatnonzero(image[band[0]] < 128)
    crop = 255 - image[band[0]:band[-1] + 1, cols[0]:cols[-1] + 1]
    return ocr(np.pad(crop, 12, constant_values=255))


def test_an_order_split_in_two_prints_two_labels_that_decode_back_to_their_parcels(rig) -> None:
    ctx, client, sim = rig
    scan(client, "SO-77")
    assert scan(client, MUG)["verdict"] == "ok"  # packed before the split: parcel 1
    r = client.post("/api/v1/orders/SO-77/parcels", json={"count": 2})
    assert r.status_code == 200
    split = r.get_json()
    assert [(p["label"], p["items"], p["tracking_number"]) for p in split["parcels"]] == [
        ("1/2", 1, "SF1385628716739"), ("2/2", 0, "SF1385628716740")]
    answer = scan(client, MUG)
    assert answer["order"]["parcels"]["parcels"][0]["items"] == 2  # the bench sees the boxes

    # parcel 1 is still open and the order not all packed: its label waits
    r = client.post("/api/v1/orders/SO-77/parcels/1/label", json={})
    assert r.status_code == 409 and r.get_json()["error"] == "not_ready"
    assert [p["code"] for p in r.get_json()["problems"]] == ["parcel_open"]
    # the order's single label is no longer the way: one label per box; nor one carrier waybill
    r = client.post("/api/v1/print-jobs", json={"order_id": "SO-77"})
    assert r.status_code == 409 and r.get_json()["error"] == "order_split"
    r = client.post("/api/v1/orders/SO-77/ewaybill", json={})
    assert r.status_code == 409 and r.get_json()["error"] == "order_split"

    r = client.post("/api/v1/orders/SO-77/parcels/open", json={"parcel_no": 2})
    assert r.status_code == 200 and r.get_json()["open_parcel"] == 2
    first = client.post("/api/v1/orders/SO-77/parcels/1/label", json={"idempotency_key": "p1"})
    assert first.status_code == 202, first.get_json()
    again = client.post("/api/v1/orders/SO-77/parcels/1/label", json={"idempotency_key": "p1"})
    assert again.get_json()["job_id"] == first.get_json()["job_id"]  # a retried tap: one job
    assert scan(client, CUP)["order"]["parcels"]["parcels"][1]["items"] == 1
    second = client.post("/api/v1/orders/SO-77/parcels/2/label", json={})
    assert second.status_code == 202, second.get_json()
    wait_printed(client, first.get_json()["job_id"])
    wait_printed(client, second.get_json()["job_id"])
    assert sim.wait_labels(2)

    for label, (parcel, tracking) in zip(sim.labels, [("P1", "SF1385628716739"),
                                                      ("P2", "SF1385628716740")], strict=True):
        for read in (decode_symbols, decode_symbols_zbar):  # two independent decoders
            texts = {s.text for s in read(label.image)}
            assert {f"SO-77:L1:{parcel}", tracking} <= texts
        # the white-on-black mark (包裹 k/N: Tesseract reads the number, not always the word)
        assert mark_text(label.image).endswith(f"{parcel[1]}/2")

    view = client.get("/api/v1/orders/SO-77/parcels").get_json()
    assert [p["job"]["state"] for p in view["parcels"]] == ["printed", "printed"]
    assert [e["count"] for e in events(ctx, "parcels_split")] == [2]
    assert [(e["parcel_no"], e["tracking_number"], e["items"]) for e in
            events(ctx, "parcel_label")] == [(1, "SF1385628716739", 2), (2, "SF1385628716740", 1)]
    assert [e.get("parcel_no") for e in events(ctx, "scan")] == [None, None, 1, 2]


def test_a_planned_split_refuses_an_item_in_the_wrong_box_and_names_the_right_one(rig) -> None:
    _, client, _ = rig
    scan(client, "SO-77")
    r = client.post("/api/v1/orders/SO-77/parcels", json={"count": 2, "plan": [[2, 0], [0, 1]]})
    assert r.status_code == 200 and r.get_json()["planned"] is True
    wrong = scan(client, CUP)
    assert (wrong["verdict"], wrong["reason"], wrong["alarm"]) == ("over_scan", "parcel_full", True)
    assert "2/2" in wrong["message"]["zh"] and "parcel 2/2" in wrong["message"]["en"]
    # nothing was counted: the cup is still to pack
    assert client.get("/api/v1/orders/SO-77").get_json()["lines"][1]["packed"] == 0


@pytest.mark.parametrize(("path", "body", "status", "error"), [
    ("/api/v1/orders/SO-77/parcels", {"count": 0}, 409, "bad_split"),
    ("/api/v1/orders/SO-77/parcels", {"count": "2"}, 409, "bad_split"),
    ("/api/v1/orders/SO-77/parcels", {"count": 2, "plan": [[1, 0], [0, 1]]}, 409, "bad_split"),
    ("/api/v1/orders/NOPE/parcels", {"count": 2}, 404, "unknown_order"),
    ("/api/v1/orders/SO-77/parcels/open", {"parcel_no": 1}, 409, "not_split"),
    ("/api/v1/orders/SO-77/parcels/1/label", {}, 409, "not_split"),
    ("/api/v1/orders/SO-77/parcels/1/label", {"override": "x"}, 400, "bad_request"),
])
def test_bad_parcel_requests_get_a_clear_error_and_write_nothing(
        rig, path: str, body: dict, status: int, error: str) -> None:
    ctx, client, _ = rig
    r = client.post(path, json=body)
    assert (r.status_code, r.get_json()["error"]) == (status, error), r.get_json()
    assert r.get_json()["message"]
    assert events(ctx, "parcels_split") == [] and events(ctx, "parcel_label") == []


def test_a_parcels_sub_tracking_number_opens_its_order_at_the_bench(rig) -> None:
    _, client, _ = rig
    answer = scan(client, "sf 1385628716740")
    assert (answer["verdict"], answer["reason"], answer["order_id"]) == (
        "ok", "order_opened", "SO-77")
    assert scan(client, "SF1385628716749")["reason"] == "unknown_tracking"  # no such number


def test_an_unsplit_order_shows_no_parcels(rig) -> None:
    _, client, _ = rig
    assert client.get("/api/v1/orders/SO-77/parcels").get_json()["count"] == 0
    assert client.get("/api/v1/orders/NOPE/parcels").status_code == 404


def test_a_frozen_split_order_prints_no_parcel_label(rig) -> None:
    ctx, client, _ = rig
    from scanedge.edge.domain.packing import Freeze
    from scanedge.edge.store.orders import save_freeze

    scan(client, "SO-77")
    client.post("/api/v1/orders/SO-77/parcels", json={"count": 1})
    for code in (MUG, MUG, CUP):
        scan(client, code)
    from datetime import UTC, datetime

    ctx.store.write(lambda db: save_freeze(db, Freeze("SO-77", "cancel", datetime.now(UTC)),
                                           source="test"))
    r = client.post("/api/v1/orders/SO-77/parcels/1/label", json={})
    assert r.status_code == 409 and r.get_json()["error"] == "frozen"
    assert events(ctx, "parcel_label") == []


def pack_in_two(client) -> None:
    """SO-77 split in two: both mugs in parcel 1, the cup in parcel 2."""
    scan(client, "SO-77")
    client.post("/api/v1/orders/SO-77/parcels", json={"count": 2, "plan": [[2, 0], [0, 1]]})
    scan(client, MUG)
    scan(client, MUG)
    client.post("/api/v1/orders/SO-77/parcels/open", json={"parcel_no": 2})
    scan(client, CUP)


def test_the_split_cannot_change_once_a_parcels_label_is_out(rig) -> None:
    _, client, _ = rig
    pack_in_two(client)
    assert client.post("/api/v1/orders/SO-77/parcels/1/label", json={}).status_code == 202
    r = client.post("/api/v1/orders/SO-77/parcels", json={"count": 3})
    assert r.status_code == 409 and r.get_json()["error"] == "bad_split"
    assert r.get_json()["parcels"] == [1]


def test_an_address_change_voids_every_parcels_label_and_the_new_ones_ship(rig) -> None:
    from scanedge.edge.store import bench

    ctx, client, sim = rig
    pack_in_two(client)
    for k in (1, 2):
        job = client.post(f"/api/v1/orders/SO-77/parcels/{k}/label", json={}).get_json()
        wait_printed(client, job["job_id"])
    assert ctx.store.write(lambda db: bench.void_printed_label(db, "SO-77", "address_change"))
    # the bench and the dock refuse both boxes' old labels
    assert scan(client, "SO-77:L1:P2")["verdict"] == "void_label"
    batch, _ = ctx.dock.open_batch(carrier="SF", station="dock-1", operator="li")
    for code in ("SO-77:L1:P1", "SO-77:L1:P2"):
        with pytest.raises(Exception, match="void"):
            ctx.dock.scan(batch["batch_id"], code, scan_id=None, operator="li")
    # parcel 1's label again: the next generation, and the order's label is no longer void
    job = client.post("/api/v1/orders/SO-77/parcels/1/label", json={}).get_json()
    wait_printed(client, job["job_id"])
    assert sim.wait_labels(3)
    assert "SO-77:L2:P1" in {s.text for s in decode_symbols(sim.labels[-1].image)}
    ok = ctx.dock.scan(batch["batch_id"], "SO-77:L2:P1", scan_id=None, operator="li")
    assert ok["verdict"] == "accepted" and ok["parcel_no"] == 1
    with pytest.raises(Exception, match="void"):  # the old label of box 2 still must not ship
        ctx.dock.scan(batch["batch_id"], "SO-77:L1:P2", scan_id=None, operator="li")
