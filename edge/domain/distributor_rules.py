"""Per-distributor tracking-number rules, and which typed or read number an order may take.

Pure logic (no Flask, no SQLite): ``edge/waybills.py`` applies it inside its transactions and
``tests/test_distributor_rules.py`` checks it table by table.

A distributor (docs/waybill.md) may print its own numbers, in a format the carrier table does not
know ("12 characters including a letter"). So:

- A number must fit the carrier table, **or** the distributor's rule when that rule says what a
  number looks like (``length`` or ``pattern``). A rule that only lists ``carriers`` does not.
- A number that breaks the distributor's rule is not refused outright: it is marked (the
  problems, each with a code the pages translate) and a person may confirm it as an exception,
  which is recorded with the rule and who confirmed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

NUMBER_RE = re.compile(r"[A-Z0-9]{6,40}")
RULE_KEYS = frozenset({"length", "min_letters", "min_digits", "pattern", "carriers"})


@dataclass(frozen=True)
class Problem:
    """One way a number breaks a rule: ``code`` (a key of the rule) and its values."""

    code: str  # "length" | "min_letters" | "min_digits" | "pattern" | "carriers"
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def message(self) -> str:
        p = self.params
        if self.code == "length":
            lo, hi = p["min"], p["max"]
            return f"{lo} characters" if lo == hi else f"{lo}-{hi} characters"
        if self.code == "min_letters":
            return f"at least {p['n']} letter(s)"
        if self.code == "min_digits":
            return f"at least {p['n']} digit(s)"
        if self.code == "pattern":
            return f"the pattern {p['pattern']}"
        return "a carrier of " + ", ".join(p["carriers"])

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, **self.params, "message": self.message}


@dataclass(frozen=True)
class Rule:
    length: tuple[int, int] | None = None
    min_letters: int = 0
    min_digits: int = 0
    pattern: re.Pattern[str] | None = None
    carriers: tuple[str, ...] = ()

    @property
    def defines_format(self) -> bool:
        """Does the rule say what a number looks like (so the carrier table need not know it)?"""
        return self.length is not None or self.pattern is not None

    def problems(self, number: str, carrier: str | None) -> list[Problem]:
        out = []
        if self.length and not self.length[0] <= len(number) <= self.length[1]:
            out.append(Problem("length", {"min": self.length[0], "max": self.length[1],
                                          "got": len(number)}))
        if sum(c.isalpha() for c in number) < self.min_letters:
            out.append(Problem("min_letters", {"n": self.min_letters}))
        if sum(c.isdigit() for c in number) < self.min_digits:
            out.append(Problem("min_digits", {"n": self.min_digits}))
        if self.pattern is not None and not self.pattern.fullmatch(number):
            out.append(Problem("pattern", {"pattern": self.pattern.pattern}))
        if self.carriers and carrier not in self.carriers:
            out.append(Problem("carriers", {"carriers": list(self.carriers)}))
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.length:
            out["length"] = self.length[0] if self.length[0] == self.length[1] else list(self.length)
        if self.min_letters:
            out["min_letters"] = self.min_letters
        if self.min_digits:
            out["min_digits"] = self.min_digits
        if self.pattern is not None:
            out["pattern"] = self.pattern.pattern
        if self.carriers:
            out["carriers"] = list(self.carriers)
        return out


def parse_rules(text: str, carrier_code: Callable[[str], str | None] | None = None) -> dict[str, Rule]:
    """The ``waybill_rules`` setting: ``{distributor: rule}``; ``"*"`` applies to everyone else.

    ``carrier_code(code)`` returns the carrier table's code for a code or None (unknown)."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"waybill_rules is not JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise ValueError("waybill_rules: expected a JSON object {distributor: rule}")
    out = {}
    for name, r in data.items():
        if not isinstance(r, dict) or set(r) - RULE_KEYS:
            raise ValueError(f"waybill_rules[{name!r}]: an object with keys "
                             + ", ".join(sorted(RULE_KEYS)))
        length = r.get("length")
        if isinstance(length, int) and not isinstance(length, bool):
            length = (length, length)
        elif length is not None:
            if not (isinstance(length, list) and len(length) == 2
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in length)):
                raise ValueError(f"waybill_rules[{name!r}].length: a number or [min, max]")
            length = (length[0], length[1])
        for key in ("min_letters", "min_digits"):
            if not isinstance(r.get(key, 0), int) or isinstance(r.get(key), bool):
                raise ValueError(f"waybill_rules[{name!r}].{key}: a whole number")
        try:
            pattern = re.compile(r["pattern"]) if r.get("pattern") else None
        except (re.error, TypeError) as e:
            raise ValueError(f"waybill_rules[{name!r}].pattern: {e}") from None
        if not isinstance(r.get("carriers", []), list):
            raise ValueError(f"waybill_rules[{name!r}].carriers: a list of carrier codes")
        carriers = []
        for c in r.get("carriers", ()):
            code = carrier_code(str(c)) if carrier_code else str(c).upper()
            if code is None:
                raise ValueError(f"waybill_rules[{name!r}].carriers: unknown carrier {c!r}")
            carriers.append(code)
        out[str(name)] = Rule(length, int(r.get("min_letters", 0)), int(r.get("min_digits", 0)),
                              pattern, tuple(carriers))
    return out


