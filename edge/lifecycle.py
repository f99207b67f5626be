"""Running an ASGI app on uvicorn as a systemd service: readiness, watchdog, clean stop.

Shared by ``scanedge serve`` and ``scanedge hub``. The socket is bound and listening before
READY=1 is sent, so systemd -- and whatever is ordered after the unit -- sees the service as
started only when the port takes connections. SIGTERM ends the loop the same way Ctrl-C does, so
the stores close cleanly and STOPPING=1 is sent.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from scanedge.edge import sdnotify

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


def _http_protocol() -> Any:
    """httptools (a dependency) with deadlines for slow clients (edge/web/http_guard.py)."""
    from scanedge.edge.web.http_guard import guarded_protocol

    return guarded_protocol()


def _uvicorn_config(app: Any, **options: Any) -> Any:
    import uvicorn

    def have(module: str) -> bool:
        import importlib.util

        return importlib.util.find_spec(module) is not None

    settings: dict[str, Any] = {
        "loop": "uvloop" if have("uvloop") else "asyncio",
        "http": _http_protocol() if have("httptools") else "h11",
        "lifespan": "on", "log_level": "warning", "access_log": False,
        "server_header": False, "proxy_headers": False,
        "timeout_keep_alive": 30,  # the devices' push/pull reuse connections
        "timeout_graceful_shutdown": 3,  # open streams are cut after this on SIGTERM
        "backlog": 4096,
    }
    settings.update(options)
    return uvicorn.Config(app, **settings)


def bind_socket(host: str, port: int, backlog: int = 4096) -> socket.socket:
    """A listening TCP socket (IPv6 when the host is one); raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def _server(config: Any, on_exit: Callable[[], None] | None) -> Any:
    """uvicorn's Server, telling the app at once when a stop signal comes, so that open streams
    end then instead of holding the stop for the graceful-shutdown timeout."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            if on_exit is not None:
                on_exit()

    return Server(config)


def serve_asgi(app: Any, *, command: str, listen: str, check: Callable[[], str | None],
               ready_status: str, banner: str, on_exit: Callable[[], None] | None = None,
               **uvicorn_options: Any) -> int:
    """Serve an ASGI app on uvicorn until SIGTERM/SIGINT: the edge's and the hub's one way to run.

    The socket is bound and listening before the loop starts, READY=1 is sent once the server
    accepts; the watchdog pings only while ``/healthz`` answers (event loop and the WSGI pool)
    and ``check`` (the service's own store) passes. ``on_exit`` is called (in the signal
    handler, thread-safe work only) when SIGTERM/SIGINT arrives. Returns the exit status: 2 with
    one line on stderr when the address cannot be bound.
    """
    import asyncio

    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        sock = bind_socket(host, int(port))
    except OSError as e:
        print(f"scanedge {command}: cannot listen on {listen}: {e.strerror or e}", file=sys.stderr)
        return 2
    print(banner, file=sys.stderr, flush=True)
    bound_host, bound_port = sock.getsockname()[:2]
    server = _server(_uvicorn_config(app, **uvicorn_options), on_exit)
    url = probe_url(bound_host, bound_port)
    interval = sdnotify.watchdog_interval()
    if interval is not None and not faulthandler.is_enabled():
        # systemd kills a hung service with SIGABRT: dump every thread's stack into the journal
        # first, so the hang can be diagnosed after the restart.
        faulthandler.enable(file=sys.stderr, all_threads=True)
    dog = None

    async def announce_ready() -> None:
        nonlocal dog
        while not server.started and not server.should_exit:
            await asyncio.sleep(0.02)
        if server.started:
            sdnotify.ready(ready_status)
            if interval is not None:
                dog = sdnotify.Watchdog(all_of(lambda: http_check(url, timeout=10), check),
                                        interval, healthy_status=ready_status).start()
                log.info("watchdog: pinging every %.1f s while healthy", interval)

    async def main() -> None:
        ready = asyncio.get_running_loop().create_task(announce_ready())
        try:
            await server.serve(sockets=[sock])
        finally:
            ready.cancel()

    # uvicorn catches SIGTERM/SIGINT itself, shuts down, then re-raises the signal to the
    # handlers in place before it: ours turns that into a clean exit.
    try:
        with _sigterm_ends_loop():
            runner = asyncio.Runner(loop_factory=server.config.get_loop_factory())
            with runner:
                runner.run(main())
    except (SystemExit, KeyboardInterrupt):
        pass
    finally:
        sdnotify.stopping()
        if dog is not None:
            dog.stop()
        sock.close()
    return 0


class BackgroundServer:
    """An ASGI app on uvicorn in a daemon thread (the demo's hub; tests' in-process servers)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0,
                 **uvicorn_options: Any) -> None:
        import uvicorn

        self.sock = bind_socket(host, port)
        self.host, self.port = self.sock.getsockname()[:2]
        self.url = f"http://{host}:{self.port}"
        self.server = uvicorn.Server(_uvicorn_config(app, **uvicorn_options))
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]},
                                        name=f"asgi-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self.sock.close()
