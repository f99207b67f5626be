"""RMAs on the hub (docs/returns.md, "Hub"): the order system puts them, the devices of the
order's site receive them as changes of kind ``rma``, and the outcome comes back in the
``return_received`` event of the device that received the parcel.

- ``PUT /api/v1/rmas/{id}`` stores an RMA; a change bumps its version and appends an ``rma``
  change for the site (the order's site when the hub knows the order); the same document again
  changes nothing.
- ``POST /api/v1/rmas/{id}/cancel``: status ``cancelled``, a new version, one change: on the
  devices a cancelled RMA is a freeze of its return (refused, alarmed).
- ``GET /api/v1/rmas/{id}``: the RMA and its ``outcome``, the first ``return_received`` event
  for it (the verdict the order system releases the refund on), and every receipt the devices
  reported (two means the parcel was received twice, on devices that did not know of each
  other's receipt).
- ``GET /api/v1/reports/returns?since=``: edge/domain/returns_report.py over every device's
  ``return_received`` events.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from scanedge.edge.domain import returns as rules
from scanedge.edge.domain.interception_report import iso
from scanedge.edge.domain.returns_report import Report, build_report, record_of
from scanedge.sync.hub.storage import CHANGES_LOCK, AdminScope, Device, HubStorage, Tx, now_iso


class RmaSiteChange(ValueError):
    """An RMA put again for another site than the one it was sent to."""


def _stored(tx: Tx, rma_id: str) -> tuple[rules.Rma, str] | None:
    row = tx.one("SELECT doc, site FROM rmas WHERE rma_id = ?", [rma_id])
    return (rules.parse_rma(json.loads(row[0])), row[1]) if row else None


def _save(storage: HubStorage, tx: Tx, rma: rules.Rma, *, new: bool) -> None:
    doc = rma.to_json()
    now = now_iso()
    if new:
        tx.execute("INSERT INTO rmas (rma_id, order_id, site, version, status, doc, created_at,"
                   " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   [rma.rma_id, rma.order_id, rma.site, rma.version, rma.status,
                    json.dumps(doc, ensure_ascii=False), now, now])
    else:
        tx.execute("UPDATE rmas SET order_id = ?, version = ?, status = ?, doc = ?,"
                   " updated_at = ? WHERE rma_id = ?",
                   [rma.order_id, rma.version, rma.status, json.dumps(doc, ensure_ascii=False),
                    now, rma.rma_id])
    storage.append_change(tx, "rma", rma.order_id, doc, rma.site)


def _same(a: rules.Rma, b: rules.Rma) -> bool:
    return {**a.to_json(), "version": 0} == {**b.to_json(), "version": 0}


def upsert(storage: HubStorage, doc: dict[str, Any]) -> tuple[rules.Rma, bool]:
    """Store an RMA (the order system's document); (stored, changed). Raises RmaError, and
    RmaSiteChange when it exists for another site."""
    rma = rules.parse_rma({**doc, "version": 1})
    with storage.transaction() as tx:
        storage.lock(tx, CHANGES_LOCK)
        found = _stored(tx, rma.rma_id)
        if found is not None:
            current, site = found
            if site != rma.site:
                raise RmaSiteChange(f"RMA {rma.rma_id} belongs to site {site!r}")
            # a PUT again keeps a cancellation unless it says "status": "open" (re-authorised)
            status = rma.status if "status" in doc else current.status
            rma = rules.parse_rma({**rma.to_json(), "version": current.version, "status": status})
            if _same(current, rma):
                return current, False
            rma = rules.parse_rma({**rma.to_json(), "version": current.version + 1})
        _save(storage, tx, rma, new=found is None)
    storage._changed()
    return rma, True


def cancel(storage: HubStorage, rma_id: str, scope: AdminScope) -> rules.Rma | None:
    """Cancel an RMA upstream (None: no such RMA at a site of ``scope``); cancelling twice
    changes nothing the second time."""
    with storage.transaction() as tx:
        storage.lock(tx, CHANGES_LOCK)
        found = _stored(tx, rma_id)
        if found is None or not scope.allows(found[1]):
            return None
        current = found[0]
        if current.status == "cancelled":
            return current
        rma = rules.parse_rma({**current.to_json(), "status": "cancelled",
                               "version": current.version + 1})
        _save(storage, tx, rma, new=False)
    storage._changed()
    return rma


def relay_received(storage: HubStorage, device: Device, events: list[Any],
                   results: list[dict[str, str]]) -> list[str]:
    """A device's ``return_received`` events stored (accepted or duplicate): their RMAs become
    ``received``, with a new version and a change for the site, so the site's other devices
    refuse a second receipt too. Returns the RMA ids changed."""
    from scanedge.sync.protocol import ACCEPTED, DUPLICATE

    wanted = sorted({str(e["payload"].get("rma_id")) for e, r in zip(events, results, strict=True)
                     if r.get("status") in (ACCEPTED, DUPLICATE)
                     and isinstance(e, dict) and e.get("type") == "return_received"
                     and isinstance(e.get("payload"), dict) and e["payload"].get("rma_id")})
    changed = []
    for rma_id in wanted:
        with storage.transaction() as tx:
            storage.lock(tx, CHANGES_LOCK)
            found = _stored(tx, rma_id)
            if found is None or found[1] != device.site or found[0].status != "open":
                continue  # unknown here, another site's, cancelled or received already
            rma = rules.parse_rma({**found[0].to_json(), "status": "received",
                                   "version": found[0].version + 1})
            _save(storage, tx, rma, new=False)
        changed.append(rma_id)
    if changed:
        storage._changed()
    return changed


def site_of(storage: HubStorage, rma_id: str) -> str | None:
    with storage.transaction() as tx:
        row = tx.one("SELECT site FROM rmas WHERE rma_id = ?", [rma_id])
    return row[0] if row else None


def get(storage: HubStorage, rma_id: str, scope: AdminScope) -> dict[str, Any] | None:
    """The RMA with its outcome for the order system (None: not at a site of ``scope``)."""
    if not storage.publish_inline:
        storage.publish(wait=True)  # every receipt pushed before this call is in the answer
    with storage.transaction() as tx:
        found = _stored(tx, rma_id)
        if found is None or not scope.allows(found[1]):
            return None
        rma = found[0]
        rows = tx.all("SELECT device_id, payload, received_at FROM events WHERE type ="
                      " 'return_received' AND order_id = ? ORDER BY hub_seq", [rma.order_id])
    receipts = []
    for device_id, text, received_at in rows:
        payload = json.loads(text)
        if payload.get("rma_id") != rma_id:
            continue
        receipts.append({"device_id": device_id, "received_at": received_at,
                         **{k: payload.get(k) for k in ("receipt_id", "station", "operator",
                                                        "started_at", "verdict", "lines",
                                                        "extras", "photos")}})
    receipts.sort(key=lambda r: (str((r["verdict"] or {}).get("decided_at")), r["received_at"]))
    doc = rma.to_json()
    if receipts and rma.status == "open":
        doc["status"] = "received"
    outcome = None
    if receipts:
        first = receipts[0]
        verdict = first["verdict"] or {}
        outcome = {"qualifies": bool(verdict.get("qualifies")), "verdict": verdict,
                   **{k: first[k] for k in ("receipt_id", "device_id", "station", "operator",
                                            "photos")}}
    return {"rma": doc, "outcome": outcome, "receipts": receipts}


def report(storage: HubStorage, since: datetime, scope: AdminScope) -> Report:
    """The returns report over every device's ``return_received`` events of ``scope``."""
    if not storage.publish_inline:
        storage.publish(wait=True)
    sites, params = scope.where()
    # device_time is the finishing device's clock, as the verdict's decided_at: a day's margin
    # keeps a device whose clock is a little behind in the prefilter; build_report decides
    with storage.transaction() as tx:
        rows = tx.all("SELECT device_id, payload FROM events WHERE type = 'return_received'"
                      f" AND device_time >= ? AND {sites} ORDER BY hub_seq",
                      [iso(since - timedelta(days=1)), *params])
    records = [record_of(device_id, json.loads(text)) for device_id, text in rows]
    return build_report(since, [r for r in records if r is not None])
