"""Running the edge service on uvicorn: the page streams on its event loop, the API on a thread
pool (edge/web/asgi.py)."""

from __future__ import annotations

import logging
import sys

from scanedge.edge.config import Settings

log = logging.getLogger("scanedge")


def serve(settings: Settings) -> int:
    from scanedge.edge.backup import BackupError, backup_before_upgrade, service_lock

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
    from scanedge.edge.context import EdgeContext
    from scanedge.edge.lifecycle import serve_asgi
    from scanedge.edge.store import StoreError
    from scanedge.edge.web.asgi import create_asgi_app

    try:
        ctx = EdgeContext.open(settings)
    except (OSError, StoreError) as e:
        print(f"scanedge serve: cannot open the store in {settings.data_dir}: {e}",
              file=sys.stderr)
        return 2
    try:
        from scanedge.edge.web.auth import open_mode_problem

        problem = open_mode_problem(settings, ctx) or _tls_problem(settings)
        if problem:
            print(f"scanedge serve: {problem}", file=sys.stderr)
            return 2
        app = create_asgi_app(settings, ctx)

        def store_commits() -> str | None:  # the single writer thread still takes work
            ctx.store.write(lambda db: db.execute("SELECT 1").fetchone(), essential=True)
            return None

        # uvicorn's proxy_headers=False: X-Forwarded-* from clients are not trusted
        return serve_asgi(app, command="serve", listen=settings.listen, check=store_commits,
                          ready_status=f"serving on {settings.listen}, station {settings.station}",
                          on_exit=app.end_streams, **_tls_options(settings),
                          banner=(
                              f"scanedge edge: device {settings.device_id}, station "
                              f"{settings.station}, data {settings.data_dir.resolve()}, hub "
                              f"{settings.hub_url or 'none (offline)'}\n"
                              f"listening on {'https' if settings.tls_cert else 'http'}://"
                              f"{settings.listen}/  (Ctrl-C to stop)"))
    finally:
        ctx.close()


def _tls_problem(settings: Settings) -> str | None:
    if bool(settings.tls_cert) != bool(settings.tls_key):
        return "tls_cert and tls_key go together: set both (PEM files) or neither"
    for name in ("tls_cert", "tls_key"):
        path = getattr(settings, name)
        if path:
            try:
                with open(path, "rb") as f:
                    f.read(1)
            except OSError as e:
                return f"{name} = {path!r}: cannot be read ({e.strerror or e})"
    return None


def _tls_options(settings: Settings) -> dict[str, str]:
    if not settings.tls_cert:
        return {}
    return {"ssl_certfile": settings.tls_cert, "ssl_keyfile": settings.tls_key}
