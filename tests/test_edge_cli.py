"""The command line as a user runs it: real processes, one data dir."""

import json

import pytest

from tests.support import DEMO_ORDERS, run_cli

GS = "\x1d"


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "var"
    out = run_cli("orders", "import", str(DEMO_ORDERS), data_dir=d)
    assert "4 orders imported (4 new" in out.stdout
    return d


def scan(data_dir, code, station="bench-1"):
    out = run_cli("scan", code, "--station", station, "--json", data_dir=data_dir)
    return json.loads(out.stdout)


@pytest.mark.slow
def test_every_verdict_through_the_cli(data_dir):
    assert scan(data_dir, "4006381333931")["reason"] == "no_open_order"
    assert scan(data_dir, "SO-1001")["verdict"] == "ok"
    assert scan(data_dir, "9787115428028")["verdict"] == "wrong_item"
    assert scan(data_dir, "6901234567892")["verdict"] == "wrong_lot"
    assert scan(data_dir, f"]C1010690123456789210L2301{GS}17200101")["verdict"] == "expired"
    assert scan(data_dir, "4006381333931")["verdict"] == "ok"
    assert scan(data_dir, "4006381333931")["verdict"] == "over_scan"
    assert scan(data_dir, "6901234567891")["verdict"] == "unknown"
    run_cli("freeze", "SO-1001", "--reason", "cancel", data_dir=data_dir)
    frozen = scan(data_dir, "SO-1001")
    assert frozen["verdict"] == "frozen" and frozen["alarm"] is True
    run_cli("unfreeze", "SO-1001", data_dir=data_dir)
    assert scan(data_dir, "SO-1001")["verdict"] == "ok"
    plain = run_cli("scan", "SO-1002", data_dir=data_dir).stdout
    assert plain.startswith("ok: 订单 SO-1002 已打开")


@pytest.mark.slow  # outbox_status: test_edge_store.py; over HTTP: /healthz
def test_outbox_reports_depth_and_oldest(data_dir):
    scan(data_dir, "SO-1001")
    scan(data_dir, "4006381333931")
    out = run_cli("outbox", "--json", data_dir=data_dir)
    status = json.loads(out.stdout)
    assert status["pending"] == 2 and status["oldest_pending_seq"] == 1
    assert "2 pending" in run_cli("outbox", data_dir=data_dir).stdout


def test_import_csv_reports_rejections(tmp_path):
    csv_file = tmp_path / "orders.csv"
    csv_file.write_text(
        "order_id,sku,qty,name,priority,gift_name,gift_qty\n"
        "SO-9,6901234567892,2,保温杯,P0,帆布包,1\n"
        "SO-9,4006381333931,1,荧光笔,,,\n"
        ",123,1,no order id,,,\n"
        "SO-10,6901234567892,zero,bad qty,,,\n"
        "SO-11,6901234567892,1,bad priority,P7,,\n",
        encoding="utf-8")
    d = tmp_path / "var"
    out = run_cli("orders", "import", str(csv_file), data_dir=d).stdout
    assert "rejected row 4: order_id: required" in out
    assert "rejected row 5 (SO-10): SO-10: lines[0].qty" in out
    assert "rejected row 6 (SO-11)" in out and "priority" in out
    assert out.strip().endswith("1 orders imported (1 new, 0 updated, 0 unchanged), 3 rejected")
    again = run_cli("orders", "import", str(csv_file), data_dir=d).stdout
    assert "(0 new, 0 updated, 1 unchanged)" in again
    order = scan(d, "SO-9")["order"]
    assert order["priority"] == "P0" and [(g["name"], g["qty"]) for g in order["gifts"]] == [("帆布包", 1)]
    assert [line["qty"] for line in order["lines"]] == [2, 1]


def test_import_json_stale_version_rejected(tmp_path):
    d = tmp_path / "var"
    f = tmp_path / "o.json"
    f.write_text(json.dumps({"order_id": "SO-5", "version": 3, "lines": [{"sku": "x", "qty": 1}]}))
    run_cli("orders", "import", str(f), data_dir=d)
    f.write_text(json.dumps({"order_id": "SO-5", "version": 2, "lines": [{"sku": "y", "qty": 1}]}))
    out = run_cli("orders", "import", str(f), data_dir=d).stdout
    assert "version 2 is older than the stored 3" in out


@pytest.mark.parametrize("content, fragment", [
    (b"{broken", "not valid JSON"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"a,b\n1,2\n", "CSV header lacks column(s): order_id, qty, sku"),
])
def test_import_bad_files_exit_2_with_one_line(tmp_path, content, fragment):
    f = tmp_path / "bad.json"
    f.write_bytes(content)
    proc = run_cli("orders", "import", str(f), data_dir=tmp_path / "var", check=False)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and fragment in proc.stderr


def test_missing_file_and_bad_arguments(tmp_path):
    proc = run_cli("orders", "import", str(tmp_path / "none.json"), data_dir=tmp_path, check=False)
    assert proc.returncode == 2 and "cannot read" in proc.stderr
    proc = run_cli("freeze", "SO-1", "--reason", "whim", data_dir=tmp_path, check=False)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


@pytest.mark.parametrize(("argv", "prog"), [
    ((), "scanedge"),
    (("nope",), "scanedge"),
    (("freeze", "SO-1"), "scanedge freeze"),
    (("backup", "--keep", "x"), "scanedge backup"),
    (("backup", "--bogus"), "scanedge backup"),
    (("hub", "add-device", "d1", "--bogus"), "scanedge hub add-device"),
    (("orders",), "scanedge orders"),
    (("sync", "nonsense"), "scanedge sync"),
])
def test_argument_errors_are_one_line_with_a_hint(argv, prog, capsys):
    from scanedge.edge.cli import main

    with pytest.raises(SystemExit) as exited:
        main(list(argv))
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and out == ""
    assert len(err.splitlines()) == 1, err  # no usage block
    assert err.startswith(f"{prog}: error: ") and err.endswith(f"(see {prog} --help)\n"), err
