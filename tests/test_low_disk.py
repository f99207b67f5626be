"""Below ``min_free_mb`` of free disk (issue 13, item 7; docs/sync.md "Limits"): the service
starts, freezes work, new work is refused with 507 over HTTP and in one line by the CLI.

Deterministic: ``min_free_mb`` is set above any disk's size instead of filling the disk.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest

from tests.support import EdgeServer, run_cli

FULL = {"SCANEDGE_MIN_FREE_MB": str(10**9)}  # a petabyte: more than this disk has free


def one_line(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") <= 1, proc.stderr
    if proc.returncode != 0:
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (proc.returncode, proc.stderr)


@pytest.fixture
def data(tmp_path):
    data = tmp_path / "var"
    run_cli("orders", "import", "--demo", data_dir=data)  # while there is space
    return data


@pytest.mark.slow
def test_serve_starts_on_a_full_disk_and_refuses_new_work_with_507(data):
    server = EdgeServer(data, **FULL).start()  # before: "cannot open the store", exit 2
    try:
        status, body = server.post("/api/v1/scans", {"code": "SO-1001"})
        assert (status, body["error"]) == (507, "disk_full") and "min_free_mb" in body["message"]
        status, body = server.post("/api/v1/print-jobs", {"order_id": "SO-1001"})
        assert (status, body["error"]) == (507, "disk_full")
        for path in ("/healthz", "/api/v1/orders/SO-1001", "/api/v1/alarms", "/metrics"):
            with urllib.request.urlopen(server.url + path, timeout=10) as r:
                assert r.status == 200
    finally:
        server.stop()
    assert b"Traceback" not in server.proc.stderr.read()
    with_space = run_cli("outbox", "--json", data_dir=data)
    assert json.loads(with_space.stdout)["pending"] == 0  # nothing of the refused work written


@pytest.mark.slow
def test_freeze_and_unfreeze_work_on_a_full_disk(data):
    frozen = run_cli("freeze", "SO-1001", "--reason", "cancel", data_dir=data, check=False, **FULL)
    assert frozen.returncode == 0 and "frozen" in frozen.stdout, frozen.stderr  # before: DiskFull
    refused = run_cli("scan", "SO-1001", data_dir=data, check=False, **FULL)
    one_line(refused)
    assert refused.returncode == 2 and "min_free_mb" in refused.stderr
    lifted = run_cli("unfreeze", "SO-1001", data_dir=data, check=False, **FULL)
    assert lifted.returncode == 0 and "lifted" in lifted.stdout, lifted.stderr
    outbox = json.loads(run_cli("outbox", "--json", data_dir=data, **FULL).stdout)
    assert outbox["pending"] == 2  # freeze_applied, freeze_lifted


def test_orders_import_on_a_full_disk_is_one_line(data, tmp_path):
    for args in (["orders", "import", "--demo"],
                 ["orders", "import", str(tmp_path / "orders.json")]):
        (tmp_path / "orders.json").write_text(json.dumps(
            {"order_id": "SO-9", "lines": [{"sku": "6901234567892", "qty": 1}]}))
        proc = run_cli(*args, data_dir=data, check=False, **FULL)
        one_line(proc)  # before: a DiskFull traceback, exit 1
        assert proc.returncode == 2 and "min_free_mb" in proc.stderr


@pytest.mark.parametrize("args", [
    ["outbox"],
    ["config"],
    ["sync", "status"],
    ["sync", "--once"],
    ["report", "interceptions", "--since", "2026-01-01"],
    ["backup"],
    ["token", "add", "oms", "--role", "admin"],
    ["token", "list"],
    ["user", "list"],
    ["scan", "4006381333931"],
])
@pytest.mark.slow
def test_every_cli_command_answers_in_one_line_on_a_full_disk(data, args):
    one_line(run_cli(*args, data_dir=data, check=False, **FULL))
