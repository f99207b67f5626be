"""Returns (RMA receiving): the RMA document, the judgement of a received return, dispositions.

Pure: the device's returns service (edge/returns.py) and the hub (sync/hub/rmas.py) call these
with plain values. docs/returns.md, "Judgement", has the rules as a table; this module is that
table.

- An RMA (return merchandise authorisation) is authorised upstream: the original order, the
  lines and quantities expected back, the customer's reason code, the return's tracking number,
  a deadline, whether the order was invoiced or was custom work.
- :func:`judge` decides from what came back (per line: quantity and condition; codes not on the
  RMA) whether the return qualifies for its refund, with reasons, and what happens to each line's
  goods (a disposition: ``restock`` to a bin, ``quarantine``, ``scrap``, ``return_to_customer``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from scanedge.edge.domain.orders import DEFAULT_SITE, ORDER_ID_RE, SITE_RE

REASONS = ("尺码不符", "色差严重", "发错货", "质量问题", "七天无理由")
CONDITIONS = ("resaleable", "damaged", "used", "missing_parts")
DISPOSITIONS = ("restock", "quarantine", "scrap", "return_to_customer")
STATUSES = ("open", "cancelled", "received")
RMA_ID_RE = ORDER_ID_RE  # the same alphabet as order ids: they travel in the same places
MAX_LINES = 200
MAX_TEXT = 128
MAX_QTY = 100_000
MAX_VERSION = 2**53 - 1

# Which conditions of the returned goods a reason code accepts (docs/returns.md, "Judgement").
# 七天无理由 and 尺码不符 are the customer's choice: the goods must be fit to sell again
# (不影响二次销售). 色差严重 and 发错货 are our doing: goods tried on (used) or knocked about in
# transit (damaged, 发错货 only) still qualify. 质量问题: the defect is the point, any condition.
# A reason code not in this table is treated like 七天无理由 (the strictest).
ALLOWED_CONDITIONS: dict[str, frozenset[str]] = {
    "七天无理由": frozenset({"resaleable"}),
    "尺码不符": frozenset({"resaleable"}),
    "色差严重": frozenset({"resaleable", "used"}),
    "发错货": frozenset({"resaleable", "used", "damaged"}),
    "质量问题": frozenset({"resaleable", "used", "damaged", "missing_parts"}),
}
STRICTEST = ALLOWED_CONDITIONS["七天无理由"]

# What happens to qualifying goods by their condition: fit to sell goes back to a bin, worn or
# incomplete goods are looked at first, broken goods are scrapped. Goods that do not qualify go
# back to the customer; goods nobody announced wait in quarantine for a person.
DISPOSITION_OF_CONDITION = {
    "resaleable": "restock",
    "used": "quarantine",
    "missing_parts": "quarantine",
    "damaged": "scrap",
}

MESSAGES: dict[str, tuple[str, str]] = {
    "past_deadline": ("已过退货期限", "received after the return deadline"),
    "custom_work": ("定制商品不退", "custom work cannot be returned"),
    "nothing_received": ("没有收到退货商品", "none of the items on the RMA came back"),
    "partial": ("部分退货:少于预期", "partial return: fewer items than expected"),
    "over_quantity": ("退回数量多于预期", "more items came back than expected"),
    "not_on_rma": ("退货单以外的商品", "items that are not on the RMA"),
    "condition_not_allowed": ("商品状况不符合退货原因", "the goods' condition does not qualify "
                              "under the reason code"),
    "unannounced": ("无退货单的退件,待人工匹配", "a return with no RMA: to be matched by a person"),
}


class RmaError(ValueError):
    """An RMA document that cannot be accepted; the message names the field."""


@dataclass(frozen=True)
class RmaLine:
    sku: str
    qty: int
    name: str = ""
    bin: str | None = None  # where resaleable goods go back (else the order line's location)

    def to_json(self) -> dict[str, Any]:
        return {"sku": self.sku, "name": self.name, "qty": self.qty, "bin": self.bin}


@dataclass(frozen=True)
class Rma:
    rma_id: str
    order_id: str
    reason: str
    deadline: datetime
    lines: tuple[RmaLine, ...]
    return_tracking: str | None = None
    invoiced: bool = False
    custom_work: bool = False
    status: str = "open"
    version: int = 1
    site: str = DEFAULT_SITE

    def to_json(self) -> dict[str, Any]:
        return {"rma_id": self.rma_id, "order_id": self.order_id, "status": self.status,
                "reason": self.reason, "return_tracking": self.return_tracking,
                "deadline": iso(self.deadline), "invoiced": self.invoiced,
                "custom_work": self.custom_work, "lines": [ln.to_json() for ln in self.lines],
                "version": self.version, "site": self.site}


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _text(doc: dict[str, Any], key: str, *, required: bool = False,
          limit: int = MAX_TEXT) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        if required:
            raise RmaError(f"{key}: required")
        return None
    if not isinstance(value, str):
        raise RmaError(f"{key}: expected text, got {type(value).__name__}")
    text = value.strip()
    if not text or len(text) > limit:
        raise RmaError(f"{key}: 1-{limit} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RmaError(f"{key}: not Unicode text (a lone surrogate)") from None
    return text


def _flag(doc: dict[str, Any], key: str) -> bool:
    value = doc.get(key, False)
    if not isinstance(value, bool):
        raise RmaError(f"{key}: expected true or false")
    return value


def parse_deadline(value: Any) -> datetime:
    """An ISO date-time (no zone: UTC) or a date (the end of that day, UTC)."""
    if not isinstance(value, str) or not value.strip():
        raise RmaError("deadline: required, an ISO date or date-time")
    text = value.strip()
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text)
            return day.replace(hour=23, minute=59, second=59, tzinfo=UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RmaError(f"deadline {text[:40]!r}: expected an ISO date or date-time, "
                       "e.g. 2026-12-08T23:59:59+08:00") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_rma(doc: Any) -> Rma:
    """Validate one RMA document; raise :class:`RmaError` naming the bad field."""
    if not isinstance(doc, dict):
        raise RmaError(f"an RMA must be a JSON object, got {type(doc).__name__}")
    rma_id = _text(doc, "rma_id", required=True, limit=64)
    order_id = _text(doc, "order_id", required=True, limit=64)
    assert rma_id is not None and order_id is not None
    if not RMA_ID_RE.fullmatch(rma_id):
        raise RmaError("rma_id: 1-64 letters, digits, '-', '_', '.', '/'")
    if not ORDER_ID_RE.fullmatch(order_id):
        raise RmaError("order_id: 1-64 letters, digits, '-', '_', '.', '/'")
    reason = _text(doc, "reason", required=True, limit=32)
    assert reason is not None
    status = doc.get("status", "open")
    if status not in STATUSES:
        raise RmaError(f"status: expected one of {', '.join(STATUSES)}")
    version = doc.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise RmaError("version: a whole number from 1")
    site = doc.get("site") or DEFAULT_SITE
    if not isinstance(site, str) or not SITE_RE.fullmatch(site):
        raise RmaError("site: 1-64 letters, digits, '-', '_', '.'")
    lines = doc.get("lines")
    if not isinstance(lines, list) or not lines:
        raise RmaError("lines: required, a non-empty list of {sku, qty, name?}")
    if len(lines) > MAX_LINES:
        raise RmaError(f"lines: at most {MAX_LINES}")
    parsed: list[RmaLine] = []
    for i, item in enumerate(lines):
        if not isinstance(item, dict):
            raise RmaError(f"lines[{i}]: expected an object")
        try:
            sku = _text(item, "sku", required=True)
            name = _text(item, "name") or ""
            bin_ = _text(item, "bin", limit=64)
        except RmaError as e:
            raise RmaError(f"lines[{i}].{e}") from None
        qty = item.get("qty")
        if isinstance(qty, bool) or not isinstance(qty, int) or not 1 <= qty <= MAX_QTY:
            raise RmaError(f"lines[{i}].qty: a whole number from 1 to {MAX_QTY}")
        assert sku is not None
        if any(p.sku == sku for p in parsed):
            raise RmaError(f"lines[{i}].sku {sku!r}: listed twice")
        parsed.append(RmaLine(sku, qty, name, bin_))
    return Rma(rma_id=rma_id, order_id=order_id, reason=reason,
               deadline=parse_deadline(doc.get("deadline")), lines=tuple(parsed),
               return_tracking=_text(doc, "return_tracking", limit=64),
               invoiced=_flag(doc, "invoiced"), custom_work=_flag(doc, "custom_work"),
               status=status, version=version, site=site)


# ---------------------------------------------------------------------------------------------
# the judgement


@dataclass(frozen=True)
class ReceivedLine:
    """One RMA line as the bench found it."""

    sku: str
    expected: int
    received: int
    condition: str | None
    bin: str | None = None  # where it would be restocked


@dataclass(frozen=True)
class Reason:
    code: str
    blocks: bool  # does it stop the refund (of the line, with ``sku``; of the return, without)
    sku: str | None = None

    def to_json(self) -> dict[str, Any]:
        zh, en = MESSAGES[self.code]
        out: dict[str, Any] = {"code": self.code, "message": f"{zh} / {en}", "blocks": self.blocks}
        if self.sku is not None:
            out["sku"] = self.sku
        return out


@dataclass(frozen=True)
class LineOutcome:
    sku: str
    qty: int
    condition: str | None
    disposition: str
    bin: str | None
    qualifies: bool

    def to_json(self) -> dict[str, Any]:
        return {"sku": self.sku, "qty": self.qty, "condition": self.condition,
                "disposition": self.disposition, "bin": self.bin, "qualifies": self.qualifies}


@dataclass(frozen=True)
class Verdict:
    qualifies: bool
    reasons: tuple[Reason, ...]
    lines: tuple[LineOutcome, ...]
    decided_at: datetime
    refund_qty: int = 0  # items whose refund may be released
    extras: tuple[tuple[str, int], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {"qualifies": self.qualifies, "reasons": [r.to_json() for r in self.reasons],
                "lines": [ln.to_json() for ln in self.lines], "decided_at": iso(self.decided_at),
                "refund_qty": self.refund_qty}


class MissingCondition(ValueError):
    """Lines that came back without a condition chosen: the judgement needs one for each."""

    def __init__(self, skus: list[str]) -> None:
        super().__init__(f"choose a condition for {', '.join(skus)}")
        self.skus = skus


def missing_conditions(lines: list[ReceivedLine] | tuple[ReceivedLine, ...]) -> list[str]:
    return [ln.sku for ln in lines if ln.received > 0 and ln.condition is None]


def judge(rma: Rma, lines: list[ReceivedLine] | tuple[ReceivedLine, ...],
          extras: list[tuple[str, int]] | tuple[tuple[str, int], ...], *, received_at: datetime,
          decided_at: datetime) -> Verdict:
    """Does the return qualify, why (not), and where does each line's goods go.

    ``received_at``: when the parcel was scanned at the bench (the deadline is checked against
    it, not against when the person finished). Raises :class:`MissingCondition` when a line
    that came back has no condition: the bench must say what it saw.
    """
    if missing := missing_conditions(lines):
        raise MissingCondition(missing)
    reasons: list[Reason] = []
    if received_at > rma.deadline:
        reasons.append(Reason("past_deadline", True))
    if rma.custom_work:
        reasons.append(Reason("custom_work", True))
    if not any(ln.received > 0 for ln in lines):
        reasons.append(Reason("nothing_received", True))
    whole_blocked = any(r.blocks for r in reasons)
    allowed = ALLOWED_CONDITIONS.get(rma.reason, STRICTEST)
    outcomes: list[LineOutcome] = []
    for ln in lines:
        if 0 < ln.received < ln.expected or (ln.received == 0 and ln.expected > 0):
            reasons.append(Reason("partial", False, ln.sku))
        if ln.received == 0:
            continue
        counted = min(ln.received, ln.expected)
        ok = ln.condition in allowed
        if not ok:
            reasons.append(Reason("condition_not_allowed", True, ln.sku))
        qualifies = ok and not whole_blocked
        disposition = (DISPOSITION_OF_CONDITION[ln.condition or "used"] if qualifies
                       else "return_to_customer")
        outcomes.append(LineOutcome(ln.sku, counted, ln.condition, disposition,
                                    ln.bin if disposition == "restock" else None, qualifies))
        if ln.received > ln.expected:  # the surplus is no part of the refund: a person looks
            reasons.append(Reason("over_quantity", False, ln.sku))
            outcomes.append(LineOutcome(ln.sku, ln.received - ln.expected, ln.condition,
                                        "quarantine", None, False))
    for code, qty in extras:
        reasons.append(Reason("not_on_rma", False, code))
        outcomes.append(LineOutcome(code, qty, None, "quarantine", None, False))
    refund = sum(o.qty for o in outcomes if o.qualifies)
    return Verdict(qualifies=refund > 0, reasons=tuple(reasons), lines=tuple(outcomes),
                   decided_at=decided_at, refund_qty=refund)


def judge_unannounced(lines: list[tuple[str, int, str | None]], *,
                      decided_at: datetime) -> Verdict:
    """A parcel with no RMA: never qualifies; everything waits in quarantine for a person to
    match it to an RMA later. ``lines``: (code, qty, condition)."""
    outcomes = tuple(LineOutcome(code, qty, condition, "quarantine", None, False)
                     for code, qty, condition in lines if qty > 0)
    return Verdict(False, (Reason("unannounced", True),), outcomes, decided_at)

