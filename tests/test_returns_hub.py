"""RMAs through the hub (docs/returns.md, "Hub"): PUT/GET/cancel, the ``rma`` changes a device
pulls and applies, the device's ``return_received`` event pushed back as the RMA's outcome, the
returns report; hub schema 6 on an older database; and the whole path once through real
processes (a hub, a device with its virtual printer)."""

from __future__ import annotations

import io
import json
import sqlite3
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from scanedge.edge.domain.returns import iso
from scanedge.printers.sim import VirtualPrinter
from scanedge.sync.apply import apply_changes
from scanedge.sync.hub.app import create_hub_app
from scanedge.sync.hub.storage import open_storage
from tests.support import EdgeServer, HubServer, wait_until

ADMIN = "admin-token-for-tests"
ORDER = {"lines": [{"sku": "6901234567892", "qty": 2, "location": "A-02-14-3"},
                   {"sku": "4006381333931", "qty": 1}], "site": "sh"}


DEADLINE = iso(datetime.now(UTC) + timedelta(days=7))  # once: the same document is the same


def rma(**over) -> dict:
    doc = {"order_id": "SO-1", "reason": "七天无理由", "return_tracking": "SF1234567890123",
           "deadline": DEADLINE,
           "lines": [{"sku": "6901234567892", "name": "保温杯", "qty": 2}]}
    doc.update(over)
    return doc


@pytest.fixture
def hub(hub_database):
    storage = open_storage(hub_database)
    storage.ensure_admin_token(ADMIN)
    client = create_hub_app(storage).test_client()
    client.storage = storage
    client.device_token = storage.add_device("dev-1", site="sh")
    client.other_site_token = storage.add_device("dev-9", site="bj")
    yield client
    storage.close()


def admin(client, method: str, path: str, body=None, token: str = ADMIN):
    return client.open(path, method=method, json=body,
                       headers={"Authorization": f"Bearer {token}"})


def pull(client, token: str) -> list[dict]:
    r = client.get("/api/v1/sync/pull?cursor=0&limit=500",
                   headers={"Authorization": f"Bearer {token}"})
    return r.get_json()["changes"]


def test_an_rma_is_versioned_synced_to_its_orders_site_and_cancelled(hub):
    assert admin(hub, "PUT", "/api/v1/orders/SO-1", ORDER).status_code == 200
    r = admin(hub, "PUT", "/api/v1/rmas/RMA-1", rma())
    assert r.status_code == 200, r.get_json()
    assert (r.get_json()["version"], r.get_json()["changed"], r.get_json()["site"]) == (1, True, "sh")
    assert admin(hub, "PUT", "/api/v1/rmas/RMA-1", rma()).get_json()["changed"] is False
    assert admin(hub, "PUT", "/api/v1/rmas/RMA-1", rma(invoiced=True)).get_json()["version"] == 2
    rmas = [c for c in pull(hub, hub.device_token) if c["kind"] == "rma"]
    assert [(c["order_id"], c["payload"]["version"]) for c in rmas] == [("SO-1", 1), ("SO-1", 2)]
    assert not [c for c in pull(hub, hub.other_site_token) if c["kind"] == "rma"]
    r = admin(hub, "POST", "/api/v1/rmas/RMA-1/cancel")
    assert r.get_json() == {"rma_id": "RMA-1", "version": 3, "status": "cancelled"}
    # the order system putting the same RMA again does not undo the cancellation
    again = admin(hub, "PUT", "/api/v1/rmas/RMA-1", rma(invoiced=True)).get_json()
    assert again["status"] == "cancelled" and again["changed"] is False
    got = admin(hub, "GET", "/api/v1/rmas/RMA-1").get_json()
    assert got["rma"]["status"] == "cancelled" and got["outcome"] is None


