"""``scanedge scale-sim`` (a virtual scale) and ``scanedge scale`` (what the configured scale
reads now): docs/scale.md."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    s = sub.add_parser("scale-sim", parents=[common],
                       help="run a virtual shipping scale on a TCP port or a pseudo-terminal")
    where = s.add_mutually_exclusive_group()
    where.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT",
                       help="serve on this TCP port (default: a free one on 127.0.0.1)")
    where.add_argument("--pty", action="store_true",
                       help="serve on a new pseudo-terminal (/dev/pts/N), as a serial scale")
    s.add_argument("--protocol", default="continuous", help="continuous (ST,GS,+  1.234kg) or sics "
                   "(MT-SICS: S S      1.234 kg)")
    s.add_argument("--weight", type=float, default=1.0, metavar="KG", help="the weight shown (kg)")
    s.add_argument("--mode", default="ok", help="ok, unstable, overload, disconnect")
    s.add_argument("--unit", default="kg", help="the unit it reports in: kg, g, lb")
    s.add_argument("--interval", type=float, default=0.1, metavar="S",
                   help="seconds between two lines of a continuous scale")
    s.set_defaults(func=_cmd_scale_sim)

    r = sub.add_parser("scale", parents=[common],
                       help="read the configured scale (the `scale` setting) until it settles")
    r.add_argument("--timeout", type=float, default=5.0, metavar="S",
                   help="how long to wait for a stable weight")
    r.set_defaults(func=_cmd_scale)


def _cmd_scale_sim(args: argparse.Namespace) -> int:
    from scanedge.edge.cli import CliError
    from scanedge.edge.scale_sim import MODES, PROTOCOLS, UNITS, run

    if args.mode not in MODES:
        raise CliError(f"--mode {args.mode!r}: expected one of {', '.join(MODES)}")
    if args.protocol not in PROTOCOLS:
        raise CliError(f"--protocol {args.protocol!r}: expected one of {', '.join(PROTOCOLS)}")
    if args.unit not in UNITS:
        raise CliError(f"--unit {args.unit!r}: expected one of {', '.join(UNITS)}")
    if not 0 < args.interval <= 10:
        raise CliError("--interval: seconds from above 0 to 10")
    port = args.listen.rpartition(":")[2]
    if not port.isdigit() or int(port) > 65535:
        raise CliError(f"--listen {args.listen!r}: expected HOST:PORT")
    try:
        run(listen=None if args.pty else args.listen, pty=args.pty, protocol=args.protocol,
            weight_kg=args.weight, mode=args.mode, unit=args.unit, interval=args.interval)
    except OSError as e:
        where = "a pseudo-terminal" if args.pty else args.listen
        raise CliError(f"cannot serve on {where}: {e.strerror or e}") from None
    return 0


def _cmd_scale(args: argparse.Namespace) -> int:
    """One JSON line: the scale's state and its settled weight (null when none came in time)."""
    import time

    from scanedge.edge.cli import CliError, settings_from
    from scanedge.edge.domain.scale import parse_scale_address
    from scanedge.edge.scale import ScaleReader

    settings = settings_from(args)
    address = parse_scale_address(settings.scale)  # checked when the settings were read
    if address is None:
        raise CliError('no scale configured (scale = "none"): set `scale`, docs/scale.md')
    reader = ScaleReader(address).start()
    try:
        deadline = time.monotonic() + max(0.0, args.timeout)
        state = reader.state()
        while state.weight_kg is None and time.monotonic() < deadline:
            time.sleep(0.05)
            state = reader.state()
    finally:
        reader.stop()
    print(json.dumps({"scale": address.describe(), **state.as_json()}))
    return 0
