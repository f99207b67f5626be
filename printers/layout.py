"""The label renderer: one Pillow image (1 bit, 203 dpi dots) from an order and a template.

Templates are data (``printers/templates/*.toml``): a paper width, barcode rules and a list of
blocks drawn top to bottom. This module knows how to draw each block type; what goes where,
at which size, lives in the template.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import qrcode
from PIL import Image, ImageDraw, ImageFont

from scanedge.edge.domain.carriers import carrier_by_code
from scanedge.edge.domain.labels import label_id
from scanedge.edge.domain.orders import Order
from scanedge.printers import code128
from scanedge.printers.fonts import font

TEMPLATE_DIR = Path(__file__).with_name("templates")
LANES_FILE = Path(__file__).with_name("lanes.toml")
# Paper of a bench printer, and the die-cut stock sizes carrier e-waybills come on (76 x 130,
# 100 x 180 mm: docs/printing.md "Carrier labels").
PAPERS = ("58", "80", "100x150", "76x130", "100x180")
BLOCK_TYPES = ("header", "text", "rule", "barcode", "qr_text", "gifts", "items", "spacer",
               "carrier_header", "party")
WHITE, BLACK = 1, 0


class LabelError(ValueError):
    """The label cannot be made (bad template, a barcode that fits nowhere, missing font)."""


@dataclass(frozen=True)
class BarcodeRules:
    height: int
    min_module: int
    preferred_module: int
    max_module: int
    quiet_modules: int
    rotate: str
    rotated_bar_length: int
    text_size: int


@dataclass(frozen=True)
class Template:
    name: str
    paper: str
    width: int
    margin: int
    max_length: int
    gap: int
    barcode: BarcodeRules
    blocks: tuple[dict[str, Any], ...]
    length: int | None = None  # fixed label length (die-cut labels)
    source: str = ""


@dataclass(frozen=True)
class LabelInfo:
    """What the renderer decided, for callers and tests (the image itself is the label)."""

    barcode_text: str
    barcode_module: int
    barcode_rotated: bool
    barcode_modules: int
    omitted: tuple[str, ...] = ()  # optional blocks left out: the fixed-length stock had no room


@dataclass
class _Ctx:
    template: Template
    fields: dict[str, str]
    order: Order | None  # gifts and items come from it; a carrier label may have none
    font_path: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def inner(self) -> int:
        return self.template.width - 2 * self.template.margin


# --- templates -----------------------------------------------------------------------------


def default_template_name(paper: str) -> str:
    return f"standard_{paper}"


def template_names() -> list[str]:
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.toml"))


@functools.cache
def load_template(name_or_path: str) -> Template:
    """A template by name (``standard_80``) or by path to a .toml file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = TEMPLATE_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise LabelError(f"template {name_or_path!r} not found (known: {', '.join(template_names())})")
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise LabelError(f"template {path}: {e}") from None
    return parse_template(doc, str(path))


