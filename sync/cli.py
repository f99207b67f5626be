"""Sub-commands: ``scanedge hub [add-device ID | device ID | add-token NAME | devices |
public-key]``,
``scanedge sync [status | --once]``, ``scanedge enroll STRING``."""

from __future__ import annotations

import argparse
import json
import re
import sys

from scanedge.edge.cli import CliError, settings_from
from scanedge.edge.domain.orders import DEFAULT_SITE, SITE_RE


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("hub", parents=[common], help="run the hub, or manage its devices")
    hsub = p.add_subparsers(dest="hub_command", metavar="ACTION")
    add = hsub.add_parser("add-device", parents=[common],
                          help="register a device (or re-issue its token) and print its enrolment "
                               "string (hub URL, token, hub key) for `scanedge enroll`")
    add.add_argument("device_id")
    add.add_argument("--site", default=DEFAULT_SITE,
                     help=f"the warehouse the device works at: it sees only that site's orders "
                          f"(default {DEFAULT_SITE!r})")
    add.add_argument("--url", help="the hub's address as the device reaches it (default: "
                                   "http://<hub_listen>, an any-address listen replaced by this "
                                   "machine's host name)")
    _can_decide_flag(add, "may decide its site's expedite/cancel conflicts (a supervisor signed "
                          "in at the device: /supervisor); default: a new device may not, a "
                          "re-issued one keeps what it had")
    add.set_defaults(func=_add_device)
    dev = hsub.add_parser("device", parents=[common],
                          help="change a registered device without re-issuing its token")
    dev.add_argument("device_id")
    _can_decide_flag(dev, "grant (--can-decide) or revoke (--no-can-decide) deciding conflicts")
    dev.set_defaults(func=_device)
    tok = hsub.add_parser("add-token", parents=[common],
                          help="make (or re-issue) an order-system token, limited to --site(s)")
    tok.add_argument("name", help="who uses it, e.g. the warehouse's order system")
    tok.add_argument("--site", action="append", default=[], metavar="SITE",
                     help="a site the token may read and change (repeat for several)")
    tok.add_argument("--all-sites", action="store_true", help="every site (like the admin token)")
    tok.set_defaults(func=_add_token)
    lst = hsub.add_parser("devices", parents=[common], help="list the registered devices")
    lst.set_defaults(func=_devices)
    key = hsub.add_parser("public-key", parents=[common],
                          help="print the hub's command-signing public key (devices' hub_public_key)")
    key.set_defaults(func=_public_key)
    p.set_defaults(func=_serve_hub)

    p = sub.add_parser("enroll", parents=[common],
                       help="write the hub's enrolment string (hub URL, token, hub key, device "
                            "id) into this device's config file")
    p.add_argument("string", help="what `scanedge hub add-device ID` printed on the hub")
    p.set_defaults(func=_enroll)

    p = sub.add_parser("sync", parents=[common], help="sync status, or drain the outbox once")
    p.add_argument("action", nargs="?", choices=("status",), help="show the sync status")
    p.add_argument("--once", action="store_true",
                   help="push every pending event and pull changes, then exit")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_sync)


def _can_decide_flag(parser: argparse.ArgumentParser, help_: str) -> None:
    parser.add_argument("--can-decide", action=argparse.BooleanOptionalAction, default=None,
                        help=help_)


def _serve_hub(args: argparse.Namespace) -> int:
    from scanedge.sync.hub.server import serve_hub

    return serve_hub(settings_from(args))


def _storage(args: argparse.Namespace):
    from scanedge.sync.hub.server import open_hub_storage

    settings = settings_from(args)
    try:
        return open_hub_storage(settings)
    except Exception as e:  # sqlite3/psycopg errors: say which database
        raise CliError(f"cannot open the hub database {settings.hub_database}: "
                       f"{' '.join(str(e).split())}") from None


def _check_site(site: str) -> str:
    if not SITE_RE.fullmatch(site):
        raise CliError(f"site {site!r}: 1-64 letters, digits, '.', '_' or '-'")
    return site


def hub_url_for_devices(settings, url: str | None) -> str:
    """``--url``, else ``http://<hub_listen>`` with an any-address host (0.0.0.0, ::) replaced
    by this machine's host name: the address devices are told in their enrolment string."""
    import socket

    from scanedge.edge.config import _hub_url

    if url is None:
        host, _, port = settings.hub_listen.rpartition(":")
        if host.strip("[]") in ("0.0.0.0", "::", ""):
            host = socket.gethostname()
        url = f"http://{host}:{port}"
    if not url or _hub_url(url):
        raise CliError(f"--url {url!r}: expected http(s)://HOST[:PORT], as the device reaches "
                       "the hub")
    return url.rstrip("/")


