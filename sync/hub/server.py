"""Running the hub on waitress (each open stream holds a worker thread: size threads for the fleet)."""

from __future__ import annotations

import sys
import threading

from edge.config import Settings
from sync.hub.storage import HubStorage, PostgresHubStorage, open_storage
from sync.protocol import HEARTBEAT_S


def open_hub_storage(settings: Settings) -> HubStorage:
    database = settings.hub_database
    return open_storage(database)


def serve_hub(settings: Settings) -> int:
    from edge.backup import BackupError, service_lock

    try:
        with service_lock(settings, "hub"):  # `scanedge restore` of hub.db refuses while held
            return _serve_hub(settings)
    except BackupError as e:
        print(f"scanedge hub: {e}", file=sys.stderr)
        return 2


def _serve_hub(settings: Settings) -> int:
    from edge.lifecycle import serve_wsgi
    from sync.hub.app import create_hub_app
    from sync.hub.notify import listen_postgres

    try:
        storage = open_hub_storage(settings)
    except Exception as e:  # sqlite3 / psycopg errors: one line naming the database
        print(f"scanedge hub: cannot open the hub database {settings.hub_database}: "
              f"{' '.join(str(e).split())}",
              file=sys.stderr)
        return 2
    new_token = storage.ensure_admin_token(settings.hub_admin_token)
    listening = isinstance(storage, PostgresHubStorage)
    # With LISTEN/NOTIFY every process is woken at once; re-reading is only a safety net.
    app = create_hub_app(storage, reread_s=HEARTBEAT_S if listening else 1.0,
                         conflict_window_s=settings.conflict_window_s)
    stop = threading.Event()
    if listening:
        listen_postgres(settings.hub_database, storage.CHANNEL,
                        app.extensions["scanedge_hub"].notifier, stop)
    where = "PostgreSQL" if listening else settings.hub_database
    banner = f"scanedge hub: storage {where}\nlistening on http://{settings.hub_listen}/"
    if new_token:
        banner += f"\nadmin token (shown once; set hub_admin_token to choose your own): {new_token}"

    def storage_answers() -> str | None:
        storage.last_change_seq()
        return None

    try:
        return serve_wsgi(app, command="hub", listen=settings.hub_listen,
                          threads=settings.hub_threads, check=storage_answers,
                          ready_status=f"hub serving on {settings.hub_listen}", banner=banner,
                          ident="scanedge-hub", channel_timeout=60)
    finally:
        stop.set()
        storage.close()
