"""The unit files, udev rules, sysusers file and settings example: verified, and complete."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from scanedge.edge.config import KEYS
from scanedge.printers.models import models
from tests.support import ROOT as REPO
from tests.support import SCANEDGE
from tests.test_deploy_install import install, make_root

SYSTEMD = REPO / "systemd"
SERVICES = ("scanedge.service", "scanedge-hub.service", "scanedge-backup.service")
ALL_UNITS = (*SERVICES, "scanedge-backup.timer")
HOST_UNITS = Path("/usr/lib/systemd/system")


def directives(unit: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (SYSTEMD / unit).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A tree made by `install.sh --root --hub`, with systemd's own units and a real scanedge
    executable at the ExecStart path (building the real venv needs PyPI, so --no-venv)."""
    root = make_root(tmp_path_factory.mktemp("verify") / "root")
    install(root, "--hub")
    exe = root / "opt/scanedge/venv/bin/scanedge"
    exe.parent.mkdir(parents=True)
    shutil.copy2(SCANEDGE, exe)
    if HOST_UNITS.is_dir():
        shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    return root


def test_systemd_analyze_verify(installed: Path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    if not HOST_UNITS.is_dir():
        pytest.skip(f"{HOST_UNITS} missing: verify needs systemd's own targets")
    proc = subprocess.run(["systemd-analyze", "verify", f"--root={installed}", *ALL_UNITS],
                          capture_output=True, text=True, timeout=120)
    ours = [ln for ln in proc.stderr.splitlines() if "scanedge" in ln]
    assert proc.returncode == 0 and not ours, proc.stderr


def test_verify_catches_a_missing_executable(installed: Path, tmp_path: Path):
    """The check above means something: the same tree without the executable fails."""
    if shutil.which("systemd-analyze") is None or not HOST_UNITS.is_dir():
        pytest.skip("systemd-analyze is not installed")
    broken = tmp_path / "root"
    shutil.copytree(installed, broken, symlinks=True)
    (broken / "opt/scanedge/venv/bin/scanedge").unlink()
    proc = subprocess.run(["systemd-analyze", "verify", f"--root={broken}", "scanedge.service"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "is not executable" in proc.stderr


@pytest.mark.parametrize("unit", ["scanedge.service", "scanedge-hub.service"])
def test_services_are_notify_watchdog_restart_and_hardened(unit: str):
    d = directives(unit)
    for key, value in {
        "Type": "notify", "NotifyAccess": "main", "Restart": "on-failure", "User": "scanedge",
        "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/scanedge", "NoNewPrivileges": "yes",
        "PrivateTmp": "yes", "ProtectHome": "yes", "DevicePolicy": "closed",
        "CapabilityBoundingSet": "", "StandardOutput": "journal", "StandardError": "journal",
    }.items():
        assert d.get(key) == [value], (key, d.get(key))
    assert int(d["StartLimitBurst"][0]) >= 3 and d["StartLimitIntervalSec"]
    assert d["WatchdogSec"] == ["30s"]
    assert d["ExecStart"][0].startswith("/opt/scanedge/venv/bin/scanedge ")
    assert d["ExecStart"][0].endswith("--config /etc/scanedge/scanedge.toml")


def test_edge_reaches_printers_and_gpio_only():
    d = directives("scanedge.service")
    assert d["PrivateDevices"] == ["no"]  # a private /dev would hide them
    allowed = {v.split()[0] for v in d["DeviceAllow"]}
    assert allowed == {"char-usb_device", "char-usb", "char-ttyUSB", "char-ttyACM", "char-ttyAMA",
                       "char-ttyS", "char-gpiochip", "/dev/gpiomem"}
    assert "AF_NETLINK" in d["RestrictAddressFamilies"][0]
    assert directives("scanedge-hub.service")["PrivateDevices"] == ["yes"]
    sysusers = (SYSTEMD / "scanedge.sysusers").read_text()
    members = set(re.findall(r"^m scanedge (\S+)$", sysusers, re.M))
    assert members == {"lp", "dialout", "gpio"}


def test_udev_rules_cover_the_printer_table():
    rules = subprocess.run([sys.executable, str(SYSTEMD / "udev_rules.py")], capture_output=True,
                           text=True, check=True).stdout
    ids = {i for m in models().values() for i in m.usb_ids}
    assert ids, "the printer table has no USB ids"
    for usb_id in ids:
        vendor, product = usb_id.split(":")
        assert f'ATTR{{idVendor}}=="{vendor}", ATTR{{idProduct}}=="{product}", GROUP="lp"' in rules
    assert 'ENV{ID_USB_INTERFACES}=="*:07????:*", GROUP="lp"' in rules


def test_udev_rules_reject_a_bad_id(tmp_path: Path):
    table = tmp_path / "models.toml"
    table.write_text('[x]\nusb_ids = ["04b8-0202"]\n')
    proc = subprocess.run([sys.executable, str(SYSTEMD / "udev_rules.py"), str(table)],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "VVVV:PPPP" in proc.stderr


def test_settings_example_lists_every_key_with_its_default():
    text = (SYSTEMD / "scanedge.toml.example").read_text()
    documented: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^#? ?([a-z0-9_]+) = (\S.*?)(\s+#.*)?$", line)
        if m and m.group(1) in {k.name for k in KEYS}:
            documented.setdefault(m.group(1), m.group(2))
    missing = [k.name for k in KEYS if k.name not in documented]
    assert not missing, f"add these keys to systemd/scanedge.toml.example: {missing}"
    set_by_installer = {"data_dir", "listen"}
    for key in KEYS:
        if callable(key.default) or key.name in set_by_installer:
            continue
        value = tomllib.loads(f"v = {documented[key.name]}")["v"]
        assert value == key.default, f"{key.name}: example says {value!r}, code {key.default!r}"
