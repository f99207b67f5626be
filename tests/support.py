"""Test helpers: the installed CLI, real server processes on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SCANEDGE = str(Path(sys.executable).with_name("scanedge"))
DEMO_ORDERS = ROOT / "edge" / "demo" / "orders.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANEDGE_")}
    env.update(SCANEDGE_DATA_DIR=str(data_dir), SCANEDGE_DEVICE_ID="test-dev", **extra)
    return env


def run_cli(*args: str, data_dir: Path, check: bool = True, **env: str):
    proc = subprocess.run([SCANEDGE, *args], capture_output=True, text=True, timeout=120,
                          env=cli_env(data_dir, **env))
    if check and proc.returncode != 0:
        raise AssertionError(f"scanedge {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


class EdgeServer:
    """``scanedge serve`` as a real process on a free loopback port."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = cli_env(data_dir, SCANEDGE_LISTEN=f"127.0.0.1:{self.port}", **env)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> EdgeServer:
        self.proc = subprocess.Popen([SCANEDGE, "serve"], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not become healthy")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def post(self, path: str, body: dict, timeout: float = 10) -> tuple[int, dict]:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