def parse_waybill_rules(text: str) -> dict[str, Rule]:
    """The ``waybill_rules`` setting, its carriers checked against the carrier table."""
    from scanedge.edge.domain.carriers import carrier_by_code

    def code(c: str) -> str | None:
        found = carrier_by_code(c)
        return found.code if found else None

    return parse_rules(text, code)


def rule_for(rules: dict[str, Rule], distributor: str | None) -> tuple[str, Rule] | None:
    """The rule that applies to ``distributor``: its own, else ``"*"``, else none."""
    if distributor and distributor in rules:
        return distributor, rules[distributor]
    if "*" in rules:
        return "*", rules["*"]
    return None


@dataclass(frozen=True)
class NumberCheck:
    """What :func:`check_number` decided: an ``error`` (the number cannot be taken at all), or
    the carrier it goes on with, its ``flags`` and the rule's ``problems`` (each needs a person's
    confirmation as an exception)."""

    number: str
    carrier: str | None = None
    flags: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    error: str | None = None  # "invalid_tracking_number" | "carrier_ambiguous"
    message: str = ""
    carriers: tuple[str, ...] = ()  # the carriers that fit (carrier_ambiguous)


def check_number(number: str, *, fits: Sequence[str], named: str | None, rule: Rule | None,
                 order_carrier: str | None = None) -> NumberCheck:
    """May ``number`` go on an order, with which carrier, and what of the rule does it break?

    ``fits``: the carrier codes whose formats the number fits (the carrier table); ``named``: the
    carrier the person named (a code of the table) or None; ``rule``: the distributor's rule or
    None; ``order_carrier``: the order's carrier, which settles a number several carriers fit.
    """
    if not NUMBER_RE.fullmatch(number):
        return NumberCheck(number, error="invalid_tracking_number",
                           message="a tracking number is 6-40 letters and digits")
    fits = list(dict.fromkeys(fits))
    own_format = rule is not None and rule.defines_format
    flags: list[str] = []
    if named:
        if named in fits:
            chosen: str | None = named
        elif own_format:
            chosen = named
            flags.append("not_in_carrier_table")
        else:
            return NumberCheck(number, error="invalid_tracking_number",
                               message=f"{number} is not a {named} tracking number")
    elif len(fits) == 1:
        chosen = fits[0]
    elif fits:
        if order_carrier not in fits:
            return NumberCheck(number, error="carrier_ambiguous",
                               message=f"{number} fits several carriers: name the carrier",
                               carriers=tuple(sorted(fits)))
        chosen = order_carrier
    elif own_format:
        chosen = None
        flags.append("not_in_carrier_table")
    else:
        return NumberCheck(number, error="invalid_tracking_number",
                           message=f"{number} fits no carrier's format: check it or name the "
                                   "carrier")
    problems = tuple(rule.problems(number, chosen)) if rule is not None else ()
    return NumberCheck(number, chosen, tuple(flags), problems)
