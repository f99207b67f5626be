"""Carrier labels: an e-waybill (edge/domain/ewaybill.py) drawn in its carrier's layout.

Each carrier has a template per stock size (``printers/templates/ewaybill_<carrier>_<size>.toml``,
modelled on the carrier's own standard 面单: the 三段码 big on top, the number's barcode, 集包地,
收 / 寄 boxes, the 2D code where the carrier prints one); our gift line and P0 mark go where the
layout leaves room. The bench printer's paper decides the size (``EWAYBILL_SIZES``): a 58 mm
printer is too narrow for any carrier's layout and is refused before anything is queued.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PIL import Image

from scanedge.edge.domain.carriers import carrier_by_code
from scanedge.edge.domain.ewaybill import EWaybill
from scanedge.edge.domain.orders import Order
from scanedge.edge.domain.refusal import Refusal
from scanedge.printers.layout import (
    TEMPLATE_DIR,
    LabelInfo,
    Template,
    load_template,
    mask_phone,
    render_fields,
)

# bench paper -> the carrier stock it takes: an 80 mm roll prints the 76 x 130 layout (576 dots
# across, cut at 130 mm); a 4-inch label printer takes the stock it is loaded with.
EWAYBILL_SIZES = {"80": "76x130", "76x130": "76x130", "100x150": "100x150", "100x180": "100x180"}
SIZES = ("76x130", "100x150", "100x180")
CARRIERS = ("SF", "ZTO", "JT")  # codes of edge/domain/carriers.json with a layout here


def ewaybill_size(paper: str) -> str:
    """The carrier stock size for a bench printer's ``paper``; a refusal for a narrower one."""
    size = EWAYBILL_SIZES.get(paper)
    if size is None:
        raise Refusal("paper_too_narrow",
                      f"打印机纸宽 {paper} mm,电子面单至少需要 76 mm / the printer's {paper} mm "
                      "paper is too narrow for a carrier label (76 x 130 mm at least): "
                      "print it on an 80 mm or 4-inch label printer",
                      paper=paper, sizes=list(SIZES))
    return size


def template_name(carrier: str, size: str) -> str:
    return f"ewaybill_{carrier.lower()}_{size}"


def ewaybill_template(carrier: str, size: str) -> Template:
    """The carrier's layout at ``size``; a refusal for a carrier without one."""
    name = template_name(carrier, size)
    if carrier not in CARRIERS or not (TEMPLATE_DIR / f"{name}.toml").is_file():
        raise Refusal("unknown_carrier", f"no {size} label layout for carrier {carrier!r} "
                      f"(layouts: {', '.join(CARRIERS)})", carrier=carrier, size=size)
    return load_template(name)


def ewaybill_fields(ewb: EWaybill, order: Order | None, *, station: str, printed_at: datetime,
                    reprint_no: int = 0) -> dict[str, str]:
    """The template fields of a carrier label: the waybill's, and from the order on this device
    (when it is here) what only we print: P0, gifts, item count."""
    carrier = carrier_by_code(ewb.carrier)
    recipient, sender = ewb.recipient, ewb.sender
    return {
        "order_id": ewb.order_id,
        "number": ewb.number,
        "tracking_number": ewb.number,
        "barcode_text": ewb.number,
        "carrier": ewb.carrier,
        "carrier_name": carrier.name_zh if carrier else ewb.carrier,
        "service": ewb.service,
        "sort_code": ewb.sort_code,
        "package_center": ewb.package_center,
        "qr": ewb.qr or "",
        "recipient_name": recipient.get("name", ""),
        "recipient_phone": mask_phone(recipient.get("phone", "")),
        "recipient_address": recipient.get("address", ""),
        "sender_name": sender.get("name", ""),
        "sender_phone": mask_phone(sender.get("phone", "")),
        "sender_address": sender.get("address", ""),
        "created_at": ewb.created_at,
        "priority": order.priority if order else "",
        "is_p0": "1" if order is not None and order.priority == "P0" else "",
        "gifts": "1" if order is not None and order.gifts else "",
        "items": str(order.total_items) if order else "",
        "station": (order.station if order else None) or station,
        "time": printed_at.strftime("%Y-%m-%d %H:%M"),
        "reprint_no": str(reprint_no) if reprint_no else "",
        "reprint": "1" if reprint_no else "",
        "label_id": "",
    }


def render_ewaybill(ewb: EWaybill, template: Template, *, order: Order | None = None,
                    station: str = "", printed_at: datetime | None = None, reprint_no: int = 0,
                    font_path: str = "") -> tuple[Image.Image, LabelInfo]:
    """The carrier label as a 1-bit image ``template.width`` dots wide (black = 0)."""
    if order is not None and order.order_id != ewb.order_id:
        raise Refusal("bad_field", f"e-waybill {ewb.number} is for order {ewb.order_id}, "
                      f"not {order.order_id}", field="order_id")
    fields = ewaybill_fields(ewb, order, station=station, printed_at=printed_at or datetime.now(),
                             reprint_no=reprint_no)
    return render_fields(fields, template, order=order, font_path=font_path)


def describe(info: LabelInfo, template: Template) -> dict[str, Any]:
    """What a render decided, as JSON (``scanedge label --ewaybill``)."""
    return {"template": template.name, "size": template.paper, "omitted": list(info.omitted),
            "barcode": {"text": info.barcode_text, "module_dots": info.barcode_module,
                        "rotated": info.barcode_rotated}}
