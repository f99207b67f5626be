"""The packing bench guarantees what it shows: the print gate, alarm holds, P0 first.

Through the real Flask app (the edge's API) and, for printing order, the real print worker
against a virtual TCP printer. The pages' side is in tests/test_pages_browser.py."""

from __future__ import annotations

import json

import pytest

from scanedge.edge.domain.orders import parse_order
from scanedge.edge.domain.packing import PackState
from scanedge.edge.domain.print_gate import print_gate
from scanedge.edge.freezes.local import freeze_order
from scanedge.edge.web.app import create_app
from scanedge.printers.sim import VirtualPrinter
from tests.support import WebhookReceiver, wait_until

SO1 = ("SO-1001", ["SO-1001", "]C1010690123456789210L2301", "]C1010690123456789210L2301",
                   "4006381333931"])  # 2 cups of lot L2301 + a pen, and a gift


def scan(client, code, **extra):
    r = client.post("/api/v1/scans", json={"code": code, **extra})
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def events(ctx, type_):
    return [json.loads(p) for (p,) in ctx.store.read().execute(
        "SELECT payload FROM events WHERE type = ? ORDER BY seq", [type_])]


# -- the rule, pure -------------------------------------------------------------------------------
ORDER = parse_order({"order_id": "O-1", "lines": [{"sku": "A", "name": "cup", "qty": 2},
                                                   {"sku": "B", "qty": 1}],
                     "gifts": [{"name": "bag", "qty": 1}]})


@pytest.mark.parametrize(("packed", "gifts", "packed_at", "policy", "allowed", "codes"), [
    ((2, 1), {0}, "b1", "strict", True, []),
    ((1, 1), {0}, "b1", "strict", False, ["lines_unpacked"]),
    ((2, 1), set(), "b1", "strict", False, ["gifts_unconfirmed"]),
    ((2, 1), {0}, "b2", "strict", False, ["other_station"]),
    ((0, 0), set(), None, "strict", False, ["lines_unpacked", "gifts_unconfirmed"]),
    ((0, 0), set(), None, "warn", True, ["lines_unpacked", "gifts_unconfirmed"]),
    ((0, 0), set(), None, "off", True, []),
])
def test_print_gate_rule(packed, gifts, packed_at, policy, allowed, codes):
    verdict = print_gate(PackState(ORDER, packed), gifts, packed_at, "b1", policy)
    assert (verdict.allowed, verdict.codes) == (allowed, codes)
    assert all(p.zh and p.en for p in verdict.problems)


# -- the print gate over HTTP ---------------------------------------------------------------------
def test_a_label_prints_only_for_a_verified_order(client, demo_ctx):
    order_id, codes = SO1
    scan(client, codes[0])
    scan(client, codes[1])  # 1 of 3 packed
    r = client.post("/api/v1/print-jobs", json={"order_id": order_id})
    assert (r.status_code, r.get_json()["error"]) == (409, "not_ready")
    assert [p["code"] for p in r.get_json()["problems"]] == ["lines_unpacked", "gifts_unconfirmed"]
    assert events(demo_ctx, "print_refused")[-1]["problems"] == ["lines_unpacked", "gifts_unconfirmed"]
    for code in codes[2:]:
        last = scan(client, code)
    assert last["complete"] is True and last["ready_to_print"] is False  # the gift
    assert last["order"]["print_gate"]["problems"][0]["code"] == "gifts_unconfirmed"
    r = client.post("/api/v1/print-jobs", json={"order_id": order_id})
    assert [p["code"] for p in r.get_json()["problems"]] == ["gifts_unconfirmed"]
    tap = client.post(f"/api/v1/orders/{order_id}/gifts/0/confirm")
    assert tap.status_code == 200 and tap.get_json()["gifts"][0]["confirmed"] is True
    assert tap.get_json()["print_gate"] == {"allowed": True, "problems": []}
    assert client.post(f"/api/v1/orders/{order_id}/gifts/5/confirm").status_code == 404
    r = client.post("/api/v1/print-jobs", json={"order_id": order_id})
    assert r.status_code == 202
    assert events(demo_ctx, "gift_confirmed")[0]["how"] == "tap"


def test_a_gift_with_a_code_is_confirmed_by_scanning_it(demo_ctx):
    from scanedge.edge.store.orders import save_order

    doc = {"order_id": "G-1", "lines": [{"sku": "4006381333931", "qty": 1}],
           "gifts": [{"name": "帆布包", "qty": 1, "code": "GIFT-BAG-01"}]}
    demo_ctx.store.write(lambda db: save_order(db, parse_order(doc)))
    client = create_app(demo_ctx.settings, demo_ctx).test_client()
    scan(client, "G-1")
    scan(client, "4006381333931")
    got = scan(client, "GIFT-BAG-01")
    assert (got["verdict"], got["reason"]) == ("ok", "gift_confirmed")
    assert got["order"]["gifts"][0]["confirmed"] and got["ready_to_print"] is True


