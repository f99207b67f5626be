"""Waybill capture through the real Flask app: photos stored, numbers attached or confirmed."""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from scanedge.edge.config import ConfigError, load_settings
from scanedge.edge.domain.distributor_rules import parse_waybill_rules as parse_rules
from scanedge.edge.domain.packing import Freeze
from scanedge.edge.store.orders import save_freeze
from scanedge.edge.waybills import WaybillCaptures
from scanedge.edge.web.app import create_app


def _label(number: str) -> bytes:
    """A printed Code 128 of ``number`` on white paper, as PNG bytes (a clean, fast photo)."""
    import zxingcpp

    bars = np.array(zxingcpp.create_barcode(number, zxingcpp.BarcodeFormat.Code128)
                    .to_image(scale=3))
    page = np.full((bars.shape[0] + 200, bars.shape[1] + 200), 250, np.uint8)
    page[100 : 100 + bars.shape[0], 100 : 100 + bars.shape[1]] = bars
    return cv2.imencode(".png", page)[1].tobytes()


def _app(ctx, **settings):
    """The app over the same store with other settings."""
    new = replace(ctx.settings, **settings)
    return create_app(new, replace(ctx, settings=new)).test_client()


def _post(client, photo: bytes, **form: str):
    data = {"image": (io.BytesIO(photo), "label.png"), **form}
    return client.post("/api/v1/waybills", data=data, content_type="multipart/form-data")


def _order(ctx, order_id: str) -> tuple[str | None, str | None]:
    return ctx.store.read().execute(
        "SELECT tracking_number, carrier FROM orders WHERE order_id = ?", [order_id]).fetchone()


def _events(ctx, type_: str) -> list[dict]:
    rows = ctx.store.read().execute(
        "SELECT order_id, payload FROM events WHERE type = ? ORDER BY seq", [type_]).fetchall()
    return [{"order_id": r[0], **json.loads(r[1])} for r in rows]


def _clear_tracking(ctx, order_id: str) -> None:
    ctx.store.write(lambda db: db.execute(
        "UPDATE orders SET tracking_number = NULL, carrier = NULL WHERE order_id = ?",
        [order_id]))


def test_accepted_number_is_attached_and_photo_stored_once(client, demo_ctx) -> None:
    _clear_tracking(demo_ctx, "SO-1003")
    photo = _label("JT5641157661349")
    r = _post(client, photo, order_id="SO-1003", station="bench-2", operator="ann")
    assert r.status_code == 201, r.get_json()
    body = r.get_json()
    assert body["tracking_number"] == "JT5641157661349" and body["carrier"] == "JT"
    assert body["status"] == "attached" and body["attached"] is True
    assert _order(demo_ctx, "SO-1003") == ("JT5641157661349", "JT")
    sha = body["photo_sha256"]
    stored = Path(demo_ctx.settings.data_dir) / "captures" / sha[:2] / f"{sha}.png"
    assert stored.read_bytes() == photo
    (event,) = _events(demo_ctx, "waybill_capture")
    assert event["order_id"] == "SO-1003" and event["capture_id"] == body["capture_id"]
    assert event["status"] == "attached" and event["tracking_number"] == "JT5641157661349"
    # the same photo again: a second capture, one file
    again = _post(client, photo, order_id="SO-1003").get_json()
    assert again["capture_id"] != body["capture_id"] and again["photo_sha256"] == sha
    assert len(list((Path(demo_ctx.settings.data_dir) / "captures").glob("*/*"))) == 1
    got = client.get(f"/api/v1/waybills/{body['capture_id']}").get_json()
    assert got["status"] == "attached" and got["photo_kept"] and got["operator"] == "local"


def test_doubt_waits_for_a_person_then_one_tap_confirms(client, demo_ctx) -> None:
    # SO-1001 already has SF1385628716739 from the order system: another number is a doubt
    r = _post(client, _label("SF3395329961247"), order_id="SO-1001").get_json()
    assert r["status"] == "needs_confirmation" and "differs_from_order" in r["checks"]
    assert _order(demo_ctx, "SO-1001") == ("SF1385628716739", "SF")  # nothing attached
    c = client.post(f"/api/v1/waybills/{r['capture_id']}/confirm",
                    json={"tracking_number": "SF3395329961247", "operator": "bob"})
    assert c.status_code == 200, c.get_json()
    out = c.get_json()
    assert out["how"] == "one_tap" and out["attached"] and "replaces_tracking_number" in out["flags"]
    assert _order(demo_ctx, "SO-1001") == ("SF3395329961247", "SF")
    (event,) = _events(demo_ctx, "waybill_confirmed")
    assert event["operator"] == "local" and event["order_id"] == "SO-1001"
    twice = client.post(f"/api/v1/waybills/{r['capture_id']}/confirm",
                        json={"tracking_number": "SF3395329961247", "operator": "bob"})
    assert twice.status_code == 409


