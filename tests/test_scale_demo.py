"""`scanedge serve --demo` runs a virtual scale at its bench: SO-1004's label is refused while the
scale shows the wrong weight, and a supervisor's override prints it (docs/scale.md)."""

import json
import urllib.request

import pytest

from tests.support import EdgeServer, free_port, wait_until

pytestmark = pytest.mark.slow  # a faster sibling: tests/test_scale_bench.py (the same gate, in-process)

MUG = "6901234567021"


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_the_demo_weighs_at_its_bench(tmp_path):
    server = EdgeServer(tmp_path / "var", SCANEDGE_HUB_LISTEN=f"127.0.0.1:{free_port()}")
    server.command = ("serve", "--demo")
    server.start()
    try:
        wait_until(lambda: get(f"{server.url}/api/v1/scale")["weight_kg"] == 1.234, timeout=15,
                   what="the demo's virtual scale settled")
        wait_until(lambda: server.post("/api/v1/scans", {"code": "SO-1004"})[1]["verdict"] == "ok",
                   timeout=15, what="demo order SO-1004 synced")
        for code in (MUG, MUG):
            assert server.post("/api/v1/scans", {"code": code})[1]["verdict"] == "ok"
        view = get(f"{server.url}/api/v1/scale?order_id=SO-1004")
        assert (view["expected_kg"], view["check"]["verdict"]) == (0.7, "too_heavy")
        status, refused = server.post("/api/v1/print-jobs", {"order_id": "SO-1004"})
        assert (status, refused["problems"][0]["code"]) == (409, "weight_off")
        status, job = server.post("/api/v1/print-jobs", {
            "order_id": "SO-1004", "override": {"reason": "demo: the customer added a mug"}})
        assert status == 202
        wait_until(lambda: get(f"{server.url}/api/v1/print-jobs/{job['job_id']}")["state"]
                   == "printed", timeout=20, what="the label on the virtual printer")
    finally:
        server.stop()
