"""Multi-parcel orders on the device (docs/parcels.md): split an order into parcels, open the
parcel being packed, and print each parcel's label through its own gate. The rules are pure
(edge/domain/parcels.py); the bench's scans put items into the open parcel (edge/scanning.py).

Events for the hub: ``parcels_split`` (the count and plan, who split it where) and, for each
parcel's label, ``parcel_label`` (the parcel, its tracking number, its items and weight, the job);
a parcel weighed writes ``parcel_weighed`` with its ``parcel_no``, like a single label's weighing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scanedge.edge.domain import parcels as rules
from scanedge.edge.domain.print_gate import GateProblem
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.store import bench, weighings
from scanedge.edge.store import parcels as store
from scanedge.edge.store.evidence import policy_problems
from scanedge.edge.store.orders import load_freeze, load_pack_state
from scanedge.edge.store.outbox import append_event

if TYPE_CHECKING:
    import sqlite_utils

    from scanedge.edge.context import EdgeContext
    from scanedge.edge.domain.packing import PackState

# the order's own "not all packed" gives way to each parcel's verification
ORDER_WIDE = ("lines_unpacked",)
LIVE_JOB_STATES = ("queued", "sending", "printed", "needs_confirmation")


def _state(db: sqlite_utils.Database, order_id: str) -> PackState:
    state = load_pack_state(db, order_id)
    if state is None:
        raise Refusal("unknown_order", f"order {order_id} is not on this device")
    return state


def _split_of(db: sqlite_utils.Database, order_id: str) -> rules.Split:
    split = store.load_split(db, order_id)
    if split is None:
        raise Refusal("not_split", f"order {order_id} is not split into parcels")
    return split


def view(db: sqlite_utils.Database, order_id: str) -> dict[str, Any]:
    """The order's parcels as the API and the bench show them (``count`` 0: not split)."""
    state = _state(db, order_id)
    split = store.load_split(db, order_id)
    if split is None:
        return {"order_id": order_id, "count": 0, "open_parcel": None, "planned": False,
                "parcels": []}
    jobs = store.parcel_jobs(db, order_id)
    parcels = rules.view(state.order, split)
    for p in parcels:
        p["job"] = jobs.get(p["parcel_no"])
    return {"order_id": order_id, "count": split.count, "open_parcel": split.open_parcel,
            "planned": split.planned is not None, "parcels": parcels}


def split_order(ctx: EdgeContext, order_id: str, count: object, plan: object, *, station: str,
                operator: str | None) -> dict[str, Any]:
    """Split (or split again) the order into ``count`` parcels; one ``parcels_split`` event."""

    def tx(db: sqlite_utils.Database) -> dict[str, Any]:
        state = _state(db, order_id)
        freeze = load_freeze(db, order_id)
        if freeze is not None:
            raise Refusal("frozen", f"order {order_id} is frozen ({freeze.reason}): not split")
        labelled = sorted(k for k, job in store.parcel_jobs(db, order_id).items()
                          if job["state"] in LIVE_JOB_STATES)
        if labelled:  # a printed "1/2" must not become one box of three
            raise Refusal("bad_split", f"order {order_id}: the label of parcel {labelled[0]} is "
                          "printed or queued already: the split cannot change", parcels=labelled)
        try:
            rules.sub_tracking_numbers(state.order)  # a bad list is said now, not on a label
            n = count if isinstance(count, int) and not isinstance(count, bool) else None
            parsed = rules.parse_plan(state.order, n, plan) if n is not None else None
            split = rules.make_split(state.order, count, state.packed, plan=parsed,
                                     previous=store.load_split(db, order_id))
        except rules.ParcelError as e:
            raise Refusal("bad_split", str(e)) from None
        store.save_split(db, order_id, split, station=station, operator=operator)
        append_event(db, ctx.settings.device_id, "parcels_split", {
            "count": split.count, "plan": split.as_json()["planned"],
            "packed": split.as_json()["packed"], "station": station, "operator": operator},
            order_id=order_id)
        return view(db, order_id)

    out: dict[str, Any] = ctx.store.write(tx)
    return out


def open_parcel(ctx: EdgeContext, order_id: str, parcel_no: object, *, station: str,
                operator: str | None) -> dict[str, Any]:
    """The packer starts on ``parcel_no``: the bench's next items go in it."""

    def tx(db: sqlite_utils.Database) -> dict[str, Any]:
        _state(db, order_id)
        try:
            split = rules.open_parcel(_split_of(db, order_id), parcel_no)
        except rules.ParcelError as e:
            raise Refusal("bad_request", str(e)) from None
        store.save_split(db, order_id, split, station=station, operator=operator)
        return view(db, order_id)

    out: dict[str, Any] = ctx.store.write(tx)
    return out


