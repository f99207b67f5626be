"""Classifying scanned codes: GTINs, GS1 element strings, tracking numbers, garbage."""

from datetime import date

import pytest

from scanedge.edge.domain.codes import CodeKind, CodeProblem, classify, gtin14, same_item

GS = "\x1d"


@pytest.mark.parametrize("text, expected", [
    ("6901234567892", "06901234567892"),  # EAN-13
    ("96385074", "00000096385074"),  # EAN-8
    ("036000291452", "00036000291452"),  # UPC-A
    ("04252614", "00042100005264"),  # UPC-E (not a valid EAN-8) expands to UPC-A 042100005264
    ("10614141000415", "10614141000415"),  # GTIN-14 (ITF-14)
])
def test_gtin_with_valid_check_digit(text, expected):
    code = classify(text + "\r\n")
    assert code.kind is CodeKind.GTIN
    assert code.gtin == expected
    assert code.problem is None


@pytest.mark.parametrize("text", ["6901234567891", "036000291453", "10614141000416"])
def test_bad_check_digit_is_flagged_not_accepted(text):
    code = classify(text)
    assert code.kind is CodeKind.UNKNOWN
    assert code.problem is CodeProblem.BAD_CHECK_DIGIT
    assert code.gtin is None


@pytest.mark.parametrize("raw", [
    f"]C1010950600013435210ABC123{GS}17270131",  # GS1-128 with symbology id and FNC1 as GS
    f"]d2010950600013435210ABC123{GS}17270131",  # GS1 DataMatrix
    f"{GS}010950600013435210ABC123{GS}17270131",  # leading FNC1 as GS
    "(01)09506000134352(10)ABC123(17)270131",  # human-readable form
    "01095060001343521727013110ABC123",  # no separator needed: lot is last
])
def test_gs1_element_strings(raw):
    code = classify(raw)
    assert code.kind is CodeKind.GS1
    assert code.gtin == "09506000134352"
    assert code.lot == "ABC123"
    assert code.expiry == date(2027, 1, 31)
    assert code.problem is None


def test_gs1_sscc_and_bad_gtin_check_digit():
    sscc = classify("]C100106141411234567897")
    assert sscc.kind is CodeKind.GS1 and sscc.sscc == "106141411234567897"
    bad = classify("]C1010950600013435110ABC")
    assert bad.kind is CodeKind.GS1
    assert bad.problem is CodeProblem.BAD_CHECK_DIGIT
    assert bad.gtin is None


def test_gs1_without_separator_lot_swallows_what_follows():
    # Without FNC1 a variable-length lot runs to the end: the expiry cannot be recovered.
    code = classify("010950600013435210ABC12317270131")
    assert code.lot == "ABC12317270131"
    assert code.expiry is None


@pytest.mark.parametrize("text, carrier", [
    ("SF1131481879204", "SF"), ("jt1989268799439", "JT"), ("YT7544099603234", "YTO"),
    ("DPK206352446299", "DBL"), ("EE163110795CN", "EMS"), ("JDVD05680649453", "JD"),
])
def test_tracking_numbers(text, carrier):
    code = classify(text)
    assert code.kind is CodeKind.TRACKING
    assert carrier in code.carriers
    assert code.text == text.upper()


def test_unknown_and_empty_and_too_long():
    assert classify("SELLER-CASE-07").kind is CodeKind.UNKNOWN
    assert classify("SELLER-CASE-07").problem is None
    assert classify(" \r\n").problem is CodeProblem.EMPTY
    assert classify("A" * 5000).problem is CodeProblem.TOO_LONG
    # control characters some scanners add are dropped
    assert classify("\x02SO-1001\x03").text == "SO-1001"


def test_same_item_matches_gtin_forms_and_own_codes():
    assert same_item(classify("6901234567892"), "6901234567892")
    assert same_item(classify("]C10106901234567892"), "6901234567892")  # GS1 vs EAN-13
    assert same_item(classify("seller-case-07"), "SELLER-CASE-07")
    assert not same_item(classify("4006381333931"), "6901234567892")
    assert gtin14("not digits") is None
    # 01234565 is a valid EAN-8 and a valid UPC-E (UPC-A 012345000065): either order line matches
    assert same_item(classify("01234565"), "01234565")
    assert same_item(classify("01234565"), "012345000065")


def test_a_code_that_named_an_order_is_of_kind_order_or_tracking():
    from scanedge.edge.domain.codes import naming_order

    assert naming_order(classify("SO-1001"), "SO-1001", "SF1385628716739").kind is CodeKind.ORDER
    digits = classify("6901234567892")  # a carrier's number that is also a valid EAN-13
    assert digits.kind is CodeKind.GTIN
    assert naming_order(digits, "SO-7", "6901234567892").kind is CodeKind.TRACKING
    other = classify("6901234567892")
    assert naming_order(other, "SO-1001", "SF1385628716739") is other
    assert naming_order(other, None, None) is other
