"""Printer addresses (``printer`` setting, docs/printing.md): which schemes there are and the form
each takes. The one table: the settings check it (edge/config.py) and the transports build one
per scheme from it (printers/transports.py). Plain data, no I/O."""

from __future__ import annotations

SCHEMES: dict[str, str] = {
    "tcp": "tcp://HOST:PORT (port 9100 by default)",
    "usb": "usb://VID:PID (hex), e.g. usb://0x0416:0x5011",
    "serial": "serial:///dev/ttyUSB0?baudrate=9600",
    "file": "file:///dev/usb/lp0",
    "cups": "cups://QUEUE",
    "dummy": "dummy:// (prints nowhere, for tests)",
    "preview": "preview://DIR (PNG files of the labels)",
}


def scheme_of(address: str) -> str:
    return address.split("://", 1)[0] if "://" in address else ""


def address_problem(address: str) -> str | None:
    """None for an address of a known scheme, else what the forms are."""
    if scheme_of(address) in SCHEMES:
        return None
    return "a printer address: " + ", ".join(f"{s}://..." for s in SCHEMES)


def form(scheme: str) -> str:
    return SCHEMES[scheme]
