"""Which hub this device syncs with, and its resyncs (docs/sync.md, "Whose cursor").

The cursor is a position in one hub's change log. The device keeps, beside it in ``sync_state``:
- ``hub_identity``: the hub it synced with (signing key id, database id), learnt at the first
  answer;
- ``cursor_mark``: the mark (:func:`sync.protocol.change_mark`) of the change at the cursor, so
  that a hub whose log holds another change at that number (restored from an older backup, then
  written again) is noticed;
- ``resync``: while a resync runs, why and since when (cleared once a pull has caught up);
  ``last_resync``: the last one, kept (the supervisor's alarm is raised from it, once).

A resync moves the cursor back to 0 and pulls everything again: applying a change twice is
harmless (orders and freezes go by version; a command already applied here is skipped).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import sqlite_utils

from scanedge.edge.store.outbox import append_event
from scanedge.edge.store.syncstate import get_state, set_state
from scanedge.sync.protocol import CURSOR_MARK

log = logging.getLogger(__name__)
IDENTITY, MARK, RESYNC, LAST_RESYNC = "hub_identity", CURSOR_MARK, "resync", "last_resync"
# Resyncs a person should hear about (a configured key is a person's own doing).
ALARMING = ("hub_identity", "cursor_ahead", "history_changed")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(db: sqlite_utils.Database, key: str) -> Any:
    raw = get_state(db, key)
    return json.loads(raw) if raw else None


def delete_state(db: sqlite_utils.Database, key: str) -> None:
    db.execute("DELETE FROM sync_state WHERE key = ?", [key])


def stored_identity(db: sqlite_utils.Database) -> tuple[str, str] | None:
    value = _json(db, IDENTITY)
    return (value[0], value[1]) if value else None


def set_identity(db: sqlite_utils.Database, identity: tuple[str, str]) -> None:
    set_state(db, IDENTITY, json.dumps(list(identity)))


def resync_state(db: sqlite_utils.Database) -> dict[str, Any] | None:
    return _json(db, RESYNC)


def last_resync(db: sqlite_utils.Database) -> dict[str, Any] | None:
    return _json(db, LAST_RESYNC)


def start_resync(db: sqlite_utils.Database, device_id: str, reason: str,
                 detail: dict[str, Any]) -> dict[str, Any]:
    """In the caller's transaction: cursor back to 0, the reason kept, an outbox event."""
    cursor = int(get_state(db, "cursor", "0") or 0)
    state = {"reason": reason, "since": _now(), "from_cursor": cursor, **detail}
    set_state(db, "cursor", "0")
    delete_state(db, MARK)
    set_state(db, RESYNC, json.dumps(state))
    set_state(db, LAST_RESYNC, json.dumps(state))
    append_event(db, device_id, "hub_resync", state)
    log.warning("hub: %s (%s); the cursor %d is not trusted: resyncing from 0", reason,
                ", ".join(f"{k} {v}" for k, v in detail.items()) or "-", cursor)
    return state


def finish_resync(db: sqlite_utils.Database) -> dict[str, Any] | None:
    """In the caller's transaction, once a pull has caught up: the resync is over."""
    state = resync_state(db)
    if state is None:
        return None
    delete_state(db, RESYNC)
    done = {**state, "finished": _now(), "cursor": int(get_state(db, "cursor", "0") or 0)}
    set_state(db, LAST_RESYNC, json.dumps(done))
    log.info("hub: resync (%s) caught up at cursor %d", state["reason"], done["cursor"])
    return done
