"""An incremental ESC/POS parser: bytes in, commands out, image payloads skipped by length.

The virtual printer needs it to tell a real-time status query (DLE EOT n) from the same two
bytes inside raster data, exactly as a printer does; the self-check needs it to rebuild the
printed images. It knows the commands labels use and the common short ones; anything else is
passed on as "byte" so nothing is silently swallowed. It does not import the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ESC, GS, DLE, FS = 0x1B, 0x1D, 0x10, 0x1C

# ESC x n: three-byte commands (x -> name); unknown ESC x are treated as ESC x n as well.
_ESC_ONE_ARG = {
    ord("a"): "align", ord("E"): "bold", ord("!"): "mode", ord("M"): "font", ord("t"): "codepage",
    ord("G"): "double_strike", ord("-"): "underline", ord("R"): "charset", ord("d"): "feed_lines",
    ord("J"): "feed_dots", ord("3"): "line_spacing", ord("V"): "rotate", ord("r"): "color",
    ord("{"): "upside_down", ord("c"): "panel",
}


@dataclass
class Command:
    name: str
    arg: int = 0
    data: bytes = b""
    width: int = 0  # dots (images)
    height: int = 0  # dots (images)
    raw_len: int = 0


@dataclass
class Parser:
    """Feed bytes with :meth:`feed`; complete commands come back, partial ones wait."""

    buffer: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Command]:
        self.buffer += data
        out: list[Command] = []
        pos = 0
        buf = self.buffer
        n = len(buf)
        while pos < n:
            cmd = _parse_one(buf, pos, n)
            if cmd is None:  # incomplete: wait for more bytes
                break
            out.append(cmd)
            pos += cmd.raw_len
        del self.buffer[:pos]
        return out


def _u16(buf: bytearray, i: int) -> int:
    return buf[i] | (buf[i + 1] << 8)


def _parse_one(buf: bytearray, p: int, n: int) -> Command | None:
    b = buf[p]
    avail = n - p
    if b == DLE:
        if avail < 2:
            return None
        c = buf[p + 1]
        if c == 0x04:  # DLE EOT n: real-time status
            return Command("status", buf[p + 2], raw_len=3) if avail >= 3 else None
        if c == 0x05:  # DLE ENQ n
            return Command("realtime_request", buf[p + 2], raw_len=3) if avail >= 3 else None
        if c == 0x14:  # DLE DC4 fn a b
            return Command("realtime_dc4", buf[p + 2], raw_len=5) if avail >= 5 else None
        return Command("byte", b, raw_len=1)
    if b == ESC:
        if avail < 2:
            return None
        c = buf[p + 1]
        if c == ord("@"):
            return Command("init", raw_len=2)
        if c == ord("2"):
            return Command("default_spacing", raw_len=2)
        if c == ord("*"):  # ESC * m nL nH d...: column image
            if avail < 5:
                return None
            m, cols = buf[p + 2], _u16(buf, p + 3)
            rows = 24 if m in (32, 33) else 8
            size = cols * rows // 8
            if avail < 5 + size:
                return None
            return Command("column", m, bytes(buf[p + 5:p + 5 + size]), width=cols, height=rows,
                           raw_len=5 + size)
        if c == ord("B"):  # ESC B n t: buzzer
            return Command("buzzer", buf[p + 2], raw_len=4) if avail >= 4 else None
        if c == ord("p"):  # ESC p m t1 t2: drawer pulse
            return Command("drawer", buf[p + 2], raw_len=5) if avail >= 5 else None
        if c == ord("("):  # ESC ( x pL pH ...: ESC ( A is Epson's buzzer
            if avail < 5:
                return None
            size = _u16(buf, p + 3)
            if avail < 5 + size:
                return None
            name = "buzzer" if buf[p + 2] == ord("A") else "esc_paren"
            return Command(name, buf[p + 2], bytes(buf[p + 5:p + 5 + size]), raw_len=5 + size)
        if avail < 3:
            return None
        return Command(_ESC_ONE_ARG.get(c, "esc"), buf[p + 2], bytes((c,)), raw_len=3)
    if b == GS:
        if avail < 2:
            return None
        c = buf[p + 1]
        if c == ord("v"):  # GS v 0 m xL xH yL yH d...: raster image
            if avail < 8:
                return None
            wb, h = _u16(buf, p + 4), _u16(buf, p + 6)
            size = wb * h
            if avail < 8 + size:
                return None
            return Command("raster", buf[p + 3], bytes(buf[p + 8:p + 8 + size]), width=wb * 8,
                           height=h, raw_len=8 + size)
        if c in (ord("("), ord("8")) and avail >= 3 and buf[p + 2] == ord("L"):
            # GS ( L pL pH m fn ... / GS 8 L p1 p2 p3 p4 m fn ...: graphics
            head = 5 if c == ord("(") else 7
            if avail < head:
                return None
            size = _u16(buf, p + 3) if c == ord("(") else int.from_bytes(buf[p + 3:p + 7], "little")
            if avail < head + size:
                return None
            body = bytes(buf[p + head:p + head + size])
            fn = body[1] if len(body) > 1 else 0
            if fn == 112 and len(body) >= 10:  # store raster graphics: m fn a bx by c xL xH yL yH
                w, h = body[6] | (body[7] << 8), body[8] | (body[9] << 8)
                return Command("graphics_store", fn, body[10:], width=w, height=h, raw_len=head + size)
            name = "graphics_print" if fn in (50, 2) else "graphics"
            return Command(name, fn, body, raw_len=head + size)
        if c == ord("V"):  # GS V m [n]: cut
            if avail < 3:
                return None
            m = buf[p + 2]
            if m in (65, 66, 97, 98, 103, 104):
                return Command("cut", m, raw_len=4) if avail >= 4 else None
            return Command("cut", m, raw_len=3)
        if c == ord("r"):  # GS r n: transmit status
            return Command("transmit_status", buf[p + 2], raw_len=3) if avail >= 3 else None
        if c in (ord("L"), ord("W")):
            return Command("gs", c, raw_len=4) if avail >= 4 else None
        if avail < 3:
            return None
        return Command("gs", c, raw_len=3)
    if b == 0x0A:
        return Command("lf", raw_len=1)
    return Command("byte", b, raw_len=1)


def image_rows(cmd: Command) -> np.ndarray:
    """An image command's dots as a bool array (True = black), rows x width."""
    if cmd.name in ("raster", "graphics_store"):
        wb = (cmd.width + 7) // 8
        bits = np.unpackbits(np.frombuffer(cmd.data, dtype=np.uint8)).reshape(cmd.height, wb * 8)
        return bits[:, : cmd.width].astype(bool)
    if cmd.name == "column":
        per_col = cmd.height // 8
        cols = np.frombuffer(cmd.data, dtype=np.uint8).reshape(cmd.width, per_col)
        bits = np.unpackbits(cols, axis=1)  # width x height, MSB = top dot
        return bits.T.astype(bool)
    raise ValueError(f"{cmd.name} is not an image command")


