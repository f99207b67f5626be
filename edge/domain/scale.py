"""What a shipping scale says, read as data (pure; the reader is edge/scale.py, docs/scale.md).

Two protocols, one line per reading:

- ``continuous``: the output most retail and shipping scales stream by default (A&D, OHAUS,
  and the Chinese 电子秤 that copy them): ``ST,GS,+  1.234kg``. The first field is the state
  (``ST`` stable, ``US`` unstable, ``OL`` overload), the second gross/net/tare (``GS``, ``NT``,
  ``TR``, sometimes absent), then the signed weight and its unit.
- ``sics``: METTLER TOLEDO's MT-SICS answers, ``S S      1.234 kg`` (stable), ``S D ...``
  (dynamic: still moving), ``S +`` / ``S -`` (over / under the range), ``S I`` and ``ES``/``ET``/
  ``EL`` (the scale could not answer).

``auto`` tells them apart by the line's shape. A weight counts only once the scale has called it
stable ``settle`` times in a row with the same value (:func:`settled`): a parcel still being put
down is never weighed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

PROTOCOLS = ("auto", "continuous", "sics")
STATES = ("stable", "unstable", "overload", "underload", "error")
KG_PER_UNIT = {"kg": 1.0, "g": 0.001, "lb": 0.45359237, "oz": 0.028349523125}
SERIAL_OPTIONS = ("baud", "baudrate", "bytesize", "parity", "stopbits", "protocol", "settle")
TCP_OPTIONS = ("protocol", "settle")
DEFAULT_SETTLE = 3  # stable frames in a row with one value (continuous scales send ~10 a second)
FORMS = ("none", "serial:///dev/ttyUSB0?baud=9600&protocol=auto", "tcp://HOST:PORT?protocol=auto")

_CONTINUOUS = re.compile(
    r"(?P<state>ST|US|OL)\s*,\s*(?:(?:GS|NT|TR|G|N|T)\s*,\s*)?"
    r"(?P<sign>[+-])?\s*(?P<number>\d+(?:\.\d+)?|\d*\.\d+|[-.\s]*)\s*(?P<unit>kg|g|lb|oz)?",
    re.IGNORECASE)
_SICS = re.compile(r"S\s+(?P<flag>[SD])\s+(?P<sign>[+-])?\s*(?P<number>\d+(?:\.\d+)?|\d*\.\d+)"
                   r"\s*(?P<unit>kg|g|lb|oz)")
_SICS_RANGE = re.compile(r"S\s+(?P<flag>[+-])")
_SICS_ERROR = re.compile(r"S\s+I|E[STL]")


@dataclass(frozen=True)
class Frame:
    """One reading: its state and, for stable and unstable ones, the weight in kilograms."""

    state: str  # one of STATES
    weight_kg: float | None = None


@dataclass(frozen=True)
class ScaleAddress:
    """Where the scale is: ``serial`` (a device file: RS-232, USB-serial) or ``tcp`` (a serial
    server or a networked scale), with the options the reader needs."""

    scheme: str
    target: str  # the device file, or HOST:PORT
    protocol: str = "auto"
    baudrate: int = 9600
    bytesize: int = 8
    parity: str = "N"
    stopbits: int = 1
    settle: int = DEFAULT_SETTLE

    def describe(self) -> str:
        if self.scheme == "serial":
            return f"serial://{self.target} ({self.baudrate} baud, {self.protocol})"
        return f"tcp://{self.target} ({self.protocol})"


def _weight(sign: str | None, number: str, unit: str | None) -> float | None:
    number = number.strip()
    if not re.fullmatch(r"\d+(?:\.\d+)?|\d*\.\d+", number):
        return None
    value = float(number) * KG_PER_UNIT[(unit or "kg").lower()]
    return round(-value if sign == "-" else value, 6)


def parse_frame(line: str, protocol: str = "auto") -> Frame | None:
    """The reading in one line of the scale's output, or None for a line that is no reading
    (blank, an echo, an acknowledgement, noise after a reconnect)."""
    text = line.strip()
    if not text:
        return None
    if protocol in ("auto", "continuous"):
        m = _CONTINUOUS.fullmatch(text)
        if m:
            state = {"ST": "stable", "US": "unstable", "OL": "overload"}[m["state"].upper()]
            weight = _weight(m["sign"], m["number"], m["unit"])
            if state == "overload":
                return Frame("overload")
            return Frame(state, weight) if weight is not None else Frame("error")
    if protocol in ("auto", "sics"):
        m = _SICS.fullmatch(text)
        if m:
            return Frame("stable" if m["flag"] == "S" else "unstable",
                         _weight(m["sign"], m["number"], m["unit"]))
        m = _SICS_RANGE.fullmatch(text)
        if m:
            return Frame("overload" if m["flag"] == "+" else "underload")
        if _SICS_ERROR.fullmatch(text):
            return Frame("error")
    return None


def settled(frames: Sequence[Frame], settle: int = DEFAULT_SETTLE) -> float | None:
    """The weight the last ``settle`` frames agree on, all stable; else None."""
    if settle < 1 or len(frames) < settle:
        return None
    last = frames[-settle:]
    first = last[0].weight_kg
    if first is None or any(f.state != "stable" or f.weight_kg != first for f in last):
        return None
    return first


def _int_option(key: str, value: str, allowed: Sequence[int] | None = None) -> int:
    if not value.isdigit() or (allowed is not None and int(value) not in allowed):
        choices = f" ({', '.join(map(str, allowed))})" if allowed else ""
        raise ValueError(f"scale option {key}={value!r}: expected a whole number{choices}")
    return int(value)


def parse_scale_address(address: str) -> ScaleAddress | None:
    """The ``scale`` setting: None for ``none`` (or empty: no scale at this bench); ValueError
    with the forms for anything else that is not one."""
    text = address.strip()
    if text.lower() in ("", "none"):
        return None
    parts = urlsplit(text)
    if parts.scheme not in ("serial", "tcp"):
        raise ValueError("a scale address: " + ", ".join(FORMS))
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    known = SERIAL_OPTIONS if parts.scheme == "serial" else TCP_OPTIONS
    for key in options:
        if key not in known:
            raise ValueError(f"scale option {key!r}: known for {parts.scheme}:// are {', '.join(known)}")
    protocol = options.get("protocol", "auto")
    if protocol not in PROTOCOLS:
        raise ValueError(f"scale option protocol={protocol!r}: one of {', '.join(PROTOCOLS)}")
    settle = _int_option("settle", options.get("settle", str(DEFAULT_SETTLE)), range(1, 51))
    if parts.scheme == "tcp":
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None or not 0 < port < 65536:
            raise ValueError(f"scale {text!r}: expected tcp://HOST:PORT")
        return ScaleAddress("tcp", f"{parts.hostname}:{port}", protocol, settle=settle)
    device = unquote(parts.path)
    if not device.startswith("/"):
        raise ValueError(f"scale {text!r}: expected serial:///dev/ttyUSB0 (a device file)")
    baud = options.get("baud", options.get("baudrate", "9600"))
    parity = options.get("parity", "N").upper()
    if parity not in ("N", "E", "O", "M", "S"):
        raise ValueError(f"scale option parity={parity!r}: one of N, E, O, M, S")
    return ScaleAddress(
        "serial", device, protocol,
        baudrate=_int_option("baud", baud, (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)),
        bytesize=_int_option("bytesize", options.get("bytesize", "8"), (5, 6, 7, 8)),
        parity=parity, stopbits=_int_option("stopbits", options.get("stopbits", "1"), (1, 2)),
        settle=settle)

