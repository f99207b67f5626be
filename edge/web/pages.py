"""The pages: ``/`` (menu), ``/scan`` (PDA), ``/bench``, ``/waybill``, ``/supervisor``, ``/pick``,
``/returns``, ``/dock``.

Server-rendered Jinja templates (``edge/templates``) with plain JavaScript and CSS from
``edge/static`` (no build step, nothing from the network). Words come from one catalogue
(``edge/static/messages.json``): Chinese by default, English with ``?lang=en`` (kept in a cookie).
Asset URLs carry a hash of the file's content (``?v=``) so a PDA never runs yesterday's script
after an update.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, render_template, request, url_for

from scanedge.edge.web import context

bp = Blueprint("pages", __name__)

STATIC = Path(__file__).resolve().parent.parent / "static"
LANGS = ("zh", "en")
PAGES = ("scan", "bench", "waybill", "supervisor", "pick", "returns", "dock")
LANG_COOKIE = "scanedge_lang"


@cache
def catalogue() -> dict[str, dict[str, str]]:
    return json.loads((STATIC / "messages.json").read_text(encoding="utf-8"))


@cache
def _asset_version(name: str) -> str:
    return hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]


def asset(name: str) -> str:
    """``/static/NAME?v=<content hash>``: a changed file gets a new URL."""
    return url_for("static", filename=name, v=_asset_version(name))


def _lang() -> tuple[str, bool]:
    """The page language and whether it was chosen now (then it is remembered in a cookie)."""
    asked = request.args.get("lang")
    if asked in LANGS:
        return asked, True
    cookie = request.cookies.get(LANG_COOKIE)
    return (cookie if cookie in LANGS else "zh"), False


def _render(page: str, **extra: Any) -> Response:
    ctx = context()
    lang, chosen = _lang()
    words = catalogue()[lang]
    station = request.args.get("station") or ctx.settings.station
    config = {"page": page, "lang": lang, "station": station, "device_id": ctx.settings.device_id,
              "messages": words}
    other = "en" if lang == "zh" else "zh"
    lang_query = urlencode({**request.args.to_dict(), "lang": other})
    html = render_template(f"{page}.html", t=words, lang=lang, other_lang=other, page=page,
                           station=station, device_id=ctx.settings.device_id, asset=asset,
                           config=config, pages=PAGES, lang_query=lang_query, **extra)
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    if chosen:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="Lax")
    return response


@bp.get("/")
def menu():
    return _render("menu")


@bp.get("/scan")
def scan_page():
    return _render("scan")


@bp.get("/bench")
def bench_page():
    return _render("bench")


@bp.get("/waybill")
def waybill_page():
    # A signed-in distributor gets its own form: order, tracking number, shipping photo.
    from flask import g

    who = g.get("principal")
    return _render("waybill", role=who.role if who is not None else None)


@bp.get("/supervisor")
def supervisor_page():
    return _render("supervisor")


@bp.get("/pick")
def pick_page():
    return _render("pick")


@bp.get("/returns")
def returns_page():
    return _render("returns")


@bp.get("/dock")
def dock_page():
    from scanedge.edge.domain.carriers import carriers

    return _render("dock", carriers=[(c.code, c.name_zh, c.name_en) for c in carriers()])
