"""Label images -> ESC/POS bytes, through python-escpos (raster image + cut, optional beep)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from PIL import Image

from scanedge.printers.models import PrinterModel

ESC, GS = b"\x1b", b"\x1d"


def buzzer_command(model: PrinterModel, times: int = 2, duration: int = 3) -> bytes:
    """ESC B n t (python-escpos ``buzzer()``) or Epson's ESC ( A fn=48 n c t."""
    if model.buzzer == "esc_b":
        return ESC + b"B" + bytes((times, duration))
    if model.buzzer == "epson":
        # n=49: the model's first sound pattern; c beeps of t x 100 ms.
        return ESC + b"(A" + bytes((4, 0, 48, 49, times, duration))
    return b""


_PROFILES: dict[PrinterModel, dict[str, Any]] = {}


def _dummy(model: PrinterModel):
    from escpos.printer import Dummy

    printer = Dummy()
    profile = _PROFILES.get(model)
    if profile is None:
        # Give python-escpos the paper width so image() can check it (and stays quiet about
        # it); profile data is shared between instances, so change a copy, made once per model.
        profile = copy.deepcopy(printer.profile.profile_data)
        profile["media"]["width"]["pixels"] = model.dots
        profile["features"]["paperFullCut"] = model.cut == "full"
        profile["features"]["paperPartCut"] = model.cut in ("full", "partial")
        _PROFILES[model] = profile
    printer.profile.profile_data = profile
    return printer


def label_bytes(images: Sequence[Image.Image], model: PrinterModel, *, beep: bool = False) -> bytes:
    """One print job: initialise, each image then a cut (or feed to the tear bar), then a beep."""
    for img in images:
        if img.width > model.dots:
            raise ValueError(f"label is {img.width} dots wide; {model.name} prints {model.dots}")
    printer = _dummy(model)
    for i, img in enumerate(images):
        # ESC @ before every copy: a printer without a cutter has no other label boundary.
        printer.hw("INIT")
        printer.image(img, impl=model.escpos_impl, fragment_height=model.fragment_height,
                      center=img.width < model.dots)
        if beep and i == len(images) - 1 and model.buzzer != "none":
            printer._raw(buzzer_command(model))  # before the cut: it belongs to this label
        if model.cut == "none":
            printer.print_and_feed(4)
        else:
            printer.cut(mode="FULL" if model.cut == "full" else "PART")
    return printer.output
