"""The warehouse layout (``layout.toml``) and location codes ``ZONE-AA-BB-L`` (docs/interfaces.md).

One rectangular block of parallel aisles, picked from both sides. Aisle ``a`` is at
``x = (a - 1) * aisle_pitch_m``; bin ``b`` at ``y = b * bin_pitch_m``; the front cross aisle is
``y = 0``, the back one ``y = (bins + 1) * bin_pitch_m``; the depot is at the front end of
``depot_aisle``. Levels add no distance. Extension (docs/picking.md): an optional ``zones`` list
of the zone letters this block holds (default: any letter). Pure code: no I/O.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from typing import Any

LOCATION_RE = re.compile(r"([A-Z])-(\d{1,3})-(\d{1,3})-(\d{1,2})")
KEYS = {"aisles", "bins", "levels", "aisle_pitch_m", "bin_pitch_m", "depot_aisle", "zones", "name",
        "waves"}
WAVE_KEYS = {"interval_s", "max_orders", "max_lines", "max_totes", "units_per_tote",
             "carrier_capacity"}


class LayoutError(ValueError):
    """A layout file or a location code that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Location:
    code: str
    zone: str
    aisle: int
    bin: int
    level: int

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "zone": self.zone, "aisle": self.aisle, "bin": self.bin,
                "level": self.level}


@dataclass(frozen=True)
class WaveSettings:
    """The optional ``[waves]`` table of layout.toml: how this site groups its orders."""

    interval_s: float = 900.0
    max_orders: int = 12
    max_lines: int = 60
    max_totes: int = 12
    units_per_tote: int = 20
    carrier_capacity: tuple[tuple[str, int], ...] = ()  # parcels per carrier per day


@dataclass(frozen=True)
class Layout:
    aisles: int = 20
    bins: int = 60
    levels: int = 5
    aisle_pitch_m: float = 3.0
    bin_pitch_m: float = 1.0
    depot_aisle: int = 1
    zones: tuple[str, ...] = ()  # empty: any zone letter is this block
    name: str = ""
    waves: WaveSettings = WaveSettings()

    @property
    def depth_m(self) -> float:
        """y of the back cross aisle."""
        return (self.bins + 1) * self.bin_pitch_m

    def x(self, aisle: int) -> float:
        return (aisle - 1) * self.aisle_pitch_m

    def y(self, bin_: int) -> float:
        return bin_ * self.bin_pitch_m

    def location(self, code: Any) -> Location:
        """Parse and check a location code against this layout (LayoutError says what is wrong)."""
        if not isinstance(code, str):
            raise LayoutError(f"location {code!r}: expected text like A-03-17-2")
        text = code.strip().upper()
        m = LOCATION_RE.fullmatch(text)
        if not m:
            raise LayoutError(f"location {code[:40]!r}: expected ZONE-AA-BB-L, e.g. A-03-17-2")
        zone, aisle, bin_, level = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))
        if self.zones and zone not in self.zones:
            raise LayoutError(f"location {text}: zone {zone} is not in this layout "
                              f"({', '.join(self.zones)})")
        if not 1 <= aisle <= self.aisles:
            raise LayoutError(f"location {text}: aisle {aisle} outside 1..{self.aisles}")
        if not 1 <= bin_ <= self.bins:
            raise LayoutError(f"location {text}: bin {bin_} outside 1..{self.bins}")
        if not 1 <= level <= self.levels:
            raise LayoutError(f"location {text}: level {level} outside 1..{self.levels}")
        return Location(text, zone, aisle, bin_, level)


def parse_location_shape(code: str) -> bool:
    """Whether ``code`` looks like a location code (no layout needed: the bin-label scan)."""
    return bool(LOCATION_RE.fullmatch(code.strip().upper()))


def _int(doc: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise LayoutError(f"layout: {key} = {value!r}: expected a whole number {low}..{high}")
    return value


def _metres(doc: dict[str, Any], key: str, default: float) -> float:
    value = doc.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1000:
        raise LayoutError(f"layout: {key} = {value!r}: expected metres, greater than 0")
    return float(value)


def layout_from_dict(doc: dict[str, Any]) -> Layout:
    unknown = sorted(set(doc) - KEYS)
    if unknown:
        raise LayoutError(f"layout: unknown key {unknown[0]!r} (known: {', '.join(sorted(KEYS))})")
    for key in ("aisles", "bins"):
        if key not in doc:
            raise LayoutError(f"layout: {key} is required")
    aisles = _int(doc, "aisles", 20, 1, 999)
    zones = doc.get("zones", [])
    if not isinstance(zones, list) or not all(isinstance(z, str) and re.fullmatch(r"[A-Z]", z)
                                              for z in zones):
        raise LayoutError(f"layout: zones = {zones!r}: expected a list of capital letters")
    name = doc.get("name", "")
    if not isinstance(name, str):
        raise LayoutError("layout: name: expected text")
    return Layout(
        waves=_waves(doc.get("waves", {})),
        aisles=aisles,
        bins=_int(doc, "bins", 60, 1, 999),
        levels=_int(doc, "levels", 5, 1, 99),
        aisle_pitch_m=_metres(doc, "aisle_pitch_m", 3.0),
        bin_pitch_m=_metres(doc, "bin_pitch_m", 1.0),
        depot_aisle=_int(doc, "depot_aisle", 1, 1, aisles),
        zones=tuple(zones),
        name=name,
    )


def _waves(doc: Any) -> WaveSettings:
    if not isinstance(doc, dict):
        raise LayoutError("layout: [waves] must be a table")
    unknown = sorted(set(doc) - WAVE_KEYS)
    if unknown:
        raise LayoutError(f"layout: [waves] unknown key {unknown[0]!r} "
                          f"(known: {', '.join(sorted(WAVE_KEYS))})")
    interval = doc.get("interval_s", 900)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not 10 <= interval <= 86400:
        raise LayoutError(f"layout: [waves] interval_s = {interval!r}: expected 10..86400 seconds")
    capacity = doc.get("carrier_capacity", {})
    if not isinstance(capacity, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in capacity.values()):
        raise LayoutError("layout: [waves] carrier_capacity: expected a table of carrier = parcels")
    return WaveSettings(
        interval_s=float(interval),
        max_orders=_int(doc, "max_orders", 12, 1, 1000),
        max_lines=_int(doc, "max_lines", 60, 1, 10000),
        max_totes=_int(doc, "max_totes", 12, 1, 1000),
        units_per_tote=_int(doc, "units_per_tote", 20, 1, 100000),
        carrier_capacity=tuple(sorted((k.upper(), v) for k, v in capacity.items())),
    )


def parse_layout(text: str) -> Layout:
    """A layout from the text of a ``layout.toml``."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise LayoutError(f"layout: not valid TOML: {e}") from None
    return layout_from_dict(doc)


def layout_toml(layout: Layout) -> str:
    lines = [f"aisles = {layout.aisles}", f"bins = {layout.bins}", f"levels = {layout.levels}",
             f"aisle_pitch_m = {layout.aisle_pitch_m}", f"bin_pitch_m = {layout.bin_pitch_m}",
             f"depot_aisle = {layout.depot_aisle}"]
    if layout.zones:
        lines.append("zones = [" + ", ".join(f'"{z}"' for z in layout.zones) + "]")
    return "\n".join(lines) + "\n"
