"""The interception report: did the freezes stop the work, and how fast?

Pure code over plain records, so the device (its own events, ``scanedge report interceptions``,
edge/report_cli.py) and the hub (the events every device pushed,
``GET /api/v1/reports/interceptions``) build the same report. See docs/freeze.md for the format
and an example.

For each freeze F (order, issue time) and each device d that applied it or worked on the order:
- **missed**: d printed a label of the order after F was issued (and before it was lifted);
- else **intercepted after print**: d refused an action (scan, print, waybill, loading at the
  dock) after F, but a label had already been printed before F (someone must pull the parcel);
- else **intercepted before print**: d refused an action and no label was printed: the save.
Seconds from issue to interception: the first interception of each (freeze, device, station);
the total row takes the first one of each freeze over all devices.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

ALL = "all"
# Where in the flow an interception stopped the work (docs/picking.md): the picker's PDA, the
# packing bench (scans, waybill captures), the label printer, the loading dock (docs/dock.md).
STAGES = ("pick", "pack", "print", "dock")
STAGE_OF_ACTION = {"pick": "pick", "scan": "pack", "waybill": "pack", "print": "print",
                   "dock": "dock"}


def parse_time(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_since(text: str) -> datetime:
    """``2026-11-22`` (midnight UTC) or an ISO date-time."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC)
        return parse_time(text)
    except ValueError:
        raise ValueError(f"--since {text!r}: expected YYYY-MM-DD or an ISO date-time") from None


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class FreezeRecord:
    command_id: str
    order_id: str
    reason: str
    issued_at: datetime


@dataclass(frozen=True)
class DeviceEvent:
    device_id: str
    type: str  # freeze_applied | freeze_lifted | interception | print_printed
    order_id: str
    time: datetime
    payload: dict[str, Any]


def _seconds_summary(seconds: Sequence[float]) -> tuple[float | None, float | None, float | None]:
    """Mean, median and p95 (nearest rank) of seconds to interception, rounded to ms."""
    values = sorted(seconds)
    if not values:
        return None, None, None
    return (round(statistics.fmean(values), 3), round(statistics.median(values), 3),
            round(values[max(0, math.ceil(0.95 * len(values)) - 1)], 3))


@dataclass
class Row:
    device_id: str
    station: str
    freezes: int = 0
    intercepted_before_print: int = 0
    intercepted_after_print: int = 0
    missed: int = 0
    fuse_tripped: int = 0  # freezes not applied by every device within their countdown
    interceptions: int = 0
    mean_s: float | None = None
    median_s: float | None = None
    p95_s: float | None = None
    _seconds: list[float] = field(default_factory=list, repr=False)

    def finish(self) -> None:
        self.mean_s, self.median_s, self.p95_s = _seconds_summary(self._seconds)

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


@dataclass
class Stage:
    """Interceptions at one stage: how many, of how many freezes, seconds from issue to the
    first interception of each freeze at this stage (the delay bottleneck of each stage)."""

    stage: str
    freezes: int = 0
    interceptions: int = 0
    mean_s: float | None = None
    median_s: float | None = None
    p95_s: float | None = None
    _seconds: list[float] = field(default_factory=list, repr=False)

    def finish(self) -> None:
        self.freezes = len(self._seconds)
        self.mean_s, self.median_s, self.p95_s = _seconds_summary(self._seconds)

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


@dataclass
class Report:
    since: str
    total: Row
    rows: list[Row]
    stages: list[Stage] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"since": self.since, "total": self.total.as_json(),
                "rows": [r.as_json() for r in self.rows],
                "stages": [s.as_json() for s in self.stages]}


