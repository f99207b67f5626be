"""Confirming a waybill number, as pure rules (edge/domain/waybill_confirm.py): one row a case."""

from __future__ import annotations

import pytest

from scanedge.edge.domain.distributor_rules import NumberCheck, Problem
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.domain.waybill_confirm import Capture, Order, Request, check_capture, decide

N = "SF1385628716739"
CAP = Capture(order_id="SO-1", status="needs_confirmation", distributor=None, read_number=N,
              candidates=("SF1385628716740",))
ORDER = Order(carrier="SF", tracking_number=None)
OK = NumberCheck(N, carrier="SF")


@pytest.mark.parametrize(("capture", "request_", "order", "code"), [
    (None, Request("c1", N), ORDER, "unknown_capture"),
    (CAP, Request("c1", N, as_distributor="acme"), ORDER, "unknown_capture"),  # not theirs
    (Capture(None, "needs_confirmation", "acme", N), Request("c1", N, as_distributor="acme"),
     Order(), "order_required"),
    (CAP, Request("c1", N), Order(visible=False), "unknown_order"),
    (Capture("SO-1", "confirmed", None, N), Request("c1", N), ORDER, "already_done"),
    (CAP, Request("c1", N, order_id="SO-2"), ORDER, "other_order"),
])
def test_what_is_refused_before_the_number_is_looked_at(capture, request_, order, code):
    with pytest.raises(Refusal) as e:
        check_capture(capture, request_, order)
    assert e.value.code == code


def test_a_capture_without_an_order_takes_the_one_the_request_names():
    capture = Capture(None, "needs_confirmation", None, N)
    assert check_capture(capture, Request("c1", N, order_id="SO-9"), ORDER) == "SO-9"
    assert check_capture(capture, Request("c1", N), Order()) is None


RULE_BROKEN = NumberCheck(N, carrier="SF", problems=(Problem("length", {"min": 12, "max": 12}),))


@pytest.mark.parametrize(("request_", "order", "check", "want"), [
    # the read number, one tap
    (Request("c1", N), ORDER, OK, {"how": "one_tap", "flags": (), "target": "SO-1"}),
    # a candidate the reader offered; a typed one
    (Request("c1", "SF1385628716740"), ORDER, NumberCheck("SF1385628716740", carrier="SF"),
     {"how": "candidate"}),
    (Request("c1", "YT7544099603234"), ORDER, NumberCheck("YT7544099603234", carrier="YTO"),
     {"how": "manual", "flags": ("carrier_differs_from_order",)}),
    # it replaces the order's number
    (Request("c1", N), Order(carrier="SF", tracking_number="SF0000000000001"), OK,
     {"flags": ("replaces_tracking_number",)}),
    # a frozen order: nothing is attached, the confirmation is an interception
    (Request("c1", N), Order(frozen=True), OK, {"frozen": True}),
    # the rule broken, taken as an exception by a person
    (Request("c1", N, accept_rule_exception=True), ORDER, RULE_BROKEN,
     {"flags": ("rule_exception",), "problems": (RULE_BROKEN.problems[0].to_json(),)}),
])
def test_what_a_confirmation_records(request_, order, check, want):
    decision = decide(CAP, request_, order, check, distributor="acme", rule_name="acme")
    for key, value in want.items():
        assert getattr(decision, key) == value, key


@pytest.mark.parametrize(("request_", "order", "check", "code", "details"), [
    (Request("c1", "123"), ORDER, NumberCheck("123", error="invalid_tracking_number",
                                             message="not a tracking number"),
     "invalid_tracking_number", {}),
    (Request("c1", N), ORDER, NumberCheck(N, error="carrier_ambiguous", message="which?",
                                          carriers=("SF", "JD")),
     "carrier_ambiguous", {"carriers": ["SF", "JD"]}),
    (Request("c1", N), ORDER, RULE_BROKEN, "rule_failed", {"distributor": "acme", "rule": "acme"}),
    (Request("c1", N), Order(other_order_with_number="SO-7"), OK, "tracking_in_use",
     {"other_order_id": "SO-7"}),
])
def test_what_a_confirmation_refuses(request_, order, check, code, details):
    with pytest.raises(Refusal) as e:
        decide(CAP, request_, order, check, distributor="acme", rule_name="acme")
    assert e.value.code == code
    assert details.items() <= e.value.details.items()


def test_a_freeze_is_found_before_the_rule_and_the_duplicate():
    frozen = Order(frozen=True, other_order_with_number="SO-7")
    assert decide(CAP, Request("c1", N), frozen, RULE_BROKEN, distributor=None,
                  rule_name=None).frozen
