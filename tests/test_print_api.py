"""The print-job HTTP API on the real Flask app, printing to the virtual printer over TCP."""

from __future__ import annotations

import time

import pytest

from scanedge.edge.commands import load_demo_orders
from scanedge.edge.config import load_settings
from scanedge.edge.context import EdgeContext
from scanedge.edge.web.app import create_app
from scanedge.printers.sim import VirtualPrinter


@pytest.fixture
def api(tmp_path):
    with VirtualPrinter() as sim:
        settings = load_settings(env={}, data_dir=str(tmp_path / "var"), device_id="test-dev",
                                 printer=sim.address, print_policy="off")  # gate: test_print_gate
        ctx = EdgeContext.open(settings)
        load_demo_orders(ctx.store)
        ctx.printing.poll_interval = 0.05
        yield create_app(settings, ctx).test_client(), sim
        ctx.close()


def _wait_state(client, job_id: str, want: str) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/print-jobs/{job_id}").get_json()
        if body["state"] == want:
            return body
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never reached {want}")


def test_print_job_lifecycle(api) -> None:
    client, sim = api
    r = client.post("/api/v1/print-jobs", json={"order_id": "SO-1001", "idempotency_key": "scan-7"})
    assert r.status_code == 202
    job_id = r.get_json()["job_id"]
    again = client.post("/api/v1/print-jobs", json={"order_id": "SO-1001", "idempotency_key": "scan-7"})
    assert again.get_json()["job_id"] == job_id
    _wait_state(client, job_id, "printed")
    assert sim.wait_labels(1)
    r = client.post(f"/api/v1/print-jobs/{job_id}/reprint", json={"operator": "zhang", "reason": "torn"})
    assert r.status_code == 202 and r.get_json()["reprint_no"] == 1
    _wait_state(client, r.get_json()["job_id"], "printed")
    assert sim.wait_labels(2)
    status = client.get("/api/v1/printer").get_json()
    assert status["hold"] is None and status["status"]["fault"] is None


def test_print_job_errors_are_json(api) -> None:
    client, _ = api
    assert client.post("/api/v1/print-jobs", json={}).status_code == 400
    assert client.post("/api/v1/print-jobs", json={"order_id": "SO-1001", "copies": 0}).status_code == 400
    r = client.post("/api/v1/print-jobs", json={"order_id": "NOPE"})
    assert r.status_code == 404 and r.get_json()["error"] == "not_found"
    assert client.get("/api/v1/print-jobs/NOPE").status_code == 404
    r = client.post("/api/v1/print-jobs", json={"order_id": "SO-1002"})
    job_id = r.get_json()["job_id"]
    _wait_state(client, job_id, "printed")
    r = client.post(f"/api/v1/print-jobs/{job_id}/confirm", json={"outcome": "resend", "operator": "li"})
    assert r.status_code == 409 and r.get_json()["error"] == "bad_state"
    assert client.post(f"/api/v1/print-jobs/{job_id}/reprint", json={"operator": "li"}).status_code == 400


def test_print_jobs_are_listed_newest_first_with_filters(api) -> None:
    client, _ = api
    first = client.post("/api/v1/print-jobs", json={"order_id": "SO-1001"}).get_json()["job_id"]
    second = client.post("/api/v1/print-jobs", json={"order_id": "SO-1002"}).get_json()["job_id"]
    _wait_state(client, first, "printed")
    _wait_state(client, second, "printed")
    jobs = client.get("/api/v1/print-jobs").get_json()["jobs"]
    assert [j["job_id"] for j in jobs] == [second, first]
    assert jobs[0]["order_id"] == "SO-1002" and jobs[0]["state"] == "printed"
    one = client.get("/api/v1/print-jobs?order_id=SO-1001").get_json()["jobs"]
    assert [j["job_id"] for j in one] == [first]
    assert client.get("/api/v1/print-jobs?state=queued").get_json()["jobs"] == []
    assert len(client.get("/api/v1/print-jobs?state=printed&limit=1").get_json()["jobs"]) == 1
    for bad in ("state=lost", "limit=0", "limit=x", "limit=501"):
        r = client.get(f"/api/v1/print-jobs?{bad}")
        assert r.status_code == 400 and r.get_json()["error"] == "bad_request", bad
