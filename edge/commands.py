"""Sub-commands of the edge device: serve, orders import, scan, freeze, unfreeze, outbox."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from scanedge.edge.cli import CliError, settings_from
from scanedge.edge.config import Settings
from scanedge.edge.domain.packing import FREEZE_REASONS

if TYPE_CHECKING:
    from scanedge.edge.store import Store



def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", parents=[common], help="run the edge service")
    p.add_argument("--listen", help="HOST:PORT (overrides the `listen` setting)")
    p.add_argument("--demo", action="store_true",
                   help="a whole site in one process: local hub with the demo orders, "
                        "virtual printer, this edge service")
    p.add_argument("--fresh", action="store_true",
                   help="with --demo: remove the last demo's data first (orders, scans, tokens)")
    p.set_defaults(func=_serve)

    p = sub.add_parser("orders", help="manage the orders on this device")
    osub = p.add_subparsers(dest="orders_command", metavar="ACTION", required=True)
    imp = osub.add_parser("import", parents=[common], help="import orders from JSON or CSV")
    imp.add_argument("file", type=Path, nargs="?", help="order JSON (one or a list) or CSV")
    imp.add_argument("--demo", action="store_true", help="import the bundled demo orders")
    imp.set_defaults(func=_orders_import)

    p = sub.add_parser("scan", parents=[common], help="apply one scan, as the HTTP API would")
    p.add_argument("code", help="what the scanner typed")
    p.add_argument("--station", help="station (default: the `station` setting)")
    p.add_argument("--operator")
    p.add_argument("--json", action="store_true", help="print the full JSON answer")
    p.set_defaults(func=_scan)

    p = sub.add_parser("freeze", parents=[common], help="freeze an order on this device")
    p.add_argument("order_id")
    p.add_argument("--reason", required=True, choices=FREEZE_REASONS)
    p.set_defaults(func=_freeze)

    p = sub.add_parser("unfreeze", parents=[common], help="lift a local freeze")
    p.add_argument("order_id")
    p.set_defaults(func=_unfreeze)

    p = sub.add_parser("config", parents=[common],
                       help="show the effective settings (file, SCANEDGE_* variables, defaults)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--markdown", action="store_true", help="the table of docs/configuration.md")
    p.set_defaults(func=_config)

    p = sub.add_parser("outbox", parents=[common], help="outbox depth and oldest unsent event")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_outbox)

    p = sub.add_parser("backup", parents=[common],
                       help="copy edge.db (and hub.db) consistently, even while serving")
    p.add_argument("--to", type=Path, metavar="DIR", help="where (default: <data_dir>/backups)")
    p.add_argument("--keep", type=int, help="backups kept per database (default: backup_keep)")
    p.set_defaults(func=_backup)

    p = sub.add_parser("restore", parents=[common],
                       help="put a backup back (the service must be stopped, or --force)")
    p.add_argument("file", type=Path, help="a file made by `scanedge backup`")
    p.add_argument("--force", action="store_true", help="restore even while the service runs")
    p.set_defaults(func=_restore)


@contextmanager
def opened_store(settings: Settings) -> Iterator[Store]:
    """The device's store for one command, closed after it; a one-line error if it won't open."""
    from scanedge.edge.store import Store, StoreError

    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = Store(settings.edge_db_path, min_free_mb=settings.min_free_mb)
    except (OSError, StoreError) as e:
        raise CliError(f"cannot open the store in {settings.data_dir}: {e}") from None
    try:
        yield store
    finally:
        store.close()


def load_demo_orders(store) -> str:
    from scanedge.edge.demo import demo_orders
    from scanedge.edge.importing import import_orders

    report = import_orders(store, [(doc["order_id"], doc) for doc in demo_orders()])
    assert not report.rejected, report.rejected
    return report.summary()


def _serve(args: argparse.Namespace) -> int:
    if args.fresh and not args.demo:
        raise CliError("--fresh resets the demo: give it with --demo")
    settings = settings_from(args, follow_demo=False, listen=args.listen)
    if args.demo:
        from scanedge.edge.demo import run_demo

        return run_demo(settings, fresh_start=args.fresh)
    from scanedge.edge.server import serve

    return serve(settings)


def _orders_import(args: argparse.Namespace) -> int:
    from scanedge.edge.domain.orders import OrderError
    from scanedge.edge.importing import import_orders, iter_report_lines, read_documents

    settings = settings_from(args)
    if args.demo == (args.file is not None):
        raise CliError("give a FILE or --demo")
    with opened_store(settings) as store:
        if args.demo:
            print(load_demo_orders(store))
            return 0
        try:
            docs, rejected = read_documents(args.file)
        except OrderError as e:
            raise CliError(str(e)) from None
        report = import_orders(store, docs)
    report.rejected[:0] = rejected
    for line in iter_report_lines(report):
        print(line)
    return 0


def _scan(args: argparse.Namespace) -> int:
    from scanedge.edge.scanning import ScanInputError, ScanService

    settings = settings_from(args)
    with opened_store(settings) as store:
        try:
            result = ScanService(store, settings).scan(args.code, station=args.station,
                                                       operator=args.operator)
        except ScanInputError as e:
            raise CliError(str(e)) from None
    if args.json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
    else:
        print(f"{result['verdict']}: {result['message']['zh']} / {result['message']['en']}")
    return 0


def _order_id(text: str) -> str:
    from scanedge.edge.domain.orders import ORDER_ID_RE

    if not ORDER_ID_RE.fullmatch(text):  # no order has another id: nothing to freeze by it
        shown = text[:80].encode("utf-8", "backslashreplace").decode()
        raise CliError(f"order id '{shown}': 1-64 letters, digits, '-', '_', '.', '/'")
    return text


def _freeze(args: argparse.Namespace) -> int:
    from scanedge.edge.freezes.local import freeze_order

    _order_id(args.order_id)
    settings = settings_from(args)
    with opened_store(settings) as store:
        freeze = freeze_order(store, settings.device_id, args.order_id, args.reason, source="cli")
    print(f"order {args.order_id} frozen ({freeze.reason}) at {freeze.issued_at.isoformat()}")
    return 0


def _unfreeze(args: argparse.Namespace) -> int:
    from scanedge.edge.freezes.local import unfreeze_order

    _order_id(args.order_id)
    settings = settings_from(args)
    with opened_store(settings) as store:
        lifted = unfreeze_order(store, settings.device_id, args.order_id, source="cli")
    print(f"order {args.order_id}: " + ("freeze lifted" if lifted else "was not frozen"))
    return 0


def _outbox(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from scanedge.edge.store.outbox import outbox_status

    settings = settings_from(args)
    with opened_store(settings) as store:
        status = outbox_status(store.read())
    if args.json:
        print(json.dumps(asdict(status)))
    else:
        oldest = (f"oldest unsent: #{status.oldest_pending_seq} at {status.oldest_pending_time}"
                  if status.oldest_pending_seq else "nothing unsent")
        print(f"outbox: {status.pending} pending, {status.parked} parked, "
              f"{status.acked} acknowledged; {oldest}", file=sys.stdout)
    return 0


def _config(args: argparse.Namespace) -> int:
    from scanedge.edge.config import KEYS, markdown_table

    if args.markdown:
        print(markdown_table())
        return 0
    settings = settings_from(args)
    print(f"# settings from {settings.source}, SCANEDGE_* variables and defaults",
          file=sys.stderr)
    secret = ("hub_token", "hub_admin_token")
    values = {k.name: ("***" if k.name in secret and getattr(settings, k.name) else
                       str(getattr(settings, k.name))) for k in KEYS}
    if args.json:
        print(json.dumps(values, ensure_ascii=False))
        return 0
    width = max(len(k.name) for k in KEYS)
    for key in KEYS:
        print(f"{key.name:<{width}}  {values[key.name]:<30}  {key.help}")
    return 0


def _backup(args: argparse.Namespace) -> int:
    from scanedge.edge.backup import BackupError, backup, become_data_owner

    settings = settings_from(args)
    become_data_owner(settings.data_dir)
    try:
        made = backup(settings, to=args.to, keep=args.keep)
    except BackupError as e:
        raise CliError(str(e)) from None
    if not made:
        print(f"nothing to back up: no database in {settings.data_dir}", file=sys.stderr)
    for path in made:
        print(path)
    return 0


def _restore(args: argparse.Namespace) -> int:
    from scanedge.edge.backup import BackupError, become_data_owner, restore

    settings = settings_from(args)
    become_data_owner(settings.data_dir)
    try:
        kind, target, safety = restore(settings, args.file, force=args.force)
    except BackupError as e:
        raise CliError(str(e)) from None
    if safety is not None:
        print(f"the {kind} database as it was is kept in {safety}", file=sys.stderr)
    print(f"restored {args.file} into {target}")
    return 0
