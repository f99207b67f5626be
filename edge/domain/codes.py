"""What a scanned code is, by its shape alone (no store lookups).

A scanner types a code and Enter; a camera decode gives the same text. ``classify`` says whether it
is a GTIN/EAN/UPC (with a valid check digit), a GS1 element string (GTIN, lot, expiry, SSCC), a
tracking number of a known carrier, or unknown. Whether it names an order of ours is decided by
the scan service, which looks the text up (order ids and tracking numbers are data, not shapes);
``naming_order`` then gives the answer's code its kind ``order`` or ``tracking``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum

from scanedge.edge.domain.carriers import match_carriers, normalize_tracking
from scanedge.edge.domain.checkdigits import gs1_mod10_ok, upce_to_upca
from scanedge.edge.domain.gs1 import Gs1Data, looks_like_gs1, parse_gs1, strip_symbology_prefix

MAX_CODE_LENGTH = 512


class CodeKind(StrEnum):
    GTIN = "gtin"  # EAN-8/13, UPC-A/E, GTIN-14 with a valid check digit
    GS1 = "gs1"  # a GS1 element string: (01) GTIN, (10) lot, (17) expiry, (00) SSCC ...
    TRACKING = "tracking"  # fits a carrier's tracking-number pattern, or is an order's
    ORDER = "order"  # an order id (known only by lookup: ``naming_order``)
    UNKNOWN = "unknown"  # anything else: a seller's own SKU, garbage


class CodeProblem(StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too_long"
    BAD_CHECK_DIGIT = "bad_check_digit"


@dataclass(frozen=True)
class ScannedCode:
    raw: str
    text: str  # trimmed, without symbology prefix or control characters (GS kept for GS1)
    kind: CodeKind
    gtin: str | None = None  # GTIN-14 form, for matching EAN-13 order lines against GS1 scans
    lot: str | None = None
    expiry: date | None = None
    sscc: str | None = None
    carriers: tuple[str, ...] = ()  # carrier codes whose pattern the text fits
    problem: CodeProblem | None = None
    gs1: Gs1Data | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "text": self.text,
            "kind": self.kind.value,
            "gtin": self.gtin,
            "lot": self.lot,
            "expiry": self.expiry.isoformat() if self.expiry else None,
            "sscc": self.sscc,
            "carriers": list(self.carriers),
            "problem": self.problem.value if self.problem else None,
        }


def naming_order(code: ScannedCode, order_id: str | None,
                 tracking_number: str | None) -> ScannedCode:
    """The code as the scan answer shows it: of kind ``order`` when it is the order's id, of kind
    ``tracking`` when it is the order's tracking number (whatever its shape said: an EMS number
    is also a valid EAN-13, a carrier unknown to us fits no pattern), else unchanged."""
    if not code.text or order_id is None:
        return code
    if code.text == order_id:
        return replace(code, kind=CodeKind.ORDER)
    if tracking_number and code.text.upper() == tracking_number.upper():
        return replace(code, kind=CodeKind.TRACKING)
    return code


def gtin14(digits: str) -> str | None:
    """The GTIN-14 form of an EAN-8/13, UPC-A/E or GTIN-14 with a valid check digit."""
    if not digits.isdigit() or not digits.isascii():
        return None
    if len(digits) in (8, 12, 13, 14) and gs1_mod10_ok(digits):
        return digits.zfill(14)
    if len(digits) == 8:  # not a valid EAN-8: maybe a UPC-E
        upca = upce_to_upca(digits)
        if upca and gs1_mod10_ok(upca):
            return upca.zfill(14)
    return None


def _clean(raw: str) -> str:
    # Scanners add CR/LF/TAB suffixes and some add STX/ETX; GS (0x1D) is data in GS1 codes.
    return "".join(ch for ch in raw if ch == "\x1d" or (ch >= " " and ch != "\x7f")).strip()


def classify(raw: str) -> ScannedCode:
    text = _clean(raw)
    if not text:
        return ScannedCode(raw, text, CodeKind.UNKNOWN, problem=CodeProblem.EMPTY)
    if len(text) > MAX_CODE_LENGTH:
        return ScannedCode(raw, text[:MAX_CODE_LENGTH], CodeKind.UNKNOWN, problem=CodeProblem.TOO_LONG)

    body, announced_gs1 = strip_symbology_prefix(text)
    if announced_gs1 or looks_like_gs1(body):
        data = parse_gs1(body)
        if data is not None:
            return ScannedCode(
                raw, data.text, CodeKind.GS1,
                gtin=data.gtin, lot=data.lot, expiry=data.expiry, sscc=data.sscc,
                problem=CodeProblem.BAD_CHECK_DIGIT if data.errors else None, gs1=data,
            )
    text = body.replace("\x1d", "")

    # A 13-digit EMS number can also be a valid EAN-13: keep both readings, the scan service
    # decides by what the store knows.
    carriers = tuple(c.code for c in match_carriers(text))
    if text.isdigit() and text.isascii():
        g = gtin14(text)
        if g is not None:
            return ScannedCode(raw, text, CodeKind.GTIN, gtin=g, carriers=carriers)
    if carriers:
        return ScannedCode(raw, normalize_tracking(text), CodeKind.TRACKING, carriers=carriers)
    if text.isdigit() and len(text) in (8, 12, 13, 14):
        # The length of an EAN/UPC/GTIN but the check digit fails: most likely a misread.
        return ScannedCode(raw, text, CodeKind.UNKNOWN, problem=CodeProblem.BAD_CHECK_DIGIT)
    return ScannedCode(raw, text, CodeKind.UNKNOWN)


def same_item(code: ScannedCode, sku: str) -> bool:
    """Does the scanned code name this order-line SKU? GTINs compare in GTIN-14 form."""
    if code.text == sku or code.text.upper() == sku.upper():
        return True
    if code.gtin is None:
        return False
    wanted = gtin14(sku)
    if wanted == code.gtin:
        return True
    # An 8-digit code can be both a valid EAN-8 and a valid UPC-E: accept either reading.
    upca = upce_to_upca(code.text) if len(code.text) == 8 else None
    return upca is not None and gs1_mod10_ok(upca) and wanted == upca.zfill(14)
