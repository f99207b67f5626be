"""What a decode returns: :class:`Symbol`, one decoded barcode, with the JSON of ``scanedge decode``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scanedge.edge.domain.gs1 import Gs1Data

Point = tuple[int, int]

# zbar's type names -> zxing-cpp's format names (the names docs/interfaces.md promises).
ZBAR_TO_ZXING: dict[str, str] = {
    "CODE128": "Code128",
    "CODE39": "Code39",
    "CODE93": "Code93",
    "CODABAR": "Codabar",
    "EAN13": "EAN13",
    "EAN8": "EAN8",
    "UPCA": "UPCA",
    "UPCE": "UPCE",
    "ISBN13": "EAN13",
    "ISBN10": "EAN13",
    "I25": "ITF",
    "QRCODE": "QRCode",
    "PDF417": "PDF417",
    "DATABAR": "DataBar",
    "DATABAR_EXP": "DataBarExp",
}

# Formats that are one symbology family for the "do two readers agree" check: zxing-cpp calls
# an EAN-13 with a leading 0 UPCA or EAN13 depending on version, a Code 32 is a Code 39, ...
FAMILY: dict[str, str] = {
    "EAN13": "EANUPC", "EAN8": "EANUPC", "UPCA": "EANUPC", "UPCE": "EANUPC", "ISBN": "EANUPC",
    "Code39": "Code39", "Code32": "Code39", "PZN": "Code39",
    "Code39Std": "Code39", "Code39Ext": "Code39",
    "ITF": "ITF", "ITF14": "ITF",
    "QRCode": "QRCode", "MicroQRCode": "QRCode", "QRCodeModel1": "QRCode", "QRCodeModel2": "QRCode",
    "PDF417": "PDF417", "CompactPDF417": "PDF417", "MicroPDF417": "PDF417",
    "DataBar": "DataBar", "DataBarOmni": "DataBar", "DataBarStk": "DataBar",
    "DataBarStkOmni": "DataBar", "DataBarLtd": "DataBar",
    "DataBarExp": "DataBarExp", "DataBarExpStk": "DataBarExp",
    "Aztec": "Aztec", "AztecCode": "Aztec", "AztecRune": "Aztec",
}

LINEAR_FAMILIES = frozenset({"EANUPC", "Code39", "ITF", "Code128", "Code93", "Codabar", "DataBar",
                             "DataBarExp"})


def family(fmt: str) -> str:
    return FAMILY.get(fmt, fmt)


def is_linear(fmt: str) -> bool:
    return family(fmt) in LINEAR_FAMILIES


@dataclass(frozen=True)
class Symbol:
    """One decoded barcode.

    ``text`` is what a keyboard-wedge scanner types: FNC1 as GS (``\\x1d``), no AIM prefix
    (``]C1``); ``raw`` the bytes the symbol encodes; ``position`` the four corners (top-left,
    top-right, bottom-right, bottom-left) in the pixels of the image given to ``decode``.
    """

    format: str
    text: str
    raw: bytes
    position: tuple[Point, Point, Point, Point]
    gs1: bool = False
    gs1_data: Gs1Data | None = None
    gs1_error: str = ""  # marked GS1 but malformed (the bytes were read correctly)
    symbology_identifier: str = ""  # AIM identifier, e.g. "]C1" (GS1-128), "]d2", "]Q1"
    content_type: str = "Text"  # zxing-cpp's ContentType: Text, Binary, GS1, ISO15434, Mixed
    readers: tuple[str, ...] = ()  # "zxing-cpp" and/or "zbar": who read this text
    stage: str = ""  # the cascade step that found it
    charset: str = ""  # "GB18030" when guessed from the bytes (no ECI in the symbol)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def family(self) -> str:
        return family(self.format)

    @property
    def center(self) -> tuple[float, float]:
        return (sum(p[0] for p in self.position) / 4.0, sum(p[1] for p in self.position) / 4.0)

    def to_json(self) -> dict[str, Any]:
        """``{"format", "text", "position"}`` (docs/interfaces.md), the parsed GS1 fields, provenance."""
        out: dict[str, Any] = {
            "format": self.format,
            "text": self.text,
            "position": [list(p) for p in self.position],
            "gs1": self.gs1,
        }
        if self.gs1_data is not None:
            out["gs1_fields"] = self.gs1_data.as_json()
        if self.gs1_error:
            out["gs1_error"] = self.gs1_error
        out["raw_hex"] = self.raw.hex()
        out["content_type"] = self.content_type
        if self.symbology_identifier:
            out["symbology_identifier"] = self.symbology_identifier
        if self.charset:
            out["charset"] = self.charset
        out["readers"] = list(self.readers)
        out["stage"] = self.stage
        return out


@dataclass(frozen=True)
class Rejected:
    """A read the cascade did not accept, and why (never reported as a result)."""

    format: str
    reason: str
    position: tuple[Point, Point, Point, Point]
    reader: str
    stage: str

    def to_json(self) -> dict[str, Any]:
        # The text is left out on purpose: a rejected text must never be mistaken for a read.
        return {"format": self.format, "reason": self.reason,
                "position": [list(p) for p in self.position], "reader": self.reader,
                "stage": self.stage}
