"""The device's e-waybill (电子面单) request: one tap at the bench asks the hub for the carrier's
waybill, the number becomes the order's tracking number here at once (an outbox event tells the
hub), and the carrier's label goes to the bench printer (docs/carriers.md).

Gates, before the hub is asked: the order must be on this device and not frozen, the print gate
must allow it (edge/domain/print_gate.py: packed, gifts confirmed, this station), and the
pack-evidence policy (:func:`pack_evidence_problems`: with ``evidence_policy`` set, the packing's
video or photo stored on this device, docs/evidence.md). No number is asked for an order that
could not ship.

Offline: the device has no pool of pre-fetched numbers yet, so without the hub it says it waits
(``hub_unreachable``) and nothing is stored; a tap when the hub is back asks again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from scanedge.edge.domain.ewaybill import EWaybill
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.store import evidence, parcels
from scanedge.edge.store.db import Migration, utc_now
from scanedge.edge.store.orders import load_freeze, load_order
from scanedge.edge.store.outbox import append_event

if TYPE_CHECKING:
    import sqlite_utils

    from scanedge.edge.context import EdgeContext

COMPONENT = "ewaybills"


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("CREATE TABLE ewaybills_recorded (carrier TEXT NOT NULL, number TEXT NOT NULL,"
               " order_id TEXT NOT NULL, source TEXT NOT NULL, recorded_at TEXT NOT NULL,"
               " PRIMARY KEY (carrier, number))")


# Which waybills this device has recorded (and told the hub of): the number alone cannot say,
# since the hub's order change carrying it may arrive first.
MIGRATIONS = (Migration(1, "e-waybills recorded on this device", _v1),)
HUB_TIMEOUT_S = 30.0  # the hub waits on the carrier (its account's timeout_s) before it answers
PASSED_THROUGH = ("frozen", "no_carrier_account", "bad_state", "unknown_order",
                  "carrier_unavailable", "bad_request")


def pack_evidence_problems(ctx: EdgeContext, db: sqlite_utils.Database,
                           order_id: str) -> list[dict[str, str]]:
    """What stops a waybill until the order's pack evidence is stored on this device
    (``evidence_policy``, docs/evidence.md): no tracking number before the packing's video."""
    return [p.as_json() for p in evidence.policy_problems(
        db, order_id, ctx.settings.evidence_policy, ctx.settings.pack_video_min_s)]


def check_gates(ctx: EdgeContext, order_id: str, station: str) -> None:
    db = ctx.store.read()
    order = load_order(db, order_id)
    if order is None:
        raise Refusal("unknown_order", f"order {order_id} is not on this device")
    freeze = load_freeze(db, order_id)
    if freeze is not None:
        raise Refusal("frozen", f"order {order_id} is frozen ({freeze.reason}): no waybill")
    if parcels.load_split(db, order_id) is not None:  # one number for several boxes: no
        raise Refusal("order_split", f"order {order_id} is split into parcels: the carrier's "
                      "multi-parcel waybill (子母件) is not asked for here; print each parcel's "
                      "label (docs/parcels.md)")
    # at a bench with a scale, the parcel's weight too (docs/scale.md); recorded by our label
    weight = ctx.weigher.check(order) if ctx.weigher is not None else None
    verdict = ctx.printing.gate(db, order_id, station, weight)
    problems = [p.as_json() for p in verdict.problems] if not verdict.allowed else []
    # the print gate lists them too (printers/service.py): each problem once
    problems += [p for p in pack_evidence_problems(ctx, db, order_id) if p not in problems]
    if problems:
        raise Refusal("ewaybill_gate", "no waybill before the order is verified: " + "; ".join(
            p["en"] for p in problems), problems=problems)


