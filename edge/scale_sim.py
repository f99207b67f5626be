"""A virtual shipping scale for development, tests and the demo (``scanedge scale-sim``).

It speaks either protocol of edge/domain/scale.py: ``continuous`` streams a line every
``interval`` seconds (``ST,GS,+   1.234kg``), ``sics`` answers MT-SICS requests (``SI``, ``S``,
``SIR`` for a stream of its own) with ``S S      1.234 kg``. It is reached over a TCP port or a
pseudo-terminal (``pty=True``: a real /dev/pts/N a serial reader opens like /dev/ttyUSB0). Its
weight and mode can be changed while it runs:

- ``ok``: the weight, stable;
- ``unstable``: the weight, moving (``US`` / ``S D``): a parcel still being put down;
- ``overload``: beyond the range (``OL`` / ``S +``);
- ``disconnect``: the cable pulled: TCP connections are cut and new ones closed at once; a
  pseudo-terminal falls silent (its path must stay the same for the reader to come back).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import socket
import struct
import termios
import threading
import time
import tty

from scanedge.edge.listener import accepted, wake

MODES = ("ok", "unstable", "overload", "disconnect")
PROTOCOLS = ("continuous", "sics")
UNITS = {"kg": 1.0, "g": 1000.0, "lb": 1 / 0.45359237}
WOBBLE = (0.013, -0.011, 0.021, -0.017)  # an unstable parcel: never the same value twice in a row
BACKLOG_BYTES = 256  # a pseudo-terminal nobody reads keeps only this much (no stale readings)


class VirtualScale:
    def __init__(self, *, protocol: str = "continuous", weight_kg: float = 0.0, mode: str = "ok",
                 unit: str = "kg", pty: bool = False, host: str = "127.0.0.1", port: int = 0,
                 interval: float = 0.1) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol {protocol!r}: one of {', '.join(PROTOCOLS)}")
        if unit not in UNITS:
            raise ValueError(f"unit {unit!r}: one of {', '.join(UNITS)}")
        self.protocol, self.unit, self.interval = protocol, unit, interval
        self.weight_kg = weight_kg
        self.set_mode(mode)
        self.frames_sent = 0
        self.connections = 0
        self._counter = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self.pty = pty
        if pty:
            self._master, self._slave = os.openpty()
            tty.setraw(self._slave)  # no echo, no line editing: bytes as a serial line carries them
            self.device = os.ttyname(self._slave)
            self._server = None
        else:
            self._server = socket.create_server((host, port))
            self._server.settimeout(0.2)
            self.host, self.port = self._server.getsockname()[:2]

    # --- control ---------------------------------------------------------------------------------

    @property
    def address(self) -> str:
        """The ``scale`` setting that reads this scale."""
        if self.pty:
            return f"serial://{self.device}?baud=9600&protocol={self.protocol}"
        return f"tcp://{self.host}:{self.port}?protocol={self.protocol}"

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        self.mode = mode
        if mode == "disconnect":
            with self._lock:
                conns, self._conns = self._conns, []
            for conn in conns:  # RST, as a cable pulled out of a serial server does
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()

    def set_weight(self, weight_kg: float) -> None:
        self.weight_kg = weight_kg

    def start(self) -> VirtualScale:
        target = self._serve_pty if self.pty else self._serve_tcp
        t = threading.Thread(target=target, name="scale-sim", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            wake(self._server)
        for t in self._threads:
            t.join(timeout=2)
        if self.pty:
            os.close(self._master)
            os.close(self._slave)
        else:
            assert self._server is not None
            self._server.close()
            for conn in self._conns:
                with contextlib.suppress(OSError):
                    conn.close()

    def __enter__(self) -> VirtualScale:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what it says ------------------------------------------------------------------------------

    def frame(self) -> bytes:
        """The line the scale sends now, in its protocol."""
        self._counter += 1
        weight = self.weight_kg
        if self.mode == "unstable":
            weight += WOBBLE[self._counter % len(WOBBLE)]
        value = weight * UNITS[self.unit]
        decimals = {"kg": 3, "g": 0, "lb": 2}[self.unit]
        sign = "-" if value < 0 else "+"
        if self.protocol == "sics":
            if self.mode == "overload":
                return b"S +\r\n"
            flag = "D" if self.mode == "unstable" else "S"
            return f"S {flag} {value:10.{decimals}f} {self.unit}\r\n".encode()
        if self.mode == "overload":
            return f"OL,GS,+{'--.---':>8}{self.unit}\r\n".encode()
        state = "US" if self.mode == "unstable" else "ST"
        return f"{state},GS,{sign}{abs(value):8.{decimals}f}{self.unit}\r\n".encode()

    def _answer(self, command: bytes) -> bytes | None:
        """MT-SICS: S (stable weight), SI (weight now), SIR (a stream: answered by the loop)."""
        word = command.strip().upper()
        if word in (b"S", b"SI", b"SIR"):
            return self.frame()
        if word in (b"Z", b"T"):
            return b"Z A\r\n" if word == b"Z" else b"T S " + self.frame()[4:]
        return b"ES\r\n" if word else None

    # --- serving ---------------------------------------------------------------------------------

    def _serve_tcp(self) -> None:
        assert self._server is not None
        for conn in accepted(self._server, self._stop):
            if self.mode == "disconnect":
                conn.close()
                continue
            self.connections += 1
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._talk, args=(_Socket(conn),), daemon=True).start()

    def _serve_pty(self) -> None:
        self.connections += 1
        self._talk(_Pty(self._master, self._slave))

    def _talk(self, link: _Reader) -> None:
        """Stream (continuous, or after SIR) or answer requests (MT-SICS) until stopped or cut."""
        streaming = self.protocol == "continuous"
        buffer = b""
        next_at = time.monotonic()
        while not self._stop.is_set():
            # asked, not streaming: a request wakes the select; the timeout is how soon stop() is seen
            wait = max(0.0, next_at - time.monotonic()) if streaming else 0.05
            try:
                data = link.recv(wait)
            except OSError:
                return
            if data == b"":
                return  # the other end closed
            if data and self.mode != "disconnect":
                buffer += data
                *commands, buffer = buffer.replace(b"\r", b"\n").split(b"\n")
                for command in commands:
                    if command.strip().upper() == b"SIR":
                        streaming = True
                    answer = self._answer(command)
                    if answer is not None and not self._send(link, answer):
                        return
            if streaming and time.monotonic() >= next_at:
                next_at = time.monotonic() + self.interval
                if self.mode != "disconnect" and not self._send(link, self.frame()):
                    return
            if self.mode == "disconnect" and isinstance(link, _Socket):
                return

    def _send(self, link: _Reader, data: bytes) -> bool:
        try:
            link.send(data)
        except OSError:
            return False
        self.frames_sent += 1
        return True


class _Reader:
    """One end of the line: a TCP connection or the pseudo-terminal's master side."""

    def recv(self, timeout: float) -> bytes | None:  # None: nothing within the timeout
        raise NotImplementedError

    def send(self, data: bytes) -> None:
        raise NotImplementedError