@dataclass
class Page:
    """What one label looks like on paper, and what commanded it."""

    rows: list[np.ndarray] = field(default_factory=list)
    cut: bool = False
    beeps: int = 0

    @property
    def empty(self) -> bool:
        return not any(r.any() for r in self.rows)

    def image(self, width: int | None = None) -> np.ndarray:
        """8-bit grey image (0 black, 255 white) of the page."""
        if not self.rows:
            return np.full((1, width or 8), 255, dtype=np.uint8)
        w = width or max(r.shape[1] for r in self.rows)
        out = np.zeros((sum(r.shape[0] for r in self.rows), w), dtype=bool)
        y = 0
        for r in self.rows:
            out[y:y + r.shape[0], : min(w, r.shape[1])] = r[:, :w]
            y += r.shape[0]
        return np.where(out, 0, 255).astype(np.uint8)


@dataclass
class PaperModel:
    """Turns commands into pages: images stack, feeds add blank rows, a cut ends a page."""

    width: int = 576
    line_dots: int = 30
    pages: list[Page] = field(default_factory=list)
    current: Page = field(default_factory=Page)
    _stored: np.ndarray | None = None

    def apply(self, cmd: Command) -> Page | None:
        """Apply one command; return the page it finished, if any."""
        name = cmd.name
        if name in ("raster", "column"):
            self.current.rows.append(image_rows(cmd))
        elif name == "graphics_store":
            self._stored = image_rows(cmd)
        elif name == "graphics_print" and self._stored is not None:
            self.current.rows.append(self._stored)
            self._stored = None
        elif name == "feed_lines":
            self.current.rows.append(np.zeros((cmd.arg * self.line_dots, self.width), dtype=bool))
        elif name == "feed_dots":
            self.current.rows.append(np.zeros((cmd.arg, self.width), dtype=bool))
        elif name == "buzzer":
            # a beep after the cut belongs to the label just cut
            target = self.pages[-1] if self.current.empty and self.pages else self.current
            target.beeps += 1
        elif name == "cut":
            self.current.cut = True
            return self._finish()
        elif name == "init" and not self.current.empty:
            return self._finish()
        return None

    def flush(self) -> Page | None:
        return self._finish() if not self.current.empty else None

    def _finish(self) -> Page:
        page = self.current
        self.pages.append(page)
        self.current = Page()
        return page


def pages_from_bytes(data: bytes, width: int = 576) -> list[Page]:
    """Every page (label) a byte stream prints, the last one even without a cut."""
    paper = PaperModel(width=width)
    for cmd in Parser().feed(data):
        paper.apply(cmd)
    paper.flush()
    return [p for p in paper.pages if not p.empty]
