"""People and tokens of a device: users with a badge and/or a PIN, API tokens, sessions.

Secrets are stored hashed: tokens and session ids are 256-bit random strings (SHA-256 is
enough); PINs are short, so they get scrypt with a salt of their own. A badge is looked up by
its SHA-256 (a badge is a card anyone can photograph: it identifies, the PIN is the secret where
one is needed). Every sign-in, failed sign-in and sign-out is an outbox event (the hub's audit
trail); failures are throttled per client and per user (:class:`SigninThrottle`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlite_utils

from scanedge.edge.domain.access import (
    PIN_RE,
    AccessError,
    Principal,
    SigninThrottle,
    check_badge,
    check_pin,
    check_role,
    check_user_id,
)
from scanedge.edge.store import Store
from scanedge.edge.store.db import Migration
from scanedge.edge.store.outbox import append_event

log = logging.getLogger(__name__)
COMPONENT = "accounts"
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}  # ~16 MB, tens of ms: fine per sign-in


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("""CREATE TABLE users (
        user_id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
        badge_hash TEXT UNIQUE, pin_salt TEXT, pin_hash TEXT,
        created_at TEXT NOT NULL, disabled_at TEXT)""")
    db.execute("""CREATE TABLE api_tokens (
        name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
        created_at TEXT NOT NULL, revoked_at TEXT)""")
    db.execute("""CREATE TABLE sessions (
        session_hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users (user_id),
        station TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
        ended_at TEXT)""")


MIGRATIONS = (Migration(1, "users, API tokens, sessions", _v1),)


class SigninFailed(Exception):
    """Wrong badge, user or PIN (one message for all: no hint which part was wrong)."""


class SigninThrottled(Exception):
    def __init__(self, wait_s: float) -> None:
        super().__init__(f"too many failed sign-ins: try again in {int(wait_s) + 1} s")
        self.wait_s = wait_s


@dataclass(frozen=True)
class Session:
    token: str  # the cookie's value: shown once, stored hashed
    principal: Principal
    expires_at: str


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _pin_hash(pin: str, salt: bytes) -> str:
    return hashlib.scrypt(pin.encode(), salt=salt, **SCRYPT).hex()


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Accounts:
    def __init__(self, store: Store, device_id: str, *, session_hours: float = 12.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        store.ensure_schema(COMPONENT, MIGRATIONS)
        self.store = store
        self.device_id = device_id
        self.session_hours = session_hours
        self.clock = clock
        self.monotonic = monotonic
        self.throttle = SigninThrottle()
        self._throttle_lock = threading.Lock()

    # -- administration (the CLI) -----------------------------------------------------------
    def add_user(self, user_id: str, name: str, role: str, *, badge: str | None = None,
                 pin: str | None = None) -> None:
        """Add a user, or change an existing one's name, role, badge or PIN."""
        check_user_id(user_id)
        check_role(role)
        if not name.strip() or len(name) > 64:
            raise AccessError("name: 1-64 characters")
        badge_hash = _sha256(check_badge(badge)) if badge is not None else None
        salt = secrets.token_bytes(16) if pin is not None else None
        pin_hash = _pin_hash(check_pin(pin), salt) if pin is not None and salt else None

        def write(db: sqlite_utils.Database) -> None:
            if badge_hash is not None:
                other = db.execute("SELECT user_id FROM users WHERE badge_hash = ?",
                                   [badge_hash]).fetchone()
                if other is not None and other[0] != user_id:
                    raise AccessError(f"that badge belongs to {other[0]} already")
            db.execute(
                "INSERT INTO users (user_id, name, role, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (user_id) DO UPDATE SET name = excluded.name, role = excluded.role,"
                " disabled_at = NULL", [user_id, name.strip(), role, _iso(self.clock())])
            if badge_hash is not None:
                db.execute("UPDATE users SET badge_hash = ? WHERE user_id = ?", [badge_hash, user_id])
            if pin_hash is not None and salt is not None:
                db.execute("UPDATE users SET pin_salt = ?, pin_hash = ? WHERE user_id = ?",
                           [salt.hex(), pin_hash, user_id])

        self.store.write(write, essential=True)

    def disable_user(self, user_id: str) -> bool:
        def write(db: sqlite_utils.Database) -> bool:
            now = _iso(self.clock())
            cur = db.execute("UPDATE users SET disabled_at = ? WHERE user_id = ?"
                             " AND disabled_at IS NULL", [now, user_id])
            db.execute("UPDATE sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL",
                       [now, user_id])
            return cur.rowcount == 1

        return self.store.write(write, essential=True)

    def users(self) -> list[dict[str, Any]]:
        rows = self.store.read().execute(
            "SELECT user_id, name, role, badge_hash IS NOT NULL, pin_hash IS NOT NULL,"
            " created_at, disabled_at FROM users ORDER BY user_id").fetchall()
        keys = ("user_id", "name", "role", "badge", "pin", "created_at", "disabled_at")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def add_token(self, name: str, role: str) -> str:
        """A token for a script or an order system (re-issued by name); shown once."""
        check_user_id(name)
        check_role(role)
        token = "se_" + secrets.token_urlsafe(32)
        self.store.write(lambda db: db.execute(
            "INSERT INTO api_tokens (name, token_hash, role, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash,"
            " role = excluded.role, revoked_at = NULL",
            [name, _sha256(token), role, _iso(self.clock())]), essential=True)
        return token

    def revoke_token(self, name: str) -> bool:
        return self.store.write(lambda db: db.execute(
            "UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            [_iso(self.clock()), name]).rowcount == 1, essential=True)

    def tokens(self) -> list[dict[str, Any]]:
        rows = self.store.read().execute(
            "SELECT name, role, created_at, revoked_at FROM api_tokens ORDER BY name").fetchall()
        return [dict(zip(("name", "role", "created_at", "revoked_at"), r, strict=True)) for r in rows]

    def configured(self) -> bool:
        """Whether anyone can sign in at all (a user or a live token exists)."""
        # one statement: open mode asks this on every request (edge/web/auth.py)
        return bool(self.store.read().execute(
            "SELECT EXISTS (SELECT 1 FROM users WHERE disabled_at IS NULL)"
            " OR EXISTS (SELECT 1 FROM api_tokens WHERE revoked_at IS NULL)").fetchone()[0])

    # -- requests ---------------------------------------------------------------------------
    def principal_for_token(self, token: str) -> Principal | None:
        row = self.store.read().execute(
            "SELECT name, role FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL",
            [_sha256(token)]).fetchone()
        return Principal("token", row[0], row[0], row[1]) if row else None

    def principal_for_session(self, token: str) -> Principal | None:
        row = self.store.read().execute(
            "SELECT s.session_hash, s.station, s.expires_at, u.user_id, u.name, u.role"
            " FROM sessions s JOIN users u ON u.user_id = s.user_id"
            " WHERE s.session_hash = ? AND s.ended_at IS NULL AND u.disabled_at IS NULL",
            [_sha256(token)]).fetchone()
        if row is None or row[2] <= _iso(self.clock()):
            return None
        return Principal("user", row[3], row[4], row[5], station=row[1], session_id=row[0])

    def sign_in(self, station: str, client: str, *, badge: str | None = None,
                user_id: str | None = None, pin: str | None = None) -> Session:
        """A badge alone, or a user id and PIN. Raises SigninThrottled / SigninFailed."""
        keys = [f"client:{client}"] + ([f"user:{user_id}"] if user_id else [])
        with self._throttle_lock:
            wait = max(self.throttle.wait_s(k, self.monotonic()) for k in keys)
        if wait > 0:
            log.warning("sign-in refused at %s from %s: throttled for %.0f s", station, client, wait)
            raise SigninThrottled(wait)
        user = self._check(badge, user_id, pin)
        if user is None:
            with self._throttle_lock:
                for k in keys:
                    self.throttle.failed(k, self.monotonic())
            log.warning("failed sign-in at %s from %s (user %s)", station, client, user_id or "-")
            self.store.write(lambda db: append_event(db, self.device_id, "signin_failed", {
                "station": station, "client": client, "user_id": user_id,
                "method": "badge" if badge is not None else "pin"}), essential=True)
            raise SigninFailed("wrong badge, user or PIN")
        with self._throttle_lock:
            for k in keys:
                self.throttle.succeeded(k)
        token = secrets.token_urlsafe(32)
        now = self.clock()
        expires = _iso(now + timedelta(hours=self.session_hours))
        uid, name, role = user

        def write(db: sqlite_utils.Database) -> None:
            db.execute("INSERT INTO sessions (session_hash, user_id, station, created_at,"
                       " expires_at) VALUES (?, ?, ?, ?, ?)",
                       [_sha256(token), uid, station, _iso(now), expires])
            append_event(db, self.device_id, "signin", {
                "user_id": uid, "role": role, "station": station, "client": client,
                "method": "badge" if badge is not None else "pin"})

        self.store.write(write, essential=True)
        log.info("%s (%s) signed in at %s", uid, role, station)
        return Session(token, Principal("user", uid, name, role, station=station,
                                        session_id=_sha256(token)), expires)

    def sign_out(self, principal: Principal) -> None:
        if principal.session_id is None:
            return

        def write(db: sqlite_utils.Database) -> None:
            db.execute("UPDATE sessions SET ended_at = ? WHERE session_hash = ?"
                       " AND ended_at IS NULL", [_iso(self.clock()), principal.session_id])
            append_event(db, self.device_id, "signout", {"user_id": principal.id,
                                                          "station": principal.station})

        self.store.write(write, essential=True)

    def _check(self, badge: str | None, user_id: str | None,
               pin: str | None) -> tuple[str, str, str] | None:
        db = self.store.read()
        if badge is not None:
            row = db.execute("SELECT user_id, name, role FROM users WHERE badge_hash = ?"
                             " AND disabled_at IS NULL", [_sha256(badge.strip())]).fetchone()
            return (row[0], row[1], row[2]) if row else None
        if user_id is None or pin is None or not PIN_RE.fullmatch(pin):
            return None
        row = db.execute("SELECT user_id, name, role, pin_salt, pin_hash FROM users"
                         " WHERE user_id = ? AND disabled_at IS NULL", [user_id]).fetchone()
        # hash even for an unknown user, so the answer time does not tell which users exist
        salt = bytes.fromhex(row[3]) if row and row[3] else b"\0" * 16
        digest = _pin_hash(pin, salt)
        if row is None or row[4] is None or not hmac.compare_digest(digest, row[4]):
            return None
        return row[0], row[1], row[2]
