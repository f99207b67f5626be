"""Printer addresses -> python-escpos printer objects, with byte counting and status polling.

``tcp://HOST:9100``, ``usb://VID:PID?in_ep=0x82&out_ep=0x01``, ``serial:///dev/ttyUSB0?baudrate=9600``,
``file:///dev/usb/lp0``, ``cups://QUEUE``, ``dummy://`` (bytes kept in memory), ``preview://DIR``
(a PNG and the .bin of every job written to DIR).

A job is written in chunks so the queue knows whether *any* byte reached the printer: a failure
before the first byte may be retried, a failure after it may have printed half a label.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from PIL import Image

from scanedge.printers import status as st
from scanedge.printers.address import SCHEMES, form

log = logging.getLogger(__name__)
CHUNK = 4096


class TransportError(OSError):
    """The printer could not be reached or the connection broke; ``sent`` bytes got through."""

    def __init__(self, message: str, sent: int = 0) -> None:
        super().__init__(message)
        self.sent = sent


@dataclass
class PrintPayload:
    """One job's bytes, and its images (only the preview transport looks at them)."""

    data: bytes
    images: list[Image.Image] = field(default_factory=list)
    name: str = "label"


def _int(value: str) -> int:
    return int(value, 16) if value.lower().startswith("0x") else int(value)


