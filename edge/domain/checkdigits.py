"""Check-digit algorithms used by barcodes and tracking numbers."""

from __future__ import annotations


def gs1_mod10_ok(digits: str) -> bool:
    """GS1 mod-10 (EAN-8/13, UPC-A, GTIN-14, ITF-14, SSCC): weights 3,1,3,... from the right."""
    if not digits.isdigit() or len(digits) < 2 or not digits.isascii():
        return False
    return gs1_mod10_digit(digits[:-1]) == int(digits[-1])


def gs1_mod10_digit(payload: str) -> int:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(payload)))
    return (10 - total % 10) % 10


def upce_to_upca(upce: str) -> str | None:
    """Expand an 8-digit UPC-E (number system 0 or 1) to its 12-digit UPC-A, or None."""
    if len(upce) != 8 or not upce.isdigit() or upce[0] not in "01":
        return None
    ns, d, check = upce[0], upce[1:7], upce[7]
    last = d[5]
    if last in "012":
        body = d[0:2] + last + "0000" + d[2:5]
    elif last == "3":
        body = d[0:3] + "00000" + d[3:5]
    elif last == "4":
        body = d[0:4] + "00000" + d[4]
    else:
        body = d[0:5] + "0000" + last
    return ns + body + check
