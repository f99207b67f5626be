"""Which read of a waybill becomes *the* tracking number: candidates, repairs and acceptance.

Pure logic over text reads (no images), so every rule is testable on strings.

A *read* is one text the reader got from one place of the photo (a barcode, or one printed copy
of the number). The rules, in the order they apply:

1. A read is cleaned to capitals and digits. Its whole text must fit a carrier format: a number
   glued to more digits (``3648SF3395329961247``, an 18-digit order number holding a 15-digit
   look-alike) is rejected, never cut out.
2. OCR's usual confusions (``5``/``S``, ``0``/``O``/``D``, ``1``/``I``...) are repaired only where
   the format wants the other class (letters in a prefix, digits in the body). A repaired read
   never counts as accepted on its own.
3. Accepted on one read: a barcode fitting a format; an OCR read of a letter-prefixed format or
   of a check-digit format of the carrier printed on the label, with the engine's confidence at
   least ``MIN_SINGLE_CONF``. Plain digits need two independent reads (two printed copies, or
   barcode and text) that agree.
4. Reads of one number that disagree in a few characters are votes: the number with strictly
   more independent reads wins; a tie accepts nothing. Two accepted numbers that are not
   near-misses of each other mean two labels in the photo: nothing is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from scanedge.edge.domain.carriers import Carrier, CarrierMatch, identify

MIN_SINGLE_CONF = 0.0  # engine confidence below this: a single read must be confirmed
_TO_LETTER = {"0": "O", "1": "I", "2": "Z", "4": "A", "5": "S", "6": "G", "7": "T", "8": "B"}
_TO_DIGIT = {"O": "0", "Q": "0", "D": "0", "U": "0", "I": "1", "L": "1", "T": "7", "Z": "2",
             "S": "5", "B": "8", "G": "6", "A": "4"}
# Known letter prefixes of the prefixed formats, so repairs aim at a real prefix.
_PREFIX_RE = re.compile(r"^[A-Z0-9]{1,4}")


@dataclass(frozen=True)
class Read:
    """One text read from one place: ``where`` identifies the place (independent reads differ)."""

    text: str
    source: str  # "barcode" | "ocr"
    where: str  # e.g. "barcode:0", "line:3"
    confidence: float = 1.0
    region: tuple[tuple[float, float], ...] | None = None  # photo-space quad


@dataclass
class Candidate:
    number: str
    matches: list[CarrierMatch]
    reads: list[Read] = field(default_factory=list)
    repaired: bool = False  # only repaired reads so far
    single_ok: bool = False  # one read suffices (prefixed / check digit / barcode)

    @property
    def places(self) -> set[str]:
        return {r.where for r in self.reads}

    @property
    def sources(self) -> set[str]:
        return {r.source for r in self.reads}

    @property
    def carrier_codes(self) -> list[str]:
        return [m.carrier.code for m in self.matches]

    @property
    def best_confidence(self) -> float:
        return max((r.confidence for r in self.reads), default=0.0)

    def to_json(self) -> dict:
        return {
            "tracking_number": self.number,
            "carriers": self.carrier_codes,
            "reads": len(self.places),
            "sources": sorted(self.sources),
        }


def clean(text: str) -> str:
    """Capitals and digits only: spaces of grouped printing ("7501 3821 6158 59") go away."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def _repairs(token: str) -> Iterable[str]:
    """Variants of ``token`` with confusable characters swapped toward each format's classes."""
    # Letters in the body -> digits, keeping a leading letter prefix of 1-3 characters.
    for keep in (0, 1, 2, 3):
        head, body = token[:keep], token[keep:]
        if body and any(ch.isalpha() for ch in body):
            fixed = "".join(_TO_DIGIT.get(ch, ch) for ch in body)
            if fixed.isdigit():
                yield head + fixed
    # Digits in a 2-3 character prefix -> letters (SF read as 5F, JT as J7, DPK as 0PK).
    for n in (2, 3):
        head = token[:n]
        if any(ch.isdigit() for ch in head):
            fixed = "".join(_TO_LETTER.get(ch, ch) for ch in head)
            rest = "".join(_TO_DIGIT.get(ch, ch) for ch in token[n:])
            yield fixed + rest
            yield fixed + token[n:]


