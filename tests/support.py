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
    env.update({"SCANEDGE_DATA_DIR": str(data_dir), "SCANEDGE_DEVICE_ID": "test-dev", **extra})
    return env


def run_cli(*args: str, data_dir: Path, check: bool = True, **env: str):
    proc = subprocess.run([SCANEDGE, *args], capture_output=True, text=True, timeout=120,
                          env=cli_env(data_dir, **env))
    if check and proc.returncode != 0:
        raise AssertionError(f"scanedge {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


class ServerProcess:
    """A `scanedge` sub-command serving HTTP as a real process, healthy when /healthz answers."""

    command: tuple[str, ...] = ()

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.env = env
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0):
        self.proc = subprocess.Popen([SCANEDGE, *self.command], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        pause = 0.005  # doubling up to 50 ms (wait_until's)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.command[0]} exited: {self.proc.stderr.read().decode()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
        raise RuntimeError(f"{self.command[0]} did not become healthy")

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


class EdgeServer(ServerProcess):
    """``scanedge serve`` on a free loopback port."""

    command = ("serve",)

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.data_dir = data_dir
        port = free_port()
        super().__init__(cli_env(data_dir, SCANEDGE_LISTEN=f"127.0.0.1:{port}", **env), port)

    def start(self, timeout: float = 20.0):
        super().start(timeout)
        if "--demo" in self.command:
            # the demo's virtual scale (docs/scale.md): its first steady reading comes a few
            # frames after the start, and no label prints before it (weight_missing), as a
            # packer waits for the reading too
            def steady() -> bool:
                with urllib.request.urlopen(self.url + "/api/v1/scale", timeout=5) as r:
                    return json.loads(r.read())["weight_kg"] is not None

            wait_until(steady, timeout=timeout, what="the demo scale's first steady weight")
        return self

    def post(self, path: str, body: dict, timeout: float = 10) -> tuple[int, dict]:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())




class HubServer(ServerProcess):
    """``scanedge hub``; ``database`` is a SQLite path or a postgresql:// URL."""

    ADMIN = "test-admin-token"
    command = ("hub",)

    def __init__(self, data_dir: Path, database: str, **env: str) -> None:
        self.data_dir = data_dir
        self.database = database
        port = free_port()
        super().__init__(cli_env(data_dir, SCANEDGE_HUB_LISTEN=f"127.0.0.1:{port}",
                                 SCANEDGE_HUB_DATABASE=database,
                                 SCANEDGE_HUB_ADMIN_TOKEN=self.ADMIN, **env), port)

    def add_device(self, device_id: str) -> str:
        """Register a device; returns its token (the enrolment's other parts: ``enroll``)."""
        return self.enroll(device_id)["hub_token"]

    def enroll(self, device_id: str) -> dict[str, str]:
        """``scanedge hub add-device``'s enrolment string, decoded (hub_url, hub_token,
        hub_public_key, device_id, site); ``public_key`` keeps the hub's key."""
        from scanedge.sync.enroll import parse_enrollment

        out = subprocess.run([SCANEDGE, "hub", "add-device", device_id], env=self.env,
                             capture_output=True, text=True, timeout=60, check=True)
        values = parse_enrollment(out.stdout.strip())
        self.public_key = values["hub_public_key"]
        return values

    def admin(self, method: str, path: str, body: dict | None = None) -> dict:
        req = urllib.request.Request(
            self.url + path, method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.ADMIN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def events(self, **query: str) -> list[dict]:
        out, after = [], 0
        while True:
            qs = "&".join(f"{k}={v}" for k, v in {**query, "after": after, "limit": 5000}.items())
            page = self.admin("GET", f"/api/v1/events?{qs}")["events"]
            out.extend(page)
            if len(page) < 5000:
                return out
            after = page[-1]["hub_seq"]


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"):
    """Poll ``predicate`` until it is true; the pause starts at 5 ms and doubles up to
    ``interval``, so a condition met at once costs no 50 ms and a long wait no CPU."""
    deadline = time.monotonic() + timeout
    pause = min(0.005, interval)
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(pause)
        pause = min(pause * 2, interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class WebhookReceiver:
    """A webhook endpoint on 127.0.0.1 that keeps every JSON body POSTed to it; it answers with
    the statuses in ``answers`` first, then 204."""

    def __init__(self, answers: tuple[int, ...] = ()) -> None:
        import http.server
        import threading

        self.got: list[dict] = []
        pending = list(answers)
        got = self.got

        class Hook(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(pending.pop(0) if pending else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"
        # a short poll interval: close() waits for it (0.5 s by default)
        threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
