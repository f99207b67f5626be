"""``scanedge report interceptions``: the interception report over this device's own events;
``scanedge report returns``: the returns report over this device's finished receipts."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
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
    r = rsub.add_parser("returns", parents=[common],
                        help="returns received, qualified, rejected (docs/returns.md)")
    r.add_argument("--since", required=True, metavar="DATE", help="YYYY-MM-DD or ISO date-time")
    r.add_argument("--json", action="store_true", help="print JSON instead of tables")
    r.set_defaults(func=_cmd_returns)


def _report(args: argparse.Namespace, build: Callable[[Any, datetime, Any], Any],
            heading: Callable[[Any, Any], str], table: Callable[[Any], str]) -> int:
    """A report over this device's store: ``--since`` checked, ``build(db, since, settings)``,
    then JSON or ``heading(report, settings)`` and ``table(report)``."""
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
        report = build(store.read(), since, settings)
    if args.json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    else:
        print(heading(report, settings))
        print(table(report))
    return 0


def _cmd_interceptions(args: argparse.Namespace) -> int:
    return _report(args, lambda db, since, s: device_report(db, since, s.device_id, s.station),
                   lambda report, s: f"interceptions since {report.since} on device {s.device_id}\n",
                   format_table)


def device_returns_report(db: Any, since: datetime, device_id: str) -> Any:
    """From this device's finished receipts (kept with their verdicts, unlike the outbox's
    acknowledged events, which are purged after ``outbox_retention_days``)."""
    from scanedge.edge.domain.returns_report import build_report, record_of

    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'return_receipts'").fetchone() is None:
        return build_report(since, [])  # returns never ran here
    rows = db.execute(
        "SELECT r.station, r.rma_id, r.started_at, r.verdict, m.doc FROM return_receipts r"
        " LEFT JOIN rmas m ON m.rma_id = r.rma_id WHERE r.state = 'finished'"
        " AND r.finished_at >= ? ORDER BY r.finished_at",
        [(since - timedelta(days=1)).astimezone(UTC).isoformat()[:10]]).fetchall()
    # ^ a prefilter with a day's margin (finished_at is UTC text); build_report decides
    records = []
    for station, rma_id, started_at, verdict, rma_doc in rows:
        reason = json.loads(rma_doc).get("reason") if rma_doc else None
        record = record_of(device_id, {"station": station, "unannounced": rma_id is None,
                                       "reason": reason, "started_at": started_at,
                                       "verdict": json.loads(verdict)})
        if record is not None:
            records.append(record)
    return build_report(since, records)


def _cmd_returns(args: argparse.Namespace) -> int:
    from scanedge.edge.domain.returns_report import format_table as returns_table

    return _report(args, lambda db, since, s: device_returns_report(db, since, s.device_id),
                   lambda report, s: f"on device {s.device_id}\n", returns_table)
