"""The dock handover as the hub sees it (docs/dock.md): an order is ``loaded`` once a device's
dock closed a batch holding it (its ``loaded`` event); ``GET /api/v1/orders/{id}`` shows it."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scanedge.sync.hub.storage import HubStorage


def loaded(storage: HubStorage, order_id: str) -> dict[str, Any] | None:
    """The first ``loaded`` event of the order (a parcel leaves once), or None: which batch and
    truck, which device and station, when."""
    with storage.transaction() as tx:
        row = tx.one("SELECT device_id, payload, device_time FROM events WHERE type = 'loaded'"
                     " AND order_id = ? ORDER BY hub_seq LIMIT 1", [order_id])
    if row is None:
        return None
    payload = json.loads(row[1])
    return {"device_id": row[0], "batch_id": payload.get("batch_id"),
            "carrier": payload.get("carrier"), "tracking_number": payload.get("tracking_number"),
            "station": payload.get("station"), "operator": payload.get("operator"),
            "loaded_at": payload.get("loaded_at") or row[2]}
