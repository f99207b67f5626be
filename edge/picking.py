"""Picking on the PDA gateway: waves, claims, pick steps, put-backs after a freeze.

A store component with its own migrations (like edge/alarms.py). Every step is a state change and
an outbox event in one transaction (edge/store/outbox.py), so the hub sees every pick. The rules
are pure (edge/domain/waves.py, routing.py; item checks are the packing rules of
edge/domain/packing.py on a one-line order); this module loads, applies and saves.
docs/picking.md explains the flow.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlite_utils

from scanedge.edge.domain.codes import classify
from scanedge.edge.domain.handover import InTote, ToteOpen, open_from_tote
from scanedge.edge.domain.layout import Layout, LayoutError, Location, parse_layout
from scanedge.edge.domain.orders import Order
from scanedge.edge.domain.packing import PackState, ScanContext, Verdict, evaluate_scan
from scanedge.edge.domain.refusal import Refusal
from scanedge.edge.domain.routing import distance, point, route
from scanedge.edge.domain.waves import Candidate, WaveLimits, build_waves
from scanedge.edge.freezes.interceptions import record_interception
from scanedge.edge.store.db import Migration, utc_now
from scanedge.edge.store.orders import load_freeze, load_pack_state
from scanedge.edge.store.outbox import append_event, next_counter

if TYPE_CHECKING:
    from scanedge.edge.alarms import Alarm, AlarmCenter
    from scanedge.edge.bus import EventBus
    from scanedge.edge.store import Store

COMPONENT = "picking"
TOTE_RE = re.compile(r"TOTE-[A-Z0-9]{1,12}")
SHORT_REASONS = ("empty", "not_enough", "damaged", "not_found")
ACTIVE = ("todo", "at_bin", "in_hand", "skipped")  # stop states still to walk to


def _v1(db: sqlite_utils.Database) -> None:
    db.execute("""CREATE TABLE pick_waves (
        wave_id TEXT PRIMARY KEY,
        state TEXT NOT NULL CHECK (state IN ('open', 'claimed', 'done')),
        urgent INTEGER NOT NULL DEFAULT 0,
        station TEXT, operator TEXT,
        method TEXT NOT NULL, length_m REAL NOT NULL,
        created_at TEXT NOT NULL, claimed_at TEXT, done_at TEXT)""")
    db.execute("""CREATE TABLE pick_orders (
        order_id TEXT PRIMARY KEY,
        wave_id TEXT NOT NULL REFERENCES pick_waves (wave_id) ON DELETE CASCADE,
        slot INTEGER NOT NULL,           -- tote slot on the cart, 1..
        tote TEXT,                       -- the tote's code, bound at the first put
        state TEXT NOT NULL DEFAULT 'picking' CHECK (state IN ('picking', 'picked', 'frozen')))""")
    db.execute("CREATE INDEX pick_orders_tote ON pick_orders (tote)")
    db.execute("""CREATE TABLE pick_stops (
        wave_id TEXT NOT NULL REFERENCES pick_waves (wave_id) ON DELETE CASCADE,
        stop_no INTEGER NOT NULL,
        order_id TEXT NOT NULL, line_no INTEGER NOT NULL, location TEXT NOT NULL,
        qty INTEGER NOT NULL, picked INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'todo'
            CHECK (state IN ('todo', 'at_bin', 'in_hand', 'done', 'skipped', 'removed')),
        short_qty INTEGER NOT NULL DEFAULT 0, short_reason TEXT, skips INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (wave_id, stop_no))""")
    db.execute("""CREATE TABLE pick_putbacks (
        putback_id INTEGER PRIMARY KEY,
        wave_id TEXT NOT NULL, order_id TEXT NOT NULL, line_no INTEGER NOT NULL,
        location TEXT NOT NULL, qty INTEGER NOT NULL, slot INTEGER NOT NULL, tote TEXT,
        created_at TEXT NOT NULL, done_at TEXT, done_by TEXT)""")
    db.execute("""CREATE TABLE pick_waiting (
        order_id TEXT PRIMARY KEY, reason TEXT NOT NULL, detail TEXT NOT NULL, since TEXT NOT NULL)""")


def _v2(db: sqlite_utils.Database) -> None:
    # a bench asks every scan's order for its short picks: by order, not by wave
    db.execute("CREATE INDEX IF NOT EXISTS pick_stops_order ON pick_stops (order_id)")


MIGRATIONS = (Migration(1, "waves, pick stops, totes, put-backs", _v1),
              Migration(2, "pick stops by order", _v2))


class PickError(Refusal, ValueError):
    """A pick request that cannot be taken."""


def _msg(zh: str, en: str) -> dict[str, str]:
    return {"zh": zh, "en": en}


class PickService:
    def __init__(self, store: Store, device_id: str, layout_path: Path, *,
                 alarms: AlarmCenter | None = None, bus: EventBus | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 today: Callable[[], date] = date.today) -> None:
        self.store = store
        self.device_id = device_id
        self.layout_path = layout_path
        self.alarms = alarms
        self.bus = bus
        self.clock = clock
        self.today = today
        self._timer: threading.Thread | None = None
        self._stop = threading.Event()
        store.ensure_schema(COMPONENT, MIGRATIONS)

    # -- layout ---------------------------------------------------------------------------------
    def layout(self) -> Layout:
        try:
            text = self.layout_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise PickError("no_layout", f"no warehouse layout at {self.layout_path}: "
                                              "picking needs one (docs/picking.md)") from None
        try:
            return parse_layout(text)
        except LayoutError as e:
            raise PickError("bad_layout", f"{self.layout_path}: {e}") from None

    # -- waves ----------------------------------------------------------------------------------
    def start_timer(self) -> None:
        """Recompute waves every [waves] interval_s of the layout (only with a layout)."""
        def run() -> None:
            # the first run after one interval: on demand before (a claim with no wave builds)
            while not self._stop.wait(self._interval()):
                try:
                    self.build()
                except PickError:
                    pass
                except Exception:  # never let the timer die
                    import logging
                    logging.getLogger(__name__).exception("wave build failed")
        self._timer = threading.Thread(target=run, name="waves", daemon=True)
        self._timer.start()

    def _interval(self) -> float:
        try:
            return self.layout().waves.interval_s
        except PickError:
            return 60.0

    def stop(self) -> None:
        self._stop.set()

    def build(self) -> dict[str, Any]:
        """Regroup the open orders into waves now (claimed waves never change)."""
        layout = self.layout()
        now = self.clock()

        def write(db: sqlite_utils.Database) -> dict[str, Any]:
            result = self._build_in(db, layout, now)
            append_event(db, self.device_id, "waves_built", {
                "waves": len(result["waves"]), "waiting": len(result["waiting"]),
                "orders": sum(len(w["orders"]) for w in result["waves"])})
            return result

        result = self.store.write(write)
        self._publish("waves", {"waves": len(result["waves"])})
        return result

    def _build_in(self, db: sqlite_utils.Database, layout: Layout, now: datetime) -> dict[str, Any]:
        db.execute("DELETE FROM pick_stops WHERE wave_id IN (SELECT wave_id FROM pick_waves"
                   " WHERE state = 'open')")
        db.execute("DELETE FROM pick_orders WHERE wave_id IN (SELECT wave_id FROM pick_waves"
                   " WHERE state = 'open')")
        db.execute("DELETE FROM pick_waves WHERE state = 'open'")
        db.execute("DELETE FROM pick_waiting")
        started = {r[0] for r in db.execute("SELECT order_id FROM pick_orders")}
        frozen = {r[0] for r in db.execute("SELECT order_id FROM freezes")}
        today = now.date().isoformat()
        used: dict[str, int] = {}
        for carrier, n in db.execute(
                "SELECT COALESCE(o.carrier, ''), COUNT(*) FROM pick_orders p JOIN pick_waves w"
                " USING (wave_id) JOIN orders o USING (order_id)"
                " WHERE substr(COALESCE(w.claimed_at, w.created_at), 1, 10) = ?"
                " GROUP BY 1", [today]):
            used[carrier] = n
        rows = db.execute(
            "SELECT o.order_id, o.priority, o.ship_by, o.carrier, COUNT(*), SUM(l.qty),"
            " SUM(l.location IS NULL), SUM(l.packed) FROM orders o JOIN order_lines l"
            " USING (order_id) GROUP BY o.order_id").fetchall()
        orders: dict[str, Order] = {}
        candidates = []
        for oid, prio, ship_by, carrier, lines, units, no_loc, packed in rows:
            if packed or oid in started:
                continue  # at a bench already, or being picked
            candidates.append(Candidate(
                oid, prio, datetime.fromisoformat(ship_by) if ship_by else None, carrier,
                lines, units, frozen=oid in frozen, has_locations=no_loc == 0))
        w = layout.waves
        limits = WaveLimits(max_orders=w.max_orders, max_lines=w.max_lines,
                            max_totes=w.max_totes, units_per_tote=w.units_per_tote)
        plan = build_waves(candidates, now=now, limits=limits,
                           carrier_capacity=dict(w.carrier_capacity), carrier_used=used)
        waves = []
        created = utc_now()
        for planned in plan.waves:
            wave_id = f"W{next_counter(db, 'wave_seq'):05d}"
            stops: list[tuple[str, int, Location, int]] = []
            for oid in planned.order_ids:
                state = load_pack_state(db, oid)
                assert state is not None
                orders[oid] = state.order
                for line_no, line in enumerate(state.order.lines):
                    try:
                        loc = layout.location(line.location)
                    except LayoutError:
                        break  # a location outside this layout: the order is not picked here
                    stops.append((oid, line_no, loc, line.qty))
            r = route(layout, [s[2] for s in stops])
            rank = {code: i for i, code in enumerate(r.stops)}
            stops.sort(key=lambda s: (rank[s[2].code], s[0], s[1]))
            db.execute("INSERT INTO pick_waves (wave_id, state, urgent, method, length_m,"
                       " created_at) VALUES (?, 'open', ?, ?, ?, ?)",
                       [wave_id, int(planned.urgent), r.method, round(r.length_m, 3), created])
            for slot, oid in enumerate(planned.order_ids, 1):
                db.execute("INSERT INTO pick_orders (order_id, wave_id, slot) VALUES (?, ?, ?)",
                           [oid, wave_id, slot])
            for i, (oid, line_no, loc, qty) in enumerate(stops, 1):
                db.execute("INSERT INTO pick_stops (wave_id, stop_no, order_id, line_no, location,"
                           " qty) VALUES (?, ?, ?, ?, ?, ?)", [wave_id, i, oid, line_no, loc.code, qty])
            waves.append({"wave_id": wave_id, "orders": list(planned.order_ids),
                          "stops": len(stops), "length_m": round(r.length_m, 1),
                          "method": r.method, "urgent": planned.urgent})
        for w_ in plan.waiting:
            db.execute("INSERT INTO pick_waiting (order_id, reason, detail, since) VALUES (?, ?, ?, ?)",
                       [w_.order_id, w_.reason, w_.detail, created])
        return {"waves": waves, "waiting": [{"order_id": w_.order_id, "reason": w_.reason,
                                             "detail": w_.detail} for w_ in plan.waiting]}

    def overview(self) -> dict[str, Any]:
        db = self.store.read()
        waves = [{"wave_id": r[0], "state": r[1], "urgent": bool(r[2]), "station": r[3],
                  "length_m": r[4], "method": r[5], "orders": r[6], "stops": r[7]}
                 for r in db.execute(
                     "SELECT w.wave_id, w.state, w.urgent, w.station, w.length_m, w.method,"
                     " (SELECT COUNT(*) FROM pick_orders p WHERE p.wave_id = w.wave_id),"
                     " (SELECT COUNT(*) FROM pick_stops s WHERE s.wave_id = w.wave_id)"
                     " FROM pick_waves w WHERE w.state != 'done' ORDER BY w.wave_id")]
        waiting = [{"order_id": r[0], "reason": r[1], "detail": r[2]} for r in db.execute(
            "SELECT order_id, reason, detail FROM pick_waiting ORDER BY order_id")]
        return {"waves": waves, "waiting": waiting}

    # -- a picker's wave ------------------------------------------------------------------------
    def claim(self, wave_id: str | None, station: str, operator: str) -> dict[str, Any]:
        db = self.store.read()
        if wave_id is None and self._wave_of(db, station) is None and db.execute(
                "SELECT 1 FROM pick_waves WHERE state = 'open' LIMIT 1").fetchone() is None:
            self.build()  # nothing waiting: group the open orders now

        def write(db: sqlite_utils.Database) -> str:
            mine = self._wave_of(db, station)
            if mine is not None:
                return mine
            wid = wave_id
            if wid is None:  # the next one: urgent first, then oldest
                row = db.execute("SELECT wave_id FROM pick_waves WHERE state = 'open'"
                                 " ORDER BY urgent DESC, wave_id LIMIT 1").fetchone()
                if row is None:
                    raise PickError("no_wave", "no wave is waiting: build waves first")
                wid = row[0]
            row = db.execute("SELECT state FROM pick_waves WHERE wave_id = ?", [wid]).fetchone()
            if row is None:
                raise PickError("not_found", f"no wave {wid}")
            if row[0] != "open":
                raise PickError("taken", f"wave {wid} is {row[0]}")
            db.execute("UPDATE pick_waves SET state = 'claimed', station = ?, operator = ?,"
                       " claimed_at = ? WHERE wave_id = ?", [station, operator, utc_now(), wid])
            append_event(db, self.device_id, "pick_claimed",
                         {"wave_id": wid, "station": station, "operator": operator})
            return wid

        self.store.write(write)
        return self.current(station)

    @staticmethod
    def _wave_of(db: sqlite_utils.Database, station: str) -> str | None:
        row = db.execute("SELECT wave_id FROM pick_waves WHERE state = 'claimed' AND station = ?"
                         " ORDER BY claimed_at LIMIT 1", [station]).fetchone()
        return row[0] if row else None

    def current(self, station: str) -> dict[str, Any]:
        db = self.store.read()
        wave_id = self._wave_of(db, station)
        if wave_id is None:
            return {"wave": None, "station": station}
        return {"wave": self._view(db, wave_id), "station": station}

    def _view(self, db: sqlite_utils.Database, wave_id: str) -> dict[str, Any]:
        layout = self.layout()
        w = db.execute("SELECT wave_id, state, station, operator, method, length_m, urgent"
                       " FROM pick_waves WHERE wave_id = ?", [wave_id]).fetchone()
        slots = {r[0]: (r[1], r[2], r[3]) for r in db.execute(
            "SELECT order_id, slot, tote, state FROM pick_orders WHERE wave_id = ?", [wave_id])}
        orders: dict[str, Order] = {}
        stops = []
        for (stop_no, oid, line_no, code, qty, picked, state, short_qty, short_reason,
             _skips) in db.execute(
                "SELECT stop_no, order_id, line_no, location, qty, picked, state, short_qty,"
                " short_reason, skips FROM pick_stops WHERE wave_id = ?"
                " ORDER BY CASE state WHEN 'skipped' THEN 1 ELSE 0 END, skips, stop_no", [wave_id]):
            if oid not in orders:
                ps = load_pack_state(db, oid)
                orders[oid] = ps.order if ps else Order(oid)
            order = orders[oid]
            line = order.lines[line_no] if line_no < len(order.lines) else None
            loc = layout.location(code)
            slot, tote, _ = slots.get(oid, (0, None, ""))
            stops.append({
                "stop_no": stop_no, "order_id": oid, "line_no": line_no, "location": code,
                "zone": loc.zone, "aisle": loc.aisle, "bin": loc.bin, "level": loc.level,
                "sku": line.sku if line else "", "name": line.name if line else "",
                "description": _description(line, order), "lot": line.lot if line else None,
                "qty": qty, "picked": picked, "state": state, "short_qty": short_qty,
                "short_reason": short_reason, "slot": slot, "tote": tote})
        live = [s for s in stops if s["state"] in ACTIVE]
        current = live[0] if live else None
        putbacks = [{"putback_id": r[0], "order_id": r[1], "location": r[2], "qty": r[3],
                     "slot": r[4], "tote": r[5], "sku": _sku(orders, db, r[1], r[6]),
                     "name": _name(orders, db, r[1], r[6])}
                    for r in db.execute(
                        "SELECT putback_id, order_id, location, qty, slot, tote, line_no"
                        " FROM pick_putbacks WHERE wave_id = ? AND done_at IS NULL"
                        " ORDER BY putback_id", [wave_id])]
        here = point(layout, layout.location(_last_done(stops))) if _last_done(stops) else None
        remaining = _remaining_m(layout, here, [layout.location(s["location"]) for s in live])
        total_units = sum(s["qty"] for s in stops if s["state"] != "removed")
        done_units = sum(s["picked"] + s["short_qty"] for s in stops
                         if s["state"] in ("done",) or s["state"] == "in_hand")
        return {
            "wave_id": w[0], "state": w[1], "station": w[2], "operator": w[3], "method": w[4],
            "length_m": w[5], "urgent": bool(w[6]), "stops": stops, "current": current,
            "expect": _expect(current, putbacks),
            "putbacks": putbacks, "remaining_m": round(remaining, 1),
            "progress": {"stops_done": sum(1 for s in stops if s["state"] == "done"),
                         "stops": sum(1 for s in stops if s["state"] != "removed"),
                         "units_done": done_units, "units": total_units},
            "orders": [{"order_id": oid, "slot": v[0], "tote": v[1], "state": v[2]}
                       for oid, v in sorted(slots.items(), key=lambda kv: kv[1][0])],
        }

    # -- steps ----------------------------------------------------------------------------------
    def scan(self, station: str, operator: str, code: str) -> dict[str, Any]:
        """One scan on the picker's PDA: a put-back's bin, else the current stop's bin, item or
        tote, whichever the stop expects."""
        if not isinstance(code, str) or not code.strip() or len(code) > 4096:
            raise PickError("bad_request", "code: 1-4096 characters")
        alarm_box: list[Alarm] = []

        def write(db: sqlite_utils.Database) -> dict[str, Any]:
            wave_id = self._wave_of(db, station)
            if wave_id is None:
                raise PickError("not_claimed", "claim a wave first")
            view = self._view(db, wave_id)
            result = self._step(db, view, code.strip(), station, operator, alarm_box)
            after = self._view(db, wave_id)
            self._finish_if_done(db, after)
            return {**result, "wave": self._view(db, wave_id) if after["state"] != "done"
                    else {**after, "state": "done"}}

        result = self.store.write(write)
        for alarm in alarm_box:
            if self.alarms is not None:
                self.alarms.announce(alarm)
        self._publish("pick", {"station": station, "verdict": result["verdict"]})
        return result

    def _step(self, db: sqlite_utils.Database, view: dict[str, Any], code: str, station: str,
              operator: str, alarm_box: list) -> dict[str, Any]:
        wave_id = view["wave_id"]
        expect = view["expect"]
        ev = {"wave_id": wave_id, "station": station, "operator": operator, "code": code}
        if expect["step"] == "putback":
            pb = view["putbacks"][0]
            if code.upper() != pb["location"]:
                return self._answer(db, ev, "wrong_bin", pb["order_id"], _msg(
                    f"放回 {pb['location']}，不是 {code}", f"put back at {pb['location']}, not {code}"))
            db.execute("UPDATE pick_putbacks SET done_at = ?, done_by = ? WHERE putback_id = ?",
                       [utc_now(), operator, pb["putback_id"]])
            return self._answer(db, {**ev, "putback_id": pb["putback_id"], "qty": pb["qty"]},
                                "ok", pb["order_id"], _msg(
                                    f"已放回 {pb['location']} ×{pb['qty']}",
                                    f"put back at {pb['location']} ×{pb['qty']}"),
                                event="pick_putback")
        stop = view["current"]
        if stop is None:
            return self._answer(db, ev, "done", None, _msg("本波次已拣完", "wave done"))
        oid = stop["order_id"]
        ev.update(order_id=oid, stop_no=stop["stop_no"], location=stop["location"])
        freeze = load_freeze(db, oid)
        if freeze is not None:  # the freeze follow-up has not run yet: refuse, same as it will
            record_interception(db, self.device_id, freeze, action="pick", station=station,
                                operator=operator, code=code)
            self._remove_order(db, wave_id, oid)
            return self._answer(db, ev, "frozen", oid, _msg(f"订单 {oid} 已冻结：停止拣货",
                                                            f"order {oid} is frozen: stop picking"))
        where = (db, ev, stop)
        if expect["step"] == "bin":
            if code.upper() != stop["location"]:
                return self._answer(db, ev, "wrong_bin", oid, _msg(
                    f"错误库位 {code}，请到 {stop['location']}",
                    f"wrong bin {code}: go to {stop['location']}"))
            self._set_stop(db, wave_id, stop["stop_no"], state="at_bin")
            return self._answer(db, ev, "ok", oid, _msg(f"库位 {code} 正确：扫商品",
                                                        f"bin {code} ok: scan the item"),
                                event="pick_bin")
        if expect["step"] == "item":
            return self._item(*where, code)
        # tote
        if not TOTE_RE.fullmatch(code.upper()):
            return self._answer(db, ev, "wrong_tote", oid, _msg(
                f"请扫周转箱（格口 {stop['slot']}）", f"scan the tote (slot {stop['slot']})"))
        tote = code.upper()
        bound = stop["tote"]
        if bound is None:
            other = db.execute("SELECT order_id FROM pick_orders JOIN pick_waves USING (wave_id)"
                               " WHERE tote = ? AND pick_waves.state = 'claimed'"
                               " AND pick_orders.state != 'frozen' AND order_id != ?",
                               [tote, oid]).fetchone()
            if other is not None:
                return self._answer(db, ev, "wrong_tote", oid, _msg(
                    f"{tote} 属于订单 {other[0]}", f"{tote} holds order {other[0]}"))
            db.execute("UPDATE pick_orders SET tote = ? WHERE order_id = ?", [tote, oid])
        elif bound != tote:
            return self._answer(db, ev, "wrong_tote", oid, _msg(
                f"放入 {bound}（格口 {stop['slot']}），不是 {tote}",
                f"put into {bound} (slot {stop['slot']}), not {tote}"))
        self._set_stop(db, wave_id, stop["stop_no"], state="done")
        ev.update(tote=tote, picked=stop["picked"], slot=stop["slot"])
        return self._answer(db, ev, "ok", oid, _msg(
            f"已放入 {tote}：下一个库位", f"in {tote}: next bin"), event="pick_tote")

    def _item(self, db: sqlite_utils.Database, ev: dict[str, Any], stop: dict[str, Any],
              code: str) -> dict[str, Any]:
        """The packing rules on a one-line order: wrong item, lot and expiry as at the bench."""
        ps = load_pack_state(db, stop["order_id"])
        assert ps is not None
        line = ps.order.lines[stop["line_no"]]
        one = PackState(replace(ps.order, lines=(replace(line, qty=stop["qty"]),), gifts=()),
                        (stop["picked"],))
        scanned = classify(code)
        outcome = evaluate_scan(scanned, ScanContext(ev["station"], self.today(), open=one))
        oid = stop["order_id"]
        if outcome.verdict is not Verdict.OK or not outcome.counted:
            from scanedge.edge.domain.messages import scan_message
            return self._answer(db, {**ev, "reason": outcome.reason.value}, outcome.verdict.value,
                                oid, scan_message(outcome, scanned.text), alarm=outcome.alarm)
        picked = stop["picked"] + 1
        state = "in_hand" if picked >= stop["qty"] else "at_bin"
        self._set_stop(db, ev["wave_id"], stop["stop_no"], state=state, picked=picked)
        ev.update(sku=line.sku, picked=picked, qty=stop["qty"], lot=scanned.lot,
                  expiry=scanned.expiry.isoformat() if scanned.expiry else None)
        msg = (_msg(f"{line.name or line.sku} {picked}/{stop['qty']}：放入格口 {stop['slot']}",
                    f"{line.name or line.sku} {picked}/{stop['qty']}: into slot {stop['slot']}")
               if state == "in_hand" else
               _msg(f"{line.name or line.sku} {picked}/{stop['qty']}",
                    f"{line.name or line.sku} {picked}/{stop['qty']}"))
        return self._answer(db, ev, "ok", oid, msg, event="pick_item")

    def short(self, station: str, operator: str, stop_no: int, found: int,
              reason: str) -> dict[str, Any]:
        if reason not in SHORT_REASONS:
            raise PickError("bad_request", f"reason: one of {', '.join(SHORT_REASONS)}")

        def write(db: sqlite_utils.Database) -> dict[str, Any]:
            wave_id, stop = self._stop_of(db, station, stop_no)
            if not isinstance(found, int) or isinstance(found, bool) or not \
                    stop["picked"] <= found < stop["qty"]:
                raise PickError("bad_request", f"found: {stop['picked']}..{stop['qty'] - 1} "
                                                    "(the items scanned so far count)")
            if found > stop["picked"]:
                raise PickError("bad_request", "scan the items found before reporting short")
            missing = stop["qty"] - found
            db.execute("UPDATE pick_stops SET short_qty = ?, short_reason = ?, state = ?"
                       " WHERE wave_id = ? AND stop_no = ?",
                       [missing, reason, "in_hand" if found else "done", wave_id, stop_no])
            ev = {"wave_id": wave_id, "station": station, "operator": operator,
                  "stop_no": stop_no, "location": stop["location"], "sku": stop["sku"],
                  "qty": stop["qty"], "found": found, "missing": missing, "reason": reason}
            res = self._answer(db, ev, "short", stop["order_id"], _msg(
                f"缺货 {stop['location']}：少 {missing}", f"short at {stop['location']}: {missing} missing"),
                event="pick_short")
            self._finish_if_done(db, self._view(db, wave_id))
            return {**res, "wave": self._view(db, wave_id)}

        return self.store.write(write)

    def skip(self, station: str, operator: str, stop_no: int) -> dict[str, Any]:
        def write(db: sqlite_utils.Database) -> dict[str, Any]:
            wave_id, stop = self._stop_of(db, station, stop_no)
            db.execute("UPDATE pick_stops SET state = 'skipped', skips = skips + 1"
                       " WHERE wave_id = ? AND stop_no = ?", [wave_id, stop_no])
            res = self._answer(db, {"wave_id": wave_id, "station": station, "operator": operator,
                                    "stop_no": stop_no, "location": stop["location"]},
                               "skipped", stop["order_id"],
                               _msg(f"跳过 {stop['location']}：稍后再来",
                                    f"skipped {stop['location']}: back to it later"),
                               event="pick_skip")
            return {**res, "wave": self._view(db, wave_id)}

        return self.store.write(write)

    def _stop_of(self, db: sqlite_utils.Database, station: str,
                 stop_no: int) -> tuple[str, dict[str, Any]]:
        wave_id = self._wave_of(db, station)
        if wave_id is None:
            raise PickError("not_claimed", "claim a wave first")
        view = self._view(db, wave_id)
        stop = next((s for s in view["stops"] if s["stop_no"] == stop_no), None)
        if stop is None or stop["state"] not in ("todo", "at_bin", "skipped"):
            raise PickError("not_open", f"stop {stop_no} is not open")
        return wave_id, stop

    # -- a freeze lands -------------------------------------------------------------------------
    def on_freeze(self, db: sqlite_utils.Database, order_id: str, reason: str,
                  issued_at: str, message: dict[str, str]) -> list[Alarm]:
        """Inside the freeze follow-up's transaction: the order's remaining stops go, what was
        picked becomes put-back tasks, the picker's station alarms, an interception at stage
        ``pick`` is recorded. Returns the alarms to announce after the commit."""
        row = db.execute("SELECT w.wave_id, w.station, w.operator FROM pick_orders p JOIN"
                         " pick_waves w USING (wave_id) WHERE p.order_id = ? AND p.state ="
                         " 'picking' AND w.state = 'claimed'", [order_id]).fetchone()
        if row is None:
            return []
        wave_id, station, operator = row
        removed, putbacks = self._remove_order(db, wave_id, order_id)
        freeze = load_freeze(db, order_id)
        if freeze is not None:
            record_interception(db, self.device_id, freeze, action="pick", station=station,
                                operator=operator, wave_id=wave_id, stops_removed=removed,
                                putbacks=putbacks)
        if self.alarms is None:
            return []
        return [self.alarms.insert(db, "freeze", message, order_id=order_id, station=station,
                                   reason=reason, issued_at=issued_at, stage="pick",
                                   wave_id=wave_id, putbacks=putbacks)]

    def _remove_order(self, db: sqlite_utils.Database, wave_id: str,
                      order_id: str) -> tuple[int, int]:
        slot, tote = db.execute("SELECT slot, tote FROM pick_orders WHERE order_id = ?",
                                [order_id]).fetchone()
        stops = db.execute("SELECT stop_no, line_no, location, picked, state FROM pick_stops"
                           " WHERE wave_id = ? AND order_id = ? AND state != 'removed'",
                           [wave_id, order_id]).fetchall()
        removed = putbacks = 0
        now = utc_now()
        for _stop_no, line_no, location, picked, state in stops:
            if state in ACTIVE:
                removed += 1
            if picked:
                putbacks += 1
                db.execute("INSERT INTO pick_putbacks (wave_id, order_id, line_no, location, qty,"
                           " slot, tote, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                           [wave_id, order_id, line_no, location, picked, slot, tote, now])
        db.execute("UPDATE pick_stops SET state = 'removed' WHERE wave_id = ? AND order_id = ?",
                   [wave_id, order_id])
        db.execute("UPDATE pick_orders SET state = 'frozen' WHERE order_id = ?", [order_id])
        append_event(db, self.device_id, "pick_stopped", {
            "wave_id": wave_id, "stops_removed": removed, "putbacks": putbacks},
            order_id=order_id)
        return removed, putbacks

    # -- handover to the bench ------------------------------------------------------------------
    @staticmethod
    def orders_in_tote(db: sqlite_utils.Database, tote: str) -> list[str]:
        return [r[0] for r in db.execute(
            "SELECT order_id FROM pick_orders WHERE tote = ? AND state = 'picked'"
            " ORDER BY wave_id DESC, slot", [tote.upper()])]  # a reused tote: the latest wave

    @staticmethod
    def open_from_tote(db: sqlite_utils.Database, tote: str,
                       open_id: str | None) -> ToteOpen | None:
        """Which of the tote's orders a bench scan of it opens (edge/domain/handover.py)."""
        rows = db.execute("SELECT order_id FROM pick_orders WHERE tote = ? AND state = 'picked'"
                          " ORDER BY wave_id DESC, slot DESC LIMIT 50", [tote.upper()]).fetchall()
        held = []
        for (oid,) in reversed(rows):  # in the order they went in; a reused tote: its latest 50
            state = load_pack_state(db, oid)
            freeze = load_freeze(db, oid)
            stopped = freeze is not None and db.execute(
                "SELECT 1 FROM events WHERE type = 'interception' AND order_id = ?"
                " AND json_extract(payload, '$.action') = 'scan'"
                " AND json_extract(payload, '$.freeze_issued_at') = ? LIMIT 1",
                [oid, freeze.issued_at.isoformat()]).fetchone() is not None
            held.append(InTote(oid, packed=state is not None and state.complete,
                               frozen=freeze is not None, stopped=stopped))
        return open_from_tote(tote.upper(), held, open_id)

    @staticmethod
    def shorts(db: sqlite_utils.Database, order_id: str) -> list[dict[str, Any]]:
        return [{"line_no": r[0], "location": r[1], "missing": r[2], "reason": r[3]}
                for r in db.execute(
                    "SELECT line_no, location, short_qty, short_reason FROM pick_stops"
                    " WHERE order_id = ? AND short_qty > 0 AND state != 'removed'", [order_id])]

    # -- helpers --------------------------------------------------------------------------------
    def _finish_if_done(self, db: sqlite_utils.Database, view: dict[str, Any]) -> None:
        wave_id = view["wave_id"]
        for o in view["orders"]:
            if o["state"] == "picking" and not any(
                    s["state"] in ACTIVE for s in view["stops"] if s["order_id"] == o["order_id"]):
                db.execute("UPDATE pick_orders SET state = 'picked' WHERE order_id = ?",
                           [o["order_id"]])
                append_event(db, self.device_id, "pick_order_done", {
                    "wave_id": wave_id, "tote": o["tote"], "slot": o["slot"],
                    "shorts": self.shorts(db, o["order_id"])}, order_id=o["order_id"])
        if view["current"] is None and not view["putbacks"] and view["state"] == "claimed":
            db.execute("UPDATE pick_waves SET state = 'done', done_at = ? WHERE wave_id = ?",
                       [utc_now(), wave_id])
            append_event(db, self.device_id, "pick_done", {"wave_id": wave_id,
                                                           "station": view["station"]})

    @staticmethod
    def _set_stop(db: sqlite_utils.Database, wave_id: str, stop_no: int, *, state: str,
                  picked: int | None = None) -> None:
        if picked is None:
            db.execute("UPDATE pick_stops SET state = ? WHERE wave_id = ? AND stop_no = ?",
                       [state, wave_id, stop_no])
        else:
            db.execute("UPDATE pick_stops SET state = ?, picked = ? WHERE wave_id = ? AND"
                       " stop_no = ?", [state, picked, wave_id, stop_no])

    def _answer(self, db: sqlite_utils.Database, ev: dict[str, Any], verdict: str,
                order_id: str | None, message: dict[str, str], *, event: str = "pick_refused",
                alarm: bool | None = None) -> dict[str, Any]:
        payload = {**ev, "verdict": verdict}
        e = append_event(db, self.device_id, event, payload, order_id=order_id)
        return {"verdict": verdict, "order_id": order_id, "message": message,
                "alarm": verdict in ("frozen", "wrong_item", "wrong_lot", "expired", "over_scan")
                if alarm is None else alarm, "event_id": e.event_id}

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        if self.bus is not None:
            self.bus.publish(kind, data)


