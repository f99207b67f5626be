"""systemd/install.sh run for real with --root into a temporary directory."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest

from scanedge.edge.config import load_settings
from tests.support import ROOT as REPO

INSTALL = REPO / "systemd" / "install.sh"
UNITS = ("scanedge.service", "scanedge-backup.service", "scanedge-backup.timer")


def make_root(path: Path) -> Path:
    """An /etc as on Debian: lp and dialout exist, gpio and scanedge do not."""
    (path / "etc").mkdir(parents=True)
    (path / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (path / "etc" / "group").write_text("root:x:0:\nlp:x:7:\ndialout:x:20:\n")
    return path


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["bash", str(INSTALL), "--root", str(root), "--no-venv", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def passwd(root: Path, name: str) -> list[str]:
    lines = [ln.split(":") for ln in (root / "etc/passwd").read_text().splitlines()]
    found = [ln for ln in lines if ln[0] == name]
    assert len(found) == 1, found
    return found[0]


def groups_of(root: Path, user: str) -> set[str]:
    out = set()
    for line in (root / "etc/group").read_text().splitlines():
        name, _, _, members = line.split(":")
        if user in members.split(","):
            out.add(name)
    return out


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_root(tmp_path / "root")


def test_install_into_root(root: Path):
    out = install(root).stdout
    assert "not starting anything" in out and "scanedge hub add-device" in out
    user = passwd(root, "scanedge")
    uid, gid = int(user[2]), int(user[3])
    assert user[5] == "/var/lib/scanedge" and user[6] == "/usr/sbin/nologin"
    assert groups_of(root, "scanedge") == {"lp", "dialout", "gpio"}  # gpio created: Debian has none

    data = root / "var/lib/scanedge"
    assert mode(data) == 0o750 and (data.stat().st_uid, data.stat().st_gid) == (uid, gid)
    etc = root / "etc/scanedge"
    assert mode(etc) == 0o750 and (etc.stat().st_uid, etc.stat().st_gid) == (0, gid)
    config = etc / "scanedge.toml"
    assert mode(config) == 0o640 and (config.stat().st_uid, config.stat().st_gid) == (0, gid)
    assert config.read_text() == (REPO / "systemd/scanedge.toml.example").read_text()
    settings = load_settings(config, env={})
    assert str(settings.data_dir) == "/var/lib/scanedge" and settings.listen == "0.0.0.0:8080"

    for unit in UNITS:
        path = root / "etc/systemd/system" / unit
        assert path.read_bytes() == (REPO / "systemd" / unit).read_bytes()
        assert mode(path) == 0o644
    assert not (root / "etc/systemd/system/scanedge-hub.service").exists()
    wants = root / "etc/systemd/system/multi-user.target.wants/scanedge.service"
    assert wants.is_symlink() and str(wants.readlink()) == "/etc/systemd/system/scanedge.service"
    assert (root / "etc/systemd/system/timers.target.wants/scanedge-backup.timer").is_symlink()

    rules = (root / "etc/udev/rules.d/70-scanedge.rules").read_text()
    assert 'ATTR{idVendor}=="04b8", ATTR{idProduct}=="0202", GROUP="lp"' in rules
    assert 'KERNEL=="gpiochip[0-9]*", GROUP="gpio"' in rules
    journald = (root / "etc/systemd/journald.conf.d/scanedge.conf").read_text()
    assert "SystemMaxUse=" in journald and "Storage=persistent" in journald
    assert (root / "etc/sysusers.d/scanedge.conf").exists()
    assert (root / "opt/scanedge/docs/deploy.md").exists()


def test_second_run_keeps_an_edited_config_and_changes_nothing_else(root: Path):
    install(root)
    config = root / "etc/scanedge/scanedge.toml"
    config.write_text(config.read_text() + '\nstation = "bench-9"\n')
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and "shadow" not in p.name}
    out = install(root).stdout
    assert "settings kept" in out
    assert load_settings(config, env={}).station == "bench-9"
    passwd(root, "scanedge")  # still exactly one user
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and "shadow" not in p.name}
    changed = {str(p.relative_to(root)) for p in before if before[p] != after.get(p)}
    assert changed <= {"etc/passwd-", "etc/group-", "etc/.pwd.lock"}, changed


def test_unedited_config_follows_the_new_example(root: Path):
    install(root)
    config = root / "etc/scanedge/scanedge.toml"
    old_example = "# an older example\ndata_dir = \"/var/lib/scanedge\"\n"
    config.write_text(old_example)
    (root / "etc/scanedge/scanedge.toml.example").write_text(old_example)
    assert "settings updated" in install(root).stdout
    assert config.read_text() == (REPO / "systemd/scanedge.toml.example").read_text()


def test_hub_install_and_uninstall(root: Path):
    out = install(root, "--hub").stdout
    unit = root / "etc/systemd/system/scanedge-hub.service"
    assert unit.exists()
    assert (root / "etc/systemd/system/multi-user.target.wants/scanedge-hub.service").is_symlink()
    settings = load_settings(root / "etc/scanedge/scanedge.toml", env={})
    assert settings.hub_listen == "0.0.0.0:8090"
    assert len(settings.hub_admin_token) == 48 and settings.hub_admin_token in out
    (root / "var/lib/scanedge/edge.db").write_bytes(b"data")

    out = install(root, "--uninstall").stdout
    assert "kept" in out
    for unit in (*UNITS, "scanedge-hub.service"):
        assert not (root / "etc/systemd/system" / unit).exists()
    assert not list((root / "etc/systemd/system").rglob("scanedge*"))  # no dangling symlinks
    for gone in ("etc/udev/rules.d/70-scanedge.rules", "etc/systemd/journald.conf.d/scanedge.conf",
                 "etc/sysusers.d/scanedge.conf", "opt/scanedge"):
        assert not (root / gone).exists(), gone
    assert (root / "var/lib/scanedge/edge.db").read_bytes() == b"data"
    assert (root / "etc/scanedge/scanedge.toml").exists()

    install(root, "--uninstall", "--purge")
    assert not (root / "var/lib/scanedge").exists() and not (root / "etc/scanedge").exists()


def test_bad_option():
    proc = subprocess.run(["bash", str(INSTALL), "--frobnicate"], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2 and "unknown option" in proc.stderr


def test_package_metadata_declares_its_license_as_setuptools_wants_it():
    """A table (`{text = ...}`) made every `pip install` print a deprecation warning three times."""
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["license"] == "Apache-2.0"  # an SPDX expression, not a table
    assert all((REPO / name).is_file() for name in project["license-files"])
    assert "setuptools>=77" in pyproject["build-system"]["requires"]  # the first that reads both