@pytest.mark.parametrize(("body", "status"), [
    ({**rma(), "lines": []}, 400),
    ({**rma(), "deadline": "soon"}, 400),
    ({**rma(), "rma_id": "RMA-2"}, 400),
    ({**rma(), "version": 7}, 400),
    ({**rma(), "status": "cancelled"}, 400),
    ({k: v for k, v in rma().items() if k != "order_id"}, 400),
])
def test_a_bad_rma_is_refused_with_a_clear_error(hub, body, status):
    r = admin(hub, "PUT", "/api/v1/rmas/RMA-1", body)
    assert r.status_code == status and r.get_json()["message"]


def test_unknown_rmas_and_other_sites_answer_404(hub):
    assert admin(hub, "GET", "/api/v1/rmas/NOPE").status_code == 404
    assert admin(hub, "POST", "/api/v1/rmas/NOPE/cancel").status_code == 404
    admin(hub, "PUT", "/api/v1/orders/SO-1", ORDER)
    admin(hub, "PUT", "/api/v1/rmas/RMA-1", rma())
    bj = hub.storage.add_admin_token("oms-bj", ["bj"])
    assert admin(hub, "GET", "/api/v1/rmas/RMA-1", token=bj).status_code == 404
    assert admin(hub, "PUT", "/api/v1/rmas/RMA-1", rma(), token=bj).status_code == 404
    assert admin(hub, "GET", "/api/v1/rmas/RMA-1", token=hub.device_token).status_code == 403


def _device_receives(hub, edge_ctx, condition: str) -> dict:
    """The device pulls the hub's changes, receives RMA-1 through its API and pushes its
    events: what the sync worker and the bench page do, without the processes."""
    from scanedge.edge.web.app import create_app

    ctx = edge_ctx
    applied = ctx.store.write(lambda db: apply_changes(db, ctx.settings.device_id,
                                                       pull(hub, hub.device_token)))
    assert applied.rmas == ["RMA-1"]
    client = create_app(ctx.settings, ctx).test_client()
    rid = client.post("/api/v1/returns/receipts", json={"rma_id": "RMA-1"}).get_json()["receipt_id"]
    for _ in range(2):
        client.post(f"/api/v1/returns/receipts/{rid}/items", json={"code": "6901234567892"})
    photo = io.BytesIO()
    Image.new("RGB", (40, 30), "green").save(photo, "JPEG")
    client.post(f"/api/v1/returns/receipts/{rid}/photos", data=photo.getvalue(),
                content_type="image/jpeg")
    client.put(f"/api/v1/returns/receipts/{rid}/lines/6901234567892",
               json={"condition": condition})
    finished = client.post(f"/api/v1/returns/receipts/{rid}/finish").get_json()
    rows = ctx.store.read().execute(
        "SELECT event_id, device_id, seq, type, order_id, payload, device_time, hlc FROM events"
        " ORDER BY seq").fetchall()
    events = [{"event_id": r[0], "device_id": r[1], "seq": r[2], "type": r[3], "order_id": r[4],
               "payload": json.loads(r[5]), "device_time": r[6], "hlc": r[7]} for r in rows]
    hub_dev = hub.storage.device_for_token(hub.device_token)
    results = hub.storage.store_events(hub_dev, events)
    assert all(r["status"] == "accepted" for r in results), results
    return finished


