"""``scanedge carrier-sim``: a carrier's e-waybill API on 127.0.0.1 (sync/carriers/sim.py)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("carrier-sim", parents=[common],
                       help="run a carrier's e-waybill API simulator (SF, ZTO, J&T) on 127.0.0.1")
    p.add_argument("--carrier", required=True, choices=("sf", "zto", "jt"))
    p.add_argument("--listen", default="127.0.0.1:9310", metavar="HOST:PORT")
    p.add_argument("--key", default="scanedge-demo",
                   help="the account's key it accepts (SF partnerID, ZTO appKey, J&T apiAccount)")
    p.add_argument("--secret", default="scanedge-demo-secret",
                   help="the secret it checks signatures with (SF checkword, ZTO appSecret, "
                        "J&T privateKey)")
    p.add_argument("--customer-code", default="", help="J&T customerCode it accepts")
    p.add_argument("--customer-password", default="", help="J&T customer password")
    p.add_argument("--quota", type=int, default=None, metavar="N",
                   help="waybills it issues before answering 'quota exhausted' (default: no limit)")
    p.set_defaults(func=_carrier_sim)


def _carrier_sim(args: argparse.Namespace) -> int:
    from scanedge.edge.cli import CliError
    from scanedge.sync.carriers.sim import run

    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise CliError(f"--listen {args.listen!r}: expected HOST:PORT")
    if args.quota is not None and args.quota < 0:
        raise CliError("--quota: expected 0 or more")
    try:
        run(args.carrier, args.listen, key=args.key, secret=args.secret,
            customer_code=args.customer_code, customer_password=args.customer_password,
            quota=args.quota)
    except OSError as e:
        raise CliError(f"cannot listen on {args.listen}: {e.strerror or e}") from None
    return 0
