"""Sub-commands: ``scanedge user add|list|disable`` and ``scanedge token add|list|revoke``.

PINs are never taken on the command line (they would sit in the shell history and in ``ps``):
``--pin`` asks for it on the terminal, or reads one line from standard input when that is not a
terminal (``echo 4711 | scanedge user add ...`` in a provisioning script).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from scanedge.edge.cli import CliError, settings_from
from scanedge.edge.domain.access import ROLES, AccessError


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("user", parents=[common], help="people who sign in at the stations")
    usub = p.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = usub.add_parser("add", parents=[common], help="add a user (or change one)")
    add.add_argument("user_id", help="e.g. an employee number")
    add.add_argument("--name", required=True, help="shown on the pages and in the audit trail")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--badge", help="the code printed on the user's badge (scanned to sign in)")
    add.add_argument("--pin", action="store_true",
                     help="set a PIN: asked on the terminal, or one line of standard input")
    add.set_defaults(func=_user_add)
    lst = usub.add_parser("list", parents=[common], help="the users")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_user_list)
    dis = usub.add_parser("disable", parents=[common], help="stop a user signing in (ends sessions)")
    dis.add_argument("user_id")
    dis.set_defaults(func=_user_disable)

    p = sub.add_parser("token", parents=[common], help="API tokens for scripts and order systems")
    tsub = p.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    add = tsub.add_parser("add", parents=[common], help="make (or re-issue) a token; shown once")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.set_defaults(func=_token_add)
    lst = tsub.add_parser("list", parents=[common], help="the tokens (names and roles)")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_token_list)
    rev = tsub.add_parser("revoke", parents=[common], help="revoke a token")
    rev.add_argument("name")
    rev.set_defaults(func=_token_revoke)


@contextmanager
def _accounts(args: argparse.Namespace) -> Iterator:
    from scanedge.edge.accounts import Accounts
    from scanedge.edge.commands import opened_store

    settings = settings_from(args)
    with opened_store(settings) as store:
        yield Accounts(store, settings.device_id, session_hours=settings.session_hours)


def _checked(fn: Callable[[], object]) -> object:
    try:
        return fn()
    except AccessError as e:
        raise CliError(str(e)) from None


def _read_pin() -> str:
    if sys.stdin.isatty():
        pin = getpass.getpass("PIN: ")
        if getpass.getpass("PIN again: ") != pin:
            raise CliError("the two PINs differ")
        return pin
    return sys.stdin.readline().strip()


def _user_add(args: argparse.Namespace) -> int:
    pin = _read_pin() if args.pin else None
    with _accounts(args) as accounts:
        _checked(lambda: accounts.add_user(args.user_id, args.name, args.role, badge=args.badge,
                                           pin=pin))
    how = [w for w, on in (("badge", args.badge), ("PIN", pin)) if on]
    print(f"user {args.user_id} ({args.role}) saved; signs in with "
          f"{' or '.join(how) if how else 'nothing yet: give a --badge or a --pin'}",
          file=sys.stderr)
    return 0


def _user_list(args: argparse.Namespace) -> int:
    with _accounts(args) as accounts:
        users = accounts.users()
    if args.json:
        print(json.dumps(users, ensure_ascii=False))
        return 0
    for u in users:
        state = f"disabled {u['disabled_at']}" if u["disabled_at"] else "active"
        ways = "+".join(w for w in ("badge", "pin") if u[w]) or "-"
        print(f"{u['user_id']}\t{u['name']}\t{u['role']}\t{ways}\t{state}")
    return 0


def _user_disable(args: argparse.Namespace) -> int:
    with _accounts(args) as accounts:
        if not accounts.disable_user(args.user_id):
            raise CliError(f"no active user {args.user_id}")
    print(f"user {args.user_id} disabled; their sessions ended", file=sys.stderr)
    return 0


def _token_add(args: argparse.Namespace) -> int:
    with _accounts(args) as accounts:
        token = _checked(lambda: accounts.add_token(args.name, args.role))
    print(token)
    print(f"token {args.name!r} ({args.role}): shown once, stored hashed; send it as "
          "'Authorization: Bearer <token>'", file=sys.stderr)
    return 0


def _token_list(args: argparse.Namespace) -> int:
    with _accounts(args) as accounts:
        tokens = accounts.tokens()
    if args.json:
        print(json.dumps(tokens))
        return 0
    for t in tokens:
        state = f"revoked {t['revoked_at']}" if t["revoked_at"] else "active"
        print(f"{t['name']}\t{t['role']}\t{state}")
    return 0


def _token_revoke(args: argparse.Namespace) -> int:
    with _accounts(args) as accounts:
        if not accounts.revoke_token(args.name):
            raise CliError(f"no active token {args.name}")
    print(f"token {args.name} revoked", file=sys.stderr)
    return 0
