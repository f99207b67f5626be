"""Pack evidence to the hub (docs/evidence.md): the resumable, checksummed blob upload
(sync/hub/blobs.py, sync/blob_upload.py) against a real hub on 127.0.0.1, a cut made by a real TCP
proxy, an S3-compatible store (moto's server on 127.0.0.1), and a device that uploads what its
bench recorded in the background."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from scanedge.edge.domain.refusal import Refusal
from scanedge.sync.blob_upload import Throttle, upload_blob
from scanedge.sync.client import HubClient, HubUnavailable
from scanedge.sync.hub.blobs import BlobUploads, DiskBlobs
from tests.proxy import FaultyProxy
from tests.support import free_port, wait_until


def blob(n: int) -> tuple[bytes, str]:
    data = b"\x1aE\xdf\xa3" + os.urandom(n - 4)
    return data, hashlib.sha256(data).hexdigest()


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*") if p.is_file() and p.parent.name != "partial")


@pytest.fixture
def hub(tmp_path):
    """A hub process's app on 127.0.0.1 keeping blobs on disk; (url, device token, uploads)."""
    from scanedge.edge.lifecycle import BackgroundServer
    from scanedge.sync.hub.app import HubOptions
    from scanedge.sync.hub.asgi import create_hub_asgi
    from scanedge.sync.hub.storage import open_storage

    storage = open_storage(str(tmp_path / "hub.db"))
    token = storage.add_device("dev-1")
    root = tmp_path / "hub-blobs"
    uploads = BlobUploads(DiskBlobs(root), root / "partial")
    server = BackgroundServer(create_hub_asgi(storage, HubOptions(blobs=uploads)),
                              "127.0.0.1", free_port()).start()
    yield server.url, token, uploads, storage
    server.stop()
    storage.close()


# -- the hub's rules, without the network --------------------------------------------------------
def test_a_chunk_is_appended_only_from_the_hubs_offset_and_with_its_checksum(tmp_path):
    uploads = BlobUploads(DiskBlobs(tmp_path / "b"), tmp_path / "b" / "partial")
    data, sha = blob(10)
    first = uploads.receive(sha, 0, 4, 10, data[:4], hashlib.sha256(data[:4]).hexdigest())
    assert first == {"sha256": sha, "offset": 4, "complete": False}
    # the same chunk again (its answer was lost): the hub says where it stands, writes nothing
    with pytest.raises(Refusal) as e:
        uploads.receive(sha, 0, 4, 10, data[:4], hashlib.sha256(data[:4]).hexdigest())
    assert (e.value.code, e.value.details["offset"]) == ("offset_mismatch", 4)
    # a chunk damaged on the way: refused before a byte is written
    with pytest.raises(Refusal) as e:
        uploads.receive(sha, 4, 8, 10, b"XXXX", hashlib.sha256(data[4:8]).hexdigest())
    assert e.value.code == "checksum_mismatch"
    assert uploads.status(sha) == {"sha256": sha, "offset": 4, "complete": False}
    uploads.receive(sha, 4, 10, 10, data[4:], hashlib.sha256(data[4:]).hexdigest())
    assert uploads.status(sha)["complete"] is True
    assert [p.read_bytes() for p in stored_files(tmp_path / "b")] == [data]
    # complete: sent again, answered complete, nothing stored twice
    again = uploads.receive(sha, 0, 10, 10, data, hashlib.sha256(data).hexdigest())
    assert again["complete"] is True and again["stored"] is False
    assert len(stored_files(tmp_path / "b")) == 1


def test_a_blob_whose_bytes_are_not_its_name_is_dropped(tmp_path):
    uploads = BlobUploads(DiskBlobs(tmp_path / "b"), tmp_path / "b" / "partial")
    data, _ = blob(10)
    wrong = hashlib.sha256(b"something else").hexdigest()
    with pytest.raises(Refusal) as e:
        uploads.receive(wrong, 0, 10, 10, data, hashlib.sha256(data).hexdigest())
    assert (e.value.code, e.value.details["offset"]) == ("checksum_mismatch", 0)
    assert uploads.status(wrong) == {"sha256": wrong, "offset": 0, "complete": False}
    assert stored_files(tmp_path / "b") == []


@pytest.mark.parametrize("name", ["abc", "A" * 64, "../" + "a" * 61, "g" * 64])
def test_a_blob_is_named_by_its_sha256_only(tmp_path, name):
    uploads = BlobUploads(DiskBlobs(tmp_path / "b"), tmp_path / "b" / "partial")
    with pytest.raises(Refusal) as e:
        uploads.status(name)
    assert e.value.code == "bad_request"


