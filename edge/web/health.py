"""``/healthz``, ``/metrics`` and ``/api/v1/version``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from flask import Blueprint, Response, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from scanedge.edge.store.db import schema_versions
from scanedge.edge.store.outbox import outbox_status
from scanedge.edge.web import context

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    ctx = context()
    status = outbox_status(ctx.store.read())  # also proves the database answers
    return jsonify({
        "status": "ok",
        "device_id": ctx.settings.device_id,
        "station": ctx.settings.station,
        "hub": ctx.settings.hub_url or None,
        "sync": ctx.sync.status() if ctx.sync is not None else None,
        # "known" | "unknown" (hub silent: freezes may be missing) | "local" (no hub)
        "freeze": ctx.freeze_status.state() if ctx.freeze_status is not None else None,
        "outbox": {"pending": status.pending, "parked": status.parked,
                   "oldest_pending_time": status.oldest_pending_time},
    })


@bp.get("/metrics")
def metrics():
    return Response(generate_latest(context().metrics.registry), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/api/v1/version")
def get_version():
    """Which program answers: its version, the API's, and the schema of each store component
    (what a backup or an upgrade is checked against: docs/deploy.md)."""
    ctx = context()
    try:
        program = version("scanedge")
    except PackageNotFoundError:  # run from a source tree that was never installed
        program = None
    return jsonify({"name": "scanedge", "version": program, "api": "v1",
                    "device_id": ctx.settings.device_id,
                    "schemas": schema_versions(ctx.store.read())})
