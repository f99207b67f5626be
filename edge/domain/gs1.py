"""GS1 element strings (GS1-128, GS1 DataMatrix, GS1 QR), parsed with biip.

Scanners send them in several shapes: with a symbology identifier (``]C1`` GS1-128, ``]d2`` GS1
DataMatrix, ``]Q3`` GS1 QR, ``]e0`` DataBar), with the FNC1 separator as the GS character (0x1D),
or in human-readable form ``(01)...(10)...``. All are accepted here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

# biip is imported where a GS1 string is parsed, not here: loading its tables takes ~0.1 s, which
# every `scanedge` command would pay (the CLI's parser imports the packing rules for their names)

GS = "\x1d"
GS1_SYMBOLOGY_PREFIXES = ("]C1", "]d2", "]Q3", "]e0", "]J1")


@dataclass(frozen=True)
class Gs1Data:
    """The fields of a GS1 element string that warehouse rules use, plus all of them by AI."""

    text: str  # the element string as parsed, GS-separated, without symbology prefix
    gtin: str | None = None  # as GTIN-14
    lot: str | None = None  # AI (10)
    expiry: date | None = None  # AI (17)
    sscc: str | None = None  # AI (00)
    serial: str | None = None  # AI (21)
    fields: dict[str, str] = field(default_factory=dict)
    errors: tuple[str, ...] = ()  # e.g. a bad check digit in (01) or (00)

    def as_json(self) -> dict[str, object]:
        return {
            "gtin": self.gtin,
            "lot": self.lot,
            "expiry": self.expiry.isoformat() if self.expiry else None,
            "sscc": self.sscc,
            "serial": self.serial,
            "ais": dict(self.fields),
            "errors": list(self.errors),
        }


def strip_symbology_prefix(text: str) -> tuple[str, bool]:
    """Remove a leading AIM symbology identifier; True when it announced GS1 data."""
    for prefix in GS1_SYMBOLOGY_PREFIXES:
        if text.startswith(prefix):
            return text[len(prefix):], True
    if len(text) >= 3 and text[0] == "]" and text[1].isalpha() and text[2].isalnum():
        return text[3:], False
    return text, False


def looks_like_gs1(text: str) -> bool:
    """Cheap test before parsing: a GS separator, HRI parentheses, or a leading (00)/(01)/(02)."""
    if text.startswith(GS1_SYMBOLOGY_PREFIXES) or GS in text:
        return True
    if text.startswith("(") and ")" in text[:6]:
        return True
    body = text.lstrip(GS)
    return body[:2] in ("00", "01", "02") and len(body) >= 16 and body[:16].isdigit()


def parse_gs1(text: str) -> Gs1Data | None:
    """Parse a GS1 element string; None when it is not one."""
    body, _ = strip_symbology_prefix(text)
    body = body.lstrip(GS).replace("<GS>", GS)
    if not body:
        return None
    import biip
    from biip.gs1_messages import GS1Message

    try:
        message = GS1Message.parse_hri(body) if body.startswith("(") else GS1Message.parse(body)
    except (biip.ParseError, ValueError):
        return None
    if message is None or not message.element_strings:
        return None
    values: dict[str, str] = {}
    errors: list[str] = []
    gtin = lot = sscc = serial = None
    expiry: date | None = None
    for es in message.element_strings:
        ai = es.ai.ai
        values[ai] = es.value
        if ai in ("01", "02"):
            if es.gtin_error:
                errors.append(es.gtin_error)
            else:
                gtin = es.value.zfill(14)
        elif ai == "00":
            if es.sscc_error:
                errors.append(es.sscc_error)
            else:
                sscc = es.value
        elif ai == "10":
            lot = es.value
        elif ai == "17":
            expiry = es.date
        elif ai == "21":
            serial = es.value
    return Gs1Data(
        text=message.value,
        gtin=gtin, lot=lot, expiry=expiry, sscc=sscc, serial=serial,
        fields=values, errors=tuple(errors),
    )
