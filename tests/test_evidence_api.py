"""The pack-evidence gate through the device API (docs/evidence.md): under evidence_policy no
label and no e-waybill until the packing's video (or photo) is stored here; a clip shorter than
pack_video_min_s refused; the same clip twice one record and one event; bad input in words.
Real SQLite, the real Flask app, no hub (the upload: tests/test_evidence_upload.py)."""

from __future__ import annotations

import io
import json
import os
from dataclasses import replace

import pytest
from PIL import Image

MUG = "6901234567021"  # SO-1004: 2 mugs, no gift, no lot


def webm(n: int = 4000, seed: bytes = b"") -> bytes:
    """Bytes that start as MediaRecorder's WebM does (the device does not decode videos)."""
    return b"\x1aE\xdf\xa3" + seed + os.urandom(n)


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 120, 40)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def bench(settings, request):
    """A device with the demo's orders and the (policy, min seconds) a test passes indirectly."""
    from scanedge.edge.commands import load_demo_orders
    from scanedge.edge.context import EdgeContext
    from scanedge.edge.web.app import create_app

    policy, min_s = getattr(request, "param", ("require_video", 10.0))
    ctx = EdgeContext.open(replace(settings, evidence_policy=policy, pack_video_min_s=min_s,
                                   evidence_clip_max_mb=1.0))
    load_demo_orders(ctx.store)
    try:
        yield ctx, create_app(ctx.settings, ctx).test_client()
    finally:
        ctx.close()


def pack_so_1004(client) -> None:
    for code in ("SO-1004", MUG, MUG):
        assert client.post("/api/v1/scans", json={"code": code}).get_json()["verdict"] == "ok"


def send(client, body: bytes, mime: str = "video/webm", order: str = "SO-1004", **query):
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return client.post(f"/api/v1/orders/{order}/evidence" + (f"?{q}" if q else ""), data=body,
                       content_type=mime)


def events(ctx, type_):
    return [json.loads(p) for (p,) in ctx.store.read().execute(
        "SELECT payload FROM events WHERE type = ? ORDER BY seq", [type_])]


def test_without_the_video_no_label_and_no_tracking_number(bench):
    ctx, client = bench
    pack_so_1004(client)
    status = client.get("/api/v1/orders/SO-1004/evidence").get_json()
    assert (status["policy"], status["min_video_s"], status["satisfied"]) == ("require_video", 10.0, False)
    assert [p["code"] for p in status["problems"]] == ["video_missing"]
    r = client.post("/api/v1/print-jobs", json={"order_id": "SO-1004"})
    assert r.status_code == 409 and r.get_json()["error"] == "not_ready"
    assert [p["code"] for p in r.get_json()["problems"]] == ["video_missing"]
    assert "装箱视频" in r.get_json()["message"]
    # the e-waybill asks nothing of the hub (this device has none) before the evidence is there
    r = client.post("/api/v1/orders/SO-1004/ewaybill", json={})
    assert r.status_code == 409 and r.get_json()["error"] == "ewaybill_gate"
    assert [p["code"] for p in r.get_json()["problems"]] == ["video_missing"]  # once, not twice
    assert events(ctx, "print_refused")[0]["problems"] == ["video_missing"]
    assert ctx.printing.recent() == []


def test_the_default_ten_seconds_refuse_a_short_clip_and_accept_a_long_one(bench):
    ctx, client = bench
    pack_so_1004(client)
    r = send(client, webm(), duration_s="9.5")
    assert r.status_code == 422 and r.get_json()["error"] == "clip_too_short"
    assert r.get_json()["min_s"] == 10.0 and "10 s" in r.get_json()["message"]
    assert client.get("/api/v1/orders/SO-1004/evidence").get_json()["items"] == []
    r = send(client, webm(), duration_s="10.4", station="bench-1")
    assert r.status_code == 201
    row = r.get_json()
    assert (row["kind"], row["duration_s"], row["on_device"], row["uploaded"]) == ("video", 10.4, True, False)
    assert client.get("/api/v1/orders/SO-1004/evidence").get_json()["satisfied"] is True
    assert client.post("/api/v1/print-jobs", json={"order_id": "SO-1004"}).status_code == 202
    (event,) = events(ctx, "pack_evidence")
    assert event["sha256"] == row["sha256"] and event["duration_s"] == 10.4
    assert (ctx.settings.data_dir / "evidence" / row["sha256"][:2] / f"{row['sha256']}.webm").is_file()


@pytest.mark.parametrize("bench", [("require_video", 1.0)], indirect=True)
def test_the_same_clip_twice_is_one_record_and_one_event(bench):
    ctx, client = bench
    clip = webm()
    first = send(client, clip, duration_s="1.5")
    again = send(client, clip, duration_s="1.5")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.get_json()["evidence_id"] == again.get_json()["evidence_id"]
    assert len(events(ctx, "pack_evidence")) == 1
    assert len(list((ctx.settings.data_dir / "evidence").glob("*/*"))) == 1