def ask_hub(ctx: EdgeContext, order_id: str, carrier: str | None) -> tuple[EWaybill, bool]:
    """The hub's answer: (waybill, replayed), or the refusal in the device's words."""
    from scanedge.sync.client import HubUnavailable

    if ctx.sync is None:
        raise Refusal("hub_unreachable", "this device has no hub (hub_url), and e-waybills come "
                      "from the hub's carrier accounts: waiting for the hub", retry_after_s=5)
    body = {"carrier": carrier} if carrier else {}
    try:
        status, answer = ctx.sync.client.exchange(
            "POST", f"/api/v1/sync/ewaybill/{quote(order_id, safe='')}", body,
            timeout=max(HUB_TIMEOUT_S, ctx.settings.hub_timeout_s))
    except HubUnavailable as e:
        raise Refusal("hub_unreachable", f"waiting for the hub: it cannot be reached just now "
                      f"({e}); nothing was asked of the carrier", retry_after_s=5) from None
    answer = answer if isinstance(answer, dict) else {}
    if status == 200:
        try:
            return EWaybill.from_json(answer.get("ewaybill")), bool(answer.get("replayed"))
        except Refusal as e:
            raise Refusal("hub_refused", f"the hub's waybill is not usable: {e.message}") from None
    code, message = answer.get("error"), str(answer.get("message") or f"HTTP {status}")
    details = {k: v for k, v in answer.items() if k not in ("error", "message")}
    if code == "carrier_refused":
        raise Refusal("carrier_refused", message, **details)
    if code in PASSED_THROUGH:
        raise Refusal(code, message, **details)
    if status in (401, 403):
        raise Refusal("hub_refused", f"the hub refused this device ({message}): enrol it again")
    raise Refusal("hub_unreachable", f"waiting for the hub: it answered {status} ({message})",
                  retry_after_s=5)


def record(ctx: EdgeContext, ewb: EWaybill, *, source: str, operator: str | None) -> bool:
    """The number is the order's tracking number now, with one ``ewaybill_issued`` event (none
    when this device recorded that waybill before: a replay writes nothing). True when it was
    new. Whether the hub's order change with the number was applied first does not matter."""
    device = ctx.settings.device_id

    def write(db: sqlite_utils.Database) -> bool:
        row = db.execute("SELECT tracking_number, carrier FROM orders WHERE order_id = ?",
                         [ewb.order_id]).fetchone()
        if row is None:
            raise Refusal("unknown_order", f"order {ewb.order_id} is not on this device")
        if db.execute("INSERT INTO ewaybills_recorded (carrier, number, order_id, source,"
                      " recorded_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                      [ewb.carrier, ewb.number, ewb.order_id, source, utc_now()]).rowcount == 0:
            return False
        previous = row[0]
        if tuple(row) == (ewb.number, ewb.carrier):  # the hub's order change came first
            previous = None
        else:
            db.execute("UPDATE orders SET tracking_number = ?, carrier = ?, updated_at = ?"
                       " WHERE order_id = ?", [ewb.number, ewb.carrier, utc_now(), ewb.order_id])
        append_event(db, device, "ewaybill_issued", {
            "carrier": ewb.carrier, "number": ewb.number, "source": source,
            "previous_tracking_number": previous, "operator": operator,
            "ewaybill": ewb.to_json()}, order_id=ewb.order_id)
        return True

    return bool(ctx.store.write(write))


def request_ewaybill(ctx: EdgeContext, order_id: str, *, carrier: str | None, station: str,
                     operator: str | None) -> dict[str, Any]:
    """``POST /api/v1/orders/{id}/ewaybill``: gates, the hub, the number here, the label."""
    from scanedge.printers.ewaybill_print import submit_ewaybill

    check_gates(ctx, order_id, station)
    ewb, _ = ask_hub(ctx, order_id, carrier)
    if ewb.order_id != order_id:
        raise Refusal("hub_refused", f"the hub answered a waybill of {ewb.order_id}")
    record(ctx, ewb, source="hub", operator=operator)
    # the number is kept even if the printer refuses: a tap again prints it (same waybill)
    job = submit_ewaybill(ctx.printing, ewb, station=station, operator=operator)
    return {"ewaybill": ewb.to_json(), "job": job, "source": "hub"}
