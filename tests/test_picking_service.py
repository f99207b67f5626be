"""The picking service over a real store: waves, claims, steps, shorts, skips, a freeze, the
handover of a tote to a bench. Clock and day are passed in: nothing depends on when it runs."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from scanedge.edge.alarms import AlarmCenter
from scanedge.edge.bus import EventBus
from scanedge.edge.config import load_settings
from scanedge.edge.domain.orders import parse_order
from scanedge.edge.domain.packing import Freeze
from scanedge.edge.picking import PickError, PickService
from scanedge.edge.scanning import ScanService
from scanedge.edge.store import Store
from scanedge.edge.store.orders import save_freeze, save_order

NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
LAYOUT = """aisles = 10
bins = 20
levels = 5
[waves]
max_orders = 2
"""
ORDERS = [
    {"order_id": "SO-1", "priority": "P2", "carrier": "SF", "ship_by": "2026-05-03",
     "lines": [{"sku": "4006381333931", "name": "荧光笔", "qty": 2, "location": "A-03-10-2"},
               {"sku": "SELLER-07", "name": "手机壳", "qty": 1, "location": "A-01-05-1"}]},
    {"order_id": "SO-2", "priority": "P0", "carrier": "SF",
     "lines": [{"sku": "00012345600012", "name": "螺丝", "qty": 1, "lot": "B7",
                "location": "A-05-15-3"}]},
    {"order_id": "SO-3", "priority": "P1", "carrier": "JT", "ship_by": "2026-05-01T12:00:00Z",
     "lines": [{"sku": "SELLER-09", "name": "杯子", "qty": 1, "location": "A-08-02-1"}]},
    {"order_id": "SO-4", "lines": [{"sku": "SELLER-10", "qty": 1}]},  # pack only: no location
]


@pytest.fixture
def rig(tmp_path):
    settings = load_settings(env={}, data_dir=str(tmp_path), device_id="gw-1", station="bench-1")
    store = Store(settings.edge_db_path)
    bus = EventBus()
    alarms = AlarmCenter(store, "gw-1", bus)
    (tmp_path / "layout.toml").write_text(LAYOUT)
    picking = PickService(store, "gw-1", tmp_path / "layout.toml", alarms=alarms, bus=bus,
                          clock=lambda: NOW, today=lambda: date(2026, 5, 1))
    scans = ScanService(store, settings, bus=bus, alarms=alarms, picking=picking,
                        today=lambda: date(2026, 5, 1))
    store.write(lambda db: [save_order(db, parse_order(o)) for o in ORDERS])
    yield store, picking, scans, alarms
    store.close()


def events(store, type_):
    return [r[0] for r in store.read().execute(
        "SELECT order_id FROM events WHERE type = ? ORDER BY seq", [type_])]


def test_waves_urgent_first_pack_only_orders_left_alone(rig):
    store, picking, _, _ = rig
    result = picking.build()
    assert [w["orders"] for w in result["waves"]] == [["SO-3", "SO-2"], ["SO-1"]]  # ship today
    assert result["waves"][0]["urgent"] is True
    assert events(store, "waves_built") == [None]


def test_a_wave_walked_end_to_end(rig):
    store, picking, _, _ = rig
    picking.build()
    view = picking.claim(None, "pda-1", "li")["wave"]
    assert view["wave_id"] == "W00001" and [s["order_id"] for s in view["stops"]] == ["SO-2", "SO-3"]
    first = view["current"]
    assert (first["aisle"], first["bin"], first["level"], first["slot"]) == (5, 15, 3, 2)
    assert view["expect"] == {"step": "bin", "location": "A-05-15-3"}
    steps = [("A-01-01-1", "wrong_bin"), ("A-05-15-3", "ok"),
             ("00012345600012", "wrong_lot"),          # the line needs lot B7: packing's rule
             ("]C1010001234560001210B7", "ok"), ("SO-9", "wrong_tote"), ("TOTE-01", "ok")]
    for code, verdict in steps:
        assert picking.scan("pda-1", "li", code)["verdict"] == verdict, code
    view = picking.current("pda-1")["wave"]
    assert view["expect"] == {"step": "bin", "location": "A-08-02-1"}
    assert view["progress"]["stops_done"] == 1
    for code in ("A-08-02-1", "SELLER-09"):
        assert picking.scan("pda-1", "li", code)["verdict"] == "ok"
    assert picking.scan("pda-1", "li", "TOTE-01")["verdict"] == "wrong_tote"  # SO-2's tote
    done = picking.scan("pda-1", "li", "TOTE-02")
    assert done["wave"]["state"] == "done"
    assert set(events(store, "pick_order_done")) == {"SO-2", "SO-3"}
    assert "pick_tote" in {r[0] for r in store.read().execute("SELECT type FROM events")}


def test_short_and_skip_and_handover_to_the_bench(rig):
    _store, picking, scans, _ = rig
    picking.build()
    picking.claim("W00002", "pda-1", "li")  # SO-1: two stops
    view = picking.current("pda-1")["wave"]
    first, second = view["stops"]
    skipped = picking.skip("pda-1", "li", first["stop_no"])
    assert skipped["wave"]["current"]["stop_no"] == second["stop_no"]

    def walk(stop):
        picking.scan("pda-1", "li", stop["location"])
        assert picking.scan("pda-1", "li", stop["sku"])["verdict"] == "ok"
        if stop["qty"] == 2:  # the pen: one found, the bin is short
            with pytest.raises(PickError, match="found"):
                picking.short("pda-1", "li", stop["stop_no"], 2, "empty")
            short = picking.short("pda-1", "li", stop["stop_no"], 1, "not_enough")
            assert short["verdict"] == "short" and short["wave"]["expect"]["step"] == "tote"
        return picking.scan("pda-1", "li", "TOTE-07")

    assert walk(second)["verdict"] == "ok"
    assert picking.current("pda-1")["wave"]["current"]["stop_no"] == first["stop_no"]  # back
    assert walk(first)["wave"]["state"] == "done"
    # the bench scans the tote: the order opens and says what is missing
    answer = scans.scan("TOTE-07", station="bench-1", operator="wang")
    assert answer["verdict"] == "short_pick" and answer["order_id"] == "SO-1"
    assert answer["short_pick"][0]["missing"] == 1
    assert "荧光笔 ×1" in answer["message"]["zh"] and "A-03-10-2" in answer["message"]["en"]
    assert answer["ready_to_print"] is False
    # the items that are there count as usual
    assert scans.scan("4006381333931", station="bench-1", operator="wang")["verdict"] == "ok"


def test_a_freeze_mid_wave_removes_the_stops_and_asks_for_put_backs(rig):
    store, picking, _, _alarms = rig
    picking.build()
    picking.claim("W00002", "pda-1", "li")
    view = picking.current("pda-1")["wave"]
    stop = view["current"]
    for code in (stop["location"], stop["sku"], "TOTE-03"):
        picking.scan("pda-1", "li", code)

    def freeze(db):
        save_freeze(db, Freeze("SO-1", "cancel", NOW), source="hub")
        return picking.on_freeze(db, "SO-1", "cancel", NOW.isoformat(),
                                 {"zh": "冻结", "en": "frozen"})

    raised = store.write(freeze)
    assert [(a.station, a.details["stage"]) for a in raised] == [("pda-1", "pick")]
    view = picking.current("pda-1")["wave"]
    assert view["current"] is None
    assert {s["state"] for s in view["stops"]} == {"removed"}
    assert [(p["location"], p["qty"], p["tote"]) for p in view["putbacks"]] == [
        (stop["location"], stop["qty"], "TOTE-03")]
    assert view["expect"] == {"step": "putback", "location": stop["location"]}
    assert picking.scan("pda-1", "li", "A-09-09-1")["verdict"] == "wrong_bin"
    assert picking.scan("pda-1", "li", stop["location"])["wave"]["state"] == "done"
    rows = store.read().execute("SELECT payload FROM events WHERE type = 'interception'").fetchall()
    assert len(rows) == 1 and '"action":"pick"' in rows[0][0]


def test_no_layout_is_a_clear_error(tmp_path):
    store = Store(tmp_path / "edge.db")
    service = PickService(store, "gw", tmp_path / "layout.toml")
    with pytest.raises(PickError, match="no warehouse layout"):
        service.build()
    store.close()