def test_the_label_prints_at_the_station_where_the_order_was_packed(client, demo_ctx):
    order_id, codes = SO1
    for code in codes:
        scan(client, code, station="bench-1")
    client.post(f"/api/v1/orders/{order_id}/gifts/0/confirm", json={})
    r = client.post("/api/v1/print-jobs", json={"order_id": order_id, "station": "bench-2"})
    assert r.status_code == 409 and r.get_json()["problems"][0]["code"] == "other_station"
    assert client.post("/api/v1/print-jobs",
                       json={"order_id": order_id, "station": "bench-1"}).status_code == 202


def test_a_supervisor_overrides_with_a_reason_a_packer_cannot(client, demo_ctx):
    accounts = demo_ctx.accounts
    accounts.add_user("k1", "张三", "packer", badge="BADGE-PACKER-1")
    accounts.add_user("s1", "李四", "supervisor", badge="BADGE-SUPER-1")
    client.post("/api/v1/session", json={"badge": "BADGE-PACKER-1"})
    body = {"order_id": "SO-1002", "override": {"reason": "客户加急,已人工核对"}}
    r = client.post("/api/v1/print-jobs", json=body)
    assert (r.status_code, r.get_json()["error"]) == (403, "forbidden")
    client.delete("/api/v1/session")
    client.post("/api/v1/session", json={"badge": "BADGE-SUPER-1"})
    no_reason = client.post("/api/v1/print-jobs", json={"order_id": "SO-1002", "override": {}})
    assert no_reason.status_code == 400
    assert client.post("/api/v1/print-jobs", json=body).status_code == 202
    (audit,) = events(demo_ctx, "print_override")
    assert audit["operator"] == "s1" and audit["reason"] == "客户加急,已人工核对"
    assert audit["problems"] == ["lines_unpacked"]


def test_warn_policy_prints_and_records(demo_ctx):
    from dataclasses import replace

    from scanedge.edge.context import EdgeContext

    demo_ctx.close()
    settings = replace(demo_ctx.settings, print_policy="warn")
    ctx = EdgeContext.open(settings)
    try:
        client = create_app(settings, ctx).test_client()
        assert client.post("/api/v1/print-jobs", json={"order_id": "SO-1002"}).status_code == 202
        assert events(ctx, "print_warned")[0]["problems"] == ["lines_unpacked"]
    finally:
        ctx.close()


# -- alarm holds ---------------------------------------------------------------------------------
def test_scans_at_a_station_wait_while_its_alarm_is_unacknowledged(client, demo_ctx):
    scan(client, "SO-1001", station="bench-1")
    freeze_order(demo_ctx.store, "test-dev", "SO-1001", "cancel", source="test")
    frozen = scan(client, "4006381333931", station="bench-1")
    alarm_id = frozen["alarm_id"]
    held = scan(client, "SO-1002", station="bench-1")  # another order: still held
    assert (held["verdict"], held["alarms"]) == ("alarm_pending", [alarm_id])
    assert held["order"] is None
    assert client.get("/api/v1/orders/SO-1002").get_json()["items_packed"] == 0
    stations = demo_ctx.store.read().execute(
        "SELECT order_id FROM stations WHERE station = 'bench-1'").fetchone()
    assert stations[0] == "SO-1001"  # the open order did not change under the alarm
    # another station is not held
    assert scan(client, "SO-1002", station="bench-2")["verdict"] == "ok"
    # the scan that carries the ack goes through and acknowledges the alarm
    opened = scan(client, "SO-1002", station="bench-1", acks=[alarm_id])
    assert opened["verdict"] == "ok"
    assert client.get("/api/v1/alarms?station=bench-1").get_json()["alarms"] == []
    assert scan(client, "9787115428028", station="bench-1")["verdict"] == "ok"
    assert [e["verdict"] for e in events(demo_ctx, "scan") if e["station"] == "bench-1"][-4:] == [
        "frozen", "alarm_pending", "ok", "ok"]