def _add_device(args: argparse.Namespace) -> int:
    from scanedge.sync.enroll import make_enrollment
    from scanedge.sync.hub.app import DEVICE_ID_RE

    if not DEVICE_ID_RE.fullmatch(args.device_id):
        raise CliError("device id: 1-64 letters, digits, '.', '_' or '-'")
    site = _check_site(args.site)
    url = hub_url_for_devices(settings_from(args), args.url)
    storage = _storage(args)
    try:
        token = storage.add_device(args.device_id, site, args.can_decide)
        public = storage.signer().public_b64  # made now if the hub never started
    finally:
        storage.close()
    print(make_enrollment(url, args.device_id, token, public, site))
    print(f"device {args.device_id} registered at site {site}. On the device: "
          f"scanedge enroll '<the line above>' (or systemd/install.sh --enroll '<...>'). It holds "
          f"the device's token (shown once): hand it over like a password. Hub address in it: "
          f"{url} (--url to change)", file=sys.stderr)
    return 0


def _device(args: argparse.Namespace) -> int:
    if args.can_decide is None:
        raise CliError("say what to change: --can-decide or --no-can-decide")
    storage = _storage(args)
    try:
        found = storage.set_can_decide(args.device_id, args.can_decide)
    finally:
        storage.close()
    if not found:
        raise CliError(f"no device {args.device_id!r}: register it with scanedge hub add-device")
    print(f"device {args.device_id} {'may' if args.can_decide else 'may not'} decide conflicts "
          "(its token is unchanged)")
    return 0


def _enroll(args: argparse.Namespace) -> int:
    from scanedge.sync.enroll import EnrollError, enroll

    try:
        for line in enroll(args.string, getattr(args, "config", None)):
            print(line)
    except EnrollError as e:
        raise CliError(str(e)) from None
    return 0


def _add_token(args: argparse.Namespace) -> int:
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", args.name):
        raise CliError("token name: 1-64 letters, digits, '.', '_' or '-'")
    if args.all_sites == bool(args.site):
        raise CliError("say which sites: --site SITE (repeat for several) or --all-sites")
    sites = None if args.all_sites else [_check_site(s) for s in args.site]
    storage = _storage(args)
    try:
        token = storage.add_admin_token(args.name, sites)
    finally:
        storage.close()
    print(token)
    where = "every site" if sites is None else "site " + ", ".join(sorted(set(sites)))
    print(f"order-system token {args.name!r} for {where} (shown once; stored hashed): send it "
          "as 'Authorization: Bearer <token>'", file=sys.stderr)
    return 0


def _devices(args: argparse.Namespace) -> int:
    storage = _storage(args)
    try:
        devices = storage.devices()
    finally:
        storage.close()
    for d in devices:
        print(f"{d['device_id']}\tsite {d['site']}\tlast push {d['last_push'] or '-'}"
              f"\tlast seq {d['last_seq'] or '-'}"
              + ("\tcan decide" if d["can_decide"] else ""))
    return 0


def _public_key(args: argparse.Namespace) -> int:
    from scanedge.sync.signing import key_id

    storage = _storage(args)
    try:
        public = storage.signer().public_b64  # made now if the hub never started
    finally:
        storage.close()
    print(public)
    print(f"key id {key_id(public)}; on each device: hub_public_key = \"{public}\"", file=sys.stderr)
    return 0


def _sync(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from scanedge.edge.commands import opened_store
    from scanedge.edge.store.outbox import outbox_status
    from scanedge.edge.store.syncstate import get_cursor, get_state

    settings = settings_from(args)
    with opened_store(settings) as store:
        if args.once:
            return _sync_once(settings, store)
        db = store.read()
        status = {**asdict(outbox_status(db)), "hub_url": settings.hub_url or None,
                  "cursor": get_cursor(db), "last_push_ok": get_state(db, "last_push_ok"),
                  "last_pull_ok": get_state(db, "last_pull_ok")}
    if args.json:
        print(json.dumps(status))
    else:
        for key, value in status.items():
            print(f"{key:20} {value if value is not None else '-'}")
    return 0


def _sync_once(settings, store) -> int:
    from scanedge.edge.progress import Progress
    from scanedge.sync.client import HubRefused, HubUnavailable
    from scanedge.sync.worker import SyncWorker

    if not settings.hub_url:
        raise CliError("no hub_url set: this device is offline")
    worker = SyncWorker(store, settings)  # pins a configured hub key
    pending = store.read().execute(
        "SELECT COUNT(*) FROM events WHERE state = 'pending'").fetchone()[0]
    bar = Progress(pending)
    try:
        pushed = worker.drain(progress=lambda done, left: bar.show(done, "events pushed"))
        applied = worker.pull_once()
    except (HubUnavailable, HubRefused) as e:
        bar.done()
        raise CliError(f"hub {settings.hub_url}: {e}") from None
    bar.done()
    print(f"pushed {pushed.sent} events ({pushed.acked} acknowledged, {pushed.parked} parked); "
          f"pulled {applied.count} changes, cursor {applied.cursor}")
    return 0