@pytest.mark.parametrize("bench", [("require_photo", 10.0)], indirect=True)
def test_a_photo_policy_takes_a_photo(bench):
    _, client = bench
    pack_so_1004(client)
    assert client.post("/api/v1/print-jobs", json={"order_id": "SO-1004"}).get_json()["problems"][0][
        "code"] == "photo_missing"
    r = send(client, png(), "image/png")
    assert r.status_code == 201 and r.get_json()["kind"] == "photo" and r.get_json()["duration_s"] is None
    assert client.post("/api/v1/print-jobs", json={"order_id": "SO-1004"}).status_code == 202


def test_a_supervisor_override_prints_without_the_video_and_is_audited(bench):
    ctx, client = bench
    pack_so_1004(client)
    r = client.post("/api/v1/print-jobs", json={"order_id": "SO-1004",
                                                "override": {"reason": "camera broken"}})
    assert r.status_code == 202
    (audit,) = events(ctx, "print_override")
    assert audit["problems"] == ["video_missing"] and audit["reason"] == "camera broken"


@pytest.mark.parametrize("bench", [("off", 10.0)], indirect=True)
def test_with_the_policy_off_nothing_is_asked_and_a_clip_is_still_kept(bench):
    _, client = bench
    pack_so_1004(client)
    assert client.get("/api/v1/orders/SO-1004/evidence").get_json()["satisfied"] is True
    assert client.post("/api/v1/print-jobs", json={"order_id": "SO-1004"}).status_code == 202
    assert send(client, webm(), duration_s="12").status_code == 201


@pytest.mark.parametrize(("body", "mime", "query", "status", "code"), [
    (b"", "video/webm", {"duration_s": "12"}, 400, "bad_evidence"),
    (b"\x1aE\xdf\xa3...", "text/plain", {"duration_s": "12"}, 400, "bad_evidence"),
    (b"\x1aE\xdf\xa3...", "video/webm", {}, 400, "bad_evidence"),
    (b"\x1aE\xdf\xa3...", "video/webm", {"duration_s": "nan"}, 400, "bad_evidence"),
    (b"\x1aE\xdf\xa3...", "video/webm", {"duration_s": "inf"}, 400, "bad_evidence"),
    (b"\x1aE\xdf\xa3...", "video/webm", {"duration_s": "twelve"}, 400, "bad_evidence"),
    (b"not a png", "image/png", {}, 400, "not_an_image"),
    (b"\x1aE\xdf\xa3" + b"x" * (1024 * 1024 + 10), "video/webm", {"duration_s": "12"}, 413, "too_large"),
    (b"\x1aE\xdf\xa3...", "video/webm", {"duration_s": "12", "station": "s" * 65}, 400, "bad_request"),
])
def test_bad_input_is_refused_in_words_and_nothing_is_kept(bench, body, mime, query, status, code):
    ctx, client = bench
    r = send(client, body, mime, **query)
    assert (r.status_code, r.get_json()["error"]) == (status, code) and r.get_json()["message"]
    assert events(ctx, "pack_evidence") == []


def test_unknown_orders_are_404(bench):
    _, client = bench
    assert send(client, webm(), order="SO-404", duration_s="12").get_json()["error"] == "unknown_order"
    assert client.get("/api/v1/orders/SO-404/evidence").status_code == 404


def test_without_a_hub_the_uploads_say_so(bench):
    _, client = bench
    assert client.get("/api/v1/evidence/uploads").get_json()["hub"] is False


def test_each_parcel_of_a_split_order_waits_for_the_orders_video(bench):
    _, client = bench
    assert client.post("/api/v1/orders/SO-1004/parcels", json={"count": 2}).status_code == 200
    pack_so_1004(client)
    r = client.post("/api/v1/orders/SO-1004/parcels/1/label", json={})
    assert r.status_code == 409 and "video_missing" in [p["code"] for p in r.get_json()["problems"]]
    assert send(client, webm(), duration_s="11").status_code == 201
    r = client.post("/api/v1/orders/SO-1004/parcels/1/label", json={})
    assert r.status_code == 202, r.get_json()  # both mugs went into the open parcel, 1/2


def test_the_cap_removes_uploaded_clips_first_and_never_one_the_hub_lacks(demo_ctx):
    from scanedge.edge.evidence import EvidenceService
    from scanedge.edge.store import evidence as rows

    tiny = replace(demo_ctx.settings, evidence_max_mb=0.001, hub_url="http://127.0.0.1:9")
    service = EvidenceService(tiny, demo_ctx.store, demo_ctx.bus)
    sent, waiting = (service.add("SO-1004", webm(), mime="video/webm", duration_s=12.0,
                                 station="bench-1", operator=None)[0] for _ in range(2))
    demo_ctx.store.write(lambda db: rows.mark_uploaded(db, sent["sha256"]))
    gone = service.purge()  # 8 KB kept against a 1 KB cap: only the uploaded clip may go
    assert [p.name for p in gone] == [f"{sent['sha256']}.webm"]
    kept = {r["sha256"]: r["on_device"] for r in service.status("SO-1004")["items"]}
    assert kept == {sent["sha256"]: False, waiting["sha256"]: True}  # the records stay
    assert len(rows.stored(demo_ctx.store.read(), "SO-1004")) == 2  # both still count
    offline = EvidenceService(replace(tiny, hub_url=""), demo_ctx.store, demo_ctx.bus)
    assert [p.name for p in offline.purge()] == [f"{waiting['sha256']}.webm"]  # nobody to wait for
