"""Waybills for distributors through the real Flask app, with real sessions (issue 14, item 8).

- an order names its distributor (``distributor`` in the order JSON = the distributor's user id);
  a signed-in distributor lists, captures, confirms and reads only its own: another's order or
  capture answers 404 exactly like one that does not exist;
- a distributor's own number format (rule ``{"length": 12, "min_letters": 1}``) is taken although
  the carrier table does not know it; a number that breaks the rule is refused with the problems
  (``rule_failed``) until a person confirms it as an exception, which is an event with the rule
  and who confirmed;
- a packer works on every order, the distributor's rule applies to its orders too.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from scanedge.edge.domain.packing import Freeze
from scanedge.edge.importing import import_orders
from scanedge.edge.store.orders import save_freeze
from scanedge.edge.web.app import create_app
from tests.test_waybill_capture import _label

RULES = '{"acme": {"length": 12, "min_letters": 1}}'


def _doc(order_id: str, distributor: str | None) -> dict:
    doc = {"order_id": order_id, "lines": [{"sku": "SKU-A", "name": "A", "qty": 1}]}
    if distributor:
        doc["distributor"] = distributor
    return doc


@pytest.fixture
def shop(demo_ctx):
    """Two distributors with their orders, a packer; the rule of acme; one client per person."""
    report = import_orders(demo_ctx.store, [(d["order_id"], d) for d in (
        _doc("DA-1", "acme"), _doc("DA-2", "acme"), _doc("DA-3", "acme"), _doc("DB-1", "beta"))])
    assert not report.rejected, report.rejected
    a = demo_ctx.accounts
    a.add_user("acme", "Acme 经销商", "distributor", badge="BADGE-ACME-01")
    a.add_user("beta", "Beta 经销商", "distributor", badge="BADGE-BETA-01")
    a.add_user("k1", "张三", "packer", badge="BADGE-PACKER-1")
    settings = replace(demo_ctx.settings, waybill_rules=RULES)
    app = create_app(settings, replace(demo_ctx, settings=settings))
    clients = {}
    for who, badge in (("acme", "BADGE-ACME-01"), ("beta", "BADGE-BETA-01"),
                       ("k1", "BADGE-PACKER-1")):
        c = app.test_client()
        assert c.post("/api/v1/session", json={"badge": badge}).status_code == 200
        clients[who] = c
    return demo_ctx, clients


def _post(client, photo: bytes, **form: str):
    data = {"image": (io.BytesIO(photo), "label.png"), **form}
    return client.post("/api/v1/waybills", data=data, content_type="multipart/form-data")


def _confirm(client, capture_id: str, **body):
    return client.post(f"/api/v1/waybills/{capture_id}/confirm", json=body)


def _events(ctx, type_: str) -> list[dict]:
    rows = ctx.store.read().execute(
        "SELECT order_id, payload FROM events WHERE type = ? ORDER BY seq", [type_]).fetchall()
    return [{"order_id": r[0], **json.loads(r[1])} for r in rows]


def _order(ctx, order_id: str):
    return tuple(ctx.store.read().execute(
        "SELECT tracking_number, carrier FROM orders WHERE order_id = ?", [order_id]).fetchone())


def _same_404(a, b, a_id: str, b_id: str) -> None:
    """Two 404 answers that differ only in the id asked for."""
    assert a.status_code == b.status_code == 404
    assert a.get_json()["error"] == b.get_json()["error"]
    assert a.get_json()["message"].replace(a_id, "X") == b.get_json()["message"].replace(b_id, "X")
    assert set(a.get_json()) == set(b.get_json())


def test_a_distributor_lists_only_its_own_orders(shop) -> None:
    _, c = shop
    mine = c["acme"].get("/api/v1/waybills/orders").get_json()["orders"]
    assert sorted(o["order_id"] for o in mine) == ["DA-1", "DA-2", "DA-3"]
    assert [o["order_id"] for o in c["beta"].get("/api/v1/waybills/orders").get_json()["orders"]
            ] == ["DB-1"]
    everything = {o["order_id"] for o in c["k1"].get("/api/v1/waybills/orders").get_json()["orders"]}
    assert {"DA-1", "DB-1", "SO-1001"} <= everything


def test_another_distributors_order_is_404_like_none(shop) -> None:
    ctx, c = shop
    photo = _label("AC1234567890")
    other, missing = _post(c["beta"], photo, order_id="DA-1"), _post(c["beta"], photo, order_id="NO-9")
    _same_404(other, missing, "DA-1", "NO-9")
    # a frozen order of another distributor: still 404, and no interception is recorded
    ctx.store.write(lambda db: save_freeze(
        db, Freeze("DA-2", "cancel", datetime.now(UTC) - timedelta(seconds=5)), source="test"))
    _same_404(_post(c["beta"], photo, order_id="DA-2"), missing, "DA-2", "NO-9")
    assert _events(ctx, "interception") == []
    # its own frozen order: 409 frozen, and the interception names the distributor
    frozen = _post(c["acme"], photo, order_id="DA-2")
    assert frozen.status_code == 409 and frozen.get_json()["error"] == "frozen"
    (event,) = _events(ctx, "interception")
    assert event["operator"] == "acme" and event["action"] == "waybill"
    listed = {o["order_id"]: o for o in c["acme"].get("/api/v1/waybills/orders").get_json()["orders"]}
    assert listed["DA-2"]["frozen"] is True and listed["DA-1"]["frozen"] is False
    # a distributor names the order
    assert _post(c["acme"], photo).get_json()["error"] == "order_required"
    # a capture of acme's order: beta can neither read nor confirm it
    cap = _post(c["acme"], photo, order_id="DA-1").get_json()["capture_id"]
    _same_404(c["beta"].get(f"/api/v1/waybills/{cap}"), c["beta"].get("/api/v1/waybills/01NOPE"),
              cap, "01NOPE")
    _same_404(_confirm(c["beta"], cap, tracking_number="AC1234567890"),
              _confirm(c["beta"], "01NOPE", tracking_number="AC1234567890"), cap, "01NOPE")
    # a packer's capture without an order cannot be steered onto another's order by beta
    loose = _post(c["k1"], photo).get_json()["capture_id"]
    assert _confirm(c["beta"], loose, tracking_number="AC1234567890",
                    order_id="DA-1").status_code == 404
    assert _order(ctx, "DA-1") == (None, None)


def test_own_format_is_taken_and_the_confirm_records_the_signed_in_distributor(shop) -> None:
    ctx, c = shop
    r = _post(c["acme"], _label("AC1234567890"), order_id="DA-1", operator="somebody-else")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    # the carrier table does not know it: the reader is not sure, the rule has no problem
    assert body["tracking_number"] == "AC1234567890" and body["status"] == "needs_confirmation"
    assert body["rule_problems"] == [] and "rule_failed" not in body["checks"]
    ok = _confirm(c["acme"], body["capture_id"], tracking_number="AC1234567890",
                  operator="somebody-else")
    assert ok.status_code == 200, ok.get_json()
    out = ok.get_json()
    assert out["how"] == "one_tap" and "not_in_carrier_table" in out["flags"]
    assert out["carrier"] is None and _order(ctx, "DA-1") == ("AC1234567890", None)
    (event,) = _events(ctx, "waybill_confirmed")
    assert event["operator"] == "acme" and event["order_id"] == "DA-1"
    assert ctx.store.read().execute("SELECT confirmed_by FROM waybill_captures WHERE capture_id"
                                    " = ?", [body["capture_id"]]).fetchone()[0] == "acme"


def test_a_broken_rule_is_marked_and_confirmed_as_an_exception(shop) -> None:
    ctx, c = shop
    r = _post(c["acme"], _label("SF3395329961247"), order_id="DA-3").get_json()
    assert r["status"] == "needs_confirmation" and r["checks"] == ["rule_failed"]
    assert [p["code"] for p in r["rule_problems"]] == ["length"]
    assert r["rule_problems"][0] | {"message": ""} == {"code": "length", "min": 12, "max": 12,
                                                       "got": 15, "message": ""}
    refused = _confirm(c["acme"], r["capture_id"], tracking_number="SF3395329961247")
    assert refused.status_code == 422
    err = refused.get_json()
    assert err["error"] == "rule_failed" and err["problems"][0]["code"] == "length"
    assert err["distributor"] == "acme" and err["rule"] == "acme"
    assert _order(ctx, "DA-3") == (None, None) and _events(ctx, "waybill_rule_exception") == []
    assert _confirm(c["acme"], r["capture_id"], tracking_number="SF3395329961247",
                    accept_rule_exception="yes").status_code == 400
    ok = _confirm(c["acme"], r["capture_id"], tracking_number="SF3395329961247",
                  accept_rule_exception=True)
    assert ok.status_code == 200, ok.get_json()
    assert "rule_exception" in ok.get_json()["flags"] and ok.get_json()["carrier"] == "SF"
    assert _order(ctx, "DA-3") == ("SF3395329961247", "SF")
    (ex,) = _events(ctx, "waybill_rule_exception")
    assert ex["order_id"] == "DA-3" and ex["confirmed_by"] == "acme"
    assert ex["rule_name"] == "acme" and ex["rule"] == {"length": 12, "min_letters": 1}
    assert [p["code"] for p in ex["problems"]] == ["length"]


def test_a_packer_confirms_for_a_distributors_order_under_its_rule(shop) -> None:
    ctx, c = shop
    r = _post(c["k1"], _label("SF3395329961247"), order_id="DA-1").get_json()
    assert r["checks"] == ["rule_failed"]  # the order's distributor is acme
    # a typed number of acme's own format, with a carrier that the table cannot check
    ok = _confirm(c["k1"], r["capture_id"], tracking_number="ab12 3456 7890", carrier="SF")
    assert ok.status_code == 200, ok.get_json()
    assert ok.get_json()["how"] == "manual" and _order(ctx, "DA-1") == ("AB1234567890", "SF")
    (event,) = _events(ctx, "waybill_confirmed")
    assert event["operator"] == "k1"
    # without a rule (an order of no distributor) the carrier table still decides
    r2 = _post(c["k1"], _label("SF3395329961247"), order_id="SO-1003").get_json()
    bad = _confirm(c["k1"], r2["capture_id"], tracking_number="AB1234567891")
    assert bad.status_code == 422 and bad.get_json()["error"] == "invalid_tracking_number"
    assert re.search("fits no carrier", bad.get_json()["message"])