def test_nothing_read_then_manual_entry_is_validated(client, demo_ctx) -> None:
    _clear_tracking(demo_ctx, "SO-1003")
    blank = cv2.imencode(".png", np.full((600, 400), 240, np.uint8))[1].tobytes()
    r = _post(client, blank, order_id="SO-1003").get_json()
    assert r["tracking_number"] is None and r["status"] == "needs_confirmation"
    url = f"/api/v1/waybills/{r['capture_id']}/confirm"
    bad = client.post(url, json={"tracking_number": "12345", "operator": "ann"})
    assert bad.status_code == 422 and bad.get_json()["error"] == "invalid_tracking_number"
    wrong_carrier = client.post(url, json={"tracking_number": "JT5641157661349",
                                           "carrier": "SF", "operator": "ann"})
    assert wrong_carrier.status_code == 422
    in_use = client.post(url, json={"tracking_number": "YT7544099603234", "operator": "ann"})
    assert in_use.status_code == 409  # SO-1002's number
    assert in_use.get_json()["error"] == "tracking_in_use"
    # no operator in the body: it comes from the session (here the loopback operator)
    ok = client.post(url, json={"tracking_number": "jt 5641 1576 6134 9"})
    assert ok.status_code == 200 and ok.get_json()["how"] == "manual"
    assert _order(demo_ctx, "SO-1003") == ("JT5641157661349", "JT")
    assert client.post("/api/v1/waybills/nope/confirm",
                       json={"tracking_number": "JT5641157661349", "operator": "a"}
                       ).status_code == 404


def test_frozen_order_is_refused_and_intercepted(client, demo_ctx) -> None:
    freeze = Freeze("SO-1002", "cancel", datetime.now(UTC) - timedelta(seconds=5))
    demo_ctx.store.write(lambda db: save_freeze(db, freeze, source="test"))
    r = _post(client, _label("YT7544099603234"), order_id="SO-1002", operator="ann")
    assert r.status_code == 409 and r.get_json()["error"] == "frozen"
    (event,) = _events(demo_ctx, "interception")
    assert event["action"] == "waybill" and event["order_id"] == "SO-1002"
    assert event["operator"] == "local"  # open mode: the loopback operator
    assert _events(demo_ctx, "waybill_capture") == []


def test_bad_uploads(client, demo_ctx) -> None:
    assert client.post("/api/v1/waybills", data={},
                       content_type="multipart/form-data").status_code == 400
    r = _post(client, b"this is not an image")
    assert r.status_code == 400 and r.get_json()["error"]
    assert _post(client, _label("JT5641157661349"), order_id="SO-404").status_code == 404
    small = _app(demo_ctx, max_image_mb=0.001)
    assert _post(small, _label("JT5641157661349") + b"\0" * 2000).status_code == 413


def test_distributor_rules(tmp_path: Path, demo_ctx) -> None:
    rules = '{"acme": {"length": 12, "min_letters": 1}, "*": {"carriers": ["SF", "JT", "YTO"]}}'
    assert set(parse_rules(rules)) == {"acme", "*"}
    with pytest.raises(ValueError):
        parse_rules('{"acme": {"lenght": 12}}')
    with pytest.raises(ConfigError):
        load_settings(env={"SCANEDGE_WAYBILL_RULES": "[1, 2]"}, data_dir=str(tmp_path))
    client = _app(demo_ctx, waybill_rules=rules)
    _clear_tracking(demo_ctx, "SO-1003")
    r = _post(client, _label("JT5641157661349"), order_id="SO-1003", distributor="acme")
    body = r.get_json()
    assert body["status"] == "needs_confirmation" and body["checks"] == ["rule_failed"]
    c = client.post(f"/api/v1/waybills/{body['capture_id']}/confirm",
                    json={"tracking_number": "JT5641157661349", "operator": "ann"})
    assert c.status_code == 422 and "12 characters" in c.get_json()["message"]
    assert _order(demo_ctx, "SO-1003") == (None, None)


def test_purge_by_age_and_size(demo_ctx) -> None:
    svc = WaybillCaptures(demo_ctx.settings, demo_ctx.store)
    old = svc.capture(_label("JT5641157661349"), {"tracking_number": None}, order_id=None,
                      station=None, operator=None, distributor=None)
    new = svc.capture(_label("SF3395329961247"), {"tracking_number": None}, order_id=None,
                      station=None, operator=None, distributor=None)
    files = {p.stem: p for p in svc.root.glob("*/*")}
    past = time.time() - 40 * 86400  # older than the 30 days kept by default
    os.utime(files[old["photo_sha256"]], (past, past))
    assert svc.purge()["deleted"] == 1
    assert not svc.get(old["capture_id"])["photo_kept"] and svc.get(new["capture_id"])["photo_kept"]
    tiny = WaybillCaptures(replace(demo_ctx.settings, waybill_captures_max_mb=1e-6),
                           demo_ctx.store)
    assert tiny.purge()["deleted"] == 1 and not list(svc.root.glob("*/*"))
