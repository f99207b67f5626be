"""``scanedge label`` (render without a printer) and ``scanedge printer-sim``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("label", parents=[common],
                       help="render an order's label (or a carrier e-waybill) to PNG and ESC/POS bytes")
    p.add_argument("order", metavar="ORDER.json", nargs="?",
                   help="one order (the order JSON of docs/interfaces.md); with --ewaybill, optional: "
                   "its P0 and gift lines go on the carrier label")
    p.add_argument("--ewaybill", metavar="EWAYBILL.json",
                   help="render this carrier e-waybill (docs/carriers.md) in its carrier's layout")
    p.add_argument("--paper", choices=("58", "80", "100x150", "76x130", "100x180"),
                   help="paper (default: the printer model's, see printer_model / paper settings)")
    p.add_argument("--template", metavar="NAME", help="template name or .toml path (default standard_PAPER)")
    p.add_argument("--model", metavar="MODEL", help="printer model row (default: printer_model setting)")
    p.add_argument("--reprint", type=int, default=0, metavar="N", help='mark the label "补打 #N"')
    p.add_argument("--png", metavar="OUT.png", help="write the label image")
    p.add_argument("--escpos", metavar="OUT.bin", help="write the ESC/POS bytes")
    p.set_defaults(func=_cmd_label)

    s = sub.add_parser("printer-sim", parents=[common], help="run a virtual ESC/POS network printer")
    s.add_argument("--listen", default="127.0.0.1:9100", metavar="HOST:PORT")
    s.add_argument("--mode", default="ok", help="ok, paper_near_end, paper_out, cover_open, offline, "
                   "silent, disconnect_mid_job, paper_out_mid_job")
    s.add_argument("--dots", type=int, default=576, help="paper width in dots (384, 576, 832)")
    s.add_argument("--speed", type=float, default=0.0, metavar="MM_S",
                   help="print speed to emulate in mm/s (0 = instant)")
    s.add_argument("--save", metavar="DIR", help="save each printed label as DIR/label-NNNN.png")
    s.set_defaults(func=_cmd_printer_sim)


def _cmd_label(args: argparse.Namespace) -> int:
    from datetime import datetime

    from scanedge.edge.cli import CliError, settings_from
    from scanedge.edge.domain.orders import OrderError, parse_order
    from scanedge.printers.encode import label_bytes
    from scanedge.printers.fonts import FontError
    from scanedge.printers.layout import LabelError, load_template, render_label
    from scanedge.printers.models import ModelError, get_model

    if not args.png and not args.escpos:
        raise CliError("nothing to write: give --png OUT.png and/or --escpos OUT.bin")
    settings = settings_from(args)
    if args.ewaybill:
        return _cmd_ewaybill_label(args, settings)
    if not args.order:
        raise CliError("give ORDER.json (or --ewaybill EWAYBILL.json)")
    doc = _read_json(args.order)
    if isinstance(doc, list):
        if len(doc) != 1:
            raise CliError(f"{args.order}: holds {len(doc)} orders; give a file with one")
        doc = doc[0]
    try:
        order = parse_order(doc)
        model = get_model(args.model or settings.printer_model)
        paper = args.paper or settings.paper or model.paper
        template = load_template(args.template or settings.label_template or f"standard_{paper}")
        if args.template and args.paper and template.paper != args.paper:
            raise CliError(f"template {template.name} is for {template.paper} paper, not {args.paper}")
        if template.paper != model.paper and not args.model:
            # the configured model is for other paper: use the generic one of this paper
            model = get_model(f"generic-{template.paper}")
        image, info = render_label(order, template, station=settings.station,
                                   printed_at=datetime.now(), reprint_no=args.reprint,
                                   font_path=settings.label_font)
        data = label_bytes([image], model, beep=False)
    except (OrderError, LabelError, ModelError, FontError, ValueError) as e:
        raise CliError(str(e)) from None
    _write(args, image, data)
    print(json.dumps({
        "order_id": order.order_id, "template": template.name, "paper": template.paper,
        "model": model.name, "width": image.width, "height": image.height, "bytes": len(data),
        "barcode": {"text": info.barcode_text, "module_dots": info.barcode_module,
                    "rotated": info.barcode_rotated},
        "png": args.png, "escpos": args.escpos,
    }, ensure_ascii=False))
    return 0


def _write(args: argparse.Namespace, image, data: bytes) -> None:
    """--png and --escpos, as asked."""
    from scanedge.edge.cli import CliError

    try:
        if args.png:
            image.save(args.png)
        if args.escpos:
            Path(args.escpos).write_bytes(data)
    except OSError as e:
        raise CliError(f"cannot write output: {e}") from None


def _read_json(path: str) -> object:
    from scanedge.edge.cli import CliError

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise CliError(f"{path}: {e.strerror or e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CliError(f"{path}: not valid JSON: {e}") from None
    except RecursionError:
        raise CliError(f"{path}: not valid JSON: nested too deeply") from None


def _cmd_ewaybill_label(args: argparse.Namespace, settings) -> int:
    from datetime import datetime

    from scanedge.edge.cli import CliError
    from scanedge.edge.domain.ewaybill import EWaybill
    from scanedge.edge.domain.orders import OrderError, parse_order
    from scanedge.edge.domain.refusal import Refusal
    from scanedge.printers.encode import label_bytes
    from scanedge.printers.ewaybill_label import (
        describe,
        ewaybill_size,
        ewaybill_template,
        render_ewaybill,
    )
    from scanedge.printers.fonts import FontError
    from scanedge.printers.layout import LabelError
    from scanedge.printers.models import ModelError, get_model

    try:
        ewb = EWaybill.from_json(_read_json(args.ewaybill))
        order = None
        if args.order:
            doc = _read_json(args.order)
            order = parse_order(doc[0] if isinstance(doc, list) and len(doc) == 1 else doc)
        model = get_model(args.model or settings.printer_model)
        size = ewaybill_size(args.paper or settings.paper or model.paper)
        template = ewaybill_template(ewb.carrier, size)
        if template.width > model.dots and not args.model:
            model = get_model("generic-100x150")  # the configured model is narrower: a 4-inch one
        if template.width > model.dots:
            raise CliError(f"the {template.name} layout is {template.width} dots wide; "
                           f"printer model {model.name} prints {model.dots}")
        image, info = render_ewaybill(ewb, template, order=order, station=settings.station,
                                      printed_at=datetime.now(), font_path=settings.label_font)
        data = label_bytes([image], model, beep=False)
    except Refusal as e:
        raise CliError(e.message) from None
    except (OrderError, LabelError, ModelError, FontError, ValueError) as e:
        raise CliError(str(e)) from None
    _write(args, image, data)
    print(json.dumps({
        "order_id": ewb.order_id, "carrier": ewb.carrier, "number": ewb.number,
        **describe(info, template), "model": model.name, "width": image.width,
        "height": image.height, "bytes": len(data), "png": args.png, "escpos": args.escpos,
    }, ensure_ascii=False))
    return 0


def _cmd_printer_sim(args: argparse.Namespace) -> int:
    from scanedge.edge.cli import CliError
    from scanedge.printers.sim import MODES, run

    if args.mode not in MODES:
        raise CliError(f"--mode {args.mode!r}: expected one of {', '.join(MODES)}")
    port = args.listen.rpartition(":")[2]
    if not port.isdigit():
        raise CliError(f"--listen {args.listen!r}: expected HOST:PORT")
    if args.save and not Path(args.save).is_dir():
        raise CliError(f"--save {args.save!r}: not a directory")
    try:
        run(args.listen, args.mode, args.dots, args.speed, args.save)
    except OSError as e:
        raise CliError(f"cannot listen on {args.listen}: {e}") from None
    return 0