# -- through HTTP ---------------------------------------------------------------------------------
def test_an_upload_cut_by_the_network_resumes_from_the_hubs_offset_without_a_duplicate(hub, tmp_path):
    url, token, uploads, _ = hub
    data, sha = blob(600_000)
    path = tmp_path / "clip.webm"
    path.write_bytes(data)
    proxy = FaultyProxy(int(url.rsplit(":", 1)[1]))
    client = HubClient(proxy.url, token, timeout=5)
    failed: list[BaseException] = []

    def first_try() -> None:
        slow = Throttle(200_000, threading.Event())  # ~3 s in all: the cut lands midway
        try:
            upload_blob(client, path, sha, len(data), chunk_bytes=50_000, throttle=slow)
        except HubUnavailable as e:
            failed.append(e)

    t = threading.Thread(target=first_try)
    t.start()
    wait_until(lambda: uploads.status(sha)["offset"] >= 100_000, timeout=10, what="a partial upload")
    proxy.set_mode("reset")  # the network goes: every connection cut, new ones refused
    t.join(10)
    assert failed, "the cut reached the device as HubUnavailable"
    held = uploads.status(sha)["offset"]
    assert 0 < held < len(data)
    proxy.set_mode("pass")
    result = upload_blob(client, path, sha, len(data), chunk_bytes=50_000)
    assert result is not None and result.resumed_from == held
    assert result.sent_bytes == len(data) - held  # nothing the hub held was sent again
    files = stored_files(uploads.store.root)
    assert [f.name for f in files] == [sha] and files[0].read_bytes() == data
    assert not list((uploads.store.root / "partial").glob("*.part"))
    again = upload_blob(client, path, sha, len(data))  # complete: nothing sent
    assert again is not None and again.sent_bytes == 0 and len(stored_files(uploads.store.root)) == 1
    proxy.close()


def test_the_hub_refuses_bad_chunks_in_words(hub):
    url, token, _, _ = hub
    client = HubClient(url, token)
    data, sha = blob(100)
    cases = [({"Content-Range": "bytes 0-99/100"}, 400, "bad_request"),  # no checksum
             ({"Content-Range": "bytes 0-9/100", "X-Chunk-SHA256": "00"}, 400, "bad_request"),
             ({"Content-Range": "rows 0-99/100", "X-Chunk-SHA256": "00"}, 400, "bad_request"),
             ({"Content-Range": "bytes 0-99/100", "X-Chunk-SHA256": "0" * 64}, 422, "checksum_mismatch"),
             ({"Content-Range": "bytes 50-99/100",
               "X-Chunk-SHA256": hashlib.sha256(data[50:]).hexdigest()}, 409, "offset_mismatch")]
    for headers, status, code in cases:
        body = data[50:] if headers["Content-Range"].startswith("bytes 50") else data
        got, answer = client.put_bytes(f"/api/v1/sync/blobs/{sha}", body, headers)
        assert (got, answer["error"]) == (status, code), headers
        assert answer["message"]
    assert HubClient(url, "not-a-token").exchange("GET", f"/api/v1/sync/blobs/{sha}")[0] == 403


def test_a_device_uploads_its_bench_video_in_the_background_and_the_hub_lists_it(hub, tmp_path):
    from scanedge.edge.commands import load_demo_orders
    from scanedge.edge.config import load_settings
    from scanedge.edge.context import EdgeContext
    from scanedge.edge.web.app import create_app

    url, token, uploads, storage = hub
    settings = load_settings(env={}, data_dir=str(tmp_path / "var"), device_id="dev-1",
                             station="bench-1", hub_url=url, hub_token=token,
                             evidence_policy="require_video", pack_video_min_s=1.0,
                             hub_trust_first_key=True)
    ctx = EdgeContext.open(settings)
    try:
        load_demo_orders(ctx.store)
        client = create_app(settings, ctx).test_client()
        data, sha = blob(300_000)
        r = client.post("/api/v1/orders/SO-1004/evidence?duration_s=2.5", data=data,
                        content_type="video/webm")
        assert r.status_code == 201
        wait_until(lambda: uploads.store.has(sha), timeout=15, what="the blob at the hub")
        wait_until(lambda: client.get("/api/v1/orders/SO-1004/evidence").get_json()["items"][0][
            "uploaded"], timeout=10, what="the device to mark it uploaded")
        assert client.get("/api/v1/evidence/uploads").get_json()["pending_blobs"] == 0
        admin = storage.ensure_admin_token("")
        hub_client = HubClient(url, admin)

        def listed():
            status, answer = hub_client.exchange("GET", "/api/v1/orders/SO-1004/evidence")
            return status == 200 and answer["evidence"] and answer["evidence"][0]["stored"]
        wait_until(listed, timeout=15, what="the pack_evidence event at the hub")
        (item,) = hub_client.exchange("GET", "/api/v1/orders/SO-1004/evidence")[1]["evidence"]
        assert (item["sha256"], item["duration_s"], item["device_id"]) == (sha, 2.5, "dev-1")
    finally:
        ctx.close()