def parse_template(doc: Mapping[str, Any], source: str = "") -> Template:
    where = source or "template"
    try:
        bc = doc["barcode"]
        rules = BarcodeRules(
            height=int(bc["height"]), min_module=int(bc.get("min_module", 2)),
            preferred_module=int(bc.get("preferred_module", 3)),
            max_module=int(bc.get("max_module", 4)),
            quiet_modules=int(bc.get("quiet_modules", 10)), rotate=str(bc.get("rotate", "auto")),
            rotated_bar_length=int(bc.get("rotated_bar_length", 240)),
            text_size=int(bc.get("text_size", 24)),
        )
        template = Template(
            name=str(doc["name"]), paper=str(doc["paper"]), width=int(doc["width"]),
            margin=int(doc.get("margin", 8)), max_length=int(doc.get("max_length", 2400)),
            gap=int(doc.get("gap", 8)), barcode=rules,
            blocks=tuple(dict(b) for b in doc["blocks"]),
            length=int(doc["length"]) if "length" in doc else None, source=source,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise LabelError(f"{where}: missing or bad key {e}") from None
    if template.paper not in PAPERS:
        raise LabelError(f"{where}: paper {template.paper!r}: expected one of {', '.join(PAPERS)}")
    if rules.quiet_modules < 10:
        raise LabelError(f"{where}: barcode.quiet_modules must be >= 10 (scanners need it)")
    if rules.rotate not in ("auto", "never", "always"):
        raise LabelError(f"{where}: barcode.rotate: expected auto, never or always")
    if not 1 <= rules.min_module <= rules.preferred_module <= rules.max_module:
        raise LabelError(f"{where}: barcode: need 1 <= min_module <= preferred_module <= max_module")
    for i, block in enumerate(template.blocks):
        if block.get("type") not in BLOCK_TYPES:
            raise LabelError(f"{where}: blocks[{i}].type {block.get('type')!r}: expected one of "
                             + ", ".join(BLOCK_TYPES))
    return template


# --- label fields ----------------------------------------------------------------------------


def mask_phone(phone: str) -> str:
    """138****1234 for a mainland mobile; keep an already masked number; else keep the last 4."""
    phone = str(phone).strip()
    if not phone or "*" in phone:
        return phone
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 11:
        return f"{digits[:3]}****{digits[-4:]}"
    return "*" * max(0, len(digits) - 4) + digits[-4:]


@functools.cache
def _lane_rules() -> dict[str, Any]:
    return tomllib.loads(LANES_FILE.read_text(encoding="utf-8"))


def sorting_lane(order: Order, weight_kg: float | None = None) -> str:
    """The order's lane, or one from the weight/volume rules of ``lanes.toml``. The weight is
    what the bench's scale measured (``weight_kg``) when it did, else the order's ``weight_kg``,
    else its ``expected_weight_kg`` (docs/scale.md)."""
    if order.lane:
        return order.lane
    rules = _lane_rules()

    def number(key: str) -> float | None:
        value = order.extra.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    weight, volume = number("weight_kg"), number("volume_l")
    weight = weight_kg if weight_kg is not None else weight
    weight = order.expected_weight_kg if weight is None else weight
    if weight is None and volume is None:
        return str(rules.get("default", "-"))
    for rule in rules.get("rules", []):
        limits = (("max_weight_kg", weight), ("max_volume_l", volume))
        if all(key not in rule or value is None or value <= rule[key] for key, value in limits):
            return str(rule["lane"])
    return str(rules.get("default", "-"))


def label_fields(order: Order, *, station: str, printed_at: datetime, reprint_no: int = 0,
                 generation: int = 1, relabel: bool = False,
                 weight_kg: float | None = None) -> dict[str, str]:
    carrier = carrier_by_code(order.carrier) if order.carrier else None
    recipient = order.recipient or {}
    return {
        "order_id": order.order_id,
        "tracking_number": order.tracking_number or "",
        "barcode_text": order.tracking_number or order.order_id,
        "carrier": order.carrier or "",
        "carrier_name": carrier.name_zh if carrier else (order.carrier or ""),
        "lane": sorting_lane(order, weight_kg),
        "priority": order.priority,
        "is_p0": "1" if order.priority == "P0" else "",
        "recipient_name": str(recipient.get("name", "")),
        "phone": mask_phone(str(recipient.get("phone", ""))),
        "address": str(recipient.get("address", "")),
        "station": order.station or station,
        "time": printed_at.strftime("%Y-%m-%d %H:%M"),
        "reprint_no": str(reprint_no) if reprint_no else "",
        "reprint": "1" if reprint_no else "",
        # the label's own name in its QR: a label made void (an address change after printing)
        # is told from its replacement by the generation (edge/domain/labels.py)
        "label_id": label_id(order.order_id, generation),
        "relabel": "1" if relabel else "",
        "gifts": "1" if order.gifts else "",
        "items": str(order.total_items),
        "skus": str(len(order.lines)),
        # what the bench's scale weighed (docs/scale.md); empty at a bench without one
        "weight": f"{weight_kg:.3f}kg" if weight_kg is not None else "",
    }


class _Fields(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _fmt(text: str, fields: Mapping[str, str]) -> str:
    return " ".join(text.format_map(_Fields(fields)).split())


# --- drawing helpers -------------------------------------------------------------------------


def _blank(width: int, height: int) -> Image.Image:
    return Image.new("1", (width, max(1, height)), WHITE)


def _wrap(text: str, f: ImageFont.FreeTypeFont, width: int, max_lines: int = 3) -> list[str]:
    """Break by width, character by character (Chinese has no spaces); '…' marks a cut."""
    if f.getlength(text) <= width:
        return [text]
    lines: list[str] = []
    current = ""
    for i, ch in enumerate(text):
        if current and f.getlength(current + ch) > width:
            lines.append(current)
            current = ch.lstrip()
            if len(lines) == max_lines:
                last = lines[-1]
                while last and f.getlength(last + "…") > width:
                    last = last[:-1]
                lines[-1] = last + "…" if text[i:].strip() else last
                return lines
        else:
            current += ch
    lines.append(current)
    return lines


def _text_image(text: str, size: int, width: int, ctx: _Ctx, *, align: str = "left",
                invert: bool = False, stroke: int = 0, max_lines: int = 3, pad: int = 0) -> Image.Image:
    f = font(size, ctx.font_path)
    lines = _wrap(text, f, width - 2 * pad, max_lines)
    ascent, descent = f.getmetrics()
    line_h = ascent + descent
    img = _blank(width, line_h * len(lines) + 2 * pad)
    draw = ImageDraw.Draw(img)
    fg = WHITE if invert else BLACK
    if invert:
        draw.rectangle((0, 0, img.width - 1, img.height - 1), fill=BLACK)
    for i, line in enumerate(lines):
        w = f.getlength(line)
        x = {"center": (width - w) / 2, "right": width - pad - w}.get(align, pad)
        draw.text((x, pad + i * line_h), line, font=f, fill=fg, stroke_width=stroke, stroke_fill=fg)
    return img


def _stack(parts: list[Image.Image], width: int, gap: int = 0) -> Image.Image:
    height = sum(p.height for p in parts) + gap * max(0, len(parts) - 1)
    out = _blank(width, height)
    y = 0
    for p in parts:
        out.paste(p, (0, y))
        y += p.height + gap
    return out


# --- blocks ------------------------------------------------------------------------------------


def _header(block: dict[str, Any], ctx: _Ctx) -> Image.Image:
    """Priority badge left (P0 large and inverted), carrier in the middle, lane boxed right."""
    fields, width = ctx.fields, ctx.inner
    p0 = fields["priority"] == "P0"
    size = int(block.get("badge_size_p0" if p0 else "badge_size", 48))
    badge_text = f"{fields['priority']} 加急" if p0 else fields["priority"]
    f = font(size, ctx.font_path)
    pad = max(4, size // 8)
    bw = int(f.getlength(badge_text)) + 2 * pad
    ascent, descent = f.getmetrics()
    bh = ascent + descent + 2 * pad
    lane_size = int(block.get("lane_size", 64))
    lf = font(lane_size, ctx.font_path)
    lane = fields["lane"] or "-"
    la, ld = lf.getmetrics()
    lw, lh = int(lf.getlength(lane)) + 2 * pad + 8, la + ld + 2 * pad
    height = max(bh, lh)
    img = _blank(width, height)
    draw = ImageDraw.Draw(img)
    if p0:
        draw.rectangle((0, 0, bw, height - 1), fill=BLACK)
        draw.text((pad, (height - bh) // 2 + pad), badge_text, font=f, fill=WHITE, stroke_width=1,
                  stroke_fill=WHITE)
    else:
        draw.rectangle((0, (height - bh) // 2, bw, (height + bh) // 2 - 1), outline=BLACK, width=3)
        draw.text((pad, (height - bh) // 2 + pad), badge_text, font=f, fill=BLACK)
    draw.rectangle((width - lw, 0, width - 1, height - 1), outline=BLACK, width=4)
    draw.text((width - lw + pad + 4, (height - lh) // 2 + pad), lane, font=lf, fill=BLACK,
              stroke_width=1, stroke_fill=BLACK)
    carrier = fields["carrier_name"]
    if carrier:
        cs = int(block.get("carrier_size", 32))
        room = width - bw - lw - 16
        cf = font(cs, ctx.font_path)
        while cs > 12 and cf.getlength(carrier) > room:
            cs -= 2
            cf = font(cs, ctx.font_path)
        ca, cd = cf.getmetrics()
        x = bw + 8 + max(0, (room - cf.getlength(carrier)) / 2)
        draw.text((x, (height - ca - cd) // 2), carrier, font=cf, fill=BLACK)
    return img


def _fit_size(text: str, size: int, width: int, ctx: _Ctx, *, stroke: int = 0,
              smallest: int = 16) -> int:
    """The largest size up to ``size`` at which ``text`` fits ``width`` on one line."""
    while size > smallest and font(size, ctx.font_path).getlength(text) + 2 * stroke > width:
        size -= 2
    return size


def _text(block: dict[str, Any], ctx: _Ctx) -> Image.Image | None:
    text = _fmt(str(block.get("text", "")), ctx.fields)
    if not text and block.get("skip_empty"):
        return None
    size, stroke = int(block.get("size", 24)), int(block.get("stroke", 0))
    pad = 6 if block.get("invert") or block.get("frame") else 0
    if block.get("fit"):  # one line, shrunk to fit: a sorting code must never wrap or be cut
        size = _fit_size(text, size, ctx.inner - 2 * pad, ctx, stroke=stroke)
    img = _text_image(
        text, size, ctx.inner, ctx,
        align=str(block.get("align", "left")), invert=bool(block.get("invert", False)),
        stroke=stroke, max_lines=1 if block.get("fit") else int(block.get("max_lines", 3)),
        pad=pad,
    )
    if block.get("frame"):
        ImageDraw.Draw(img).rectangle((0, 0, img.width - 1, img.height - 1), outline=BLACK,
                                      width=int(block.get("frame_width", 3)))
    return img


def _rule(block: dict[str, Any], ctx: _Ctx) -> Image.Image:
    img = _blank(ctx.inner, int(block.get("thickness", 2)))
    img.paste(BLACK, (0, 0, img.width, img.height))
    return img


def _spacer(block: dict[str, Any], ctx: _Ctx) -> Image.Image:
    return _blank(ctx.inner, int(block.get("height", 10)))


def choose_barcode_geometry(total_modules: int, inner_width: int, max_length: int,
                            rules: BarcodeRules) -> tuple[int, bool]:
    """(module width in dots, rotated?) for a symbol of ``total_modules`` incl. quiet zones.

    Across the paper the module is as wide as fits (up to max_module). When that is below the
    preferred width and the template allows it, the barcode is turned along the feed, where the
    length is free. Only when neither way reaches min_module is it an error.
    """
    across = min(rules.max_module, inner_width // total_modules)
    if rules.rotate == "never" or (rules.rotate == "auto" and across >= rules.preferred_module):
        if across >= rules.min_module:
            return across, False
        if rules.rotate == "never":
            raise LabelError(
                f"the barcode needs {total_modules * rules.min_module} dots across at "
                f"{rules.min_module} dots a module; the paper has {inner_width}"
            )
    budget = max_length // 2  # leave room for the rest of the label
    for module in range(max(rules.preferred_module, across + 1), rules.min_module - 1, -1):
        if module <= rules.max_module and total_modules * module <= budget:
            return module, True
    if across >= rules.min_module and rules.rotate != "always":
        return across, False
    raise LabelError(
        f"the barcode ({total_modules} modules with quiet zones) fits neither across "
        f"({inner_width} dots) nor along the label ({budget} dots) at {rules.min_module} dots a module"
    )


def _barcode(block: dict[str, Any], ctx: _Ctx) -> Image.Image:
    rules = ctx.template.barcode
    if "height" in block:  # a second, smaller barcode (a carrier label's stub)
        rules = dataclasses.replace(rules, height=int(block["height"]))
    text = ctx.fields[str(block.get("field", "barcode_text"))]
    try:
        symbol = code128.encode(text)
    except code128.Code128Error as e:
        raise LabelError(f"barcode {text!r}: {e}") from None
    quiet = rules.quiet_modules
    total = symbol.width_modules + 2 * quiet
    module, rotated = choose_barcode_geometry(total, ctx.inner, ctx.template.max_length, rules)
    bars = symbol.modules
    if "barcode_text" not in ctx.info:  # the first barcode is the label's
        ctx.info.update(barcode_text=text, barcode_module=module, barcode_rotated=rotated,
                        barcode_modules=symbol.width_modules)
    if rotated:
        bar_len = min(rules.rotated_bar_length, ctx.inner)
        length = total * module
        img = _blank(ctx.inner, length)
        draw = ImageDraw.Draw(img)
        x0 = (ctx.inner - bar_len) // 2
        for i, m in enumerate(bars):
            if m == "1":
                y = (quiet + i) * module
                draw.rectangle((x0, y, x0 + bar_len - 1, y + module - 1), fill=BLACK)
    else:
        img = _blank(ctx.inner, rules.height)
        draw = ImageDraw.Draw(img)
        x0 = (ctx.inner - total * module) // 2 + quiet * module
        for i, m in enumerate(bars):
            if m == "1":
                x = x0 + i * module
                draw.rectangle((x, 0, x + module - 1, rules.height - 1), fill=BLACK)
    caption_text = _fmt(str(block["caption"]), ctx.fields) if "caption" in block else text
    caption = _text_image(caption_text, int(block.get("text_size", rules.text_size)), ctx.inner,
                          ctx, align="center", stroke=int(block.get("stroke", 0)))
    return _stack([img, caption], ctx.inner, 4)


def _qr_matrix(text: str) -> list[list[bool]]:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    qr.add_data(text)
    qr.make(fit=True)
    return qr.get_matrix()


def _qr_text(block: dict[str, Any], ctx: _Ctx) -> Image.Image:
    """A QR (4 modules of quiet zone) with text lines beside it: the label's own name, or
    ``data`` (a format string: a carrier's 2D code payload)."""
    data = _fmt(str(block["data"]), ctx.fields) if "data" in block else ""
    matrix = _qr_matrix(data or ctx.fields["label_id"] or ctx.fields["order_id"])
    module = int(block.get("module", 4))
    if "max_side" in block:  # a long payload (a carrier's 2D code) gets smaller modules, not more room
        fitting = int(block["max_side"]) // (len(matrix) + 8)
        module = max(int(block.get("min_module", 3)), min(module, fitting))
    quiet = 4 * module
    side = len(matrix) * module + 2 * quiet
    qr_img = _blank(side, side)
    draw = ImageDraw.Draw(qr_img)
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                px, py = quiet + x * module, quiet + y * module
                draw.rectangle((px, py, px + module - 1, py + module - 1), fill=BLACK)
    text_w = ctx.inner - side - 4
    lines = [_fmt(str(line), ctx.fields) for line in block.get("lines", [])]
    size = int(block.get("size", 24))
    parts = [_text_image(line, size, text_w, ctx, max_lines=2) for line in lines if line]
    text_img = _stack(parts, text_w, 2) if parts else _blank(text_w, 1)
    out = _blank(ctx.inner, max(side, text_img.height))
    out.paste(qr_img, (0, 0))
    out.paste(text_img, (side + 4, max(0, (side - text_img.height) // 2)))
    return out


def _gifts(block: dict[str, Any], ctx: _Ctx) -> Image.Image | None:
    if ctx.order is None or not ctx.order.gifts:
        return None
    fmt = str(block.get("format", "含赠品:{name}×{qty}"))
    size = int(block.get("size", 28))
    frame = bool(block.get("frame", True))
    pad = 6 if frame else 0
    lines = [fmt.format_map(_Fields(name=g.name, qty=str(g.qty))) for g in ctx.order.gifts]
    parts = [_text_image(line, size, ctx.inner - 2 * pad, ctx, stroke=1) for line in lines]
    body = _stack(parts, ctx.inner - 2 * pad, 2)
    out = _blank(ctx.inner, body.height + 2 * pad)
    out.paste(body, (pad, pad))
    if frame:
        ImageDraw.Draw(out).rectangle((0, 0, out.width - 1, out.height - 1), outline=BLACK, width=3)
    return out


def _items(block: dict[str, Any], ctx: _Ctx) -> Image.Image | None:
    if ctx.order is None:
        return None
    fmt = str(block.get("format", "{name} ×{qty}"))
    size = int(block.get("size", 24))
    max_lines = int(block.get("max_lines", 5))
    lines = [fmt.format_map(_Fields(name=line.name or line.sku, sku=line.sku, qty=str(line.qty)))
             for line in ctx.order.lines]
    if len(lines) > max_lines:
        lines = [*lines[: max_lines - 1], f"… 另 {len(lines) - max_lines + 1} 项"]
    parts = [_text_image(line, size, ctx.inner, ctx, max_lines=1) for line in lines]
    return _stack(parts, ctx.inner, 0) if parts else None


def _carrier_header(block: dict[str, Any], ctx: _Ctx) -> Image.Image:
    """A carrier label's top row: the carrier's name underlined (where its logo goes), the service
    (顺丰标快 ...) beside it, and our P0 badge (large, white on black) on the right."""
    fields, width = ctx.fields, ctx.inner
    size = int(block.get("size", 48))
    pad = max(4, size // 8)
    name = fields["carrier_name"] or fields["carrier"]
    nf = font(_fit_size(name, size, width // 2 - 2 * pad, ctx, stroke=1), ctx.font_path)
    na, nd = nf.getmetrics()
    nw, nh = int(nf.getlength(name)) + 2 * pad + 2, na + nd + 2 * pad
    badge = "P0 加急" if fields["is_p0"] else ""
    bsize = int(block.get("badge_size", size))
    bf = font(bsize, ctx.font_path)
    ba, bd = bf.getmetrics()
    bw = int(bf.getlength(badge)) + 2 * pad if badge else 0
    bh = ba + bd + 2 * pad if badge else 0
    height = max(nh, bh)
    img = _blank(width, height)
    draw = ImageDraw.Draw(img)
    # underlined, not boxed: a box around black text would read as an inverted badge, which
    # only P0 may have (selfcheck.inverted_badges)
    draw.text((pad + 1, (height - na - nd) // 2), name, font=nf, fill=BLACK, stroke_width=1,
              stroke_fill=BLACK)
    draw.rectangle((0, height - 5, nw, height - 2), fill=BLACK)
    if badge:
        draw.rectangle((width - bw, 0, width - 1, height - 1), fill=BLACK)
        draw.text((width - bw + pad, (height - ba - bd) // 2), badge, font=bf, fill=WHITE,
                  stroke_width=1, stroke_fill=WHITE)
    service = _fmt(str(block.get("service", "{service}")), fields)
    room = width - nw - bw - 16
    if service and room > 40:
        sf = font(_fit_size(service, int(block.get("service_size", size * 3 // 4)), room, ctx),
                  ctx.font_path)
        sa, sd = sf.getmetrics()
        x = nw + 8 + max(0, (room - sf.getlength(service)) / 2)
        draw.text((x, (height - sa - sd) // 2), service, font=sf, fill=BLACK)
    return img


def _party(block: dict[str, Any], ctx: _Ctx) -> Image.Image | None:
    """A carrier label's 收 / 寄 box: the side word in its own cell, the lines beside it."""
    lines = [_fmt(str(line), ctx.fields) for line in block.get("lines", [])]
    lines = [line for line in lines if line]
    if not lines:
        return None
    side = str(block.get("label", ""))
    side_size = int(block.get("label_size", 40))
    size = int(block.get("size", 28))
    pad = 6
    side_w = (side_size + 2 * pad) if side else 0
    text_w = ctx.inner - side_w - 2 * pad
    first = _text_image(lines[0], int(block.get("first_size", size)), text_w, ctx, stroke=1,
                        max_lines=1)
    rest = [_text_image(line, size, text_w, ctx, max_lines=int(block.get("max_lines", 2)))
            for line in lines[1:]]
    body = _stack([first, *rest], text_w, 2)
    height = max(body.height + 2 * pad, len(side) * (side_size + 4) + 2 * pad)
    out = _blank(ctx.inner, height)
    out.paste(body, (side_w + pad, pad))
    draw = ImageDraw.Draw(out)
    if block.get("frame", True):
        draw.rectangle((0, 0, out.width - 1, out.height - 1), outline=BLACK, width=2)
    if side:
        draw.line((side_w, 0, side_w, height - 1), fill=BLACK, width=2)
        sf = font(side_size, ctx.font_path)
        y = (height - len(side) * (side_size + 4)) // 2
        for ch in side:  # written down the cell, as the carriers print 收件 / 寄件
            draw.text(((side_w - sf.getlength(ch)) / 2, y), ch, font=sf, fill=BLACK,
                      stroke_width=1, stroke_fill=BLACK)
            y += side_size + 4
    return out


_BLOCKS = {
    "header": _header, "text": _text, "rule": _rule, "barcode": _barcode, "qr_text": _qr_text,
    "gifts": _gifts, "items": _items, "spacer": _spacer, "carrier_header": _carrier_header,
    "party": _party,
}


# --- the label ----------------------------------------------------------------------------------


def render_label(
    order: Order,
    template: Template,
    *,
    station: str = "",
    printed_at: datetime | None = None,
    reprint_no: int = 0,
    font_path: str = "",
    generation: int = 1,
    relabel: bool = False,
    weight_kg: float | None = None,
) -> tuple[Image.Image, LabelInfo]:
    """The label as a 1-bit image exactly ``template.width`` dots wide (black = 0)."""
    fields = label_fields(order, station=station, printed_at=printed_at or datetime.now(),
                          reprint_no=reprint_no, generation=generation, relabel=relabel,
                          weight_kg=weight_kg)
    return render_fields(fields, template, order=order, font_path=font_path)


def _shown(block: Mapping[str, Any], fields: Mapping[str, str]) -> bool:
    cond, unless = block.get("if"), block.get("unless")
    return not (cond and not fields.get(str(cond))) and not (unless and fields.get(str(unless)))


def render_fields(fields: dict[str, str], template: Template, *, order: Order | None = None,
                  font_path: str = "") -> tuple[Image.Image, LabelInfo]:
    """Draw ``template``'s blocks over ``fields`` (and the order's gifts and items, if any).

    On fixed-length stock, blocks marked ``optional`` are left out, the last first, until the
    label fits; LabelInfo.omitted names them. Anything else that does not fit is an error.
    """
    ctx = _Ctx(template=template, fields=fields, order=order, font_path=font_path)
    parts: list[tuple[dict[str, Any], Image.Image]] = []
    for block in template.blocks:
        if not _shown(block, fields):
            continue
        img = _BLOCKS[block["type"]](block, ctx)
        if img is not None:
            parts.append((block, img))

    def height_of(kept: list[tuple[dict[str, Any], Image.Image]]) -> int:
        body = sum(img.height for _, img in kept) + template.gap * max(0, len(kept) - 1)
        return body + 2 * template.margin

    omitted: list[str] = []
    limit = template.length if template.length is not None else template.max_length
    while height_of(parts) > limit:
        optional = [i for i, (block, _) in enumerate(parts) if block.get("optional")]
        if not optional:
            break
        block, _ = parts.pop(optional[-1])
        name = str(block.get("name", block["type"]))
        if name not in omitted:  # blocks of one region share its name (a stub's rule and text)
            omitted.insert(0, name)
    body = _stack([img for _, img in parts], ctx.inner, template.gap)
    height = body.height + 2 * template.margin
    if template.length is not None:
        if height > template.length:
            raise LabelError(
                f"{template.name}: the label needs {height} dots but the stock is {template.length}"
            )
        height = template.length
    elif height > template.max_length:
        raise LabelError(f"{template.name}: the label needs {height} dots, more than "
                         f"max_length {template.max_length}")
    label = _blank(template.width, height)
    label.paste(body, (template.margin, template.margin))
    info = LabelInfo(
        barcode_text=ctx.info.get("barcode_text", ""),
        barcode_module=ctx.info.get("barcode_module", 0),
        barcode_rotated=ctx.info.get("barcode_rotated", False),
        barcode_modules=ctx.info.get("barcode_modules", 0),
        omitted=tuple(omitted),
    )
    return label, info
