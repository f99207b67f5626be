"""A printed label's identity (pure).

The label's QR names the label, not only the order: ``SO-1001:L1`` for the first label, ``:L2``
for the one printed after an address change made the first void, and so on. ``:`` is not allowed
in an order id, and it keeps the QR in alphanumeric mode (as small as the order id alone). So the old label,
scanned anywhere, can be told from its replacement (the 1D barcode is the carrier's tracking
number, the same on both).
"""

from __future__ import annotations

import re

LABEL_ID_RE = re.compile(r"(?P<order_id>.+):L(?P<generation>[1-9][0-9]{0,5})")


def label_id(order_id: str, generation: int = 1) -> str:
    return f"{order_id}:L{generation}"


def parse_label_id(text: str) -> tuple[str, int] | None:
    """(order id, generation) of a label's QR text, or None for any other code."""
    m = LABEL_ID_RE.fullmatch(text)
    return (m["order_id"], int(m["generation"])) if m else None
