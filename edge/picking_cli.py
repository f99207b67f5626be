"""``scanedge route --layout LAYOUT.toml PICKS.json [--json] [--method ...]`` (docs/interfaces.md)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("route", parents=[common],
                       help="the pick route through a list of location codes (docs/picking.md)")
    p.add_argument("--layout", required=True, metavar="LAYOUT.toml", help="the site's layout")
    p.add_argument("picks", metavar="PICKS.json", help="a JSON list of location codes")
    p.add_argument("--method", default="best", choices=("best", "s_shape", "ratliff_rosenthal"))
    p.add_argument("--json", action="store_true", help="one JSON object: stops, length_m, method")
    p.set_defaults(func=_route)


def _read(path: str, what: str) -> str:
    from scanedge.edge.cli import CliError

    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"{what} {path}: cannot be read ({getattr(e, 'strerror', None) or e})") \
            from None


def _route(args: argparse.Namespace) -> int:
    from scanedge.edge.cli import CliError
    from scanedge.edge.domain.layout import LayoutError, parse_layout
    from scanedge.edge.domain.routing import route

    try:
        layout = parse_layout(_read(args.layout, "layout"))
    except LayoutError as e:
        raise CliError(f"{args.layout}: {e}") from None
    try:
        picks = json.loads(_read(args.picks, "picks"))
    except json.JSONDecodeError as e:
        raise CliError(f"{args.picks}: not JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(picks, list):
        raise CliError(f"{args.picks}: expected a JSON list of location codes")
    try:
        locations = [layout.location(code) for code in picks]
    except LayoutError as e:
        raise CliError(f"{args.picks}: {e}") from None
    result = route(layout, locations, args.method)
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        print(f"{len(result.stops)} stops, {result.length_m:.1f} m ({result.method})")
        for i, code in enumerate(result.stops, 1):
            print(f"{i:3d}  {code}")
    return 0
