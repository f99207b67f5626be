"""A virtual ESC/POS network printer (raw TCP, like port 9100) for development and tests.

It stores every byte it receives, rebuilds the labels it "prints", and answers DLE EOT n and
GS r n as a real printer does -- in order with the data before them, and never confused by the
same bytes inside image data. Its mode can be switched while it runs:

- ``ok``: prints; ``paper_near_end``: prints, reports the near-end sensor;
- ``paper_out``, ``cover_open``, ``offline``: reports the fault and prints nothing;
- ``silent``: accepts the connection and the bytes, never answers, prints nothing;
- ``disconnect_mid_job``: drops the connection (RST) part-way into the next label, once, then ``ok``;
- ``paper_out_mid_job``: runs out of paper part-way into the next label (that label is lost).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scanedge.edge.listener import accepted, wake
from scanedge.printers import status as st
from scanedge.printers.escpos_stream import Page, PaperModel, Parser

log = logging.getLogger(__name__)
MODES = ("ok", "paper_near_end", "paper_out", "cover_open", "offline", "silent",
         "disconnect_mid_job", "paper_out_mid_job")
FAULT_MODES = ("paper_out", "cover_open", "offline", "silent")


@dataclass
class PrintedLabel:
    image: np.ndarray  # grey, 0 = black
    cut: bool
    beeps: int
    connection: int


class VirtualPrinter:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, mode: str = "ok",
                 dots: int = 576, speed_mm_s: float = 0.0, mid_job_bytes: int = 2000) -> None:
        self.set_mode(mode)
        self.dots = dots
        self.speed_mm_s = speed_mm_s  # 0 = print instantly
        self.mid_job_bytes = mid_job_bytes
        self.received = bytearray()
        self.labels: list[PrintedLabel] = []
        self.lost_labels = 0  # pages that arrived while the printer could not print
        self.connections = 0
        self.status_queries = 0
        self._lock = threading.Lock()
        self._sock = socket.create_server((host, port))
        self._sock.settimeout(0.2)
        self.host, self.port = self._sock.getsockname()[:2]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._changed = threading.Condition(self._lock)

    # --- control -----------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        self.mode = mode

    def start(self) -> VirtualPrinter:
        t = threading.Thread(target=self._serve, name=f"printer-sim:{self.port}", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        wake(self._sock)
        for t in self._threads:
            t.join(timeout=2)
        self._sock.close()

    def __enter__(self) -> VirtualPrinter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_labels(self, count: int, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.labels) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    # --- status answers ----------------------------------------------------------------------

    def status_byte(self, n: int) -> int:
        mode = self.mode
        if n == 1:
            return st.BASE | (st.OFFLINE if mode in ("paper_out", "cover_open", "offline") else 0)
        if n == 2:
            return st.BASE | {"paper_out": st.PAPER_END_STOP, "cover_open": st.COVER_OPEN}.get(mode, 0)
        if n == 3:
            return st.BASE
        if n == 4:
            return st.BASE | {"paper_out": st.PAPER_END, "paper_near_end": st.NEAR_END}.get(mode, 0)
        return st.BASE

    def transmit_status_byte(self, n: int) -> int:
        if n in (1, 49):  # paper sensor: bits 0-1 near end, bits 2-3 paper end
            return {"paper_out": 0x0C, "paper_near_end": 0x03}.get(self.mode, 0)
        return 0  # n = 2/50: drawer kick-out connector low

    # --- serving -----------------------------------------------------------------------------

    def _serve(self) -> None:
        for conn in accepted(self._sock, self._stop):
            with self._lock:
                self.connections += 1
                number = self.connections
            t = threading.Thread(target=self._handle, args=(conn, number), daemon=True)
            t.start()

    def _handle(self, conn: socket.socket, number: int) -> None:
        parser = Parser()
        paper = PaperModel(width=self.dots)
        job_bytes = 0
        conn.settimeout(0.2)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    break
                if self.mode == "disconnect_mid_job" and job_bytes + len(data) > self.mid_job_bytes:
                    keep = max(0, self.mid_job_bytes - job_bytes)
                    with self._lock:
                        self.received += data[:keep]
                    self.set_mode("ok")  # once: the next connection finds a working printer
                    # RST, as a printer that loses power or network does
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if self.mode == "paper_out_mid_job" and job_bytes + len(data) > self.mid_job_bytes:
                    self.set_mode("paper_out")
                with self._lock:
                    self.received += data
                for cmd in parser.feed(data):
                    if cmd.name == "init":
                        job_bytes = 0
                    if cmd.name == "status":
                        self.status_queries += 1
                        if self.mode != "silent":
                            self._reply(conn, self.status_byte(cmd.arg))
                        continue
                    if cmd.name == "transmit_status":
                        if self.mode != "silent":
                            self._reply(conn, self.transmit_status_byte(cmd.arg))
                        continue
                    page = paper.apply(cmd)
                    if page is not None:
                        self._printed(page, number)
                job_bytes += len(data)
            page = paper.flush()
            if page is not None:
                self._printed(page, number)

    def _reply(self, conn: socket.socket, value: int) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(bytes((value,)))

    def _printed(self, page: Page, connection: int) -> None:
        if page.empty:
            return
        if self.mode in FAULT_MODES:
            with self._lock:
                self.lost_labels += 1
            return
        image = page.image(self.dots)
        if self.speed_mm_s > 0:  # a real head needs time; status answers wait behind it
            time.sleep(image.shape[0] / 8 / self.speed_mm_s)
        with self._changed:
            self.labels.append(PrintedLabel(image, page.cut, page.beeps, connection))
            self._changed.notify_all()


def run(listen: str, mode: str, dots: int, speed_mm_s: float, save_dir: str | None = None) -> None:
    """``scanedge printer-sim``: serve until Ctrl-C, logging each label (and saving it as a PNG
    in ``save_dir``: what the printer printed, to look at or to scan)."""
    host, _, port = listen.rpartition(":")
    printer = VirtualPrinter(host or "127.0.0.1", int(port), mode=mode, dots=dots,
                             speed_mm_s=speed_mm_s).start()
    print(f"virtual printer on {printer.address} (mode {mode}, {dots} dots); Ctrl-C to stop",
          flush=True)
    seen = 0
    try:
        while True:
            time.sleep(0.5)
            while seen < len(printer.labels):
                label = printer.labels[seen]
                seen += 1
                saved = ""
                if save_dir:
                    from PIL import Image

                    path = Path(save_dir) / f"label-{seen:04d}.png"
                    part = path.with_suffix(".part")  # whole or absent: a reader never sees half
                    Image.fromarray(label.image).save(part, format="PNG")
                    part.replace(path)
                    saved = f", saved {path}"
                print(f"label {seen}: {label.image.shape[1]}x{label.image.shape[0]} dots,"
                      f" cut={label.cut}, beeps={label.beeps}{saved}", flush=True)
    finally:
        printer.stop()