def test_the_devices_verdict_comes_back_as_the_rmas_outcome_and_in_the_report(hub, tmp_path):
    from scanedge.edge.config import load_settings
    from scanedge.edge.context import EdgeContext

    admin(hub, "PUT", "/api/v1/orders/SO-1", ORDER)
    admin(hub, "PUT", "/api/v1/rmas/RMA-1", rma())
    settings = load_settings(env={}, data_dir=str(tmp_path / "edge"), device_id="dev-1",
                             station="bench-1")
    ctx = EdgeContext.open(settings)
    try:
        finished = _device_receives(hub, ctx, "resaleable")
    finally:
        ctx.close()
    got = admin(hub, "GET", "/api/v1/rmas/RMA-1").get_json()
    assert got["rma"]["status"] == "received"
    outcome = got["outcome"]
    assert outcome["qualifies"] is True and outcome["device_id"] == "dev-1"
    assert outcome["verdict"] == finished["verdict"]
    assert outcome["verdict"]["lines"][0]["bin"] == "A-02-14-3"  # the order line's location
    assert len(outcome["photos"]) == 1 and len(got["receipts"]) == 1
    report = admin(hub, "GET", "/api/v1/reports/returns?since=2026-01-01").get_json()
    assert (report["received"], report["qualified"], report["rejected"]) == (1, 1, 0)
    assert report["by_station"][0]["station"] == "bench-1"
    assert report["by_reason_code"][0]["reason"] == "七天无理由"
    assert report["median_minutes_to_verdict"] is not None
    md = admin(hub, "GET", "/api/v1/reports/returns?since=2026-01-01&format=markdown")
    assert md.mimetype == "text/markdown" and "| 七天无理由 | 1 | 1 | 0 |" in md.get_data(True)
    assert admin(hub, "GET", "/api/v1/reports/returns?since=later").status_code == 400


def test_a_hub_database_of_schema_5_gets_the_rma_table_in_place(tmp_path):
    from scanedge.sync.hub import storage as hub_storage

    path = tmp_path / "hub.db"
    storage = open_storage(str(path))
    storage.close()
    db = sqlite3.connect(path)
    with db:
        db.execute("DROP TABLE rmas")
        db.execute("UPDATE hub_meta SET value = '5' WHERE key = 'schema_version'")
        db.execute("DELETE FROM hub_meta WHERE key = 'migrations'")  # as a schema-5 hub had it
    db.close()
    storage = open_storage(str(path))
    try:
        with storage.transaction() as tx:
            assert tx.one("SELECT COUNT(*) FROM rmas")[0] == 0
            version = int(tx.one("SELECT value FROM hub_meta WHERE key = 'schema_version'")[0])
        assert version == hub_storage.SCHEMA_VERSION >= 6
    finally:
        storage.close()


# -- the whole path through real processes --------------------------------------------------

def _call(url: str, method: str = "GET", body: bytes | dict | None = None,
          content_type: str = "application/json") -> tuple[int, dict]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.slow
def test_an_rma_put_on_the_hub_is_received_at_a_real_device_and_its_verdict_returns(tmp_path):
    hub = HubServer(tmp_path / "hub", str(tmp_path / "hub" / "hub.db"))
    printer = VirtualPrinter(dots=576).start()
    token = hub.add_device("dev-1")
    edge = EdgeServer(tmp_path / "edge", SCANEDGE_DEVICE_ID="dev-1", SCANEDGE_STATION="bench-1",
                      SCANEDGE_HUB_URL=hub.url, SCANEDGE_HUB_TOKEN=token,
                      SCANEDGE_HUB_PUBLIC_KEY=hub.public_key, SCANEDGE_PRINTER=printer.address,
                      SCANEDGE_PRINTER_MODEL="generic-80", SCANEDGE_SYNC_POLL_S="0.3")
    hub.start()
    edge.start()
    try:
        hub.admin("PUT", "/api/v1/orders/SO-1", {**ORDER, "site": "default"})
        hub.admin("PUT", "/api/v1/rmas/RMA-1", rma())
        hub.admin("PUT", "/api/v1/rmas/RMA-2", rma(return_tracking="SF1234567890124"))
        base = edge.url + "/api/v1/returns"
        wait_until(lambda: _call(f"{base}/lookup?code=SF1234567890123")[0] == 200, timeout=15,
                   what="RMA-1 on the device")
        status, receipt = _call(f"{base}/receipts", "POST", {"rma_id": "RMA-1"})
        assert status == 201
        rid = receipt["receipt_id"]
        for _ in range(2):
            _call(f"{base}/receipts/{rid}/items", "POST", {"code": "6901234567892"})
        _call(f"{base}/receipts/{rid}/lines/6901234567892", "PUT", {"condition": "resaleable"})
        status, finished = _call(f"{base}/receipts/{rid}/finish", "POST", {})
        assert status == 200 and finished["verdict"]["qualifies"] is True
        outcome = wait_until(lambda: hub.admin("GET", "/api/v1/rmas/RMA-1")["outcome"],
                             timeout=15, what="the verdict on the hub")
        assert outcome["verdict"] == finished["verdict"]
        wait_until(lambda: _call(f"{edge.url}/api/v1/print-jobs/{finished['label_job']}")[1]
                   .get("state") == "printed", timeout=15, what="the returns sticker printed")
        # an RMA cancelled upstream while its parcel is on the bench: refused, alarmed
        status, second = _call(f"{base}/receipts", "POST", {"rma_id": "RMA-2"})
        assert status == 201
        hub.admin("POST", "/api/v1/rmas/RMA-2/cancel", {})
        wait_until(lambda: _call(f"{base}/lookup?code=RMA-2")[1]["rma"]["status"] == "cancelled",
                   timeout=15, what="the cancellation on the device")
        status, refused = _call(f"{base}/receipts/{second['receipt_id']}/items", "POST",
                                {"code": "6901234567892"})
        assert (status, refused["error"]) == (409, "rma_frozen")
        alarms = _call(f"{edge.url}/api/v1/alarms")[1]
        assert any(a["type"] == "rma_frozen" for a in alarms["alarms"])
    finally:
        edge.stop()
        hub.stop()
        printer.stop()


