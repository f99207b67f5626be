"""Handover from the pickers to the bench: what a short pick means for packing (pure).

A tote scanned at a bench opens the order it holds (the scan service looks the tote up). If the
picker reported a short (not enough at the bin), the opening scan answers ``short_pick`` and says
what is missing, line by line: the order cannot be packed complete until someone brings it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edge.domain.packing import Reason, ScanOutcome, Verdict

SHORT_PICK = "short_pick"
OPENING = (Reason.ORDER_OPENED, Reason.ORDER_ALREADY_OPEN)


def short_pick(outcome: ScanOutcome, shorts: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """``shorts``: the picker's reports ``{line_no, missing, location, reason}``. None if the
    scan is not an opening of an order that still misses items."""
    if (not shorts or outcome.verdict is not Verdict.OK or outcome.reason not in OPENING
            or outcome.state is None or outcome.state.complete):
        return None
    order, packed = outcome.state.order, outcome.state.packed
    missing = []
    for s in shorts:
        n = int(s["line_no"])
        if not 0 <= n < len(order.lines):
            continue
        line = order.lines[n]
        count = min(int(s["missing"]), line.qty - packed[n])
        if count > 0:
            missing.append({"line_no": n, "sku": line.sku, "name": line.name or line.sku,
                            "missing": count, "location": s.get("location"),
                            "reason": s.get("reason")})
    if not missing:
        return None
    zh = "；".join(f"{m['name']} ×{m['missing']}（库位 {m['location']}）" for m in missing)
    en = "; ".join(f"{m['name']} ×{m['missing']} (bin {m['location']})" for m in missing)
    oid = order.order_id
    return {"verdict": SHORT_PICK, "missing": missing, "message": {
        "zh": f"订单 {oid} 拣货缺货，不能完整打包：缺 {zh}",
        "en": f"order {oid} was picked short and cannot be packed complete: missing {en}"}}
