"""The carrier table: which courier a tracking number belongs to, and how its name is printed.

The table is data (``carriers.json``); this module loads it once, matches numbers against its
formats (pattern + check digit) and finds carrier names in text read from a label header.

A number *fits* a format when the pattern matches in full and, for formats with a check digit,
the check digit is right. International formats follow the descriptions of the MIT-licensed
tracking_number_data project (UPS 1Z, FedEx, DHL, UPU S10).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources


def _mod10(sequence: str, *, evens: int = 1, odds: int = 1) -> int:
    """tracking_number_data's ``mod10``: letters count as ``(ord - 3) % 10``; index 0 is even."""
    total = 0
    for i, c in enumerate(sequence):
        x = int(c) if c.isdigit() else (ord(c) - 3) % 10
        total += x * (odds if i % 2 else evens)
    return (10 - total % 10) % 10


def _check_s10(n: str) -> bool:
    """UPU S10 (``RB123456785CN``): weights 8,6,4,2,3,5,9,7 on the serial, mod 11."""
    weights = (8, 6, 4, 2, 3, 5, 9, 7)
    c = 11 - sum(int(d) * w for d, w in zip(n[2:10], weights, strict=True)) % 11
    return {10: 0, 11: 5}.get(c, c) == int(n[10])


def _check_ups(n: str) -> bool:
    return _mod10(n[2:17], evens=1, odds=2) == int(n[17]) if n[17].isdigit() else False


def _check_fedex12(n: str) -> bool:
    weights = (3, 1, 7, 3, 1, 7, 3, 1, 7, 3, 1)
    return sum(int(d) * w for d, w in zip(n[:11], weights, strict=True)) % 11 % 10 == int(n[11])


def _check_mod10_odd3(n: str) -> bool:
    """FedEx Ground (15 digits) and Ground 96 (22 digits: the serial is digits 8-21)."""
    serial = n[7:21] if len(n) == 22 else n[:-1]
    return _mod10(serial, evens=1, odds=3) == int(n[-1])


def _check_mod10_even3(n: str) -> bool:
    """FedEx SmartPost (IMpb): the serial is read with a leading ``92``."""
    serial = n[:-1] if n.startswith("92") and len(n) == 22 else "92" + n[:-1]
    return _mod10(serial, evens=3, odds=1) == int(n[-1])


def _check_mod7(n: str) -> bool:
    return int(n[:-1]) % 7 == int(n[-1])


# Check-digit algorithms by the name used in carriers.json.
CHECKS: dict[str, Callable[[str], bool]] = {
    "s10": _check_s10,
    "ups": _check_ups,
    "fedex12": _check_fedex12,
    "mod10_odd3": _check_mod10_odd3,
    "mod10_even3": _check_mod10_even3,
    "mod7": _check_mod7,
}


@dataclass(frozen=True)
class TrackingFormat:
    name: str
    pattern: re.Pattern[str]
    check: str | None = None  # a key of CHECKS
    prefixed: bool = False  # starts with letters: a misread rarely lands on it by chance

    def fits(self, number: str) -> bool:
        if not self.pattern.fullmatch(number):
            return False
        return self.check is None or CHECKS[self.check](number)


@dataclass(frozen=True)
class Carrier:
    code: str  # the carrier code of docs/interfaces.md: SF, ZTO, YTO, STO, YUNDA, JT, JD, EMS, DBL, ...
    name_zh: str
    name_en: str
    aliases: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    formats: tuple[TrackingFormat, ...] = ()
    names: tuple[str, ...] = ()  # as printed on labels, longest first

    def matches(self, number: str) -> bool:
        return self.format_of(number) is not None

    def format_of(self, number: str) -> TrackingFormat | None:
        """The first format the (normalized) number fits, check digit included."""
        return next((f for f in self.formats if f.fits(number)), None)


@dataclass(frozen=True)
class CarrierMatch:
    """One carrier whose format a number fits."""

    carrier: Carrier
    format: TrackingFormat

    @property
    def check_digit(self) -> bool:
        return self.format.check is not None

    @property
    def prefixed(self) -> bool:
        return self.format.prefixed


@cache
def carriers() -> tuple[Carrier, ...]:
    data = json.loads(resources.files("scanedge.edge.domain").joinpath("carriers.json").read_text("utf-8"))
    out = []
    for c in data["carriers"]:
        formats = tuple(
            TrackingFormat(
                name=f["name"], pattern=re.compile(f["pattern"]),
                check=f.get("check"), prefixed=bool(f.get("prefixed", False)),
            )
            for f in c["formats"]
        )
        for f in formats:
            if f.check is not None and f.check not in CHECKS:
                raise ValueError(f"carriers.json: {c['code']}: unknown check {f.check!r}")
        names = tuple(sorted(c.get("names", ()), key=len, reverse=True))
        out.append(
            Carrier(
                code=c["code"], name_zh=c["name_zh"], name_en=c["name_en"],
                aliases=tuple(c.get("aliases", ())) + names,
                patterns=tuple(f.pattern for f in formats),
                formats=formats, names=names,
            )
        )
    return tuple(out)


def carrier_by_code(code: str) -> Carrier | None:
    """The carrier with this code; a table alias (``DEPPON`` for ``DBL``) is accepted too."""
    key = code.strip().upper()
    found = next((c for c in carriers() if c.code == key), None)
    return found or next((c for c in carriers() if key in c.aliases), None)


def normalize_tracking(text: str) -> str:
    """Tracking numbers are compared upper-case without spaces or dashes."""
    return re.sub(r"[\s\-]", "", text).upper()


def match_carriers(text: str) -> list[Carrier]:
    """Every carrier whose format the (normalized) number fits, in table order."""
    return [m.carrier for m in identify(text)]


def identify(text: str) -> list[CarrierMatch]:
    """Every (carrier, format) the normalized number fits, check digits verified, table order."""
    number = normalize_tracking(text)
    out = []
    for c in carriers():
        f = c.format_of(number)
        if f is not None:
            out.append(CarrierMatch(c, f))
    return out


_NAME_NOISE = re.compile(r"[\s·•.,:：;|'\"`_\-]+")


def find_carrier_names(text: str) -> list[Carrier]:
    """Carriers whose printed name occurs in ``text`` (OCR of a label header), best first.

    Chinese names are matched as written; Latin names as whole words, upper-cased, so that
    ``SF`` does not match inside another word. A longer match ranks first (``中国邮政`` beats a
    stray ``EMS``), and a carrier is listed once.
    """
    zh = _NAME_NOISE.sub("", text)
    latin = " " + re.sub(r"[^A-Z0-9&]+", " ", text.upper()) + " "
    scored: list[tuple[int, int, Carrier]] = []
    for order, c in enumerate(carriers()):
        best = 0
        for name in c.names:
            if name.isascii():
                if f" {name} " in latin:
                    best = max(best, len(name.replace(" ", "")))
            elif name in zh:
                best = max(best, 2 * len(name))  # a CJK character says more than a letter
        if best:
            scored.append((-best, order, c))
    return [c for _, _, c in sorted(scored, key=lambda t: (t[0], t[1]))]
