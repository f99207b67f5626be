"""Carrier labels through the print queue: a job of kind ``ewaybill`` carries the waybill as its
payload (the order row does not hold it), is rendered in the carrier's layout at the bench
printer's stock size when it prints, and ships, so an order's freeze stops it like a label.

``submit_ewaybill`` is what the device's e-waybill endpoint calls once the hub (or the offline
pool) has given it a number (docs/carriers.md); it refuses, before anything is queued, a printer
too narrow for any carrier layout, a carrier without a layout, and a waybill whose label would not
read back (the self-check runs on the rendered image first).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from scanedge.edge.domain.ewaybill import EWaybill
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.store.orders import load_order
from scanedge.printers import queue as q
from scanedge.printers.ewaybill_label import ewaybill_size, ewaybill_template, render_ewaybill
from scanedge.printers.layout import LabelError
from scanedge.printers.selfcheck import ewaybill_problems
from scanedge.printers.transports import PrintPayload

if TYPE_CHECKING:
    from PIL import Image

    from scanedge.edge.domain.orders import Order
    from scanedge.printers.service import PrintService

EWAYBILL = "ewaybill"  # the print job kind


def idempotency_key(ewb: EWaybill) -> str:
    """One carrier number, one job: a retried request does not print the label twice (a second
    copy is a reprint, audited with its reason)."""
    return f"ewaybill:{ewb.carrier}:{ewb.number}"


def _render(service: PrintService, ewb: EWaybill, order: Order | None, *, station: str,
            reprint_no: int = 0) -> Image.Image:
    size = ewaybill_size(service.paper)
    template = ewaybill_template(ewb.carrier, size)
    try:
        image, _ = render_ewaybill(ewb, template, order=order, station=station,
                                   printed_at=datetime.now(), reprint_no=reprint_no,
                                   font_path=service.settings.label_font)
    except LabelError as e:
        raise Refusal("cannot_render", f"carrier label of {ewb.number}: {e}",
                      number=ewb.number) from None
    if image.width > service.model.dots:  # a 76 mm layout on a 72 mm head, say
        raise Refusal("paper_too_narrow", f"the {template.name} layout is {image.width} dots wide; "
                      f"printer model {service.model.name} prints {service.model.dots}",
                      paper=service.paper, model=service.model.name)
    return image


def submit_ewaybill(print_service: PrintService, ewb: EWaybill, *, station: str,
                    operator: str | None) -> str:
    """Queue ``ewb``'s carrier label on the bench printer; the print job's id.

    Refusals (nothing queued): ``paper_too_narrow`` (58 mm), ``unknown_carrier`` (no layout),
    ``cannot_render`` (the label would not read back: the number or 2D code cannot be printed),
    ``not_found`` (the order is not on this device), ``frozen``. The same waybill again returns
    the job it already has.
    """
    order = load_order(print_service.store.read(), ewb.order_id)
    if order is None:
        raise q.QueueError("not_found", f"order {ewb.order_id} is not on this device")
    image = _render(print_service, ewb, order, station=station)
    problems = ewaybill_problems(np.asarray(image.convert("L")), ewb.number, ewb.qr)
    if problems:  # a label that does not scan is worse than none: the parcel would be lost
        raise Refusal("cannot_render", f"carrier label of {ewb.number} does not read back: "
                      + "; ".join(problems), number=ewb.number, problems=problems)
    payload: dict[str, Any] = {"ewaybill": ewb.to_json(), "station": station}
    job = print_service.submit_payload(ewb.order_id, kind=EWAYBILL, payload=payload,
                                       idempotency_key=idempotency_key(ewb), operator=operator)
    return job.job_id


def render_ewaybill_job(service: PrintService, job: q.Job) -> PrintPayload:
    """The bytes of an ``ewaybill`` job (the print worker calls it when the job's turn comes)."""
    from scanedge.printers.encode import label_bytes

    try:
        ewb = EWaybill.from_json((job.payload or {}).get("ewaybill"))
    except Refusal as e:
        raise q.QueueError("cannot_render", f"print job {job.job_id}: {e.message}") from None
    order = load_order(service.store.read(), job.order_id)  # P0 and gifts as they are now
    station = str((job.payload or {}).get("station") or service.settings.station)
    image = _render(service, ewb, order, station=station, reprint_no=job.reprint_no)
    images = [image] * job.copies
    data = label_bytes(images, service.model, beep=order is not None and order.priority == "P0")
    return PrintPayload(data=data, images=images, name=f"{job.job_id}-{ewb.carrier}-{ewb.number}")
