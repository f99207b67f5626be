"""Acceptance rules of the waybill reader, on text reads (no images)."""

from __future__ import annotations

from scanedge.edge.domain.carriers import carrier_by_code
from scanedge.ocr.waybill_rules import Read, collect, decide, interpret


def ocr(text: str, where: str, conf: float = 0.9) -> Read:
    return Read(text, "ocr", where, conf)


def test_letter_prefixed_number_is_accepted_on_one_read() -> None:
    d = decide(collect([ocr("SF 3395 3299 6124 7", "line:0")]))
    assert d.winner is not None and d.winner.number == "SF3395329961247"


def test_plain_digits_need_two_independent_reads() -> None:
    one = decide(collect([ocr("776347449185688", "line:0")]))
    assert one.winner is None and one.candidates[0].number == "776347449185688"
    # the same place read twice is not independent
    same = decide(collect([ocr("776347449185688", "line:0"), ocr("776347449185688", "line:0")]))
    assert same.winner is None
    two = decide(collect([ocr("776347449185688", "line:0"), ocr("7763 4744 9185 688", "line:3")]))
    assert two.winner is not None and two.winner.number == "776347449185688"


def test_barcode_and_text_agree() -> None:
    d = decide(collect([Read("1174567041595", "barcode", "barcode:0")]))
    assert d.winner is not None and d.winner.number == "1174567041595"


def test_glued_digits_are_rejected() -> None:
    # A 15-digit STO look-alike inside an 18-digit order number is never cut out.
    assert interpret("634776347449185688") is None
    assert interpret("3648SF3395329961247") is None or interpret("3648SF3395329961247")[0] == (
        "SF3395329961247"
    )  # junk before a letter prefix is cut; digits after a number never are
    assert interpret("SF33953299612478") is None


def test_check_digit_single_read_needs_the_printed_carrier() -> None:
    fedex = carrier_by_code("FEDEX")
    alone = decide(collect([ocr("986578788855", "line:0")]))
    assert alone.winner is None  # could be a 12-digit ZTO number misread
    printed = decide(collect([ocr("986578788855", "line:0")], [fedex]))
    assert printed.winner is not None


def test_disagreeing_reads_vote_and_ties_accept_nothing() -> None:
    tie = decide(collect([ocr("SF3395329961247", "a"), ocr("SF3395329961241", "b")]))
    assert tie.winner is None and "reads_disagree" in tie.flags
    vote = decide(collect([ocr("SF3395329961247", "a"), ocr("SF3395329961247", "c"),
                           ocr("SF3395329961241", "b")]))
    assert vote.winner is not None and vote.winner.number == "SF3395329961247"


def test_two_labels_accept_nothing() -> None:
    d = decide(collect([Read("SF3395329961247", "barcode", "barcode:0"),
                        Read("YT7463103515258", "barcode", "barcode:1")]))
    assert d.winner is None and "several_numbers" in d.flags


def test_ocr_confusions_repaired_only_toward_prefixed_formats() -> None:
    number, _, repaired = interpret("5F3395329961247")
    assert number == "SF3395329961247" and repaired
    # a repaired read alone is not accepted
    assert decide(collect([ocr("5F3395329961247", "a")])).winner is None
    # letters are never turned into digits to make a plain-digit number
    assert interpret("77634744918568B") is None


def test_prefixed_number_is_not_vetoed_by_a_plain_near_miss() -> None:
    # the stub copy lost its "YT" and its last digit: a 13-digit EMS look-alike, one read
    d = decide(collect([ocr("YT5723757215841", "a"), ocr("1572375721584", "b")]))
    assert d.winner is not None and d.winner.number == "YT5723757215841"
    assert "reads_disagree" in d.flags
    # two plain-digit reads of one place each still tie
    tie = decide(collect([ocr("776347449185688", "a"), ocr("776347449185688", "c"),
                          ocr("776347449185683", "b"), ocr("776347449185683", "d")]))
    assert tie.winner is None


def test_runs_stop_at_a_colon_and_take_back_a_melted_prefix() -> None:
    from scanedge.ocr.waybill_layout import Line, number_runs

    digits = [(100 + 24 * i, 40, 20, 30) for i in range(13)]
    label = [(20, 40, 26, 30), (50, 40, 26, 30)]  # "单号": narrow enough to pass for digits
    colon = [(82, 48, 6, 6), (82, 62, 6, 6)]
    melted_jt = (56, 40, 42, 36)  # "JT" as one blob, the J's descender below the baseline
    line = Line(20, 40, 420, 36, tuple(label + colon + digits))
    (run,) = number_runs(line)
    assert run[0] == 100  # the label before the colon is not part of the number
    line = Line(56, 40, 400, 36, (melted_jt, *digits))
    (run,) = number_runs(line)
    assert run[0] == 56
