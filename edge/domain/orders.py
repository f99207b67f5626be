"""Orders as the hub, the importer and the label renderer see them (docs/interfaces.md "Order JSON")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

PRIORITIES = ("P0", "P1", "P2", "P3")
DEFAULT_PRIORITY = "P2"
ORDER_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,63}")
# A site is one warehouse of the group: its devices see only its orders (docs/scaling.md).
SITE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
DEFAULT_SITE = "default"
KNOWN_KEYS = frozenset({
    "order_id", "version", "station", "priority", "tracking_number", "carrier", "lane",
    "lines", "gifts", "recipient", "site",
    "ship_by", "category",  # picking (docs/picking.md)
    "expected_weight_kg",  # the weight check at the bench (docs/scale.md)
})


# Limits of one order document (docs/security.md, "Limits and bad input"): what a packing
# bench can handle, and what every device of the site is sent.
MAX_VERSION = 2**53 - 1  # an integer every JSON reader keeps exactly; SQLite stores 64 bits
MAX_TEXT = 512  # characters of one text field (sku, name, lot, tracking number ...)
MAX_LINES = 1000
MAX_GIFTS = 100
MAX_DOC_CHARS = 256 * 1024  # the whole document as JSON (recipient and unknown keys included)
MAX_DEPTH = 16  # nesting of recipient and unknown keys


class OrderError(ValueError):
    """An order document that cannot be accepted; the message names the field."""


@dataclass(frozen=True)
class OrderLine:
    sku: str  # what an item scan matches: a GTIN/EAN/UPC or the seller's own code
    qty: int
    name: str = ""
    lot: str | None = None  # required lot, checked against GS1 (10)
    expires: date | None = None  # the item must not expire before this day (GS1 (17))
    location: str | None = None  # where it is picked: ZONE-AA-BB-L (docs/picking.md)
    unit_weight_kg: float | None = None  # one item's weight: the bench's weight check adds them up


@dataclass(frozen=True)
class Gift:
    name: str
    qty: int = 1
    code: str | None = None  # its barcode, when it has one: scanning it confirms the gift


@dataclass(frozen=True)
class Order:
    order_id: str
    version: int = 1
    station: str | None = None
    priority: str = DEFAULT_PRIORITY
    tracking_number: str | None = None
    carrier: str | None = None
    lane: str | None = None
    lines: tuple[OrderLine, ...] = ()
    gifts: tuple[Gift, ...] = ()
    recipient: dict[str, Any] = field(default_factory=dict)
    site: str = DEFAULT_SITE
    extra: dict[str, Any] = field(default_factory=dict)  # unknown keys: kept, ignored
    ship_by: datetime | None = None  # latest ship time (waves put it first on its day)
    category: str | None = None
    expected_weight_kg: float | None = None  # the packed parcel's weight (docs/scale.md)

    @property
    def total_items(self) -> int:
        return sum(line.qty for line in self.lines)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = dict(self.extra)
        doc.update({
            "order_id": self.order_id,
            "version": self.version,
            "station": self.station,
            "priority": self.priority,
            "tracking_number": self.tracking_number,
            "carrier": self.carrier,
            "lane": self.lane,
            "lines": [_line_json(line) for line in self.lines],
            "gifts": [{"name": g.name, "qty": g.qty, **({"code": g.code} if g.code else {})}
                      for g in self.gifts],
            "recipient": self.recipient,
            "site": self.site,
        })
        if self.ship_by is not None:
            doc["ship_by"] = self.ship_by.isoformat()
        if self.category is not None:
            doc["category"] = self.category
        if self.expected_weight_kg is not None:
            doc["expected_weight_kg"] = self.expected_weight_kg
        return doc


def _line_json(line: OrderLine) -> dict[str, Any]:
    doc: dict[str, Any] = {"sku": line.sku, "name": line.name, "qty": line.qty}
    if line.lot is not None:
        doc["lot"] = line.lot
    if line.expires is not None:
        doc["expires"] = line.expires.isoformat()
    if line.location is not None:
        doc["location"] = line.location
    if line.unit_weight_kg is not None:
        doc["unit_weight_kg"] = line.unit_weight_kg
    return doc


def _text(doc: dict[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = doc.get(key)
    if value is None or value == "":
        if required:
            raise OrderError(f"{where}{key}: required")
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise OrderError(f"{where}{key}: expected text, got {type(value).__name__}")
    if isinstance(value, int) and not -MAX_VERSION <= value <= MAX_VERSION:
        raise OrderError(f"{where}{key}: a number this large is no text")
    text = str(value).strip()
    if len(text) > MAX_TEXT:
        raise OrderError(f"{where}{key}: at most {MAX_TEXT} characters")
    return text


def _qty(doc: dict[str, Any], where: str, default: int | None = None) -> int:
    value = doc.get("qty", default)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
        raise OrderError(f"{where}qty: expected a whole number from 1 to 100000, got {value!r}")
    return value


def parse_order(doc: Any) -> Order:
    """Validate one order document; raise :class:`OrderError` naming the bad field."""
    if not isinstance(doc, dict):
        raise OrderError(f"an order must be a JSON object, got {type(doc).__name__}")
    order_id = _text(doc, "order_id", "", required=True)
    assert order_id is not None
    if not ORDER_ID_RE.fullmatch(order_id):
        raise OrderError(f"order_id {order_id[:80]!r}: 1-64 letters, digits, '-', '_', '.', '/'")
    _check_document(doc, order_id)
    version = doc.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise OrderError(f"{order_id}: version: expected a whole number from 1 to {MAX_VERSION}, "
                         f"got {str(version)[:40]}")
    priority = (_text(doc, "priority", f"{order_id}: ") or DEFAULT_PRIORITY).upper()
    if priority not in PRIORITIES:
        raise OrderError(f"{order_id}: priority {priority!r}: expected one of {', '.join(PRIORITIES)}")

    raw_lines = doc.get("lines", [])
    if not isinstance(raw_lines, list) or not raw_lines:
        raise OrderError(f"{order_id}: lines: expected a non-empty list")
    if len(raw_lines) > MAX_LINES:
        raise OrderError(f"{order_id}: lines: at most {MAX_LINES}")
    lines = tuple(_parse_line(item, f"{order_id}: lines[{i}].") for i, item in enumerate(raw_lines))

    raw_gifts = doc.get("gifts") or []
    if not isinstance(raw_gifts, list) or len(raw_gifts) > MAX_GIFTS:
        raise OrderError(f"{order_id}: gifts: expected a list of at most {MAX_GIFTS}")
    gifts = []
    for i, g in enumerate(raw_gifts):
        where = f"{order_id}: gifts[{i}]."
        if not isinstance(g, dict):
            raise OrderError(f"{where[:-1]}: expected an object")
        gifts.append(Gift(name=_text(g, "name", where, required=True) or "", qty=_qty(g, where, 1),
                          code=_text(g, "code", where)))

    recipient = doc.get("recipient") or {}
    if not isinstance(recipient, dict):
        raise OrderError(f"{order_id}: recipient: expected an object")
    tracking = _text(doc, "tracking_number", f"{order_id}: ")
    carrier = _text(doc, "carrier", f"{order_id}: ")
    if doc.get(SUB_TRACKING_KEY) is not None:  # kept among the extra keys, checked here
        sub_tracking_numbers(doc[SUB_TRACKING_KEY], f"{order_id}: ")
    site = _text(doc, "site", f"{order_id}: ") or DEFAULT_SITE
    if not SITE_RE.fullmatch(site):
        raise OrderError(f"{order_id}: site {site!r}: 1-64 letters, digits, '-', '_', '.'")
    return Order(
        order_id=order_id,
        version=version,
        station=_text(doc, "station", f"{order_id}: "),
        priority=priority,
        tracking_number=tracking.upper().replace(" ", "") if tracking else None,
        carrier=carrier.upper() if carrier else None,
        lane=_text(doc, "lane", f"{order_id}: "),
        lines=lines,
        gifts=tuple(gifts),
        recipient=recipient,
        site=site,
        extra={k: v for k, v in doc.items() if k not in KNOWN_KEYS},
        ship_by=_ship_by(doc, order_id),
        category=_text(doc, "category", f"{order_id}: "),
        expected_weight_kg=_kg(doc, "expected_weight_kg", f"{order_id}: "),
    )


def _check_document(doc: dict[str, Any], order_id: str) -> None:
    """The whole document: nesting, lone surrogates (no UTF-8 form: no store takes them),
    non-finite numbers, integers beyond 64 bits, and its size as JSON (iteratively)."""
    import json
    import math

    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise OrderError(f"{order_id}: a text holds a lone surrogate (not Unicode)") from None
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int):
            if not -(2**63) <= value < 2**63:
                raise OrderError(f"{order_id}: a number is out of the 64-bit range")
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise OrderError(f"{order_id}: a number is not finite")
        elif isinstance(value, dict):
            if depth > MAX_DEPTH:
                raise OrderError(f"{order_id}: nested deeper than {MAX_DEPTH} levels")
            stack.extend((k, depth + 1) for k in value)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list | tuple):
            if depth > MAX_DEPTH:
                raise OrderError(f"{order_id}: nested deeper than {MAX_DEPTH} levels")
            stack.extend((v, depth + 1) for v in value)
    if len(json.dumps(doc, ensure_ascii=False, default=str)) > MAX_DOC_CHARS:
        raise OrderError(f"{order_id}: the order is larger than {MAX_DOC_CHARS} characters as JSON")


def _parse_line(item: Any, where: str) -> OrderLine:
    if not isinstance(item, dict):
        raise OrderError(f"{where[:-1]}: expected an object")
    sku = _text(item, "sku", where, required=True)
    assert sku is not None
    expires_text = _text(item, "expires", where)
    expires = None
    if expires_text:
        try:
            expires = date.fromisoformat(expires_text)
        except ValueError:
            raise OrderError(f"{where}expires {expires_text!r}: expected YYYY-MM-DD") from None
    return OrderLine(
        sku=sku,
        qty=_qty(item, where),
        name=_text(item, "name", where) or "",
        lot=_text(item, "lot", where),
        expires=expires,
        location=_location(item, where),
        unit_weight_kg=_kg(item, "unit_weight_kg", where),
    )


SUB_TRACKING_KEY = "sub_tracking_numbers"  # 子单号 of a multi-parcel order (docs/parcels.md)
MAX_SUB_TRACKING = 49  # parcels 2..50


def sub_tracking_numbers(raw: object, where: str = "") -> tuple[str, ...]:
    """A ``sub_tracking_numbers`` value: a list of tracking numbers (texts of 1-64 characters),
    normalized like ``tracking_number``; OrderError otherwise."""
    if not isinstance(raw, list) or len(raw) > MAX_SUB_TRACKING or not all(
            isinstance(t, str) and 0 < len(t.strip()) <= 64 for t in raw):
        raise OrderError(f"{where}{SUB_TRACKING_KEY}: expected a list of at most "
                         f"{MAX_SUB_TRACKING} tracking numbers (texts of 1-64 characters)")
    return tuple(t.upper().replace(" ", "") for t in raw)


MAX_KG = 10_000.0  # beyond any parcel scale; a bigger number is a unit mistake (grams)


def _kg(doc: dict[str, Any], key: str, where: str) -> float | None:
    """A weight in kilograms: a number from 0 to MAX_KG, or absent."""
    value = doc.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= MAX_KG:
        raise OrderError(f"{where}{key}: expected a number of kilograms from 0 to {MAX_KG:g}, "
                         f"got {str(value)[:40]}")
    return float(value)


LOCATION_RE = re.compile(r"[A-Z]-\d{1,3}-\d{1,3}-\d{1,2}")


def _location(item: dict[str, Any], where: str) -> str | None:
    """A line's pick location: ZONE-AA-BB-L (the site's layout.toml checks the ranges)."""
    text = _text(item, "location", where)
    if text is None:
        return None
    text = text.upper()
    if not LOCATION_RE.fullmatch(text):
        raise OrderError(f"{where}location {text[:40]!r}: expected ZONE-AA-BB-L, e.g. A-03-17-2")
    return text


def _ship_by(doc: dict[str, Any], order_id: str) -> datetime | None:
    """ISO date-time (no zone: UTC) or a date (the end of that day, UTC)."""
    text = _text(doc, "ship_by", f"{order_id}: ")
    if text is None:
        return None
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.max.time(), UTC)
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise OrderError(f"{order_id}: ship_by {text[:40]!r}: expected an ISO date or "
                         "date-time, e.g. 2026-05-01T16:00:00+08:00") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
