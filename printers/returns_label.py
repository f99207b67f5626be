"""The returns sticker (退货标签): what goes on the goods of a finished return receipt so the
next person knows what to do with them: the RMA, the verdict, each line's disposition and bin.

edge/returns.py queues it in the transaction that finishes the receipt, as a print job of kind
``returns`` whose payload is everything it prints (the receipt, not an order, is its subject);
the print worker renders it here with the template ``returns_<paper>``
(printers/templates/returns_*.toml) through the same layout code as the packing label.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from PIL import Image

from scanedge.printers import queue as q
from scanedge.printers.transports import PrintPayload

if TYPE_CHECKING:
    from scanedge.printers.service import PrintService

KIND = "returns"
MAX_LINES = 6  # lines printed one by one; the rest are counted ("+3 more")
DISPOSITION_WORDS = {
    "restock": "上架 restock", "quarantine": "隔离待检 quarantine", "scrap": "报废 scrap",
    "return_to_customer": "退回客户 back to customer",
}


def sticker_fields(payload: dict[str, Any], *, station: str, printed_at: datetime,
                   reprint_no: int = 0) -> dict[str, str]:
    """The template's fields from a returns job's payload (edge/returns.py ``_sticker``)."""
    lines = payload.get("lines") or []
    fields: dict[str, str] = {
        "rma_id": str(payload.get("rma_id") or ""),
        "order_id": str(payload.get("order_id") or ""),
        "reason": str(payload.get("reason") or ""),
        "code": str(payload.get("code") or ""),
        "barcode_text": str(payload.get("rma_id") or payload.get("receipt_id") or ""),
        "verdict": "可退款 QUALIFIES" if payload.get("qualifies") else "不予退款 REJECTED",
        "station": str(payload.get("station") or station),
        "time": printed_at.strftime("%Y-%m-%d %H:%M"),
        "reprint_no": str(reprint_no),
        "reprint": "1" if reprint_no else "",
        "unannounced": "" if payload.get("rma_id") else "1",
        "rejected": "" if payload.get("qualifies") else "1",
        "more": f"+{len(lines) - MAX_LINES} 行 more" if len(lines) > MAX_LINES else "",
    }
    for i, line in enumerate(lines[:MAX_LINES], 1):
        where = f" → {line['bin']}" if line.get("bin") else ""
        name = f" {line['name']}" if line.get("name") else ""
        fields[f"line{i}"] = (f"{line.get('sku')}{name} ×{line.get('qty')}  "
                              f"{DISPOSITION_WORDS.get(str(line.get('disposition')), '?')}{where}")
    return fields


def render_returns_label(payload: dict[str, Any], paper: str, *, station: str = "",
                         printed_at: datetime | None = None, reprint_no: int = 0,
                         font_path: str = "") -> Image.Image:
    from scanedge.printers.layout import load_template, render_fields

    fields = sticker_fields(payload, station=station, printed_at=printed_at or datetime.now(),
                            reprint_no=reprint_no)
    image, _ = render_fields(fields, load_template(f"returns_{paper}"), font_path=font_path)
    return image


def render_returns_job(service: PrintService, job: q.Job) -> PrintPayload:
    """The bytes of a ``returns`` job (the print worker calls it when the job's turn comes)."""
    from scanedge.printers.encode import label_bytes
    from scanedge.printers.layout import LabelError

    payload = job.payload or {}
    try:
        image = render_returns_label(payload, service.paper, station=service.settings.station,
                                     reprint_no=job.reprint_no,
                                     font_path=service.settings.label_font)
    except LabelError as e:
        raise q.QueueError("cannot_render", f"print job {job.job_id}: {e}") from None
    images = [image] * job.copies
    return PrintPayload(data=label_bytes(images, service.model), images=images,
                        name=f"{job.job_id}-returns-{payload.get('rma_id') or 'unannounced'}")
