"""Confirming a waybill capture's tracking number: may it be taken, onto which order, and how is
it recorded (pure rules; edge/waybills.py loads the facts and stores what comes back).

The order of the checks is the contract (docs/waybill.md): who may see the capture and the order,
the capture's state, the order named, the number itself (edge/domain/distributor_rules.py
``check_number``), a freeze (the confirmation is an interception, nothing is attached), the
distributor's rule (a person may take the number as an exception), and a number that is already
another order's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from scanedge.edge.domain.distributor_rules import NumberCheck
from scanedge.edge.domain.refusal import Refusal


@dataclass(frozen=True)
class Capture:
    """What the device holds of the capture."""

    order_id: str | None  # the order it was taken for, if any
    status: str  # attached | needs_confirmation | confirmed
    distributor: str | None  # whose capture it is
    read_number: str | None  # what the reader read
    candidates: tuple[str, ...] = ()  # the other numbers it offered


@dataclass(frozen=True)
class Request:
    """What the person asks."""

    capture_id: str
    number: str  # normalised
    order_id: str | None = None
    as_distributor: str | None = None  # a signed-in distributor: only their own
    accept_rule_exception: bool = False


@dataclass(frozen=True)
class Order:
    """What the device holds of the target order (None fields when there is no target)."""

    visible: bool = True  # to this caller (a distributor sees only their own orders)
    frozen: bool = False
    carrier: str | None = None
    tracking_number: str | None = None
    other_order_with_number: str | None = None  # another order already has this number


@dataclass(frozen=True)
class Decision:
    target: str | None  # the order the number goes on (None: kept on the capture only)
    carrier: str | None = None
    how: str = "manual"  # one_tap | candidate | manual
    flags: tuple[str, ...] = ()
    problems: tuple[dict[str, object], ...] = ()  # the rule broken, taken as an exception
    frozen: bool = False  # refused by a freeze: record the interception, attach nothing
    details: dict[str, object] = field(default_factory=dict)


def target_of(capture: Capture | None, request: Request) -> str | None:
    return (capture.order_id if capture else None) or request.order_id


def check_capture(capture: Capture | None, request: Request, order: Order | None) -> str | None:
    """The checks before the number is looked at; returns the target order."""
    if capture is None or (request.as_distributor is not None
                           and capture.distributor != request.as_distributor):
        raise Refusal("unknown_capture", f"no capture {request.capture_id}")
    target = target_of(capture, request)
    if request.as_distributor is not None and not target:
        raise Refusal("order_required", "a distributor names the order")
    if target and (order is None or not order.visible):
        raise Refusal("unknown_order", f"no order {target}")
    if capture.status != "needs_confirmation":
        raise Refusal("already_done", f"capture {request.capture_id} is {capture.status}")
    if request.order_id and capture.order_id and request.order_id != capture.order_id:
        raise Refusal("other_order", f"capture {request.capture_id} belongs to order "
                                     f"{capture.order_id}")
    return target


def decide(capture: Capture, request: Request, order: Order | None, check: NumberCheck, *,
           distributor: str | None, rule_name: str | None) -> Decision:
    """After :func:`check_capture`: take the number, or refuse it (a :class:`Refusal`)."""
    target = target_of(capture, request)
    if check.error == "carrier_ambiguous":
        raise Refusal(check.error, check.message, carriers=list(check.carriers))
    if check.error:
        raise Refusal(check.error, check.message)
    if order is not None and order.frozen:
        return Decision(target, check.carrier, frozen=True)
    problems = tuple(p.to_json() for p in check.problems)
    if problems and not request.accept_rule_exception:
        raise Refusal("rule_failed", f"{distributor or 'this distributor'} needs "
                      + "; ".join(p.message for p in check.problems),
                      problems=list(problems), distributor=distributor, rule=rule_name)
    if order is not None and order.other_order_with_number:
        other = order.other_order_with_number
        raise Refusal("tracking_in_use", f"{request.number} is already the tracking number of "
                                         f"order {other}", other_order_id=other)
    read = (capture.read_number, *capture.candidates)
    how = ("one_tap" if request.number == capture.read_number
           else "candidate" if request.number in read else "manual")
    flags = list(check.flags)
    if problems:
        flags.append("rule_exception")
    if target and order is not None:
        if order.carrier and order.carrier != check.carrier:
            flags.append("carrier_differs_from_order")
        if order.tracking_number and order.tracking_number != request.number:
            flags.append("replaces_tracking_number")
    return Decision(target, check.carrier, how, tuple(flags), problems)