def print_label(ctx: EdgeContext, order_id: str, parcel_no: int, *, station: str,
                operator: str | None, override_reason: str | None = None,
                idempotency_key: str | None = None) -> dict[str, Any]:
    """Queue parcel ``parcel_no``'s label (``k/N``, its own number and weight) when its gate
    allows: the order's print gate with each parcel's own counts instead of the order's
    (:func:`rules.parcel_problems`), the scale's check of this parcel at a bench with a scale;
    a supervisor's ``override_reason`` prints past it (``print_override``, audited)."""
    printing, device = ctx.printing, ctx.settings.device_id
    refused: list[list[GateProblem | rules.ParcelProblem]] = []

    def tx(db: sqlite_utils.Database) -> dict[str, Any] | None:
        if idempotency_key is not None:
            known = db.execute("SELECT payload FROM print_jobs WHERE idempotency_key = ?",
                               [idempotency_key]).fetchone()
            if known is not None:  # a retried tap: submit_payload answers the same job
                return None
        state = _state(db, order_id)
        split = _split_of(db, order_id)
        if not 1 <= parcel_no <= split.count:
            raise Refusal("bad_request", f"parcel: expected a number from 1 to {split.count}")
        if load_freeze(db, order_id) is not None:
            return None  # submit_payload refuses it, intercepted and alarmed
        shipped = rules.parcel_order(state.order, split, parcel_no)
        weight = printing.weigher.check(shipped) if printing.weigher is not None else None
        if weight is not None:
            weighings.record(db, order_id, weight, station=station, operator=operator)
            if weight.measured_kg is not None:
                append_event(db, device, "parcel_weighed", {
                    **weight.as_json(), "parcel_no": parcel_no, "station": station,
                    "operator": operator}, order_id=order_id)
        gate = bench.gate(db, state, station, ctx.settings.print_policy, weight)
        problems: list[GateProblem | rules.ParcelProblem] = [
            p for p in gate.problems if p.code not in ORDER_WIDE]
        if ctx.settings.print_policy != "off":
            problems += rules.parcel_problems(state.order, split, parcel_no)
        else:
            problems = []
        # pack evidence (docs/evidence.md): the order's video or photo, whatever print_policy says
        evidence = policy_problems(db, order_id, ctx.settings.evidence_policy,
                                   ctx.settings.pack_video_min_s)
        problems += evidence
        audit = {"problems": [p.code for p in problems], "station": station,
                 "operator": operator, "policy": ctx.settings.print_policy,
                 "parcel_no": parcel_no,
                 **({"weight": weight.as_json()} if weight is not None else {})}
        strict = ctx.settings.print_policy == "strict" or bool(evidence)
        if problems and strict and override_reason is None:
            append_event(db, device, "print_refused", audit, order_id=order_id)
            refused.append(problems)  # committed: the refusal is on the record
            return None
        if problems and strict:
            append_event(db, device, "print_override", {**audit, "reason": override_reason},
                         order_id=order_id)
        elif problems:
            append_event(db, device, "print_warned", audit, order_id=order_id)
        if bench.voided(db, order_id):  # an address changed after printing: the new generation
            bench.relabelled(db, order_id)
        return {"parcel_no": parcel_no, "count": split.count,
                "tracking_number": shipped.tracking_number,
                "packed": list(split.packed[parcel_no - 1]), "items": shipped.total_items,
                "weight_kg": weight.measured_kg if weight is not None else None}

    payload = ctx.store.write(tx)
    if refused:
        problems = refused[0]
        raise Refusal("not_ready", "；".join(p.zh for p in problems) + " / "
                      + "; ".join(p.en for p in problems),
                      problems=[p.as_json() for p in problems])
    job = printing.submit_payload(order_id, kind=store.PARCEL_JOB_KIND, payload=payload or {},
                                  idempotency_key=idempotency_key, operator=operator)
    if payload is not None:  # the job is queued: the hub hears which label this parcel got
        ctx.store.write(lambda db: append_event(db, device, "parcel_label", {
            **payload, "job_id": job.job_id, "station": station, "operator": operator},
            order_id=order_id))
    return {"job_id": job.job_id, "state": job.state, "parcel_no": parcel_no,
            "payload": job.payload}
