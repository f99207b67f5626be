"""Running the hub: one process serving the API and the device streams (sync/hub/asgi.py)."""

from __future__ import annotations

import sys
import threading

from scanedge.edge.config import Settings
from scanedge.sync.hub.storage import (
    SCHEMA_VERSION,
    HubPolicy,
    HubStorage,
    PostgresHubStorage,
    open_storage,
)


def open_hub_storage(settings: Settings) -> HubStorage:
    database = settings.hub_database
    return open_storage(database, HubPolicy.from_settings(settings))


def serve_hub(settings: Settings) -> int:
    from scanedge.edge.backup import BackupError, service_lock

    try:
        with service_lock(settings, "hub"):  # `scanedge restore` of hub.db refuses while held
            return _serve_hub(settings)
    except BackupError as e:
        print(f"scanedge hub: {e}", file=sys.stderr)
        return 2


def _serve_hub(settings: Settings) -> int:
    from scanedge.edge.lifecycle import serve_asgi
    from scanedge.sync.carriers.accounts import AccountsError
    from scanedge.sync.hub.app import HubOptions
    from scanedge.sync.hub.asgi import create_hub_asgi
    from scanedge.sync.hub.notify import listen_postgres

    try:
        storage = open_hub_storage(settings)
    except Exception as e:  # sqlite3 / psycopg errors: one line naming the database
        print(f"scanedge hub: cannot open the hub database {settings.hub_database}: "
              f"{' '.join(str(e).split())}",
              file=sys.stderr)
        return 2
    new_token = storage.ensure_admin_token(settings.hub_admin_token)
    listening = isinstance(storage, PostgresHubStorage)
    try:
        options = HubOptions.from_settings(settings)
    except AccountsError as e:  # the carrier accounts file: one line naming the file and key
        print(f"scanedge hub: {e}", file=sys.stderr)
        storage.close()
        return 2
    app = create_hub_asgi(storage, options)
    stop = threading.Event()
    if listening:
        listen_postgres(settings.hub_database, storage.CHANNEL, storage.changes, stop)
    where = "PostgreSQL" if listening else settings.hub_database
    banner = f"scanedge hub: storage {where}\nlistening on http://{settings.hub_listen}/"
    if 0 < storage.migrated_from < SCHEMA_VERSION:
        banner += f"\nhub database upgraded from schema {storage.migrated_from} to {SCHEMA_VERSION}"
    if new_token:
        banner += f"\nadmin token (shown once; set hub_admin_token to choose your own): {new_token}"

    def storage_answers() -> str | None:
        storage.last_change_seq()
        return None

    try:
        return serve_asgi(app, command="hub", listen=settings.hub_listen, check=storage_answers,
                          ready_status=f"hub serving on {settings.hub_listen}", banner=banner,
                          on_exit=app.end_streams)
    finally:
        stop.set()
        storage.close()
