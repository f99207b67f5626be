"""``scanedge serve --demo``: a whole site in one process, for a first look.

A virtual network printer (printers/sim.py), a virtual scale (edge/scale_sim.py), a local hub
over SQLite (sync/hub) holding the demo orders, and the edge service connected to both, all
under ``data_dir``. Tokens are kept in
``data_dir/demo`` so a restart finds the same hub and device; ``data_dir/demo/scanedge.toml``
holds the settings the demo's edge runs with, which the other commands read when given no
``--config`` (``scanedge config``, ``scanedge sync status`` next to the demo). ``--fresh``
removes the demo's data first.
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from scanedge.edge.config import Settings, load_settings

DEMO_DIR = "demo"  # under data_dir: the tokens and the settings file; marks a demo's data_dir
DEMO_CONFIG = "scanedge.toml"


def demo_orders() -> list[dict]:
    """The bundled demo orders (docs/interfaces.md, "Order JSON"), shipped inside the package."""
    return json.loads(resources.files("scanedge.edge").joinpath("demo/orders.json").read_text("utf-8"))


def demo_rmas(now: datetime | None = None) -> list[dict]:
    """The demo's two returns to receive at /returns (docs/returns.md): ``RMA-DEMO-1`` qualifies
    when its items come back fit to sell (七天无理由, within the deadline); ``RMA-DEMO-2`` does not
    qualify whatever comes back (尺码不符, received after its deadline). Deadlines are relative
    to ``now`` (the demo's start); ``demo`` says which is which."""
    from scanedge.edge.domain.returns import iso

    now = now or datetime.now(UTC)
    return [
        {"demo": "qualifies", "rma_id": "RMA-DEMO-1", "order_id": "SO-1001", "reason": "七天无理由",
         "return_tracking": "SF7000000000001", "deadline": iso(now + timedelta(days=7)),
         "invoiced": True, "lines": [
             {"sku": "6901234567892", "name": "保温杯 500ml", "qty": 2},
             {"sku": "4006381333931", "name": "Stabilo 荧光笔 黄色", "qty": 1}]},
        {"demo": "rejected", "rma_id": "RMA-DEMO-2", "order_id": "SO-1002", "reason": "尺码不符",
         "return_tracking": "SF7000000000002", "deadline": iso(now - timedelta(days=1)),
         "lines": [{"sku": "SELLER-CASE-07", "name": "手机壳 iPhone 15 透明", "qty": 3}]},
    ]


def _token(path, make) -> str:
    if path.exists():
        return path.read_text().strip()
    token = make()
    path.write_text(token)
    path.chmod(0o600)
    return token


DEMO_SF = {"key": "scanedge-demo", "secret": "scanedge-demo-checkword",
           "customer_code": "7550000000"}
DEMO_SENDER = {"name": "scanedge 演示仓", "phone": "0571-88880000",
               "address": "浙江省杭州市余杭区仓前街道 1 号"}


def write_carrier_accounts(demo_dir: Path, sf_url: str) -> Path:
    """The hub's carrier accounts for the demo site: SF, at the simulator (0600: secrets)."""
    sender = ", ".join(f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in DEMO_SENDER.items())
    text = ("# written by `scanedge serve --demo`: the demo site's carrier account (simulator)\n"
            "[sites.default]\ndefault = \"SF\"\n[sites.default.SF]\n"
            f"url = {json.dumps(sf_url)}\n"
            + "".join(f"{k} = {json.dumps(v)}\n" for k, v in DEMO_SF.items())
            + f"sender = {{ {sender} }}\ntimeout_s = 5.0\n")
    path = demo_dir / "carriers.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def demo_config(data_dir: Path) -> Path:
    """The settings file of the demo that runs (or ran) with this data_dir."""
    return data_dir / DEMO_DIR / DEMO_CONFIG


def write_demo_config(settings: Settings) -> Path:
    """The demo edge's settings that differ from the defaults, as a config file (0600: tokens)."""
    defaults = load_settings(env={}, data_dir=str(settings.data_dir))
    lines = ["# written by `scanedge serve --demo` at each start: the settings its edge runs with\n"]
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if f.name in ("source", "data_dir") or value == getattr(defaults, f.name):
            continue
        lines.append(f"{f.name} = {json.dumps(value)}\n")  # JSON's strings/numbers/bools are TOML
    path = demo_config(settings.data_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


def fresh(settings: Settings) -> list[Path]:
    """Remove the demo's data (everything in data_dir, and the hub's SQLite file if it lies
    elsewhere): the demo starts again as on the first run. Refuses a data_dir that is not a
    demo's (no ``demo/`` in it) and a demo that is running."""
    from scanedge.edge.backup import running_pid
    from scanedge.edge.cli import CliError

    data_dir = settings.data_dir
    if not data_dir.exists():
        return []
    if not (data_dir / DEMO_DIR).is_dir():
        raise CliError(f"--fresh: {data_dir} holds no demo (no {DEMO_DIR}/ in it): not removing "
                       "anything there")
    pid = running_pid(settings, "edge")
    if pid is not None:
        raise CliError(f"--fresh: the service runs on {data_dir} (pid {pid}): stop it first")
    removed = []
    hub_db = Path(settings.hub_database)
    outside = [] if "://" in settings.hub_database or hub_db.resolve().is_relative_to(
        data_dir.resolve()) else [hub_db.with_name(hub_db.name + s) for s in ("", "-wal", "-shm")]
    for path in [*sorted(data_dir.iterdir()), *outside]:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        else:
            continue
        removed.append(path)
    return removed


DEMO_SCALE_KG = 1.234  # SO-1004 (2 mugs of 0.35 kg) needs 0.70 kg ± 0.05


def _scale_typing(scale: Any) -> bool:
    """At a terminal, a line typed into the demo sets the virtual scale's weight (kg) or mode."""
    import threading

    from scanedge.edge.scale_sim import apply_typed

    if not sys.stdin.isatty():
        return False

    def read() -> None:
        for line in sys.stdin:
            if line.strip():
                print(apply_typed(scale, line.strip()), file=sys.stderr, flush=True)

    threading.Thread(target=read, name="demo-scale", daemon=True).start()
    return True


def run_demo(settings: Settings, *, fresh_start: bool = False) -> int:
    import secrets

    from scanedge.edge.lifecycle import BackgroundServer
    from scanedge.edge.scale_sim import VirtualScale
    from scanedge.edge.server import serve
    from scanedge.printers.sim import VirtualPrinter
    from scanedge.sync.carriers.sim import CarrierSimulator
    from scanedge.sync.hub.app import HubOptions
    from scanedge.sync.hub.asgi import create_hub_asgi
    from scanedge.sync.hub.storage import HubPolicy, open_storage

    if fresh_start:
        removed = fresh(settings)
        print("scanedge serve --demo --fresh: " + (
            "removed the last demo's data:" + "".join(f"\n  {path}" for path in removed)
            if removed else f"no demo data in {settings.data_dir}, nothing removed"),
            file=sys.stderr, flush=True)
    demo_dir = settings.data_dir / DEMO_DIR
    demo_dir.mkdir(parents=True, exist_ok=True)
    printer = VirtualPrinter("127.0.0.1", 0).start()
    # a virtual scale at the bench (docs/scale.md): SO-1004's weight check refuses its label
    # until the weight typed here (the parcel put on the scale) is within weight_tolerance
    scale = VirtualScale(protocol="continuous", weight_kg=DEMO_SCALE_KG).start()
    # 打印面单 works in the demo: an SF simulator and the demo site's SF account at the hub
    carrier = CarrierSimulator("sf", key=DEMO_SF["key"], secret=DEMO_SF["secret"]).start()
    settings = replace(settings, hub_carrier_accounts=str(
        write_carrier_accounts(demo_dir, carrier.url)))
    storage = open_storage(settings.hub_database, HubPolicy.from_settings(settings))
    admin = _token(demo_dir / "admin_token", lambda: secrets.token_urlsafe(24))
    storage.ensure_admin_token(admin)
    device_token = _token(demo_dir / "device_token", lambda: storage.add_device(settings.device_id))
    layout = settings.data_dir / "layout.toml"  # picking on /pick (docs/picking.md)
    if not layout.exists():
        layout.write_text(resources.files("scanedge.edge").joinpath("demo/layout.toml").read_text("utf-8"))
    orders = demo_orders()
    for doc in orders:
        storage.upsert_order(doc)
    from scanedge.sync.hub import rmas as hub_rmas

    returns = demo_rmas()
    for doc in returns:  # an RMA already there (a restart) keeps its version and deadline
        if hub_rmas.site_of(storage, doc["rma_id"]) is None:
            hub_rmas.upsert(storage, {k: v for k, v in doc.items() if k != "demo"})
    host, _, port = settings.hub_listen.rpartition(":")
    try:
        hub_server = BackgroundServer(create_hub_asgi(storage, HubOptions.from_settings(settings)),
                                      host.strip("[]"), int(port)).start()
    except OSError as e:
        print(f"scanedge serve --demo: the hub cannot listen on {settings.hub_listen}: "
              f"{e.strerror or e}", file=sys.stderr)
        printer.stop()
        scale.stop()
        carrier.stop()
        storage.close()
        return 2
    edge_settings = replace(settings, hub_url=f"http://{settings.hub_listen}",
                            hub_token=device_token, printer=printer.address, scale=scale.address,
                            hub_public_key=storage.signer().public_b64)  # enrolled
    settings_file = write_demo_config(edge_settings)
    print(
        "scanedge demo\n"
        f"  pages        http://{settings.listen}/  (scan, bench, waybill, supervisor, pick, returns,"
        " dock)\n"
        f"  dock         http://{settings.listen}/dock?station=dock-1  (装车交接: the labels printed"
        " here, loaded per truck)\n"
        f"  hub          http://{settings.hub_listen}/  admin token: {admin}\n"
        f"  printer      {printer.address} (virtual; labels kept in memory)\n"
        f"  scale        {scale.address} (virtual, {DEMO_SCALE_KG} kg"
        f"{'; type a weight in kg and Enter to put a parcel on it' if _scale_typing(scale) else ''})\n"
        f"  carrier      SF simulator {carrier.url} (打印面单 on the bench)\n"
        f"  demo orders  {', '.join(d['order_id'] for d in orders)}\n"
        f"  demo returns {', '.join(d['rma_id'] + ' (' + d['demo'] + ')' for d in returns)}"
        f" on /returns\n"
        f"  settings     {settings_file} (read by `scanedge config`, `scanedge sync status`, ...)\n"
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
        scale.stop()
        carrier.stop()