def _query_kwargs(query: str, kinds: dict[str, Callable[[str], Any]], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in kinds:
            raise ValueError(f"{where}: unknown option {key!r} (known: {', '.join(kinds)})")
        try:
            out[key] = kinds[key](value)
        except ValueError:
            raise ValueError(f"{where}: option {key}={value!r} is not valid") from None
    return out


class Transport:
    scheme = ""
    supports_status = False

    def open(self) -> None:
        """Connect; raise :class:`TransportError` (nothing was sent)."""

    def close(self) -> None:
        """Release the connection (flushes spooled transports such as CUPS)."""

    def status(self) -> st.PrinterStatus:
        return st.UNKNOWN_OK

    def send(self, payload: PrintPayload, progress: Callable[[int], None] | None = None) -> int:
        raise NotImplementedError

    def describe(self) -> str:
        return self.scheme


class EscposTransport(Transport):
    """Any python-escpos printer class: bytes go out through its ``_raw``."""

    def __init__(self, factory: Callable[[], Any], scheme: str, description: str, *,
                 supports_status: bool, status_timeout: float = 1.0) -> None:
        self._factory = factory
        self.scheme = scheme
        self._description = description
        self.supports_status = supports_status
        self.status_timeout = status_timeout
        self.printer: Any = None

    def describe(self) -> str:
        return self._description

    def open(self) -> None:
        try:
            self.printer = self._factory()
            self.printer.open()
        except Exception as e:  # escpos raises DeviceNotFoundError, USBNotFoundError, OSError...
            self.printer = None
            raise TransportError(f"{self._description}: cannot connect: {e}") from None

    def close(self) -> None:
        if self.printer is not None:
            with contextlib.suppress(Exception):
                self.printer.close()
            self.printer = None

    def _read_one(self) -> int | None:
        """One status byte, or None when the printer does not answer in time."""
        device = getattr(self.printer, "device", None)
        if isinstance(device, socket.socket):
            old = device.gettimeout()
            device.settimeout(self.status_timeout)
            try:
                data = device.recv(1)
            except (TimeoutError, OSError):
                return None
            finally:
                with contextlib.suppress(OSError):
                    device.settimeout(old)
            return data[0] if data else None
        try:
            data = self.printer._read()
        except Exception:
            return None
        return data[0] if data else None

    def status(self) -> st.PrinterStatus:
        if not self.supports_status:
            return st.UNKNOWN_OK
        answers: list[int | None] = []
        for query in st.STATUS_QUERIES:
            try:
                self.printer._raw(query)
            except Exception as e:
                raise TransportError(f"{self._description}: status query failed: {e}") from None
            answer = self._read_one()
            answers.append(answer)
            if answer is None:  # a silent printer: do not wait three times
                return st.parse_status(*answers, *([None] * (3 - len(answers))))
        return st.parse_status(*answers)

    def send(self, payload: PrintPayload, progress: Callable[[int], None] | None = None) -> int:
        sent = 0
        data = payload.data
        try:
            for i in range(0, len(data), CHUNK):
                chunk = data[i:i + CHUNK]
                self.printer._raw(chunk)
                sent += len(chunk)
                if progress is not None:
                    progress(sent)
            flush = getattr(self.printer, "flush", None)
            if callable(flush):
                flush()
        except Exception as e:
            raise TransportError(f"{self._description}: sending failed after {sent} bytes: {e}",
                                 sent=sent) from None
        return sent


class MemoryTransport(Transport):
    """``dummy://``: keeps every job's bytes (python-escpos Dummy semantics, no device)."""

    scheme = "dummy"

    def __init__(self) -> None:
        self.jobs: list[bytes] = []

    def send(self, payload: PrintPayload, progress: Callable[[int], None] | None = None) -> int:
        self.jobs.append(payload.data)
        if progress is not None:
            progress(len(payload.data))
        return len(payload.data)

    def describe(self) -> str:
        return "dummy://"


class PreviewTransport(Transport):
    """``preview://DIR``: NAME.png (the label images stacked) and NAME.bin per job."""

    scheme = "preview"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def describe(self) -> str:
        return f"preview://{self.directory}"

    def open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TransportError(f"preview directory {self.directory}: {e}") from None

    def send(self, payload: PrintPayload, progress: Callable[[int], None] | None = None) -> int:
        base = self.directory / payload.name
        try:
            base.with_suffix(".bin").write_bytes(payload.data)
            if payload.images:
                width = max(i.width for i in payload.images)
                sheet = Image.new("1", (width, sum(i.height for i in payload.images)), 1)
                y = 0
                for img in payload.images:
                    sheet.paste(img, (0, y))
                    y += img.height
                sheet.save(base.with_suffix(".png"))
        except OSError as e:
            raise TransportError(f"preview {base}: {e}") from None
        if progress is not None:
            progress(len(payload.data))
        return len(payload.data)


def make_transport(address: str, *, timeout: float = 5.0, status_timeout: float = 1.0,
                   status: bool = True) -> Transport:
    """A transport for a printer address (docs/interfaces.md "Printer address"); ValueError if bad."""
    parts = urlsplit(address)
    scheme = parts.scheme
    where = f"printer {address!r}"
    if scheme == "tcp":
        if not parts.hostname:
            raise ValueError(f"{where}: expected {form('tcp')}")
        host, port = parts.hostname, parts.port or 9100

        def network() -> Any:
            from escpos.printer import Network

            return Network(host=host, port=port, timeout=timeout)

        return EscposTransport(network, "tcp", f"tcp://{host}:{port}", supports_status=status,
                               status_timeout=status_timeout)
    if scheme == "usb":
        vid_pid = (parts.netloc or parts.path.strip("/")).split(":")
        if len(vid_pid) != 2:
            raise ValueError(f"{where}: expected {form('usb')}")
        vid, pid = (int(v, 16) for v in vid_pid)
        kwargs = _query_kwargs(parts.query, {
            "in_ep": _int, "out_ep": _int, "interface": _int, "timeout": _int,
        }, where)

        def usb() -> Any:
            from escpos.printer import Usb

            return Usb(idVendor=vid, idProduct=pid, **kwargs)

        return EscposTransport(usb, "usb", f"usb://{vid:04x}:{pid:04x}", supports_status=status,
                               status_timeout=status_timeout)
    if scheme == "serial":
        devfile = unquote(parts.path)
        if not devfile:
            raise ValueError(f"{where}: expected {form('serial')}")
        kwargs = _query_kwargs(parts.query, {
            "baudrate": int, "bytesize": int, "parity": str, "stopbits": int, "timeout": float,
            "dsrdtr": lambda v: v.lower() in ("1", "true", "yes"),
        }, where)

        def serial() -> Any:
            from escpos.printer import Serial

            return Serial(devfile=devfile, **kwargs)

        return EscposTransport(serial, "serial", f"serial://{devfile}", supports_status=status,
                               status_timeout=status_timeout)
    if scheme == "file":
        devfile = unquote(parts.path)
        if not devfile:
            raise ValueError(f"{where}: expected {form('file')}")

        def file() -> Any:
            from escpos.printer import File

            return File(devfile=devfile)

        # A device file is write-only: no status answers.
        return EscposTransport(file, "file", f"file://{devfile}", supports_status=False)
    if scheme == "cups":
        queue = unquote(parts.netloc or parts.path.strip("/"))
        if not queue:
            raise ValueError(f"{where}: expected {form('cups')}")

        def cups() -> Any:
            from escpos.printer import CupsPrinter

            if not CupsPrinter.is_usable():
                raise TransportError("cups:// needs pycups (pip install pycups) and a CUPS server")
            return CupsPrinter(printer_name=queue)

        return EscposTransport(cups, "cups", f"cups://{queue}", supports_status=False)
    if scheme == "dummy":
        return MemoryTransport()
    if scheme == "preview":
        directory = unquote(parts.netloc + parts.path)
        if not directory:
            raise ValueError(f"{where}: expected {form('preview')}")
        return PreviewTransport(Path(directory))
    raise ValueError(f"{where}: unknown scheme ({', '.join(SCHEMES)})")
