"""The accept loop of the virtual devices (printer, scale): connections until stopped.

A listening socket with a short timeout would see ``stop`` only at its next timeout; ``wake``
connects to it once so that ``accept()`` returns at once and the loop ends (tests start and stop
these simulators many times).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


def accepted(server: socket.socket, stop: threading.Event) -> Iterator[socket.socket]:
    """Each connection ``server`` accepts, until ``stop`` is set or the socket is closed."""
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        except OSError:
            return
        if stop.is_set():  # wake()'s own connection
            conn.close()
            return
        yield conn


def wake(server: socket.socket) -> None:
    """Make a waiting :func:`accepted` see its ``stop`` now (call after setting it)."""
    with contextlib.suppress(OSError):
        socket.create_connection(server.getsockname()[:2], timeout=1).close()
