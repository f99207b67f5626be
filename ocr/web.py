"""``POST /api/v1/decode`` (multipart field ``image``): the JSON of ``scanedge decode --json``.

Bad uploads get a JSON 400 (not an image, truncated, animated, an absurd shape, ...) or 413
(too many bytes or pixels, or more memory than ``image_memory_mb`` allows). Image work is
admitted by ``ocr.memory``: at most one decode per CPU, within the memory budget, the others
wait their turn (503 ``busy`` when too many wait).
"""

from __future__ import annotations

import threading

from flask import Blueprint, jsonify, request

from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.web import context

bp = Blueprint("ocr", __name__)

MAX_BUDGET_MS = 5000.0


@bp.record_once
def _warm_up(_state) -> None:
    """Load OpenCV, zxing-cpp, zbar and Pillow's plugins in the background when the app is
    built, so that the first photo a PDA sends is not 100 ms slower than the others."""
    from scanedge.ocr.views import warm_up

    threading.Thread(target=warm_up, name="ocr-warm-up", daemon=True).start()


@bp.post("/decode")
def post_decode():
    from scanedge.ocr import memory
    from scanedge.ocr.decode import decode_report
    from scanedge.ocr.images import limits_from_settings

    upload = request.files.get("image")
    if upload is None:
        raise Refusal("missing_image", "send the photo as multipart/form-data field 'image'")
    settings = context().settings
    memory.configure(settings.image_memory_mb)
    limits = limits_from_settings(settings)
    budget = _budget(settings.decode_budget_ms)
    exhaustive = request.args.get("exhaustive", "").lower() in ("1", "true", "yes")
    # Read one byte more than allowed: enough to know that the file is too large.
    data = upload.stream.read(limits.get("max_bytes", 20 * 1024 * 1024) + 1)
    report = decode_report(data, budget_ms=budget, exhaustive=exhaustive, **limits)
    body = {"file": upload.filename or "", "symbols": [s.to_json() for s in report.symbols],
            "elapsed_ms": round(report.elapsed_ms, 1)}
    if report.rejected:
        body["rejected"] = [r.to_json() for r in report.rejected]
    return jsonify(body)


def _budget(default: float) -> float:
    raw = request.args.get("budget_ms")
    if raw is None:
        return float(default)
    try:
        value = float(raw)
    except ValueError:
        raise Refusal("bad_budget", f"budget_ms must be a number, not {raw!r}") from None
    if not 0 < value <= MAX_BUDGET_MS:
        raise Refusal("bad_budget", f"budget_ms must be in (0, {MAX_BUDGET_MS:.0f}]")
    return value
