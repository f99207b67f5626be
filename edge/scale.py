"""The bench's scale: a thread that reads its output through pyserial and keeps the latest state
(docs/scale.md). An adapter like the printer's transports: what a line means is
edge/domain/scale.py, what a weight means for the label is edge/domain/weighing.py.

``serial:///dev/ttyUSB0`` opens the device file, ``tcp://HOST:PORT`` pyserial's ``socket://``
(a serial-to-Ethernet server, a networked scale): one ``serial_for_url`` either way. An MT-SICS
scale is asked for a reading every ``poll_s`` (``SI``: the current weight at once, stable or
not), since it sends nothing unasked; a continuous scale streams by itself. With ``protocol =
auto`` a silent line is asked too, and a scale that answers in MT-SICS is asked from then on. A cut cable, a
closed port or a scale that falls silent reads as ``disconnected``, and the thread opens the
port again until it answers.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scanedge.edge.domain.scale import Frame, ScaleAddress, parse_frame, settled

log = logging.getLogger(__name__)
MAX_LINE = 256  # a scale's line is ~20 bytes; a longer run without a newline is noise
PROBE_AFTER_S = 0.3  # protocol auto: silent this long, the scale may be one that must be asked


@dataclass(frozen=True)
class ScaleState:
    """What the reader last saw: ``state`` is the scale's (stable, unstable, overload, underload,
    error) or ``disconnected``; ``weight_kg`` the settled weight, only when there is one."""

    state: str
    weight_kg: float | None = None
    live_kg: float | None = None  # the last frame's weight, moving or not (for the display)
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {"state": self.state, "weight_kg": self.weight_kg, "live_kg": self.live_kg,
                "error": self.error}


def serial_url(address: ScaleAddress) -> str:
    return address.target if address.scheme == "serial" else f"socket://{address.target}"


class ScaleReader:
    def __init__(self, address: ScaleAddress, *, stale_after_s: float = 2.0,
                 retry_s: float = 1.0, poll_s: float = 0.1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.address = address
        self.stale_after_s = stale_after_s  # silent this long = disconnected
        self.retry_s = retry_s
        self.poll_s = poll_s  # MT-SICS: the pause between two SI requests
        self._clock = clock
        self._frames: deque[Frame] = deque(maxlen=max(address.settle, 1))
        self._last_frame_at: float | None = None
        self._error: str | None = "not connected yet"
        self._connected = False
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> ScaleReader:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="scale-reader", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def state(self) -> ScaleState:
        with self._lock:
            fresh = (self._connected and self._last_frame_at is not None
                     and self._clock() - self._last_frame_at <= self.stale_after_s)
            if not fresh:
                error = self._error if not self._connected else "the scale sends nothing"
                return ScaleState("disconnected", error=error)
            if not self._frames:  # just connected: nothing steady said yet
                return ScaleState("unstable")
            last = self._frames[-1]
            weight = settled(list(self._frames), self.address.settle)
            return ScaleState(last.state, weight, last.weight_kg)

    # --- the thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                port = self._open()
            except Exception as e:  # pyserial raises SerialException, OSError, ValueError
                self._lost(f"cannot open {self.address.describe()}: {e}")
                self._stop.wait(self.retry_s)
                continue
            try:
                self._read(port)
            except Exception as e:
                self._lost(f"{self.address.describe()}: {e}")
            finally:
                try:
                    port.close()
                except Exception:  # closing a port that is already gone
                    log.debug("closing the scale's port", exc_info=True)
            self._stop.wait(self.retry_s)

    def _open(self) -> Any:
        import serial  # pyserial

        a = self.address
        port = serial.serial_for_url(serial_url(a), do_not_open=True, timeout=0.2)
        if a.scheme == "serial":
            port.baudrate, port.bytesize, port.parity, port.stopbits = (
                a.baudrate, a.bytesize, a.parity, a.stopbits)
        port.open()
        with self._lock:
            self._connected, self._error, self._last_frame_at = True, None, self._clock()
            self._frames.clear()
            self.connections += 1
        return port

    def _lost(self, error: str) -> None:
        with self._lock:
            if self._connected or self._error != error:
                log.warning("scale: %s", error)
            self._connected, self._error = False, error
            self._frames.clear()

    def _read(self, port: Any) -> None:
        protocol = self.address.protocol
        # MT-SICS sends nothing unasked: ask SI; with protocol auto, ask while the line is silent
        # and keep asking once a SICS answer comes (a continuous scale streams, is not asked)
        polling = protocol == "sics"
        if polling:
            port.timeout = self.poll_s  # a read waits no longer than the next question
        buffer = b""
        asked_at: float | None = None
        heard_at = self._clock()
        while not self._stop.is_set():
            now = self._clock()
            silent = protocol == "auto" and now - heard_at >= PROBE_AFTER_S
            if (polling or silent) and (asked_at is None or now - asked_at >= self.poll_s):
                port.write(b"SI\r\n")
                asked_at = now
            chunk = port.read(port.in_waiting or 1)
            if not chunk:
                continue
            buffer += chunk
            *lines, buffer = buffer.replace(b"\r", b"\n").split(b"\n")
            if len(buffer) > MAX_LINE:
                buffer = b""
            for raw in lines:
                text = raw.decode("ascii", "replace")
                frame = parse_frame(text, protocol)
                if frame is None:
                    continue
                heard_at = self._clock()
                if protocol == "auto" and not polling and parse_frame(text, "sics") is not None:
                    polling = True
                    port.timeout = self.poll_s
                with self._lock:
                    self._frames.append(frame)
                    self._last_frame_at = heard_at
