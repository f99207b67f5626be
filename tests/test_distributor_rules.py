"""Per-distributor tracking-number rules (edge/domain/distributor_rules.py), table by table."""

from __future__ import annotations

import pytest

from scanedge.edge.domain.distributor_rules import Rule, check_number, parse_rules, rule_for
from scanedge.edge.domain.distributor_rules import parse_waybill_rules as parse_with_carriers

ACME = parse_rules('{"acme": {"length": 12, "min_letters": 1}}')["acme"]
RANGE = parse_rules('{"r": {"length": [10, 14], "min_digits": 8}}')["r"]
PATTERN = parse_rules('{"p": {"pattern": "XY[0-9]{8}"}}')["p"]
ONLY_SF = parse_with_carriers('{"*": {"carriers": ["sf"]}}')["*"]


@pytest.mark.parametrize(("rule", "number", "carrier", "codes"), [
    (ACME, "AC1234567890", None, []),
    (ACME, "123456789012", None, ["min_letters"]),
    (ACME, "SF3395329961247", "SF", ["length"]),
    (ACME, "AB12", None, ["length"]),
    (ACME, "ABCDEFGHIJKL", None, []),
    (RANGE, "1234567890", None, []),
    (RANGE, "AB1234567", None, ["length", "min_digits"]),
    (RANGE, "123456789012345", None, ["length"]),
    (PATTERN, "XY12345678", None, []),
    (PATTERN, "XY1234567", None, ["pattern"]),
    (PATTERN, "AXY12345678", None, ["pattern"]),  # the whole number must match
    (ONLY_SF, "SF3395329961247", "SF", []),
    (ONLY_SF, "JT5641157661349", "JT", ["carriers"]),
    (ONLY_SF, "JT5641157661349", None, ["carriers"]),
])
def test_problems(rule: Rule, number: str, carrier: str | None, codes: list[str]) -> None:
    assert [p.code for p in rule.problems(number, carrier)] == codes


@pytest.mark.parametrize(("number", "fits", "named", "rule", "order_carrier", "expect"), [
    # no rule: the carrier table decides, as before
    ("SF3395329961247", ["SF"], None, None, None, ("SF", (), (), None)),
    ("AB1234567890", [], None, None, None, (None, (), (), "invalid_tracking_number")),
    ("SF3395329961247", ["SF"], "JT", None, None, (None, (), (), "invalid_tracking_number")),
    ("12345", [], None, None, None, (None, (), (), "invalid_tracking_number")),
    ("986578788855", ["ZTO", "FEDEX"], None, None, None, (None, (), (), "carrier_ambiguous")),
    ("986578788855", ["ZTO", "FEDEX"], None, None, "ZTO", ("ZTO", (), (), None)),
    # the distributor's own format: the carrier table need not know the number (the old bug:
    # a 12-character rule with a letter and the carrier table together refused every number)
    ("AC1234567890", [], None, ACME, None, (None, ("not_in_carrier_table",), (), None)),
    ("AC1234567890", [], "SF", ACME, None, ("SF", ("not_in_carrier_table",), (), None)),
    # in the table but breaking the rule: taken only as a confirmed exception
    ("SF3395329961247", ["SF"], None, ACME, None, ("SF", (), ("length",), None)),
    # in neither: still only the rule's problems (a person may confirm it)
    ("AB12345", [], None, ACME, None, (None, ("not_in_carrier_table",), ("length",), None)),
    # a rule of carriers only says nothing about the format: the table decides
    ("AB1234567890", [], None, ONLY_SF, None, (None, (), (), "invalid_tracking_number")),
    ("JT5641157661349", ["JT"], None, ONLY_SF, None, ("JT", (), ("carriers",), None)),
    ("XY12345678", [], None, PATTERN, None, (None, ("not_in_carrier_table",), (), None)),
])
def test_check_number(number, fits, named, rule, order_carrier, expect) -> None:
    got = check_number(number, fits=fits, named=named, rule=rule, order_carrier=order_carrier)
    carrier, flags, codes, error = expect
    assert got.error == error
    if error is None:
        assert (got.carrier, got.flags, tuple(p.code for p in got.problems)) == (
            carrier, flags, codes)


@pytest.mark.parametrize(("rules", "distributor", "name"), [
    ({"acme": ACME, "*": ONLY_SF}, "acme", "acme"),
    ({"acme": ACME, "*": ONLY_SF}, "beta", "*"),
    ({"acme": ACME, "*": ONLY_SF}, None, "*"),
    ({"acme": ACME}, "beta", None),
    ({}, "acme", None),
])
def test_rule_for(rules, distributor, name) -> None:
    found = rule_for(rules, distributor)
    assert (found[0] if found else None) == name


@pytest.mark.parametrize("text", [
    "[1]", "not json", '{"a": {"lenght": 12}}', '{"a": {"length": "12"}}',
    '{"a": {"length": [1, 2, 3]}}', '{"a": {"length": true}}', '{"a": {"min_letters": "1"}}',
    '{"a": {"pattern": "("}}', '{"a": {"carriers": "SF"}}', '{"a": 5}',
])
def test_bad_settings_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rules(text)


def test_unknown_carrier_is_refused_and_codes_are_the_tables() -> None:
    with pytest.raises(ValueError, match="unknown carrier"):
        parse_with_carriers('{"a": {"carriers": ["NOPE"]}}')
    assert ONLY_SF.carriers == ("SF",)


@pytest.mark.parametrize(("rule", "as_json"), [
    (ACME, {"length": 12, "min_letters": 1}),
    (RANGE, {"length": [10, 14], "min_digits": 8}),
    (PATTERN, {"pattern": "XY[0-9]{8}"}),
    (ONLY_SF, {"carriers": ["SF"]}),
])
def test_rule_as_recorded_in_the_exception_event(rule: Rule, as_json: dict) -> None:
    assert rule.to_json() == as_json


def test_problem_messages_and_json() -> None:
    (p,) = ACME.problems("SF3395329961247", "SF")
    assert p.to_json() == {"code": "length", "min": 12, "max": 12, "got": 15,
                           "message": "12 characters"}
    assert [q.message for q in RANGE.problems("AB1234567", None)] == [
        "10-14 characters", "at least 8 digit(s)"]
