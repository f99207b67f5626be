"""Is a read believable? Check digits, GS1 structure, tracking-number check digits, sane text.

A wrong read is worse than a miss (a parcel goes to the wrong order), so a read is *accepted*
only when its content checks out, and it is *strong* when the symbology itself protects it
(Reed-Solomon codes, Code 128's mod-103, a check digit). Weak reads (Code 39 without check
character, Codabar, ITF of other lengths than 14, a QR code whose charset zbar had to guess) need
a second opinion before the cascade reports them (see :mod:`ocr.decode`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from scanedge.edge.domain.checkdigits import gs1_mod10_ok, upce_to_upca
from scanedge.edge.domain.gs1 import GS, Gs1Data, looks_like_gs1, parse_gs1
from scanedge.ocr.readers import Read
from scanedge.ocr.symbols import family

# Control characters that legitimately occur in content: GS1/ISO 15434 separators and line ends.
ALLOWED_CONTROLS = frozenset("\x1d\x1e\x1c\x04\r\n\t")
# UPU S10 international postal item identifiers (EMS, China Post registered): EA123456785CN.
S10 = re.compile(r"[A-Z]{2}(\d{8})(\d)[A-Z]{2}")
S10_WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
MIN_LENGTH = {"ITF": 6, "Codabar": 4, "Code39": 3, "Code93": 3}
ECC_FAMILIES = frozenset({"QRCode", "DataMatrix", "PDF417", "Aztec"})


@dataclass(frozen=True)
class Verdict:
    ok: bool
    strong: bool = False
    reason: str = ""
    gs1: bool = False
    gs1_data: Gs1Data | None = None
    gs1_error: str = ""


def s10_ok(text: str) -> bool | None:
    """UPU S10 check digit; None when ``text`` is not an S10 identifier."""
    m = S10.fullmatch(text)
    if not m:
        return None
    total = sum(int(d) * w for d, w in zip(m.group(1), S10_WEIGHTS, strict=True))
    check = 11 - total % 11
    check = 5 if check == 11 else 0 if check == 10 else check
    return check == int(m.group(2))


def validate(read: Read) -> Verdict:
    text, fam = read.text, family(read.format)
    if not text:
        return Verdict(False, reason="empty text")
    if "\ufffd" in text:
        return Verdict(False, reason="text is not valid in its character set")
    if any(ord(c) < 32 and c not in ALLOWED_CONTROLS for c in text) and read.content_type not in (
        "Binary", "Mixed"
    ):
        return Verdict(False, reason="unexpected control characters")
    if len(text) < MIN_LENGTH.get(fam, 1):
        return Verdict(False, reason=f"{read.format} shorter than {MIN_LENGTH[fam]} characters")

    strong = True
    if fam == "EANUPC":
        if not _ean_upc_ok(read.format, text):
            return Verdict(False, reason="EAN/UPC check digit wrong")
    elif fam == "ITF":
        if not text.isdigit() or len(text) % 2:
            return Verdict(False, reason="ITF must be an even number of digits")
        if len(text) in (14, 16, 18):  # ITF-14 (GTIN) and SSCC-in-ITF carry a mod-10 check digit
            if not gs1_mod10_ok(text):
                return Verdict(False, reason="ITF-14 check digit wrong")
        else:
            strong = False
    elif fam == "Code39":
        strong = read.format == "Code32"  # Code 32 has a check digit; plain Code 39 often none
    elif fam == "Codabar":
        strong = False
    elif fam in ECC_FAMILIES and read.reader == "zbar" and not text.isascii():
        strong = False  # zbar guesses the charset of QR byte segments (GB18030 read as SJIS)

    ok_s10 = s10_ok(text)
    if ok_s10 is False:
        return Verdict(False, reason="postal item number (S10) check digit wrong")

    gs1_flag = bool(read.gs1)
    gs1_data: Gs1Data | None = None
    gs1_error = ""
    if gs1_flag or (read.gs1 is None and fam in ("Code128", "DataMatrix", "QRCode")
                    and GS in text and looks_like_gs1(text)):
        gs1_data = parse_gs1(text)
        if gs1_data is None:
            # zbar does not say whether the code is GS1: then a failed parse just means "no"
            gs1_error = "marked GS1 but not a valid GS1 element string" if gs1_flag else ""
        elif gs1_data.errors:
            gs1_error = "GS1 check digit wrong: " + "; ".join(gs1_data.errors)
        else:
            gs1_flag = True
        if gs1_error and not strong:
            return Verdict(False, reason=gs1_error)
        # A strong symbology decoded these bytes correctly: the label is malformed, not the
        # read. Report it with the GS1 problem; the scan rules decide what to do with it.
    return Verdict(True, strong=strong, gs1=gs1_flag, gs1_data=gs1_data, gs1_error=gs1_error)


def _ean_upc_ok(fmt: str, text: str) -> bool:
    if not text.isdigit():
        return False
    if len(text) == 8 and fmt == "UPCE":
        upca = upce_to_upca(text)
        return upca is not None and gs1_mod10_ok(upca)
    return len(text) in (8, 12, 13) and gs1_mod10_ok(text)
