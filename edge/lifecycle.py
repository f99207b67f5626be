"""Running a waitress server as a systemd service: readiness, watchdog, clean stop.

Shared by ``scanedge serve`` and ``scanedge hub``. The server is created (socket bound and
listening) before READY=1 is sent, so systemd -- and whatever is ordered after the unit -- sees the
service as started only when the port takes connections. SIGTERM ends the loop the same way
Ctrl-C does, so the stores close cleanly and STOPPING=1 is sent.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from edge import sdnotify

log = logging.getLogger(__name__)


def probe_url(host: str, port: int, path: str = "/healthz") -> str:
    """Where the service can reach itself: the wildcard addresses are reached on loopback."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{path}"


def http_check(url: str, timeout: float) -> str | None:
    """None when ``url`` answers 200 within ``timeout``: the accept loop, a worker thread and
    the request path all work (a thread that is merely alive proves none of that)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return None if r.status == 200 else f"{url} answered {r.status}"
    except Exception as e:  # timeouts, refused, HTTP 5xx: all mean "not healthy"
        return f"{url}: {e}"


def all_of(*checks: Callable[[], str | None]) -> Callable[[], str | None]:
    def check() -> str | None:
        for c in checks:
            problem = c()
            if problem:
                return problem
        return None

    return check


@contextmanager
def _sigterm_ends_loop() -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        # The first TERM stops the loop; any further one is left to systemd's SIGKILL timeout
        # so that a second signal cannot interrupt the stores' closing.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(0)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_server(server: Any, *, health: Callable[[], str | None], ready_status: str) -> None:
    """Run a ``waitress.create_server(...)`` server in this (main) thread until SIGTERM/SIGINT."""
    interval = sdnotify.watchdog_interval()
    if interval is not None and not faulthandler.is_enabled():
        # systemd kills a hung service with SIGABRT: dump every thread's stack into the journal
        # first, so the hang can be diagnosed after the restart.
        faulthandler.enable(file=sys.stderr, all_threads=True)
    dog = None
    with _sigterm_ends_loop():
        sdnotify.ready(ready_status)
        if interval is not None:
            dog = sdnotify.Watchdog(health, interval, healthy_status=ready_status).start()
            log.info("watchdog: pinging every %.1f s while healthy", interval)
        try:
            server.run()  # returns after SystemExit/KeyboardInterrupt (it shuts its threads)
        finally:
            sdnotify.stopping()
            if dog is not None:
                dog.stop()
            server.close()


def serve_wsgi(app: Any, *, command: str, listen: str, threads: int,
               check: Callable[[], str | None], ready_status: str, banner: str,
               **waitress_options: Any) -> int:
    """Serve a WSGI app on waitress until stopped: the edge's and the hub's one way to run.

    Ready once the socket listens; the watchdog pings only while ``/healthz`` answers (accept
    loop, a worker thread) and ``check`` (the service's own store) passes. Returns the exit
    status: 2 with one line on stderr when the address cannot be bound.
    """
    import waitress

    host, _, port = listen.rpartition(":")
    logging.getLogger("waitress").setLevel(logging.WARNING)
    try:
        server = waitress.create_server(app, host=host.strip("[]"), port=int(port),
                                        threads=threads, **waitress_options)
    except OSError as e:
        print(f"scanedge {command}: cannot listen on {listen}: {e.strerror or e}",
              file=sys.stderr)
        return 2
    print(banner, file=sys.stderr, flush=True)
    url = probe_url(server.effective_host, server.effective_port)
    run_server(server, health=all_of(lambda: http_check(url, timeout=10), check),
               ready_status=ready_status)
    return 0