def build_report(since: datetime, freezes: Sequence[FreezeRecord], lifts: Iterable[tuple[str, datetime]],
                 events: Iterable[DeviceEvent], *, default_station: str = "-",
                 fuses_tripped: Iterable[str] = ()) -> Report:
    """``lifts``: (order_id, time) of unfreezes; ``events``: the devices' freeze_applied,
    interception and print_printed events of the frozen orders; ``fuses_tripped``: the command
    ids whose countdown ran out before every device applied them (the hub knows)."""
    by_order: dict[str, list[FreezeRecord]] = defaultdict(list)
    for freeze in sorted(freezes, key=lambda f: f.issued_at):
        by_order[freeze.order_id].append(freeze)
    lifted: dict[str, list[datetime]] = defaultdict(list)
    for order_id, t in lifts:
        lifted[order_id].append(t)

    def freeze_at(order_id: str, t: datetime) -> FreezeRecord | None:
        """The freeze in force for the order at time t (latest issued before t, not lifted)."""
        candidates = [f for f in by_order.get(order_id, ()) if f.issued_at <= t]
        if not candidates:
            return None
        f = candidates[-1]
        if any(f.issued_at < lt <= t for lt in lifted.get(order_id, ())):
            return None
        return f

    applied: set[tuple[str, str]] = set()  # (command_id, device)
    first: dict[tuple[str, str], tuple[float, str, datetime]] = {}  # (F, d) -> (s, station, t)
    first_by_station: dict[tuple[str, str, str], float] = {}
    count: dict[tuple[str, str], int] = defaultdict(int)  # (device, station) -> interceptions
    printed: dict[tuple[str, str], list[datetime]] = defaultdict(list)  # (order, device) -> times
    missed: set[tuple[str, str]] = set()
    stages = {name: Stage(name) for name in STAGES}
    stage_first: dict[tuple[str, str], float] = {}  # (freeze, stage) -> first seconds
    by_id = {f.command_id: f for f in freezes}
    for ev in sorted(events, key=lambda e: e.time):
        if ev.type == "freeze_applied":
            if ev.payload.get("command_id") in by_id:
                applied.add((ev.payload["command_id"], ev.device_id))
        elif ev.type == "print_printed":
            printed[(ev.order_id, ev.device_id)].append(ev.time)
            f = freeze_at(ev.order_id, ev.time)
            if f is not None:
                missed.add((f.command_id, ev.device_id))
        elif ev.type == "interception":
            f = _freeze_of_interception(ev, by_order.get(ev.order_id, ()), freeze_at)
            if f is None:
                continue
            station = ev.payload.get("station") or default_station
            seconds = float(ev.payload.get("seconds_since_freeze")
                            or (ev.time - f.issued_at).total_seconds())
            count[(ev.device_id, station)] += 1
            first.setdefault((f.command_id, ev.device_id), (seconds, station, ev.time))
            first_by_station.setdefault((f.command_id, ev.device_id, station), seconds)
            stage = STAGE_OF_ACTION.get(str(ev.payload.get("action")))
            if stage is not None:
                stages[stage].interceptions += 1
                stage_first.setdefault((f.command_id, stage), seconds)

    rows: dict[tuple[str, str], Row] = {}

    def row(device_id: str, station: str) -> Row:
        return rows.setdefault((device_id, station), Row(device_id, station))

    total = Row(ALL, ALL, freezes=len(freezes))
    per_freeze: dict[str, str] = {}
    rank = {"missed": 3, "after": 2, "before": 1}
    for cid, device in applied | set(first) | missed:
        f = by_id[cid]
        hit = first.get((cid, device))
        station = hit[1] if hit else default_station
        r = row(device, station)
        if (cid, device) in applied:
            r.freezes += 1
        if (cid, device) in missed:
            outcome = "missed"
            r.missed += 1
        elif hit is not None:
            before = [t for t in printed.get((f.order_id, device), ()) if t < f.issued_at]
            outcome = "after" if before else "before"
            if before:
                r.intercepted_after_print += 1
            else:
                r.intercepted_before_print += 1
        else:
            continue
        if rank[outcome] > rank.get(per_freeze.get(cid, ""), 0):
            per_freeze[cid] = outcome
    for (_, device, station), seconds in first_by_station.items():
        row(device, station)._seconds.append(seconds)
    for (device, station), n in count.items():
        row(device, station).interceptions += n
    total.missed = sum(1 for o in per_freeze.values() if o == "missed")
    total.intercepted_after_print = sum(1 for o in per_freeze.values() if o == "after")
    total.intercepted_before_print = sum(1 for o in per_freeze.values() if o == "before")
    total.interceptions = sum(count.values())
    total.fuse_tripped = len(set(fuses_tripped) & set(by_id))
    earliest: dict[str, float] = {}
    for (cid, _), (seconds, _, _) in first.items():
        earliest[cid] = min(seconds, earliest.get(cid, math.inf))
    total._seconds = list(earliest.values())
    total.finish()
    out = sorted(rows.values(), key=lambda r: (r.device_id, r.station))
    for r in out:
        r.finish()
    for (_, stage), seconds in stage_first.items():
        stages[stage]._seconds.append(seconds)
    for st in stages.values():
        st.finish()
    return Report(iso(since), total, out, list(stages.values()))


def _freeze_of_interception(ev: DeviceEvent, candidates: Sequence[FreezeRecord],
                            freeze_at: Any) -> FreezeRecord | None:
    issued = ev.payload.get("freeze_issued_at")
    if isinstance(issued, str):
        try:
            t = parse_time(issued)
        except ValueError:
            t = None
        if t is not None:
            for f in candidates:
                if abs((f.issued_at - t).total_seconds()) < 0.002:
                    return f
    return freeze_at(ev.order_id, ev.time)


COLUMNS = (("device_id", "device"), ("station", "station"), ("freezes", "freezes"),
           ("intercepted_before_print", "intercepted before print"),
           ("intercepted_after_print", "intercepted after print"), ("missed", "missed"),
           ("fuse_tripped", "fuse tripped"), ("interceptions", "interceptions"),
           ("mean_s", "mean s"), ("median_s", "median s"), ("p95_s", "p95 s"))


def format_table(report: Report) -> str:
    """A markdown table: one row per device and station, then the total over all freezes."""
    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |",
             "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    for r in [*report.rows, report.total]:
        cells = []
        for key, _ in COLUMNS:
            value = getattr(r, key)
            cells.append("-" if value is None else f"{value:.3f}" if isinstance(value, float)
                         else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    if report.stages:
        lines += ["", "| stage | freezes | interceptions | mean s | median s | p95 s |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for st in report.stages:
            lines.append(f"| {st.stage} | {st.freezes} | {st.interceptions} | "
                         + " | ".join("-" if v is None else f"{v:.3f}"
                                      for v in (st.mean_s, st.median_s, st.p95_s)) + " |")
    return "\n".join(lines)