def test_a_receipt_pushed_by_one_device_makes_the_rma_received_for_the_others(hub, tmp_path):
    from scanedge.edge.config import load_settings
    from scanedge.edge.context import EdgeContext

    admin(hub, "PUT", "/api/v1/orders/SO-1", ORDER)
    admin(hub, "PUT", "/api/v1/rmas/RMA-1", rma())
    other = EdgeContext.open(load_settings(env={}, data_dir=str(tmp_path / "other"),
                                           device_id="dev-2", station="bench-2"))
    first = EdgeContext.open(load_settings(env={}, data_dir=str(tmp_path / "first"),
                                           device_id="dev-1", station="bench-1"))
    try:
        other.store.write(lambda db: apply_changes(db, "dev-2", pull(hub, hub.device_token)))
        _device_receives(hub, first, "resaleable")  # stored by the storage, not the route
        rows = first.store.read().execute(
            "SELECT event_id, device_id, seq, type, order_id, payload, device_time, hlc"
            " FROM events WHERE type = 'return_received'").fetchall()
        event = dict(zip(("event_id", "device_id", "seq", "type", "order_id", "payload",
                          "device_time", "hlc"), rows[0], strict=True))
        event["payload"] = json.loads(event["payload"])
        # the device pushes it again (its answer was lost): a duplicate, and the RMA is relayed
        r = hub.post("/api/v1/sync/push", json={"events": [event]},
                     headers={"Authorization": f"Bearer {hub.device_token}"})
        assert r.get_json()["results"][0]["status"] == "duplicate"
        got = admin(hub, "GET", "/api/v1/rmas/RMA-1").get_json()["rma"]
        assert (got["status"], got["version"]) == ("received", 2)
        cursor = other.store.read().execute(
            "SELECT value FROM sync_state WHERE key = 'cursor'").fetchone()[0]
        newer = [c for c in pull(hub, hub.device_token) if c["seq"] > int(cursor)]
        applied = other.store.write(lambda db: apply_changes(db, "dev-2", newer))
        assert applied.rmas == ["RMA-1"]
        with pytest.raises(Exception) as refused:
            other.returns.start(rma_id="RMA-1", code=None, station="bench-2", operator="k2")
        assert getattr(refused.value, "code", None) == "rma_already_received"
        # pushing it once more changes nothing
        hub.post("/api/v1/sync/push", json={"events": [event]},
                 headers={"Authorization": f"Bearer {hub.device_token}"})
        assert admin(hub, "GET", "/api/v1/rmas/RMA-1").get_json()["rma"]["version"] == 2
    finally:
        first.close()
        other.close()
