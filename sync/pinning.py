"""The device's pin of the hub's signing key, and the check of each command against it.

Which key a device trusts: the configured ``hub_public_key`` (written by ``scanedge enroll``) when
set; without one, every signed command is refused (``no_hub_key``) unless ``hub_trust_first_key``
opts into trust on first use. The signature format itself is sync/signing.py (shared with the
hub); docs/security.md, "Enrolment and hub identity".
"""

from __future__ import annotations

import logging
from typing import Any

import sqlite_utils

from scanedge.edge.store import Store
from scanedge.edge.store.outbox import append_event
from scanedge.edge.store.syncstate import get_state, set_state
from scanedge.sync.signing import check_public_key, key_id, verify

log = logging.getLogger(__name__)
_PIN, _SOURCE = "hub_key", "hub_key_source"


def pinned_key(db: sqlite_utils.Database) -> tuple[str | None, str | None]:
    """(key, source) where source is "config" or "tofu"; (None, None) before the first pin."""
    return get_state(db, _PIN), get_state(db, _SOURCE)


def pin_key(db: sqlite_utils.Database, device_id: str, key: str, source: str) -> None:
    set_state(db, _PIN, key)
    set_state(db, _SOURCE, source)
    append_event(db, device_id, "hub_key_pinned", {"key_id": key_id(key), "source": source})


def pin_configured_key(store: Store, device_id: str, configured: str) -> None:
    """At start: a configured ``hub_public_key`` is the pin (it replaces a trusted-on-first-use
    one, which is how a device is told about a new hub key).

    A new pin also starts a resync (sync/hubstate.py): the commands refused before, for want of
    the key or signed by the key now configured, are applied now."""
    if not configured:
        return
    current, source = pinned_key(store.read())
    if current == configured and source == "config":
        return
    if current and current != configured:
        log.warning("hub signing key: replacing the pinned key %s (%s) with the configured %s",
                    key_id(current), source, key_id(configured))

    def write(db: sqlite_utils.Database) -> None:
        from scanedge.sync.hubstate import start_resync

        pin_key(db, device_id, configured, "config")
        if current != configured and int(get_state(db, "cursor", "0") or 0) > 0:
            start_resync(db, device_id, "hub_key_configured",
                         {"key_id": key_id(configured),
                          "was": key_id(current) if current else None})

    store.write(write, essential=True)


def verify_command(db: sqlite_utils.Database, device_id: str, change: dict[str, Any],
                   trust_first_key: bool = False) -> str | None:
    """Check a command change before it is applied (inside the apply transaction).

    Returns None or the reason to reject it. With no key pinned yet: ``no_hub_key``, or, when
    ``trust_first_key`` opts in, the first signed command's key is pinned (trust on first use)
    in this same transaction.
    """
    payload = change.get("payload")
    if not isinstance(payload, dict):
        return "bad_payload"
    if payload.get("kind") != change.get("kind") or payload.get("order_id") != change.get("order_id"):
        return "envelope_mismatch"  # the unsigned envelope must say what the signed payload says
    pinned, _ = pinned_key(db)
    if pinned is None:
        if not trust_first_key:
            return "no_hub_key"  # not enrolled: see docs/security.md
        offered = payload.get("hub_key")
        if not isinstance(offered, str) or check_public_key(offered) is not None:
            return "unsigned"
        problem = verify(payload, offered)
        if problem is not None:
            return problem
        log.warning("hub signing key %s trusted on first use and pinned (hub_trust_first_key);"
                    " enrol the device (`scanedge enroll`) to pin it explicitly", key_id(offered))
        pin_key(db, device_id, offered, "tofu")
        return None
    return verify(payload, pinned)
