"""The returns report: returns received, qualified, rejected by reason, and minutes from the
parcel's scan to the verdict, by the customer's reason code and by station.

Pure code over the ``return_received`` events (edge/returns.py writes one per finished receipt),
so the device (``scanedge report returns``, its own outbox) and the hub
(``GET /api/v1/reports/returns``, every device's) build the same report (docs/returns.md).
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scanedge.edge.domain.interception_report import iso, parse_time

UNANNOUNCED = "(unannounced)"  # the reason-code row of returns with no RMA


@dataclass(frozen=True)
class ReturnRecord:
    """One finished receipt, from its ``return_received`` event."""

    device_id: str
    station: str
    reason: str  # the customer's reason code, or UNANNOUNCED
    qualifies: bool
    blocking: tuple[str, ...]  # the codes that stopped the refund
    started_at: datetime
    decided_at: datetime

    @property
    def minutes(self) -> float:
        return max(0.0, (self.decided_at - self.started_at).total_seconds() / 60)


def record_of(device_id: str, payload: dict[str, Any]) -> ReturnRecord | None:
    """The record of one ``return_received`` payload; None for one that does not parse (an
    event from a device of another version must not break the report)."""
    try:
        verdict = payload["verdict"]
        return ReturnRecord(
            device_id=device_id, station=str(payload.get("station") or "?"),
            reason=UNANNOUNCED if payload.get("unannounced") else str(payload.get("reason") or "?"),
            qualifies=bool(verdict["qualifies"]),
            blocking=tuple(str(r["code"]) for r in verdict.get("reasons", []) if r.get("blocks")),
            started_at=parse_time(payload["started_at"]),
            decided_at=parse_time(verdict["decided_at"]))
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


@dataclass
class Row:
    key: str
    received: int = 0
    qualified: int = 0
    rejected: int = 0
    minutes: list[float] = field(default_factory=list)

    def add(self, r: ReturnRecord) -> None:
        self.received += 1
        self.qualified += r.qualifies
        self.rejected += not r.qualifies
        self.minutes.append(r.minutes)

    def as_json(self, name: str) -> dict[str, Any]:
        return {name: self.key, "received": self.received, "qualified": self.qualified,
                "rejected": self.rejected, "median_minutes_to_verdict": _median(self.minutes)}


@dataclass
class Report:
    since: str
    total: Row
    rejected_by_reason: dict[str, int]
    by_reason_code: list[Row]
    by_station: list[Row]

    def as_json(self) -> dict[str, Any]:
        return {"since": self.since, "received": self.total.received,
                "qualified": self.total.qualified, "rejected": self.total.rejected,
                "median_minutes_to_verdict": _median(self.total.minutes),
                "rejected_by_reason": self.rejected_by_reason,
                "by_reason_code": [r.as_json("reason") for r in self.by_reason_code],
                "by_station": [r.as_json("station") for r in self.by_station]}


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def build_report(since: datetime, records: Iterable[ReturnRecord]) -> Report:
    """The returns decided at or after ``since``; a return rejected for several reasons counts
    once under each in ``rejected_by_reason``."""
    total = Row("all")
    reasons: dict[str, Row] = {}
    stations: dict[str, Row] = {}
    rejected: dict[str, int] = {}
    for r in records:
        if r.decided_at < since:
            continue
        total.add(r)
        reasons.setdefault(r.reason, Row(r.reason)).add(r)
        stations.setdefault(r.station, Row(r.station)).add(r)
        if not r.qualifies:
            for code in sorted(set(r.blocking)) or ["?"]:
                rejected[code] = rejected.get(code, 0) + 1
    return Report(iso(since), total, dict(sorted(rejected.items())),
                  sorted(reasons.values(), key=lambda row: row.key),
                  sorted(stations.values(), key=lambda row: row.key))


def format_table(report: Report) -> str:
    """The report as Markdown tables (the CLI's default output)."""
    def minutes(row: Row) -> str:
        m = _median(row.minutes)
        return "-" if m is None else f"{m:g}"

    lines = [f"returns since {report.since}: {report.total.received} received, "
             f"{report.total.qualified} qualified, {report.total.rejected} rejected; median "
             f"{minutes(report.total)} min from scan to verdict", ""]
    for title, rows in (("reason code", report.by_reason_code), ("station", report.by_station)):
        lines += [f"| {title} | received | qualified | rejected | median min |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {r.key} | {r.received} | {r.qualified} | {r.rejected} | {minutes(r)} |"
                  for r in rows]
        lines.append("")
    lines += ["| rejected because | returns |", "| --- | ---: |"]
    lines += [f"| {code} | {n} |" for code, n in report.rejected_by_reason.items()]
    return "\n".join(lines)
