"""The one way anything in scanedge refuses a request: a stable code, a message for a person,
details for a program. The code decides the HTTP status, from one table, never the message text.

Services raise a :class:`Refusal` (or a subclass that only names where it comes from, so a caller
can catch that kind: ``QueueError``, ``WaybillError`` ...); the web layer turns any of them into
``{"error": code, "message": ..., **details}`` with ``STATUS[code]`` in one handler
(edge/web/errors.py), on the device and the hub alike. A code is part of the API: clients act on
it, so one code means one thing and answers with one status everywhere.
"""

from __future__ import annotations

from typing import Any

STATUS: dict[str, int] = {
    # the request itself
    "bad_request": 400, "bad_json": 400, "bad_field": 400, "bad_budget": 400, "bad_order": 400,
    "missing_image": 400, "missing_tracking_number": 400, "order_required": 400,
    "bad_condition": 400,
    "empty": 400, "not_an_image": 400, "truncated": 400, "bad_shape": 400, "multi_frame": 400,
    "method_not_allowed": 405,
    "too_large": 413, "too_many_pixels": 413,
    # who asks
    "unauthorized": 401, "signin_failed": 401,
    "forbidden": 403, "wrong_station": 403, "cannot_decide": 403,
    # what it names
    "not_found": 404, "unknown_capture": 404, "unknown_order": 404, "no_wave": 404,
    "rma_unknown": 404, "receipt_unknown": 404,
    "parcel_unknown": 404, "batch_unknown": 404,  # the dock (docs/dock.md)
    # the state it meets
    "frozen": 409, "not_ready": 409, "bad_state": 409, "idempotency_conflict": 409,
    "already_done": 409, "other_order": 409, "tracking_in_use": 409, "site_change": 409,
    "no_conflict": 409, "no_hub": 409, "no_picking": 409, "note_not_pending": 409,
    "bad_layout": 409, "no_layout": 409, "not_claimed": 409, "not_open": 409, "taken": 409,
    "ewaybill_gate": 409, "no_carrier_account": 409,
    "rma_already_received": 409, "rma_frozen": 409, "receipt_finished": 409,
    "parcel_frozen": 409, "label_void": 409, "already_loaded": 409, "in_other_batch": 409,
    "wrong_carrier": 409, "batch_closed": 409, "frozen_in_batch": 409,  # the dock
    "not_split": 409, "bad_split": 409, "order_split": 409,  # parcels (docs/parcels.md)
    # understood, not acceptable
    "cannot_render": 422, "paper_too_narrow": 422, "rule_failed": 422, "unknown_carrier": 422,
    "invalid_tracking_number": 422, "carrier_ambiguous": 422,
    # slow down, try later
    "rate_limited": 429, "signin_throttled": 429,
    "hub_refused": 502,
    "hub_unavailable": 503, "too_many_streams": 503, "busy": 503, "storage_unavailable": 503,
    "carrier_refused": 502, "carrier_unavailable": 503, "hub_unreachable": 503,  # e-waybills
    "bad_evidence": 400, "clip_too_short": 422, "checksum_mismatch": 422,  # pack evidence
    "offset_mismatch": 409,  # a blob upload resumed from another offset (docs/evidence.md)
    "disk_full": 507,
}


class Refusal(Exception):
    """A request refused: ``code`` (a key of :data:`STATUS`), a message, details (JSON values;
    ``retry_after_s`` also becomes the Retry-After header)."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        if code not in STATUS:
            raise ValueError(f"refusal code {code!r} has no status: add it to STATUS")
        super().__init__(message)
        self.code, self.message, self.details = code, message, details

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def as_json(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, **self.details}
