"""The bench's weight check (称重核对, docs/scale.md): the scale's settled reading held against what
the order should weigh. The print service asks it when a label is requested; the bench page
shows it live (GET /api/v1/scale)."""

from __future__ import annotations

from typing import Any

from scanedge.edge.config import ConfigError, Settings
from scanedge.edge.domain.orders import Order
from scanedge.edge.domain.scale import parse_scale_address
from scanedge.edge.domain.weighing import (
    Tolerance,
    WeightCheck,
    check_weight,
    expected_weight,
    parse_tolerance,
    weight_words,
)
from scanedge.edge.scale import ScaleReader


class Weigher:
    def __init__(self, reader: ScaleReader, tolerance: Tolerance, packaging_kg: float = 0.0) -> None:
        self.reader = reader
        self.tolerance = tolerance
        self.packaging_kg = packaging_kg

    @classmethod
    def from_settings(cls, settings: Settings) -> Weigher | None:
        """The bench's weigher, not started; None when ``scale = "none"``."""
        try:
            address = parse_scale_address(settings.scale)
            tolerance = parse_tolerance(settings.weight_tolerance)
        except ValueError as e:  # load_settings checked both: a hand-made Settings
            raise ConfigError(str(e)) from None
        if address is None:
            return None
        return cls(ScaleReader(address), tolerance, settings.packaging_weight_kg)

    def start(self) -> Weigher:
        self.reader.start()
        return self

    def stop(self) -> None:
        self.reader.stop()

    def check(self, order: Order) -> WeightCheck:
        """What the parcel on the scale weighs now against what ``order`` should weigh."""
        state = self.reader.state()
        return check_weight(state.weight_kg, expected_weight(order, self.packaging_kg),
                            self.tolerance, reading=state.state)

    def view(self, order: Order | None) -> dict[str, Any]:
        """The scale for the bench: its state, and the open order's check with its words."""
        state = self.reader.state()
        out: dict[str, Any] = {"configured": True, "scale": self.reader.address.describe(),
                               "tolerance": self.tolerance.describe(), **state.as_json(),
                               "order_id": None, "expected_kg": None, "check": None}
        if order is not None:
            check = check_weight(state.weight_kg, expected_weight(order, self.packaging_kg),
                                 self.tolerance, reading=state.state)
            zh, en = weight_words(check)
            out.update(order_id=order.order_id, expected_kg=check.expected_kg,
                       check={**check.as_json(), "passes": check.passes, "zh": zh, "en": en})
        return out
