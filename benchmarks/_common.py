"""What the benchmark scripts share: a free loopback port, waiting for a server to answer.

The scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path`` and they
import this module as ``_common``.
"""

from __future__ import annotations

import socket
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 20) -> None:
    """Return once ``url`` answers; exit with one line if it does not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server at {url} did not start")
