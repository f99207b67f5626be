"""Running the edge service on waitress (a production WSGI server, pure Python, fine on a Pi)."""

from __future__ import annotations

import logging
import sys

from edge.config import Settings

log = logging.getLogger("scanedge")


def serve(settings: Settings) -> int:
    import waitress

    from edge.context import EdgeContext
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
        waitress.serve(app, host=host, port=port, threads=settings.http_threads,
                       ident="scanedge", clear_untrusted_proxy_headers=True)
    except OSError as e:
        print(f"scanedge serve: cannot listen on {settings.listen}: {e.strerror or e}",
              file=sys.stderr)
        return 2
    finally:
        ctx.close()
    return 0