# -- P0 first ------------------------------------------------------------------------------------
def test_an_expedite_reranks_queued_labels_and_p0_holds_the_others(tmp_path):
    from scanedge.edge.commands import load_demo_orders
    from scanedge.edge.config import load_settings
    from scanedge.edge.store import Store
    from scanedge.printers.service import PrintService

    printed: list[str] = []
    with VirtualPrinter() as sim:
        settings = load_settings(env={}, data_dir=str(tmp_path / "var"), device_id="d",
                                 printer=sim.address, print_policy="off")
        store = Store(settings.edge_db_path)
        load_demo_orders(store)
        service = PrintService(store, settings, start=False, poll_interval=0.05)
        try:
            p2 = service.submit("SO-1002")  # P2
            p1 = service.submit("SO-1003")  # P1
            # the order system expedites SO-1002: the queue sees it at once
            store.write(lambda db: db.execute(
                "UPDATE orders SET priority = 'P0' WHERE order_id = 'SO-1002'"))
            assert service.get(p2.job_id).priority == "P0"
            assert service.held_priorities() == ["P1", "P2", "P3"]  # a P0 waits
            assert service.held_jobs() == 1  # SO-1003's label waits for it
            service.start()
            wait_until(lambda: all(service.get(j.job_id).state == "printed" for j in (p2, p1)),
                       timeout=20, what="both labels")
            printed = [r[0] for r in store.read().execute(
                "SELECT order_id FROM print_jobs ORDER BY printed_at, id")]
        finally:
            service.stop()
            store.close()
    assert printed == ["SO-1002", "SO-1003"]


def test_a_p0_order_notifies_the_webhook_once_with_retry(demo_ctx):
    from scanedge.edge.notify import Notifier

    hook = WebhookReceiver(answers=(500,))
    got = hook.got
    now = [100.0]
    sub = demo_ctx.bus.subscribe(after=None)
    notifier = Notifier(demo_ctx.store, demo_ctx.bus, url=hook.url,
                        device_id="test-dev", station="bench-1", backoff_base_s=10.0,
                        clock=lambda: now[0])
    try:
        assert notifier.p0_orders(["SO-1001", "SO-1002"]) == 1  # SO-1001 is the P0
        assert notifier.p0_orders(["SO-1001"]) == 0  # the same version: once
        assert sub.get(1.0).kind == "p0_order"  # the supervisor page's alert
        assert notifier.deliver_due() == 0 and notifier.pending() == 1  # 500: kept
        assert notifier.deliver_due() == 0  # not due again before its backoff
        now[0] += 11
        assert notifier.deliver_due() == 1 and notifier.pending() == 0
        assert [g["order_id"] for g in got] == ["SO-1001", "SO-1001"]
        assert got[0]["kind"] == "p0_order" and got[0]["priority"] == "P0"
    finally:
        hook.close()


# -- an address change after the label printed ---------------------------------------------------
def test_an_address_change_voids_the_printed_label_until_it_is_printed_again(client, demo_ctx):
    import zxingcpp

    from scanedge.edge.freezes.local import unfreeze_order

    order_id, codes = SO1
    for code in codes:
        scan(client, code)
    client.post(f"/api/v1/orders/{order_id}/gifts/0/confirm", json={})
    job = client.post("/api/v1/print-jobs", json={"order_id": order_id}).get_json()
    wait_until(lambda: demo_ctx.printing.get(job["job_id"]).state == "printed", timeout=20,
               what="the first label")
    freeze_order(demo_ctx.store, "test-dev", order_id, "address_change", source="test")
    unfreeze_order(demo_ctx.store, "test-dev", order_id, source="test")
    again = scan(client, order_id, station="bench-2")  # the next scan of the order, anywhere
    assert (again["verdict"], again["reason"]) == ("ok", "label_void")
    assert "旧面单作废,请重新打印" in again["message"]["zh"]
    assert again["order"]["label_void"] == "address_change"
    old = scan(client, f"{order_id}:L1", station="bench-3")  # the old label's QR, anywhere
    assert (old["verdict"], old["alarm"]) == ("void_label", True)
    # the reprint carries the new address, says 改址重打, and is the label's next generation
    r = client.post(f"/api/v1/print-jobs/{job['job_id']}/reprint", json={"reason": "改址"})
    assert r.status_code == 202
    new_job = demo_ctx.printing.get(r.get_json()["job_id"])
    payload = demo_ctx.printing.render(new_job)
    qr = [b.text for b in zxingcpp.read_barcodes(payload.images[0]) if b.format.name == "QRCode"]
    assert qr == [f"{order_id}:L2"]
    assert scan(client, f"{order_id}:L2", station="bench-2")["verdict"] == "ok"  # the new one
    assert scan(client, order_id, station="bench-2")["reason"] == "order_already_open"
    assert scan(client, f"{order_id}:L1", station="bench-3")["verdict"] == "void_label"
