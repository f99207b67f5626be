"""The dock's handover manifest (交接清单) on the bench printer: the parcels of one closed batch,
counted per carrier, with a line for the driver's signature.

edge/dock.py queues it as a print job of kind ``manifest`` whose payload is the manifest
(edge/domain/dock.py ``manifest``); the print worker renders it here with the template
``manifest_<paper>`` (printers/templates/manifest_*.toml) through the layout code of the packing
label. The template's block marked ``rows = true`` repeats once per parcel, at most ``per_page``
to a page, so a long batch prints as several pages (labels on die-cut stock) instead of being cut.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from PIL import Image

from scanedge.printers import queue as q
from scanedge.printers.transports import PrintPayload

if TYPE_CHECKING:
    from scanedge.printers.service import PrintService

KIND = "manifest"


def manifest_rows(doc: dict[str, Any]) -> list[str]:
    """One printed line per parcel: its number, tracking number and order."""
    return [f"{i}. {p.get('tracking_number') or '-'}  {p['order_id']}"
            + (f" {p['parcel']}" if p.get("parcel") else "")  # a split order's parcel: 2/3
            + (f" ×{p['scans']}" if p.get("scans", 1) > 1 else "")
            for i, p in enumerate(doc.get("parcels") or [], 1)]


def page_fields(doc: dict[str, Any], *, page: int, pages: int, reprint_no: int = 0) -> dict[str, str]:
    counts = doc.get("counts") or {}
    carrier = doc.get("carrier")
    missing = []
    if counts.get("not_scanned"):
        missing.append(f"已打印未扫描 {counts['not_scanned']} 件 printed, not scanned")
    if counts.get("to_pull"):
        missing.append(f"已冻结待拦截 {counts['to_pull']} 件 frozen: pull")
    last = page == pages
    return {
        "carrier_name": f"承运商 {carrier}" if carrier else "混装 MIXED",
        "batch_id": str(doc.get("batch_id") or ""),
        "station": str(doc.get("station") or ""),
        "closed_at": str(doc.get("closed_at") or "")[:16].replace("T", " "),
        "count": str(counts.get("parcels", 0)),
        "by_carrier": "  ".join(f"{c} {n}" for c, n in (counts.get("by_carrier") or {}).items()),
        "page": str(page), "pages": str(pages),
        "missing": " · ".join(missing) if last else "",
        "last": "1" if last else "", "reprint": "1" if reprint_no else "",
    }


def render_manifest(doc: dict[str, Any], paper: str, *, reprint_no: int = 0,
                    font_path: str = "") -> list[Image.Image]:
    """The manifest's pages as 1-bit images, ``paper``'s width."""
    from scanedge.printers.layout import load_template, render_fields

    template = load_template(f"manifest_{paper}")
    marker = next(b for b in template.blocks if b.get("rows"))
    per_page = max(1, int(marker.get("per_page", 30)))
    rows = manifest_rows(doc)
    chunks = [rows[i:i + per_page] for i in range(0, len(rows), per_page)] or [[]]
    at = template.blocks.index(marker)
    images = []
    for n, chunk in enumerate(chunks, 1):
        fields = page_fields(doc, page=n, pages=len(chunks), reprint_no=reprint_no)
        blocks = [{**marker, "text": f"{{row{k}}}"} for k in range(len(chunk))]
        fields.update({f"row{k}": row for k, row in enumerate(chunk)})
        page = replace(template, blocks=(*template.blocks[:at], *blocks,
                                         *template.blocks[at + 1:]))
        image, _ = render_fields(fields, page, font_path=font_path)
        images.append(image)
    return images


def render_manifest_job(service: PrintService, job: q.Job) -> PrintPayload:
    """The bytes of a ``manifest`` job (the print worker calls it when the job's turn comes)."""
    from scanedge.printers.encode import label_bytes
    from scanedge.printers.layout import LabelError

    doc = job.payload or {}
    try:
        pages = render_manifest(doc, service.paper, reprint_no=job.reprint_no,
                                font_path=service.settings.label_font)
    except LabelError as e:
        raise q.QueueError("cannot_render", f"print job {job.job_id}: {e}") from None
    images = pages * job.copies
    return PrintPayload(data=label_bytes(images, service.model), images=images,
                        name=f"{job.job_id}-manifest-{doc.get('batch_id') or '?'}")
