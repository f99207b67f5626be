"""``/api/v1`` print jobs and printer status (registered by edge.web.app when present)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.web import context
from scanedge.edge.web.auth import operator, principal, station_of
from scanedge.edge.web.limits import MAX_ID, json_body

bp = Blueprint("printing", __name__)


def _text(body: dict[str, Any], key: str, *, required: bool = False, max_len: int = 200) -> str | None:
    value = body.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Refusal("bad_request", f"{key}: required, a non-empty string")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise Refusal("bad_request", f"{key}: expected a string of at most {max_len} characters")
    return value.strip()


def _header_key() -> str | None:
    """``Idempotency-Key``, at most MAX_ID characters: a longer one is refused, never stored."""
    key = request.headers.get("Idempotency-Key")
    if key is None or not key.strip():
        return None
    if len(key) > MAX_ID:
        raise Refusal("bad_request", f"Idempotency-Key: at most {MAX_ID} characters")
    return key.strip()


def _copies(body: dict[str, Any]) -> int:
    copies = body.get("copies", 1)
    if isinstance(copies, bool) or not isinstance(copies, int):
        raise Refusal("bad_request", "copies: expected a whole number")
    return copies


@bp.post("/print-jobs")
def post_print_job():
    body = json_body()
    order_id = _text(body, "order_id", required=True, max_len=64)
    key = _text(body, "idempotency_key", max_len=MAX_ID) or _header_key()
    override = body.get("override")
    reason = None
    if override is not None:  # {"reason": ...}: print an order the gate refuses (audited)
        if not principal().can("override_print_gate"):
            raise Refusal("forbidden", f"the role {principal().role} may not override "
                                             "the print gate: a supervisor may")
        reason = _text(override if isinstance(override, dict) else {}, "reason", required=True)
    job = context().printing.submit(order_id, copies=_copies(body), idempotency_key=key,
                station=station_of(_text(body, "station", max_len=64)), operator=operator(),
                override_reason=reason)
    return jsonify({"job_id": job.job_id, "state": job.state}), 202


@bp.get("/print-jobs")
def list_print_jobs():
    """The latest jobs, newest first: ``?state=queued``, ``?order_id=SO-1``, ``?limit=50``."""
    from scanedge.printers.queue import MAX_JOBS_LISTED, STATES

    args = request.args
    state = args.get("state") or None
    if state is not None and state not in STATES:
        raise Refusal("bad_request", f"state: one of {', '.join(STATES)}")
    order_id = args.get("order_id") or None
    if order_id is not None and len(order_id) > 64:
        raise Refusal("bad_request", "order_id: at most 64 characters")
    limit = args.get("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= MAX_JOBS_LISTED:
        raise Refusal("bad_request", f"limit: a whole number from 1 to {MAX_JOBS_LISTED}")
    jobs = context().printing.recent(state=state, order_id=order_id, limit=int(limit))
    return jsonify({"jobs": [job.to_json() for job in jobs]})


@bp.get("/print-jobs/<job_id>")
def get_print_job(job_id: str):
    job = context().printing.get(job_id)
    if job is None:
        raise Refusal("not_found", f"print job {job_id} does not exist")
    return jsonify(job.to_json())


@bp.post("/print-jobs/<job_id>/reprint")
def post_reprint(job_id: str):
    body = json_body()
    reason = _text(body, "reason", required=True)
    job = context().printing.reprint(job_id, operator=operator(), reason=reason,
                copies=_copies(body))
    return jsonify({"job_id": job.job_id, "state": job.state, "reprint_no": job.reprint_no}), 202


@bp.post("/print-jobs/<job_id>/confirm")
def post_confirm(job_id: str):
    """For a job in needs_confirmation: {outcome: printed|resend|cancel}; who confirmed is the
    signed-in person."""
    body = json_body()
    outcome = _text(body, "outcome", required=True, max_len=16)
    job = context().printing.confirm(job_id, outcome=outcome, operator=operator())
    return jsonify(job.to_json())


@bp.get("/printer")
def get_printer():
    return jsonify(context().printing.status_view())


@bp.get("/label-preview/<order_id>")
def get_label_preview(order_id: str):
    """The order's label as this device would print it now, as a PNG (the bench page's preview).
    Nothing is queued or logged; a frozen order still previews (the print is what is refused)."""
    from datetime import datetime
    from io import BytesIO

    from scanedge.edge.store.orders import load_order
    from scanedge.edge.store.weighings import latest_weight
    from scanedge.printers.fonts import FontError
    from scanedge.printers.layout import LabelError, load_template, render_label

    ctx = context()
    db = ctx.store.read()
    order = load_order(db, order_id)
    if order is None:
        raise Refusal("not_found", f"order {order_id} is not on this device")
    try:
        image, _ = render_label(order, load_template(ctx.printing.template_name),
                                station=ctx.settings.station, printed_at=datetime.now(),
                                font_path=ctx.settings.label_font,
                                weight_kg=latest_weight(db, order_id))  # weighed: docs/scale.md
    except (LabelError, FontError) as e:
        raise Refusal("cannot_render", str(e)) from None
    out = BytesIO()
    image.save(out, format="PNG", optimize=True)
    return Response(out.getvalue(), mimetype="image/png", headers={"Cache-Control": "no-store"})
