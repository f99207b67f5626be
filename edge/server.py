"""Running the edge service on waitress (a production WSGI server, pure Python, fine on a Pi)."""

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
    import waitress

    from edge.context import EdgeContext
    from edge.lifecycle import all_of, http_check, probe_url, run_server
    from edge.web.app import create_app

    ctx = EdgeContext.open(settings)
    try:
        app = create_app(settings, ctx)
        host, port = settings.listen_host_port
        print(
            f"scanedge edge: device {settings.device_id}, station {settings.station}, "
            f"data {settings.data_dir.resolve()}, hub {settings.hub_url or 'none (offline)'}\n"
            f"listening on http://{settings.listen}/  (Ctrl-C to stop)",
            file=sys.stderr, flush=True,
        )
        logging.getLogger("waitress").setLevel(logging.WARNING)
        server = waitress.create_server(app, host=host, port=port, threads=settings.http_threads,
                                        ident="scanedge", clear_untrusted_proxy_headers=True)

        def store_commits() -> str | None:  # the single writer thread still takes work
            ctx.store.write(lambda db: db.execute("SELECT 1").fetchone(), essential=True)
            return None

        url = probe_url(server.effective_host, server.effective_port)
        # Ready once the socket listens; the watchdog pings only while /healthz answers (accept
        # loop, a worker thread, a store read) and the writer commits.
        run_server(server, health=all_of(lambda: http_check(url, timeout=10), store_commits),
                   ready_status=f"serving on {settings.listen}, station {settings.station}")
    except OSError as e:
        print(f"scanedge serve: cannot listen on {settings.listen}: {e.strerror or e}",
              file=sys.stderr)
        return 2
    finally:
        ctx.close()
    return 0