def _expect(current: dict[str, Any] | None, putbacks: list[dict[str, Any]]) -> dict[str, Any]:
    if putbacks:
        return {"step": "putback", "location": putbacks[0]["location"]}
    if current is None:
        return {"step": "done"}
    if current["state"] in ("todo", "skipped"):
        return {"step": "bin", "location": current["location"]}
    if current["state"] == "at_bin":
        return {"step": "item", "sku": current["sku"]}
    return {"step": "tote", "slot": current["slot"], "tote": current["tote"]}


def _description(line: Any, order: Order) -> str:
    if line is None:
        return ""
    parts = [p for p in (f"SKU {line.sku}", f"lot {line.lot}" if line.lot else "",
                         f"≥ {line.expires.isoformat()}" if line.expires else "",
                         order.category or "") if p]
    return " · ".join(parts)


def _sku(orders: dict[str, Order], db: sqlite_utils.Database, oid: str, line_no: int) -> str:
    order = orders.get(oid) or (load_pack_state(db, oid) or PackState(Order(oid), ())).order
    return order.lines[line_no].sku if line_no < len(order.lines) else ""


def _name(orders: dict[str, Order], db: sqlite_utils.Database, oid: str, line_no: int) -> str:
    order = orders.get(oid) or (load_pack_state(db, oid) or PackState(Order(oid), ())).order
    return order.lines[line_no].name if line_no < len(order.lines) else ""


def _last_done(stops: list[dict[str, Any]]) -> str | None:
    done = [s for s in stops if s["state"] in ("done", "in_hand", "at_bin")]
    return done[-1]["location"] if done else None


def _remaining_m(layout: Layout, here: tuple[int, float] | None, rest: list[Location]) -> float:
    """From where the picker is, through the remaining stops in route order, back to the depot."""
    from scanedge.edge.domain.routing import depot

    path = [here or depot(layout), *[point(layout, loc) for loc in rest], depot(layout)]
    return sum(distance(layout, path[i], path[i + 1]) for i in range(len(path) - 1))


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
