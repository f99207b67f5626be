"""Enrolment instead of trust on first use (issue 13, item 2).

``scanedge hub add-device ID`` prints one enrolment string (hub URL, token, hub public key,
device id); ``scanedge enroll STRING`` writes it into the device's config file, keeping every
other key and comment; ``systemd/install.sh --enroll STRING`` does the same at install time.
Then the device trusts the hub's commands, and only those. Real CLI processes, a real hub process
and a real ``scanedge serve`` on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import urllib.request

import pytest

from scanedge.edge.config import load_settings
from scanedge.sync import enroll as enroll_mod
from scanedge.sync.enroll import EnrollError, edit_config, make_enrollment, parse_enrollment
from scanedge.sync.hub.storage import open_storage
from scanedge.sync.signing import HubSigner
from tests.support import ROOT, SCANEDGE, EdgeServer, HubServer, run_cli, wait_until

KEY = HubSigner.generate().public_b64
TOKEN = "A" * 43
CONFIG = """\
# my bench settings
data_dir = "/var/lib/scanedge"   # the card
listen = "0.0.0.0:8080"

# --- the hub ---
# hub_url = ""                   # the hub, e.g. "http://hub.example.lan:8090"; empty = offline
hub_url = "http://old-hub:8090"  # the old one
station = "bench-3"
"""


def hub_env(tmp_path, **extra: str) -> dict[str, str]:
    return {"SCANEDGE_HUB_DATABASE": str(tmp_path / "hub" / "hub.db"), **extra}


def test_add_device_prints_one_enrolment_string(tmp_path):
    out = run_cli("hub", "add-device", "pi-7", "--site", "shanghai", data_dir=tmp_path,
                  **hub_env(tmp_path, SCANEDGE_HUB_LISTEN="0.0.0.0:8090"))
    lines = out.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scanedge-enroll-1:")
    values = parse_enrollment(lines[0])
    storage = open_storage(str(tmp_path / "hub" / "hub.db"))
    try:
        assert values["hub_public_key"] == storage.signer().public_b64
        assert storage.device_for_token(values["hub_token"]).device_id == "pi-7"
    finally:
        storage.close()
    assert (values["device_id"], values["site"]) == ("pi-7", "shanghai")
    # an any-address hub_listen: the devices are told this machine's name, and stderr says so
    import socket

    assert values["hub_url"] == f"http://{socket.gethostname()}:8090"
    assert "--url" in out.stderr and values["hub_token"] not in out.stderr
    url = run_cli("hub", "add-device", "pi-8", "--url", "https://hub.example.lan/", data_dir=tmp_path,
                  **hub_env(tmp_path)).stdout
    assert parse_enrollment(url)["hub_url"] == "https://hub.example.lan"
    bad = run_cli("hub", "add-device", "pi-9", "--url", "hub:8090", data_dir=tmp_path,
                  check=False, **hub_env(tmp_path))
    assert bad.returncode == 2 and "--url" in bad.stderr and "Traceback" not in bad.stderr


def test_enroll_writes_the_config_keeping_the_rest(tmp_path):
    config = tmp_path / "scanedge.toml"
    config.write_text(CONFIG)
    config.chmod(0o640)
    string = make_enrollment("http://hub.lan:8090", "pi-7", TOKEN, KEY, "shanghai")
    out = run_cli("enroll", "--config", str(config), string, data_dir=tmp_path)
    assert "pi-7" in out.stdout and "restart" in out.stdout
    text = config.read_text()
    assert text.startswith(CONFIG.split("hub_url = \"http://old-hub")[0])  # comments kept
    assert 'hub_url = "http://hub.lan:8090"  # the old one\n' in text  # changed in place
    assert text.count("hub_url =") == 2  # the commented example and the one set
    assert 'station = "bench-3"' in text and "# my bench settings" in text
    settings = load_settings(config, env={})
    assert (settings.hub_url, settings.hub_token, settings.hub_public_key, settings.device_id,
            settings.station, settings.listen) == ("http://hub.lan:8090", TOKEN, KEY, "pi-7",
                                                   "bench-3", "0.0.0.0:8080")
    assert stat.S_IMODE(config.stat().st_mode) == 0o640  # a file with tokens stays private
    # enrolling again (a re-issued token) changes the lines in place, adds nothing
    again = make_enrollment("http://hub.lan:8090", "pi-7", "B" * 43, KEY, "shanghai")
    run_cli("enroll", "--config", str(config), again, data_dir=tmp_path)
    assert config.read_text() == text.replace(TOKEN, "B" * 43)


def test_enroll_refuses_bad_strings_in_one_line_and_changes_nothing(tmp_path):
    config = tmp_path / "scanedge.toml"
    config.write_text(CONFIG)
    good = make_enrollment("http://hub.lan:8090", "pi-7", TOKEN, KEY, "default")
    for bad, says in ((good[:-12], "damaged"), ("hello", "not an enrolment string"),
                      (good.replace("scanedge-enroll-1:", "scanedge-enroll-1:x"), "damaged")):
        proc = run_cli("enroll", "--config", str(config), bad, data_dir=tmp_path, check=False)
        assert proc.returncode == 2 and says in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert config.read_text() == CONFIG
    broken = tmp_path / "broken.toml"
    broken.write_text("listen = \n")
    proc = run_cli("enroll", "--config", str(broken), good, data_dir=tmp_path, check=False)
    assert proc.returncode == 2 and "not valid TOML" in proc.stderr
    with pytest.raises(EnrollError, match="hub_public_key"):
        make_enrollment("http://hub.lan:8090", "pi-7", TOKEN, "not-a-key", "default")


def test_which_config_file(tmp_path, monkeypatch):
    string = make_enrollment("http://hub.lan:8090", "pi-7", TOKEN, KEY, "default")
    monkeypatch.setattr(enroll_mod, "DEFAULT_CONFIG", tmp_path / "etc" / "scanedge.toml")
    with pytest.raises(EnrollError, match="--config"):
        enroll_mod.enroll(string, None, env={})
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "scanedge.toml").write_text(CONFIG)  # as install.sh leaves it
    lines = enroll_mod.enroll(string, None, env={"SCANEDGE_HUB_URL": "http://x:1"})
    assert any("SCANEDGE_HUB_URL" in line and "win" in line for line in lines)
    assert load_settings(tmp_path / "etc" / "scanedge.toml", env={}).device_id == "pi-7"
    fresh = tmp_path / "new" / "scanedge.toml"  # --config naming a file not there yet
    enroll_mod.enroll(string, str(fresh), env={})
    assert load_settings(fresh, env={}).hub_public_key == KEY
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600


def test_edit_config_refuses_what_it_cannot_edit_safely():
    values = {"hub_url": "http://h:1", "hub_token": TOKEN, "hub_public_key": KEY,
              "device_id": "d"}
    tricky = 'hub_token = """\nmulti\nline"""\n'
    with pytest.raises(EnrollError, match="by hand"):
        edit_config(tricky, values, "now")
    text = edit_config("listen = \"127.0.0.1:8080\"", values, "now")  # no final newline
    assert text.startswith('listen = "127.0.0.1:8080"\n') and 'device_id = "d"\n' in text


@pytest.mark.skipif(os.geteuid() != 0, reason="install.sh runs as root")
def test_install_sh_enrolls(tmp_path):
    from tests.test_deploy_install import make_root

    root = make_root(tmp_path / "root")
    string = make_enrollment("http://hub.lan:8090", "pi-7", TOKEN, KEY, "default")
    install = [str(ROOT / "systemd" / "install.sh"), "--root", str(root), "--no-venv"]
    proc = subprocess.run(["bash", *install, "--enroll", string], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Enrolled:" in proc.stdout and "http://hub.lan:8090" in proc.stdout
    config = root / "etc" / "scanedge" / "scanedge.toml"
    settings = load_settings(config, env={})
    assert (settings.hub_url, settings.hub_token, settings.hub_public_key,
            settings.device_id) == ("http://hub.lan:8090", TOKEN, KEY, "pi-7")
    assert str(settings.data_dir) == "/var/lib/scanedge"  # the example's keys are all there
    st = config.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid == 0
    before = config.read_text()
    proc = subprocess.run(["bash", *install, "--enroll", "garbage"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "--enroll failed" in proc.stderr
    assert config.read_text() == before
    plain = subprocess.run(["bash", *install], capture_output=True, text=True, timeout=120)
    assert "--enroll" in plain.stdout and "scanedge hub add-device" in plain.stdout


@pytest.mark.slow
def test_an_enrolled_device_obeys_its_hub(tmp_path):
    """End to end: hub process, add-device, enroll into a config file, `scanedge serve
    --config`: the hub's freeze is applied, and /healthz says the freeze status is known."""
    hub = HubServer(tmp_path / "hub", str(tmp_path / "hub" / "hub.db"))
    string = subprocess.run([SCANEDGE, "hub", "add-device", "bench-pi"], env=hub.env,
                            capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    hub.start()
    config = tmp_path / "edge.toml"
    config.write_text(f'data_dir = "{tmp_path / "edge"}"\nprinter = "dummy://"\n')
    run_cli("enroll", "--config", str(config), string, data_dir=tmp_path)
    run_cli("orders", "import", "--demo", data_dir=tmp_path / "edge",
            SCANEDGE_DEVICE_ID="bench-pi")
    edge = EdgeServer(tmp_path / "edge")
    edge.command = ("serve", "--config", str(config))
    for key in ("SCANEDGE_DATA_DIR", "SCANEDGE_DEVICE_ID"):  # only the file speaks
        edge.env.pop(key, None)
    try:
        edge.start()
        order = json.loads((ROOT / "edge" / "demo" / "orders.json").read_text())[0]
        hub.admin("PUT", f"/api/v1/orders/{order['order_id']}", order)
        hub.admin("POST", f"/api/v1/orders/{order['order_id']}/freeze", {"reason": "cancel"})

        def freeze_state() -> dict:
            with urllib.request.urlopen(edge.url + "/healthz", timeout=5) as r:
                return json.loads(r.read())["freeze"]

        wait_until(lambda: freeze_state()["freeze_status"] == "known", timeout=30,
                   what="the freeze status known")
        db = tmp_path / "edge" / "edge.db"
        import sqlite3

        def frozen() -> bool:
            conn = sqlite3.connect(db)
            try:
                return conn.execute("SELECT 1 FROM freezes WHERE order_id = ?",
                                    [order["order_id"]]).fetchone() is not None
            finally:
                conn.close()

        wait_until(frozen, timeout=30, what="the hub's freeze applied")
        conn = sqlite3.connect(db)
        pinned = dict(conn.execute("SELECT key, value FROM sync_state WHERE key LIKE 'hub_key%'"))
        conn.close()
        assert pinned["hub_key_source"] == "config"
    finally:
        edge.stop()
        hub.stop()