def interpret(text: str) -> tuple[str, list[CarrierMatch], bool] | None:
    """The number a read's text stands for: (number, matches, repaired) or None.

    The whole cleaned text must fit; repairs are tried only when it does not fit as read.
    """
    token = clean(text)
    if not 8 <= len(token) <= 40:
        return None
    matches = identify(token)
    if matches:
        return token, matches, False
    # Junk read in front of a letter prefix (a Chinese label such as "运单号:" misread as digits)
    # is cut off; the letters mark where the number starts. Trailing characters never are.
    for start in range(1, 5):
        matches = [m for m in identify(token[start:]) if m.prefixed]
        if matches and token[start].isalpha():
            return token[start:], matches, False
    for variant in _repairs(token):
        if len(variant) != len(token):
            continue
        matches = identify(variant)
        # A repair only ever leads to a letter-prefixed format: turning letters into digits to
        # land on a plain-digit format would make order numbers and phones look like waybills.
        matches = [m for m in matches if m.prefixed]
        if matches:
            return variant, matches, True
    return None


def _near(a: str, b: str, limit: int = 3) -> bool:
    """Two reads of one printed number: at most ``limit`` characters misread, lost or added."""
    if abs(len(a) - len(b)) > limit:
        return False
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        if min(cur) > limit:
            return False
        prev = cur
    return prev[-1] <= limit


def collect(reads: Sequence[Read], printed: Sequence[Carrier] = ()) -> list[Candidate]:
    """Candidates from reads, most supported first."""
    printed_codes = {c.code for c in printed}
    cands: dict[str, Candidate] = {}
    for r in reads:
        got = interpret(r.text)
        if got is None:
            if r.source == "barcode":
                token = clean(r.text)
                if token:
                    c = cands.setdefault(token, Candidate(token, [], repaired=False))
                    c.reads.append(r)
            continue
        number, matches, repaired = got
        c = cands.get(number)
        if c is None:
            c = cands[number] = Candidate(number, matches, repaired=repaired)
        else:
            c.repaired = c.repaired and repaired
        c.reads.append(r)
        if r.source == "barcode" or (not repaired and r.confidence >= MIN_SINGLE_CONF
              and any(m.prefixed or (m.check_digit and m.carrier.code in printed_codes)
                      for m in matches)):
            c.single_ok = True
    return sorted(
        cands.values(),
        key=lambda c: (-len(c.places), not c.matches, -c.best_confidence, c.number),
    )


def accepted(c: Candidate) -> bool:
    """Rule 3: does this candidate stand on its own reads?"""
    if not c.matches:
        return False
    if c.single_ok:
        return True
    # Plain digits (or repaired reads): two independent places that agree.
    return len(c.places) >= 2


@dataclass
class Decision:
    winner: Candidate | None
    candidates: list[Candidate]
    flags: list[str]


def decide(cands: Sequence[Candidate]) -> Decision:
    """Rule 4: one accepted number, or none with the reason in ``flags``."""
    flags: list[str] = []
    ok = [c for c in cands if accepted(c)]
    if not ok:
        return Decision(None, list(cands), flags)
    ok.sort(key=lambda c: (-len(c.places), -int("barcode" in c.sources), -c.best_confidence))
    best = ok[0]
    for other in cands:
        if other is best or not other.matches:
            continue
        if _near(other.number, best.number):
            # A misread copy is a vote against; it vetoes unless the winner has more places, a
            # barcode, or stands on its own (prefix, check digit) against a rival that does not.
            strong = best.single_ok and not accepted(other)
            if (len(other.places) >= len(best.places) and "barcode" not in best.sources
                    and not strong):
                flags.append("reads_disagree")
                return Decision(None, list(cands), flags)
            flags.append("reads_disagree")
        elif accepted(other):
            flags.append("several_numbers")
            return Decision(None, list(cands), flags)
    return Decision(best, list(cands), flags)
