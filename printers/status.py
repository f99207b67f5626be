"""Real-time printer status: DLE EOT 1 (printer), 2 (offline cause), 4 (paper sensor).

Every status byte has bits 1 and 4 set and bits 0 and 7 clear ("0xx1xx10"); a byte that does
not is not a status answer (a printer that echoes, a wrong device) and counts as no answer.
"""

from __future__ import annotations

from dataclasses import dataclass

DLE, EOT = 0x10, 0x04
QUERY_PRINTER = bytes((DLE, EOT, 1))
QUERY_OFFLINE_CAUSE = bytes((DLE, EOT, 2))
QUERY_ERROR_CAUSE = bytes((DLE, EOT, 3))
QUERY_PAPER = bytes((DLE, EOT, 4))
STATUS_QUERIES = (QUERY_PRINTER, QUERY_OFFLINE_CAUSE, QUERY_PAPER)

BASE = 0x12  # fixed bits of every DLE EOT answer
OFFLINE = 0x08  # DLE EOT 1
COVER_OPEN = 0x04  # DLE EOT 2
PAPER_END_STOP = 0x20  # DLE EOT 2: printing stopped at paper end
ERROR = 0x40  # DLE EOT 2
NEAR_END = 0x0C  # DLE EOT 4
PAPER_END = 0x60  # DLE EOT 4

FAULTS = ("no_answer", "paper_out", "cover_open", "error", "offline")


def valid_status_byte(b: int) -> bool:
    return b & 0x93 == BASE


@dataclass(frozen=True)
class PrinterStatus:
    """What the printer said; ``fault`` holds the queue, ``warning`` only warns."""

    answered: bool
    offline: bool = False
    cover_open: bool = False
    paper_out: bool = False
    paper_near_end: bool = False
    error: bool = False
    raw: bytes = b""

    @property
    def fault(self) -> str | None:
        if not self.answered:
            return "no_answer"
        if self.paper_out:
            return "paper_out"
        if self.cover_open:
            return "cover_open"
        if self.error:
            return "error"
        if self.offline:
            return "offline"
        return None

    @property
    def warning(self) -> str | None:
        return "paper_near_end" if self.answered and self.paper_near_end and not self.fault else None

    def to_json(self) -> dict[str, object]:
        return {
            "answered": self.answered, "offline": self.offline, "cover_open": self.cover_open,
            "paper_out": self.paper_out, "paper_near_end": self.paper_near_end,
            "error": self.error, "fault": self.fault, "warning": self.warning,
            "raw": self.raw.hex(),
        }


NO_ANSWER = PrinterStatus(answered=False)
UNKNOWN_OK = PrinterStatus(answered=True)  # printers/transports that cannot report status


def parse_status(printer: int | None, cause: int | None, paper: int | None) -> PrinterStatus:
    """Combine the answers to DLE EOT 1, 2 and 4 (None = no answer)."""
    answers = (printer, cause, paper)
    if any(b is None or not valid_status_byte(b) for b in answers):
        return PrinterStatus(answered=False, raw=bytes(b for b in answers if b is not None))
    assert printer is not None and cause is not None and paper is not None
    return PrinterStatus(
        answered=True,
        offline=bool(printer & OFFLINE),
        cover_open=bool(cause & COVER_OPEN),
        paper_out=bool(cause & PAPER_END_STOP) or (paper & PAPER_END) == PAPER_END,
        paper_near_end=bool(paper & NEAR_END),
        error=bool(cause & ERROR),
        raw=bytes(answers),
    )