class _Socket(_Reader):
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn

    def recv(self, timeout: float) -> bytes | None:
        ready, _, _ = select.select([self.conn], [], [], timeout)
        return self.conn.recv(4096) if ready else None

    def send(self, data: bytes) -> None:
        self.conn.sendall(data)


class _Pty(_Reader):
    def __init__(self, master: int, slave: int) -> None:
        self.master, self.slave = master, slave

    def recv(self, timeout: float) -> bytes | None:
        ready, _, _ = select.select([self.master], [], [], timeout)
        return os.read(self.master, 4096) if ready else None

    def send(self, data: bytes) -> None:
        # Nobody reading: drop what waits rather than hand the next reader old weights.
        waiting = struct.unpack("i", fcntl.ioctl(self.slave, termios.FIONREAD, b"\0\0\0\0"))[0]
        if waiting > BACKLOG_BYTES:
            termios.tcflush(self.slave, termios.TCIFLUSH)
        os.write(self.master, data)


def apply_typed(scale: VirtualScale, word: str) -> str:
    """A line typed at the simulator: a weight in kg or a mode; what it answers."""
    try:
        if word in MODES:
            scale.set_mode(word)
        else:
            kg = float(word)
            if not -1000 <= kg <= 100_000:  # also NaN: no scale shows it
                raise ValueError(word)
            scale.set_weight(kg)
    except ValueError:
        return f"{word!r}: a weight in kg or one of {', '.join(MODES)}"
    return f"scale: {scale.weight_kg:g} kg, mode {scale.mode}"


def run(*, listen: str | None, pty: bool, protocol: str, weight_kg: float, mode: str,
        unit: str, interval: float) -> None:
    """``scanedge scale-sim``: serve until Ctrl-C or the end of standard input; a line on standard
    input changes the scale: a number is the weight in kg, a word the mode."""
    import sys

    host, _, port = (listen or "127.0.0.1:0").rpartition(":")
    scale = VirtualScale(protocol=protocol, weight_kg=weight_kg, mode=mode, unit=unit, pty=pty,
                         host=host or "127.0.0.1", port=int(port), interval=interval).start()
    print(f"virtual scale: scale = \"{scale.address}\" ({protocol}, {weight_kg:g} kg, mode {mode});"
          f" type a weight in kg or a mode ({', '.join(MODES)}), Ctrl-C to stop", flush=True)
    try:
        for line in sys.stdin:
            if line.strip():
                print(apply_typed(scale, line.strip()), flush=True)
        threading.Event().wait()  # input closed (a service, a pipe): serve until Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        scale.stop()
