"""Returns as pure rules (edge/domain/returns.py): the RMA document, the judgement table of
docs/returns.md, dispositions, partial returns. No store, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from scanedge.edge.domain.returns import (
    ALLOWED_CONDITIONS,
    CONDITIONS,
    MissingCondition,
    ReceivedLine,
    RmaError,
    judge,
    judge_unannounced,
    parse_rma,
)

DEADLINE = datetime(2026, 12, 8, 23, 59, 59, tzinfo=UTC)
BEFORE = DEADLINE - timedelta(days=2)
AFTER = DEADLINE + timedelta(minutes=1)


def rma(reason: str = "七天无理由", **over) -> object:
    doc = {"rma_id": "RMA-1", "order_id": "SO-1", "reason": reason,
           "deadline": "2026-12-08T23:59:59Z", "lines": [
               {"sku": "6901234567892", "name": "T恤 M", "qty": 2, "bin": "A-01-02-1"},
               {"sku": "SKU-B", "name": "袜子", "qty": 1}]}
    doc.update(over)
    return parse_rma(doc)


def lines(a: tuple[int, str | None], b: tuple[int, str | None] = (1, "resaleable")):
    return [ReceivedLine("6901234567892", 2, a[0], a[1], "A-01-02-1"),
            ReceivedLine("SKU-B", 1, b[0], b[1])]


@pytest.mark.parametrize(("doc_change", "problem"), [
    ({"rma_id": ""}, "rma_id: required"),
    ({"rma_id": "has space"}, "rma_id: 1-64"),
    ({"order_id": None}, "order_id: required"),
    ({"reason": 7}, "reason: expected text"),
    ({"deadline": "next week"}, "deadline 'next week'"),
    ({"deadline": None}, "deadline: required"),
    ({"lines": []}, "lines: required"),
    ({"lines": [{"sku": "A", "qty": 0}]}, "lines[0].qty"),
    ({"lines": [{"sku": "A", "qty": True}]}, "lines[0].qty"),
    ({"lines": [{"sku": "A", "qty": 1}, {"sku": "A", "qty": 2}]}, "listed twice"),
    ({"lines": ["A"]}, "lines[0]: expected an object"),
    ({"invoiced": "yes"}, "invoiced: expected true or false"),
    ({"status": "lost"}, "status: expected one of"),
    ({"site": "a b"}, "site:"),
    ({"version": 0}, "version:"),
])
def test_a_bad_rma_document_is_refused_naming_the_field(doc_change, problem) -> None:
    with pytest.raises(RmaError, match=problem.replace("[", r"\[").replace("]", r"\]")
                       .replace("(", r"\(")):
        rma(**doc_change)


def test_an_rma_document_round_trips_and_a_date_deadline_is_the_end_of_that_day() -> None:
    r = rma(deadline="2026-12-08", return_tracking="SF1234567890123", invoiced=True)
    assert r.deadline == DEADLINE
    assert parse_rma(r.to_json()) == r
    assert r.to_json()["deadline"] == "2026-12-08T23:59:59Z"


# (reason, condition of the first line, on time?, custom?) -> qualifies, blocking codes,
# disposition of the first line
JUDGEMENTS = [
    ("七天无理由", "resaleable", True, False, True, [], "restock"),
    ("七天无理由", "used", True, False, True, ["condition_not_allowed"], "return_to_customer"),
    ("七天无理由", "resaleable", False, False, False, ["past_deadline"], "return_to_customer"),
    ("七天无理由", "resaleable", True, True, False, ["custom_work"], "return_to_customer"),
    ("尺码不符", "resaleable", True, False, True, [], "restock"),
    ("尺码不符", "damaged", True, False, True, ["condition_not_allowed"], "return_to_customer"),
    ("色差严重", "used", True, False, True, [], "quarantine"),
    ("色差严重", "damaged", True, False, True, ["condition_not_allowed"], "return_to_customer"),
    ("发错货", "damaged", True, False, True, [], "scrap"),
    ("发错货", "missing_parts", True, False, True, ["condition_not_allowed"],
     "return_to_customer"),
    ("质量问题", "missing_parts", True, False, True, [], "quarantine"),
    ("质量问题", "damaged", False, False, False, ["past_deadline"], "return_to_customer"),
    ("换个心情", "used", True, False, True, ["condition_not_allowed"], "return_to_customer"),
]


@pytest.mark.parametrize(("reason", "condition", "on_time", "custom", "qualifies", "blocking",
                          "disposition"), JUDGEMENTS)
def test_the_judgement_table(reason, condition, on_time, custom, qualifies, blocking,
                             disposition) -> None:
    verdict = judge(rma(reason, custom_work=custom), lines((2, condition)), [],
                    received_at=BEFORE if on_time else AFTER, decided_at=AFTER)
    assert verdict.qualifies is qualifies
    assert [r.code for r in verdict.reasons if r.blocks] == blocking
    first = verdict.lines[0]
    assert (first.sku, first.qty, first.disposition) == ("6901234567892", 2, disposition)
    assert first.bin == ("A-01-02-1" if disposition == "restock" else None)
    # the second line (resaleable) qualifies unless the whole return is refused
    assert verdict.lines[1].qualifies is (on_time and not custom)


def test_every_reason_code_allows_resaleable_goods() -> None:
    assert all("resaleable" in allowed for allowed in ALLOWED_CONDITIONS.values())
    assert all(set(allowed) <= set(CONDITIONS) for allowed in ALLOWED_CONDITIONS.values())


def test_a_partial_return_qualifies_for_what_came_back() -> None:
    verdict = judge(rma(), lines((1, "resaleable"), (0, None)), [], received_at=BEFORE,
                    decided_at=BEFORE)
    assert verdict.qualifies and verdict.refund_qty == 1
    assert [(r.code, r.sku, r.blocks) for r in verdict.reasons] == [
        ("partial", "6901234567892", False), ("partial", "SKU-B", False)]
    assert [(ln.sku, ln.qty) for ln in verdict.lines] == [("6901234567892", 1)]


def test_nothing_received_does_not_qualify() -> None:
    verdict = judge(rma(), lines((0, None), (0, None)), [], received_at=BEFORE, decided_at=BEFORE)
    assert not verdict.qualifies and "nothing_received" in [r.code for r in verdict.reasons]


def test_the_surplus_and_codes_not_on_the_rma_go_to_quarantine_without_refund() -> None:
    verdict = judge(rma(), lines((3, "resaleable")), [("6900000000017", 1)], received_at=BEFORE,
                    decided_at=BEFORE)
    assert verdict.qualifies and verdict.refund_qty == 3  # 2 + the second line's 1
    assert [(ln.sku, ln.qty, ln.disposition, ln.qualifies) for ln in verdict.lines] == [
        ("6901234567892", 2, "restock", True), ("6901234567892", 1, "quarantine", False),
        ("SKU-B", 1, "restock", True), ("6900000000017", 1, "quarantine", False)]
    assert {r.code for r in verdict.reasons} == {"over_quantity", "not_on_rma"}


def test_a_line_that_came_back_needs_its_condition_before_the_judgement() -> None:
    with pytest.raises(MissingCondition) as e:
        judge(rma(), lines((1, None)), [], received_at=BEFORE, decided_at=BEFORE)
    assert e.value.skus == ["6901234567892"]


def test_an_unannounced_return_never_qualifies_and_waits_in_quarantine() -> None:
    verdict = judge_unannounced([("6901234567892", 2, None), ("X", 0, None)], decided_at=BEFORE)
    doc = verdict.to_json()
    assert doc["qualifies"] is False and doc["reasons"][0]["code"] == "unannounced"
    assert [(ln["sku"], ln["qty"], ln["disposition"]) for ln in doc["lines"]] == [
        ("6901234567892", 2, "quarantine")]


def test_the_verdict_json_has_the_contracts_keys() -> None:
    doc = judge(rma(), lines((2, "resaleable")), [], received_at=BEFORE,
                decided_at=BEFORE).to_json()
    assert set(doc) >= {"qualifies", "reasons", "lines", "decided_at"}
    assert set(doc["lines"][0]) >= {"sku", "qty", "condition", "disposition", "bin"}
    assert doc["decided_at"].endswith("Z")
