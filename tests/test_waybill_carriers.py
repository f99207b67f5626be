"""The carrier table: every carrier's pattern and check digit, names, and old callers' API."""

from __future__ import annotations

import pytest

from scanedge.edge.domain.carriers import (
    carrier_by_code,
    find_carrier_names,
    identify,
    match_carriers,
    normalize_tracking,
)


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("SF1385628716739", "SF"),
        ("75013821615859", "ZTO"),
        ("YT7463103515258", "YTO"),
        ("776347449185688", "STO"),
        ("428534316135173", "YUNDA"),
        ("JT1989268799439", "JT"),
        ("JDVD05680649453", "JD"),
        ("1174567041595", "EMS"),
        ("EE163110795CN", "EMS"),  # S10 with a right mod-11 check digit
        ("RB123456785GB", "EMS"),
        ("DPK206657601521", "DBL"),
        ("1Z5R89390357567127", "UPS"),
        ("1Z879E930346834440", "UPS"),
        ("986578788855", "FEDEX"),
        ("5682 8361 0012 734", "FEDEX"),
        ("9611020987654312345672", "FEDEX"),
        ("3318810025", "DHL"),
        ("JJD0099999999", "DHL"),
    ],
)
def test_each_carrier_pattern(number: str, code: str) -> None:
    assert code in [c.code for c in match_carriers(number)]


@pytest.mark.parametrize(
    "number",
    [
        "EE163110796CN",  # S10 check digit wrong
        "RB123456786US",
        "1Z5R89390357567128",  # UPS check digit wrong
        "996578788855",  # FedEx 12 check digit wrong (and not a ZTO number: starts with 9)
        "3318810010",  # DHL mod 7 wrong
        "634218602599260124",  # an 18-digit order number
        "156****4598",  # a masked phone
        "880-E14 510",  # a sorting code
        "SF12345",
    ],
)
def test_wrong_check_digits_and_distractors_fit_nothing(number: str) -> None:
    assert identify(number) == []


def test_check_digit_and_prefix_are_reported() -> None:
    (ups,) = identify("1Z5R89390357567127")
    assert ups.check_digit and ups.prefixed
    (zto,) = identify("75013821615859")
    assert not zto.check_digit and not zto.prefixed


def test_old_api_still_works() -> None:
    assert normalize_tracking(" sf 1385-6287 16739") == "SF1385628716739"
    assert carrier_by_code("sf").name_zh == "顺丰速运"
    assert carrier_by_code("DEPPON").code == "DBL"
    assert carrier_by_code("nope") is None
    sf = carrier_by_code("SF")
    assert sf.matches("SF1385628716739") and sf.patterns and "顺丰" in sf.aliases


def test_names_in_header_text() -> None:
    assert find_carrier_names("中通快递\nZTO EXPRESS 客服95311")[0].code == "ZTO"
    assert find_carrier_names("申通快递")[0].code == "STO"
    assert find_carrier_names("中国邮政 EMS")[0].code == "EMS"
    assert find_carrier_names("DEPPON EXPRESS 客服 95353")[0].code == "DBL"
    # Latin names are whole words: "SF" inside another word is not SF Express.
    assert find_carrier_names("TRANSFER") == []
    assert find_carrier_names("打印时间 2025-02-22") == []
