"""A printed label's identity (pure).

The label's QR names the label, not only the order: ``SO-1001:L1`` for the first label, ``:L2``
for the one printed after an address change made the first void, and so on. ``:`` is not allowed
in an order id, and it keeps the QR in alphanumeric mode (as small as the order id alone). So the old label,
scanned anywhere, can be told from its replacement (the 1D barcode is the carrier's tracking
number, the same on both). A parcel of an order split into several (docs/parcels.md) adds its
number: ``SO-1001:L1:P2`` is parcel 2's label, so each box is its own item at the dock.
"""

from __future__ import annotations

import re

LABEL_ID_RE = re.compile(
    r"(?P<order_id>[^:]+):L(?P<generation>[1-9][0-9]{0,5})(?::P(?P<parcel>[1-9][0-9]{0,2}))?")


def label_id(order_id: str, generation: int = 1, parcel_no: int | None = None) -> str:
    return f"{order_id}:L{generation}" + (f":P{parcel_no}" if parcel_no is not None else "")


def parse_label_id(text: str) -> tuple[str, int] | None:
    """(order id, generation) of a label's QR text (a parcel's too), or None for any other code."""
    m = LABEL_ID_RE.fullmatch(text)
    return (m["order_id"], int(m["generation"])) if m else None


def parcel_of(text: str) -> int | None:
    """The parcel number a label's QR text names (``SO-1001:L1:P2`` -> 2), else None."""
    m = LABEL_ID_RE.fullmatch(text)
    return int(m["parcel"]) if m and m["parcel"] else None
