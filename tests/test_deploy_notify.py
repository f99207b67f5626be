"""sd_notify from real processes: READY after the port listens, WATCHDOG only while healthy."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from scanedge.edge import sdnotify
from tests.support import SCANEDGE, cli_env, free_port


class NotifySocket:
    """What systemd listens on: a unix datagram socket; collects the messages."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.address = path if path.startswith("/") else "@" + path[1:]

    def recv(self, timeout: float) -> tuple[float, dict[str, str]] | None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except TimeoutError:
            return None
        fields = dict(line.split("=", 1) for line in data.decode().splitlines())
        return time.monotonic(), fields

    def collect(self, seconds: float) -> list[dict[str, str]]:
        out, end = [], time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            got = self.recv(left)
            if got:
                out.append(got[1])
        return out

    def wait_for(self, key: str, timeout: float = 20) -> tuple[float, dict[str, str]]:
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            got = self.recv(left)
            if got and key in got[1]:
                return got
        raise AssertionError(f"no {key} within {timeout} s")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path):
    s = NotifySocket(str(tmp_path / "notify"))
    yield s
    s.close()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([SCANEDGE, *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(5)


@pytest.mark.slow
def test_serve_ready_after_listen_then_watchdog_then_stopping(tmp_path: Path, notify_socket):
    port = free_port()
    env = cli_env(tmp_path / "var", SCANEDGE_LISTEN=f"127.0.0.1:{port}",
                  NOTIFY_SOCKET=notify_socket.address, WATCHDOG_USEC="600000")
    proc = _start(["serve"], env)
    try:
        _, ready = notify_socket.wait_for("READY")
        assert ready["READY"] == "1" and ready["MAINPID"] == str(proc.pid)
        assert _port_open(port), "READY=1 came before the port listened"
        assert "serving on" in ready["STATUS"]
        # WATCHDOG_USEC 0.6 s -> a ping every 0.3 s while healthy
        pings = [m for m in notify_socket.collect(1.6) if m.get("WATCHDOG") == "1"]
        assert len(pings) >= 4, pings
        assert _stop(proc) == 0  # SIGTERM is a clean stop, not a failure for Restart=on-failure
        _, last = notify_socket.wait_for("STOPPING", timeout=5)
        assert last["STOPPING"] == "1"
    finally:
        _stop(proc)


@pytest.mark.slow
def test_watchdog_withholds_pings_while_the_store_cannot_commit(tmp_path: Path, notify_socket):
    """A service whose writer is stuck must not be kept alive by its watchdog thread."""
    port = free_port()
    data = tmp_path / "var"
    env = cli_env(data, SCANEDGE_LISTEN=f"127.0.0.1:{port}",
                  NOTIFY_SOCKET=notify_socket.address, WATCHDOG_USEC="600000")
    proc = _start(["serve"], env)
    blocker = None
    try:
        notify_socket.wait_for("READY")
        notify_socket.wait_for("WATCHDOG")
        # Another connection holds the write lock: the service's writer waits on it (as it would
        # on a hung disk); reads still work (WAL), so only the commit probe can tell.
        blocker = sqlite3.connect(data / "edge.db", isolation_level=None, timeout=5)
        blocker.execute("BEGIN IMMEDIATE")
        notify_socket.collect(0.8)  # a probe already past the lock may still ping once
        held = notify_socket.collect(2.5)
        assert not [m for m in held if m.get("WATCHDOG")], held
        blocker.execute("ROLLBACK")
        _, again = notify_socket.wait_for("WATCHDOG", timeout=10)
        assert again["WATCHDOG"] == "1"
    finally:
        if blocker is not None:
            blocker.close()
        _stop(proc)


@pytest.mark.slow
def test_hub_notifies_too(tmp_path: Path, notify_socket):
    port = free_port()
    env = cli_env(tmp_path / "var", SCANEDGE_HUB_LISTEN=f"127.0.0.1:{port}",
                  SCANEDGE_HUB_ADMIN_TOKEN="t" * 32, NOTIFY_SOCKET=notify_socket.address,
                  WATCHDOG_USEC="600000")
    proc = _start(["hub"], env)
    try:
        notify_socket.wait_for("READY")
        assert _port_open(port)
        notify_socket.wait_for("WATCHDOG", timeout=5)
        assert _stop(proc) == 0
    finally:
        _stop(proc)


def test_abstract_socket_and_no_socket(monkeypatch):
    name = f"\0scanedge-test-{os.getpid()}"
    s = NotifySocket(name)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", s.address)
        assert s.address.startswith("@")
        assert sdnotify.notify("STATUS=hello")
        assert s.recv(2)[1] == {"STATUS": "hello"}
    finally:
        s.close()
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert sdnotify.notify("READY=1") is False  # not under systemd: a no-op


def test_watchdog_interval_is_half_and_respects_watchdog_pid(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert sdnotify.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert sdnotify.watchdog_interval() == 15.0
    monkeypatch.delenv("WATCHDOG_USEC")
    assert sdnotify.watchdog_interval() is None
