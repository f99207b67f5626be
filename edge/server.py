"""Running the edge service on uvicorn: the page streams on its event loop, the API on a thread
pool (edge/web/asgi.py)."""

from __future__ import annotations

import logging
import sys

from edge.config import Settings

log = logging.getLogger("scanedge")


def serve(settings: Settings) -> int:
    from edge.backup import BackupError, backup_before_upgrade, service_lock

    try:
        with service_lock(settings, "edge"):  # `scanedge restore` refuses while this is held
            made = backup_before_upgrade(settings)  # the store migrates when it opens
            for path in made:
                print(f"new code: edge.db backed up to {path} before any migration",
                      file=sys.stderr)
            return _serve(settings)
    except BackupError as e:
        print(f"scanedge serve: {e}", file=sys.stderr)
        return 2


def _serve(settings: Settings) -> int:
    from edge.context import EdgeContext
    from edge.lifecycle import serve_asgi
    from edge.store import StoreError
    from edge.web.asgi import create_asgi_app

    try:
        ctx = EdgeContext.open(settings)
    except (OSError, StoreError) as e:
        print(f"scanedge serve: cannot open the store in {settings.data_dir}: {e}",
              file=sys.stderr)
        return 2
    try:
        app = create_asgi_app(settings, ctx)

        def store_commits() -> str | None:  # the single writer thread still takes work
            ctx.store.write(lambda db: db.execute("SELECT 1").fetchone(), essential=True)
            return None

        # uvicorn's proxy_headers=False: X-Forwarded-* from clients are not trusted
        return serve_asgi(app, command="serve", listen=settings.listen, check=store_commits,
                          ready_status=f"serving on {settings.listen}, station {settings.station}",
                          on_exit=app.state.end_streams,
                          banner=(
                              f"scanedge edge: device {settings.device_id}, station "
                              f"{settings.station}, data {settings.data_dir.resolve()}, hub "
                              f"{settings.hub_url or 'none (offline)'}\n"
                              f"listening on http://{settings.listen}/  (Ctrl-C to stop)"))
    finally:
        ctx.close()