def test_an_s3_compatible_store_keeps_the_blob_once(tmp_path, monkeypatch):
    """moto's S3 server on 127.0.0.1 standing in for MinIO or Ceph, through boto3."""
    pytest.importorskip("boto3")
    moto_server = pytest.importorskip("moto.server")
    from scanedge.edge.lifecycle import BackgroundServer
    from scanedge.sync.hub.app import HubOptions
    from scanedge.sync.hub.asgi import create_hub_asgi
    from scanedge.sync.hub.blobs import open_blob_store
    from scanedge.sync.hub.storage import open_storage

    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    port = free_port()
    s3 = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    s3.start()
    storage = open_storage(str(tmp_path / "hub.db"))
    try:
        store, staging = open_blob_store(
            f"s3://evidence/site-a?endpoint_url=http://127.0.0.1:{port}&region=us-east-1", tmp_path)
        store.client.create_bucket(Bucket="evidence")
        hub = BackgroundServer(create_hub_asgi(storage, HubOptions(
            blobs=BlobUploads(store, staging))), "127.0.0.1", free_port()).start()
        client = HubClient(hub.url, storage.add_device("dev-1"))
        data, sha = blob(2_500_000)  # three chunks: S3 sees only the verified whole
        path = tmp_path / "clip.webm"
        path.write_bytes(data)
        assert upload_blob(client, path, sha, len(data)).chunks == 3
        keys = [o["Key"] for o in store.client.list_objects_v2(Bucket="evidence")["Contents"]]
        assert keys == [f"site-a/{sha[:2]}/{sha}"]
        assert store.open(sha).read() == data
        again = upload_blob(client, path, sha, len(data))
        assert again.sent_bytes == 0 and len(store.client.list_objects_v2(
            Bucket="evidence")["Contents"]) == 1
        assert list(staging.glob("*.part")) == []
        admin = HubClient(hub.url, storage.ensure_admin_token(""))
        assert admin.exchange("GET", f"/api/v1/blobs/{'0' * 64}")[0] == 404
        hub.stop()
    finally:
        storage.close()
        s3.stop()


def test_the_devices_uploader_rides_out_a_network_cut_and_stores_the_clip_once(hub, tmp_path):
    from scanedge.edge.commands import load_demo_orders
    from scanedge.edge.config import load_settings
    from scanedge.edge.context import EdgeContext
    from scanedge.edge.web.app import create_app

    url, token, uploads, _ = hub
    proxy = FaultyProxy(int(url.rsplit(":", 1)[1]))
    settings = load_settings(env={}, data_dir=str(tmp_path / "var"), device_id="dev-1",
                             station="bench-1", hub_url=proxy.url, hub_token=token,
                             hub_trust_first_key=True, evidence_upload_mbps=0.5)
    ctx = EdgeContext.open(settings)
    try:
        load_demo_orders(ctx.store)
        client = create_app(settings, ctx).test_client()
        data, sha = blob(1_200_000)  # 2 chunks at 0.5 MB/s: the cut lands between them
        assert client.post("/api/v1/orders/SO-1004/evidence?duration_s=12", data=data,
                           content_type="video/webm").status_code == 201
        wait_until(lambda: uploads.status(sha)["offset"] > 0, timeout=10, what="the first chunk")
        proxy.set_mode("reset")
        wait_until(lambda: ctx.uploads.failures > 0, timeout=10, what="the uploader to see the cut")
        assert not uploads.store.has(sha)
        proxy.set_mode("pass")
        ctx.uploads.wake()  # the network is back (the backoff would find it within seconds too)
        wait_until(lambda: uploads.store.has(sha), timeout=20, what="the clip at the hub")
        wait_until(lambda: client.get("/api/v1/evidence/uploads").get_json()["pending_blobs"] == 0,
                   timeout=10, what="the device to mark it uploaded")
        files = stored_files(uploads.store.root)
        assert [f.name for f in files] == [sha] and files[0].read_bytes() == data
    finally:
        ctx.close()
        proxy.close()
