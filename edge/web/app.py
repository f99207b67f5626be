"""Flask application factory for the edge service."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from scanedge.edge.config import Settings
from scanedge.edge.context import EdgeContext
from scanedge.edge.web.errors import register_error_handlers
from scanedge.edge.web.limits import install_json


def create_app(settings: Settings, context: EdgeContext | None = None) -> Flask:
    """Build the edge app. ``context`` (store, services) is made from ``settings`` if not given."""
    # instance_path given: Flask cannot work it out for a package mapped under scanedge.* (and
    # the edge keeps its files in data_dir, not in an instance folder)
    app = Flask("scanedge.edge", instance_path=str(Path(settings.data_dir).resolve()))
    app.config["MAX_CONTENT_LENGTH"] = int(settings.max_body_mb * 1024 * 1024)
    install_json(app)  # malformed JSON is a 400, Chinese stays readable (edge/web/limits.py)
    ctx = context or EdgeContext.open(settings)
    app.extensions["scanedge"] = ctx
    register_error_handlers(app)

    # Blueprints, one per area. Each module exposes ``bp``.
    from scanedge.edge.web import api, auth, health, openapi, pages, stream

    app.before_request(auth.check_request)  # who is asking, and may they (edge/web/auth.py)
    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp, url_prefix="/api/v1")
    app.register_blueprint(api.bp, url_prefix="/api/v1")
    app.register_blueprint(openapi.bp, url_prefix="/api/v1")  # GET /api/v1/openapi.json
    app.register_blueprint(stream.bp, url_prefix="/api/v1")  # page state, supervisor overview
    app.register_blueprint(pages.bp)  # /, /scan, /bench, /waybill, /supervisor (+ /static)
    from scanedge.edge.web import picking

    app.register_blueprint(picking.bp, url_prefix="/api/v1")  # /api/v1/pick/... (docs/picking.md)
    from scanedge.edge.web import conflicts

    app.register_blueprint(conflicts.bp, url_prefix="/api/v1")  # deciding through the hub
    from scanedge.edge.web import countdowns

    app.register_blueprint(countdowns.bp, url_prefix="/api/v1")  # 生效倒计时, from the hub
    from scanedge.edge.web import evidence

    app.register_blueprint(evidence.bp, url_prefix="/api/v1")  # 装箱视频 (docs/evidence.md)
    from scanedge.edge.web import scale

    app.register_blueprint(scale.bp, url_prefix="/api/v1")  # the bench's scale (docs/scale.md)
    from scanedge.edge.web import returns

    app.register_blueprint(returns.bp, url_prefix="/api/v1")  # receiving returns (docs/returns.md)
    from scanedge.edge.web import ewaybill

    app.register_blueprint(ewaybill.bp, url_prefix="/api/v1")  # 打印面单 (docs/carriers.md)
    from scanedge.edge.web import dock

    app.register_blueprint(dock.bp, url_prefix="/api/v1")  # 装车交接 (docs/dock.md)
    from scanedge.edge.web import parcels

    app.register_blueprint(parcels.bp, url_prefix="/api/v1")  # 一单多件 (docs/parcels.md)
    for module_name in ("scanedge.ocr.web", "scanedge.ocr.waybill_web", "scanedge.printers.web"):
        _register_optional(app, module_name)
    return app


def _register_optional(app: Flask, module_name: str) -> None:
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != module_name:
            raise
        return
    app.register_blueprint(module.bp, url_prefix="/api/v1")
