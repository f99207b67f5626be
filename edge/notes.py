"""Notes (备注) at the bench: a note from the hub shows at the stations working on its order, in a
dialog that blocks the order until a person taps it away (docs/freeze.md, "Notes").

The note itself is stored when the hub's changes are applied (sync/apply.py, edge/store/notes.py).
Its follow-up, run after that commit by :class:`~edge.freezes.effects.FreezeEffects`, tells the
pages (bus ``note``) and is acknowledged to the hub like a freeze (the countdown's "applied").
Reading it (:meth:`NoteService.read`) is an outbox event, ``note_read``, with who and where.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlite_utils

from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.freezes.effects import stations_working_on
from scanedge.edge.store import notes
from scanedge.edge.store.orders import load_pack_state
from scanedge.edge.store.outbox import append_event
from scanedge.sync import command_log

if TYPE_CHECKING:
    from scanedge.edge.bus import EventBus
    from scanedge.edge.store import Store


class NoteError(Refusal):
    """Reading a note refused."""


class NoteService:
    def __init__(self, store: Store, bus: EventBus, device_id: str) -> None:
        store.ensure_schema(notes.COMPONENT, notes.MIGRATIONS)
        self.store, self.bus, self.device_id = store, bus, device_id

    def follow_up(self, f: command_log.Followup) -> None:
        """After the note's commit: show it where the order is worked on; then it is acked."""
        db = self.store.read()
        note = notes.pending_note(db, f.order_id)
        if note is None or note.command_id != f.command_id:  # read or superseded already
            self.store.write(lambda w: command_log.mark_effects(w, f.command_id,
                                                                {"superseded": True}),
                             essential=True)
            return
        stations = stations_working_on(db, f.order_id)
        self.store.write(lambda w: command_log.mark_effects(w, f.command_id,
                                                            {"stations": stations}),
                         essential=True)
        self.bus.publish("note", {**note.as_json(), "stations": stations})

    def read(self, order_id: str, command_id: str, *, operator: str,
             station: str) -> dict[str, Any]:
        """A person at ``station`` read the note: the order's scans go on."""
        def write(db: sqlite_utils.Database) -> dict[str, Any]:
            if load_pack_state(db, order_id) is None:
                raise NoteError("not_found", f"order {order_id} is not on this device")
            done = notes.mark_read(db, order_id, command_id, operator=operator, station=station)
            if done is None:
                raise NoteError("note_not_pending",
                                f"note {command_id} of order {order_id} is not waiting to be "
                                "read (read already, replaced by a newer note, or unknown)")
            note, read_at = done
            append_event(db, self.device_id, "note_read", {
                "command_id": command_id, "note": note.text, "issued_at": note.issued_at,
                "read_at": read_at, "operator": operator, "station": station},
                order_id=order_id)
            return {**note.as_json(), "read_at": read_at, "read_by": operator,
                    "station": station}

        result = self.store.write(write)
        # to every page (no "station" key): each tab showing the note closes its dialog
        self.bus.publish("note_read", {**{k: v for k, v in result.items() if k != "station"},
                                       "read_station": station})
        return result
