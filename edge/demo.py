"""``scanedge serve --demo``: a whole site in one process, for a first look.

A virtual network printer (printers/sim.py), a local hub over SQLite (sync/hub) holding the demo
orders, and the edge service connected to both, all under ``data_dir``. Tokens are kept in
``data_dir/demo`` so a restart finds the same hub and device.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from importlib import resources

from edge.config import Settings


def demo_orders() -> list[dict]:
    """The bundled demo orders (DESIGN.md's order JSON), shipped inside the package."""
    return json.loads(resources.files("edge").joinpath("demo/orders.json").read_text("utf-8"))


def _token(path, make) -> str:
    if path.exists():
        return path.read_text().strip()
    token = make()
    path.write_text(token)
    path.chmod(0o600)
    return token


def run_demo(settings: Settings) -> int:
    import secrets

    from edge.lifecycle import BackgroundServer
    from edge.server import serve
    from printers.sim import VirtualPrinter
    from sync.hub.app import HubOptions
    from sync.hub.asgi import create_hub_asgi
    from sync.hub.storage import open_storage

    demo_dir = settings.data_dir / "demo"
    demo_dir.mkdir(parents=True, exist_ok=True)
    printer = VirtualPrinter("127.0.0.1", 0).start()
    storage = open_storage(settings.hub_database)
    admin = _token(demo_dir / "admin_token", lambda: secrets.token_urlsafe(24))
    storage.ensure_admin_token(admin)
    device_token = _token(demo_dir / "device_token", lambda: storage.add_device(settings.device_id))
    layout = settings.data_dir / "layout.toml"  # picking on /pick (docs/picking.md)
    if not layout.exists():
        layout.write_text(resources.files("edge").joinpath("demo/layout.toml").read_text("utf-8"))
    orders = demo_orders()
    for doc in orders:
        storage.upsert_order(doc)
    host, _, port = settings.hub_listen.rpartition(":")
    try:
        hub_server = BackgroundServer(create_hub_asgi(storage, HubOptions.from_settings(settings)),
                                      host.strip("[]"), int(port)).start()
    except OSError as e:
        print(f"scanedge serve --demo: the hub cannot listen on {settings.hub_listen}: "
              f"{e.strerror or e}", file=sys.stderr)
        printer.stop()
        storage.close()
        return 2
    edge_settings = replace(settings, hub_url=f"http://{settings.hub_listen}",
                            hub_token=device_token, printer=printer.address,
                            hub_public_key=storage.signer().public_b64)  # enrolled
    print(
        "scanedge demo\n"
        f"  pages        http://{settings.listen}/  (scan, bench, waybill, supervisor, pick)\n"
        f"  hub          http://{settings.hub_listen}/  admin token: {admin}\n"
        f"  printer      {printer.address} (virtual; labels kept in memory)\n"
        f"  demo orders  {', '.join(d['order_id'] for d in orders)}\n"
        f"  try: curl -s http://{settings.listen}/api/v1/scans "
        "-H 'Content-Type: application/json' -d '{\"code\": \"SO-1001\"}'\n"
        f"       curl -s -X POST http://{settings.hub_listen}/api/v1/orders/SO-1002/freeze "
        f"-H 'Authorization: Bearer {admin}' -H 'Content-Type: application/json' "
        "-d '{\"reason\": \"cancel\"}'",
        file=sys.stderr, flush=True)
    try:
        return serve(edge_settings)
    finally:
        hub_server.stop()
        storage.close()
        printer.stop()
