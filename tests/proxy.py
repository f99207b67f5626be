"""A TCP proxy for fault tests: pass, delay, blackhole (swallow bytes, never answer) or reset."""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time


class FaultyProxy:
    MODES = ("pass", "delay", "blackhole", "reset")

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.mode = "pass"
        self.delay_s = 0.2
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def set_mode(self, mode: str, *, cut_existing: bool = True) -> None:
        assert mode in self.MODES
        self.mode = mode
        if cut_existing and mode in ("blackhole", "reset"):
            self._reset_all()

    def close(self) -> None:
        self._stop.set()
        self._listener.close()
        self._reset_all()

    def _reset_all(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            _rst(s)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            mode = self.mode
            if mode == "reset":
                _rst(client)
                continue
            if mode == "blackhole":
                with self._lock:
                    self._conns.append(client)  # read nothing, answer nothing
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _rst(client)
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([a, b], [], [], 0.5)
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        raise OSError("closed")
                    if self.mode == "delay":
                        time.sleep(self.delay_s)
                    elif self.mode == "blackhole":
                        continue
                    peers[s].sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for s in (a, b):
                with contextlib.suppress(OSError):
                    s.close()


def _rst(s: socket.socket) -> None:
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    except OSError:
        pass
