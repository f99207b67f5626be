"""One parcel's label of an order split into parcels (docs/parcels.md): the packing label of the
bench's template with the parcel's mark (``包裹 2/3``, white on black), its own tracking number in
the barcode (parcel 1 the order's, the others their 子单号 when the order has them), its own items
count and weight, and a QR naming the parcel (``SO-1001:L1:P2``, edge/domain/labels.py) so the
dock counts each box.

edge/parcels.py queues it as a print job of kind ``parcel`` whose payload is the parcel as it
was verified (its items, number, weight); the print worker renders it here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from PIL import Image

from scanedge.edge.domain.labels import label_id
from scanedge.edge.domain.orders import Order
from scanedge.printers import queue as q
from scanedge.printers.transports import PrintPayload

if TYPE_CHECKING:
    from scanedge.printers.layout import Template
    from scanedge.printers.service import PrintService

KIND = "parcel"


def parcel_fields(order: Order, payload: dict[str, Any], *, station: str, printed_at: datetime,
                  reprint_no: int = 0, generation: int = 1) -> tuple[Order, dict[str, str]]:
    """The order as this parcel ships it and the template's fields for its label."""
    from scanedge.printers.layout import label_fields

    parcel_no, count = int(payload["parcel_no"]), int(payload["count"])
    packed = list(payload.get("packed") or [])
    lines = tuple(replace(line, qty=int(packed[i])) for i, line in enumerate(order.lines)
                  if i < len(packed) and packed[i])
    shipped = replace(order, lines=lines,
                      tracking_number=payload.get("tracking_number") or order.tracking_number,
                      gifts=order.gifts if parcel_no == 1 else ())
    weight = payload.get("weight_kg")
    fields = label_fields(shipped, station=station, printed_at=printed_at, reprint_no=reprint_no,
                          generation=generation, relabel=generation > 1,
                          weight_kg=float(weight) if isinstance(weight, int | float) else None)
    fields.update(label_id=label_id(order.order_id, generation, parcel_no),
                  parcel=f"{parcel_no}/{count}")
    return shipped, fields


def render_parcel_label(order: Order, payload: dict[str, Any], template: Template, *,
                        station: str = "", printed_at: datetime | None = None,
                        reprint_no: int = 0, generation: int = 1,
                        font_path: str = "") -> Image.Image:
    from scanedge.printers.layout import render_fields

    shipped, fields = parcel_fields(order, payload, station=station,
                                    printed_at=printed_at or datetime.now(),
                                    reprint_no=reprint_no, generation=generation)
    image, _ = render_fields(fields, template, order=shipped, font_path=font_path)
    return image


def render_parcel_job(service: PrintService, job: q.Job) -> PrintPayload:
    """The bytes of a ``parcel`` job (the print worker calls it when the job's turn comes)."""
    from scanedge.edge.store import bench
    from scanedge.edge.store.orders import load_order
    from scanedge.printers.encode import label_bytes
    from scanedge.printers.layout import LabelError, load_template

    db = service.store.read()
    order = load_order(db, job.order_id)
    if order is None:
        raise q.QueueError("not_found", f"order {job.order_id} is not on this device")
    payload = job.payload or {}
    if not isinstance(payload.get("parcel_no"), int) or not isinstance(payload.get("count"), int):
        raise q.QueueError("cannot_render", f"print job {job.job_id}: no parcel in its payload")
    try:
        image = render_parcel_label(order, payload, load_template(service.template_name),
                                    station=service.settings.station, reprint_no=job.reprint_no,
                                    generation=bench.label_generation(db, job.order_id),
                                    font_path=service.settings.label_font)
    except LabelError as e:
        raise q.QueueError("cannot_render", f"print job {job.job_id}: {e}") from None
    images = [image] * job.copies
    return PrintPayload(data=label_bytes(images, service.model, beep=order.priority == "P0"),
                        images=images,
                        name=f"{job.job_id}-{job.order_id.replace('/', '_')}-"
                             f"{payload['parcel_no']}of{payload['count']}")
