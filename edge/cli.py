"""The ``scanedge`` command line.

Each area registers its own sub-commands (``register(subparsers, common)`` in the modules listed
in ``COMMAND_MODULES``) so that this file stays a dispatcher. Sub-command modules keep their heavy
imports (OpenCV, Tesseract) inside the handlers: ``scanedge --help`` must stay instant.

Exit status: 0 when the command ran (even if it found nothing), 2 for bad arguments, bad
settings or unreadable files, with one line on stderr; never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from scanedge.edge.config import ConfigError, Settings, load_settings

COMMAND_MODULES = (
    "scanedge.edge.commands",
    "scanedge.edge.accounts_cli",
    "scanedge.ocr.cli",
    "scanedge.ocr.waybill_cli",
    "scanedge.printers.cli",
    "scanedge.sync.cli",
    "scanedge.sync.carrier_cli",
    "scanedge.edge.report_cli",
    "scanedge.edge.scale_cli",
    "scanedge.edge.picking_cli",
)


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 2."""


_told: set[Path] = set()


def settings_from(args: argparse.Namespace, *, follow_demo: bool = True,
                  **overrides: object) -> Settings:
    """The settings of ``--config``; without one, those of the demo that runs (or ran) on this
    data_dir if there is one (its ``demo/scanedge.toml``: hub, token, printer), said on stderr,
    so that the commands next to ``scanedge serve --demo`` see what the demo uses."""
    config = getattr(args, "config", None)
    settings = load_settings(config, **overrides)
    if config is None and follow_demo:
        demo = settings.data_dir / "demo" / "scanedge.toml"  # edge.demo.demo_config
        if demo.is_file():
            settings = load_settings(demo, **overrides)
            if demo not in _told:  # once, though a command may read its settings twice
                _told.add(demo)
                print(f"scanedge: the demo's settings ({demo}); --config FILE for others",
                      file=sys.stderr)
    logging.getLogger().setLevel(settings.log_level.upper())
    return settings


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors as one line (``scanedge freeze: error: the following arguments
    are required: --reason (see scanedge freeze --help)``) instead of a usage block; sub-command
    parsers inherit it. Unrecognized arguments are found by the top parser after the sub-command
    parsed: the line names the deepest sub-command that ran."""

    deepest: str | None = None  # prog of the last parser that started parsing

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        OneLineParser.deepest = self.prog
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        prog = self.prog
        if message.startswith("unrecognized arguments") and OneLineParser.deepest:
            prog = OneLineParser.deepest
        self.exit(2, f"{prog}: error: {' '.join(message.split())} (see {prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="TOML settings file (SCANEDGE_* variables win)")
    parser = OneLineParser(
        prog="scanedge",
        description="Warehouse edge service: scans, barcodes, waybills, labels, freezes, sync.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that area has no commands yet
                continue
            raise
        module.register(sub, common)
    return parser


def _quiet_escpos(record: logging.LogRecord) -> bool:
    # python-escpos logs every connect/close at INFO on the root logger: keep its warnings only.
    return record.levelno >= logging.WARNING or "/escpos/" not in record.pathname


def _store_error(e: Exception) -> bool:
    # not imported here: the store's imports would slow `scanedge --help` down by ~0.3 s, and
    # an error of a store that was never imported cannot be one
    db = sys.modules.get("scanedge.edge.store.db")
    return db is not None and isinstance(e, db.StoreError)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_quiet_escpos)
    try:
        return int(args.func(args) or 0)
    except (CliError, ConfigError) as e:
        print(f"scanedge {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `scanedge decode ... | head`
        return 0
    except UnicodeEncodeError as e:  # an argument or a file in another encoding than UTF-8
        print(f"scanedge {args.command}: text that is not valid UTF-8 ({e.reason}): give "
              "arguments and files in UTF-8", file=sys.stderr)
        return 2
    except Exception as e:
        if not _store_error(e):
            raise
        # the store refused the write: DiskFull below min_free_mb, a read-only or broken disk
        print(f"scanedge {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
