"""``scanedge report interceptions``: the interception report over this device's own events."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from scanedge.edge.domain.interception_report import (
    DeviceEvent,
    FreezeRecord,
    Report,
    build_report,
    format_table,
    parse_since,
    parse_time,
)


def device_report(db: Any, since: datetime, device_id: str, station: str) -> Report:
    """From this device's outbox (acknowledged events are kept ``outbox_retention_days``)."""
    freezes: list[FreezeRecord] = []
    lifts: list[tuple[str, datetime]] = []
    events: list[DeviceEvent] = []
    rows = db.execute(
        "SELECT device_id, type, order_id, payload, device_time FROM events WHERE type IN"
        " ('freeze_applied', 'freeze_lifted', 'interception', 'print_printed')"
        " AND order_id IS NOT NULL AND order_id IN (SELECT order_id FROM events"
        "   WHERE type = 'freeze_applied') ORDER BY seq").fetchall()
    for dev, type_, order_id, payload_text, device_time in rows:
        payload = json.loads(payload_text)
        t = parse_time(device_time)
        if type_ == "freeze_applied":
            issued = parse_time(payload["issued_at"])
            if issued >= since:
                freezes.append(FreezeRecord(payload.get("command_id") or f"local:{order_id}:{t}",
                                            order_id, payload.get("reason", "?"), issued))
                if not payload.get("command_id"):  # a local CLI freeze: give it an id
                    payload = {**payload, "command_id": freezes[-1].command_id}
        elif type_ == "freeze_lifted":
            lifts.append((order_id, t))
        if t >= since or type_ == "freeze_applied":
            events.append(DeviceEvent(dev, type_, order_id, t, payload))
    return build_report(since, freezes, lifts, events, default_station=station)


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("report", help="reports from this device's events")
    rsub = p.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    r = rsub.add_parser("interceptions", parents=[common],
                        help="freezes and the work they stopped (docs/freeze.md)")
    r.add_argument("--since", required=True, metavar="DATE", help="YYYY-MM-DD or ISO date-time")
    r.add_argument("--json", action="store_true", help="print JSON instead of a table")
    r.set_defaults(func=_cmd_interceptions)


def _cmd_interceptions(args: argparse.Namespace) -> int:
    from scanedge.edge.cli import CliError, settings_from
    from scanedge.edge.commands import opened_store

    try:
        since = parse_since(args.since)
    except ValueError as e:
        raise CliError(str(e)) from None
    settings = settings_from(args)
    if not settings.edge_db_path.exists():
        raise CliError(f"no device database in {settings.data_dir}")
    with opened_store(settings) as store:
        report = device_report(store.read(), since, settings.device_id, settings.station)
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        print(f"interceptions since {report.since} on device {settings.device_id}\n")
        print(format_table(report))
    return 0
