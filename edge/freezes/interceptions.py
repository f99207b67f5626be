"""An interception: work on a frozen order that the device refused (scan, print, waybill capture,
pick, loading at the dock).

Each one is an outbox event ``interception`` (device, station, operator, seconds since the freeze
was issued), written in the transaction that refused the action: the hub's interception report
counts these.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from scanedge.edge.domain.packing import Freeze
from scanedge.edge.store.outbox import append_event

ACTIONS = ("scan", "print", "waybill", "pick", "dock")


def seconds_since(freeze: Freeze, now: datetime | None = None) -> float:
    return round(((now or datetime.now(UTC)) - freeze.issued_at).total_seconds(), 3)


def record_interception(db: sqlite_utils.Database, device_id: str, freeze: Freeze, *,
                        action: str, station: str | None, operator: str | None,
                        **details: Any) -> dict[str, Any]:
    if action not in ACTIONS:
        raise ValueError(f"action {action!r}: expected one of {', '.join(ACTIONS)}")
    payload = {
        "action": action,
        "station": station,
        "operator": operator,
        "freeze_reason": freeze.reason,
        "freeze_issued_at": freeze.issued_at.isoformat(),
        "seconds_since_freeze": seconds_since(freeze),
        **details,
    }
    append_event(db, device_id, "interception", payload, order_id=freeze.order_id)
    return payload
