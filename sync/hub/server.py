"""Running the hub on waitress (each open stream holds a worker thread: size threads for the fleet)."""

from __future__ import annotations

import logging
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
    import waitress

    from edge.lifecycle import all_of, http_check, probe_url, run_server
    from sync.hub.app import create_hub_app
    from sync.hub.notify import listen_postgres

    storage = open_hub_storage(settings)
    new_token = storage.ensure_admin_token(settings.hub_admin_token)
    listening = isinstance(storage, PostgresHubStorage)
    # With LISTEN/NOTIFY every process is woken at once; re-reading is only a safety net.
    app = create_hub_app(storage, reread_s=HEARTBEAT_S if listening else 1.0,
                         conflict_window_s=settings.conflict_window_s)
    stop = threading.Event()
    if listening:
        listen_postgres(settings.hub_database, storage.CHANNEL,
                        app.extensions["scanedge_hub"].notifier, stop)
    host, _, port = settings.hub_listen.rpartition(":")
    where = "PostgreSQL" if isinstance(storage, PostgresHubStorage) else settings.hub_database
    print(f"scanedge hub: storage {where}\nlistening on http://{settings.hub_listen}/",
          file=sys.stderr, flush=True)
    if new_token:
        print(f"admin token (shown once; set hub_admin_token to choose your own): {new_token}",
              file=sys.stderr, flush=True)
    logging.getLogger("waitress").setLevel(logging.ERROR)
    try:
        server = waitress.create_server(app, host=host.strip("[]"), port=int(port),
                                        threads=settings.hub_threads, ident="scanedge-hub",
                                        channel_timeout=60)

        def storage_answers() -> str | None:
            storage.last_change_seq()
            return None

        url = probe_url(server.effective_host, server.effective_port)
        run_server(server, health=all_of(lambda: http_check(url, timeout=10), storage_answers),
                   ready_status=f"hub serving on {settings.hub_listen}")
    except OSError as e:
        print(f"scanedge hub: cannot listen on {settings.hub_listen}: {e.strerror or e}",
              file=sys.stderr)
        return 2
    finally:
        stop.set()
        storage.close()
    return 0
