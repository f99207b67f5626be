"""The printer-model table (``models.toml``): paper width, image command, buzzer, status, cut."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

MODELS_FILE = Path(__file__).with_name("models.toml")
IMAGE_MODES = {"raster": "bitImageRaster", "graphics": "graphics", "column": "bitImageColumn"}
BUZZERS = ("esc_b", "epson", "none")
CUTS = ("full", "partial", "none")


class ModelError(ValueError):
    """An unknown printer model or a bad entry in the table."""


@dataclass(frozen=True)
class PrinterModel:
    name: str
    description: str
    paper: str
    dots: int
    image: str
    buzzer: str
    status: bool
    cut: str
    fragment_height: int
    usb_ids: tuple[str, ...] = ()  # "vvvv:pppp" (lsusb): for the udev rules, systemd/udev_rules.py

    @property
    def escpos_impl(self) -> str:
        """python-escpos's name for the image command (``Escpos.image(impl=...)``)."""
        return IMAGE_MODES[self.image]


@functools.cache
def models() -> dict[str, PrinterModel]:
    doc = tomllib.loads(MODELS_FILE.read_text(encoding="utf-8"))
    out: dict[str, PrinterModel] = {}
    for name, entry in doc.items():
        try:
            model = PrinterModel(name=name, **{**entry, "usb_ids": tuple(entry.get("usb_ids", ()))})
        except TypeError as e:
            raise ModelError(f"{MODELS_FILE.name} [{name}]: {e}") from None
        if model.image not in IMAGE_MODES or model.buzzer not in BUZZERS or model.cut not in CUTS:
            raise ModelError(f"{MODELS_FILE.name} [{name}]: bad image, buzzer or cut value")
        out[name] = model
    return out


def get_model(name: str) -> PrinterModel:
    try:
        return models()[name]
    except KeyError:
        raise ModelError(f"printer model {name!r}: expected one of {', '.join(models())}") from None
