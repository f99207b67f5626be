"""Which order a tote scanned at a bench opens when it holds several (edge/domain/handover.py),
and the bench's answer for such a tote over a real store (docs/picking.md, "Handover")."""

from __future__ import annotations

import pytest

from scanedge.edge.domain.handover import InTote, ToteOpen, open_from_tote
from scanedge.edge.domain.orders import parse_order
from scanedge.edge.domain.packing import Freeze
from scanedge.edge.store.orders import save_freeze, save_order
from tests.test_picking_service import NOW, rig  # noqa: F401

A, B, C = InTote("A"), InTote("B"), InTote("C")
PA, PB, PC = (InTote(x, packed=True) for x in "ABC")
FB = InTote("B", frozen=True)            # frozen after it was picked, no bench stopped it yet
SB = InTote("B", frozen=True, stopped=True)  # a bench refused it and alarmed already


@pytest.mark.parametrize(("held", "open_id", "expected"), [
    ([], None, None),
    ([A], None, ("A", (), ())),
    ([A], "A", ("A", (), ())),                 # a tote of one order stays on it
    ([A, B, C], None, ("A", ("B", "C"), ())),  # the first in, the others to pack after it
    ([A, B, C], "X", ("A", ("B", "C"), ())),   # the open order is not from this tote
    ([PA, B, C], "A", ("B", ("C",), ())),      # A packed: the next tote scan opens B
    ([PA, B, C], None, ("B", ("C",), ())),
    ([PA, PB, C], "B", ("C", (), ())),         # the last one: nothing more to say
    ([A, B, C], "B", ("C", ("A", "B"), ())),   # scanned again while B is open: on to the next
    ([A, B, C], "C", ("A", ("B", "C"), ())),   # round the list
    ([PA, PB, PC], None, ("C", (), ())),       # all packed: the latest, the bench says so
    ([PA, PB, PC], "A", ("C", (), ())),
    ([A, FB, C], None, ("B", ("C", "A"), ())),  # a frozen order first: the bench alarms
    ([A, FB, C], "A", ("B", ("C", "A"), ())),
    ([A, SB, C], None, ("A", ("C",), ())),     # stopped already: handled, not opened again
    ([A, FB, InTote("C", frozen=True)], None, ("B", ("A",), ("C",))),  # C alarms next time
    ([PA, SB], "A", ("B", (), ())),            # nothing to pack: the latest (frozen: refused)
])
def test_which_order_a_tote_opens(held, open_id, expected):
    got = open_from_tote("TOTE-01", held, open_id)
    if expected is None:
        assert got is None
    else:
        assert (got.order_id, got.to_pack, got.frozen) == expected


@pytest.mark.parametrize(("tote", "zh", "en"), [
    (ToteOpen("TOTE-01", "A"), None, None),
    (ToteOpen("TOTE-01", "A", to_pack=("B",)), "还有 1 单待打包（下一单 B）",
     "tote TOTE-01 holds 1 more order to pack (next B): scan the tote again for it"),
    (ToteOpen("TOTE-01", "A", to_pack=("B", "C")), "还有 2 单待打包（下一单 B）",
     "holds 2 more orders to pack (next B)"),
    (ToteOpen("TOTE-01", "A", frozen=("C",)), "已冻结订单 C：取出其商品",
     "frozen order C in the tote: take their items out"),
])
def test_the_bench_says_what_else_the_tote_holds(tote, zh, en):
    note = tote.note()
    message = tote.with_note({"zh": "已打开 A", "en": "A opened"})
    if zh is None:
        assert note is None and message == {"zh": "已打开 A", "en": "A opened"}
    else:
        assert zh in note["zh"] and en in note["en"]
        assert message["zh"].startswith("已打开 A · ") and message["en"].startswith("A opened · ")


def _walk(picking, station: str, wave_id: str, totes: dict[str, str]) -> None:
    """Claim ``wave_id`` at ``station`` and pick it to the end, each order into ``totes[it]``."""
    picking.claim(wave_id, station, "li")
    while (wave := picking.current(station)["wave"]) is not None and wave["current"]:
        stop = wave["current"]
        picking.scan(station, "li", stop["location"])
        for _ in range(stop["qty"]):  # SO-2's line needs lot B7 (GS1 with AI 10)
            picking.scan(station, "li", "]C1010001234560001210B7"
                         if stop["sku"] == "00012345600012" else stop["sku"])
        assert picking.scan(station, "li", totes[stop["order_id"]])["verdict"] == "ok"


def test_a_tote_of_several_orders_opens_them_one_after_the_other(rig):  # noqa: F811
    store, picking, scans, _ = rig
    extra = {"order_id": "SO-5", "priority": "P2", "carrier": "SF", "ship_by": "2026-05-04",
             "lines": [{"sku": "SELLER-11", "name": "碗", "qty": 1, "location": "A-02-02-1"}]}
    store.write(lambda db: save_order(db, parse_order(extra)))
    waves = picking.build()["waves"]
    assert [w["orders"] for w in waves] == [["SO-3", "SO-2"], ["SO-1", "SO-5"]]
    # TOTE-09 takes SO-3 in the first wave and, that wave done, SO-1 in the second
    _walk(picking, "pda-1", "W00001", {"SO-3": "TOTE-09", "SO-2": "TOTE-08"})
    _walk(picking, "pda-2", "W00002", {"SO-1": "TOTE-09", "SO-5": "TOTE-10"})
    db = store.read()
    assert picking.open_from_tote(db, "TOTE-09", None).to_pack == ("SO-1",)

    first = scans.scan("TOTE-09", station="bench-1", operator="wang")
    assert first["verdict"] == "ok" and first["order_id"] == "SO-3"
    assert first["tote"] == {"tote": "TOTE-09", "order_id": "SO-3", "to_pack": ["SO-1"],
                             "frozen": []}
    assert "还有 1 单待打包（下一单 SO-1）" in first["message"]["zh"]
    assert scans.scan("SELLER-09", station="bench-1", operator="wang")["complete"] is True
    # SO-3 packed: the next tote scan opens SO-1, the last one in the tote
    second = scans.scan("TOTE-09", station="bench-1", operator="wang")
    assert second["order_id"] == "SO-1" and second["tote"]["to_pack"] == []
    assert "待打包" not in second["message"]["zh"]
    # a freeze of SO-1 lands now: the tote scan refuses it and alarms, once
    store.write(lambda db: save_freeze(db, Freeze("SO-1", "cancel", NOW), source="hub"))
    frozen = scans.scan("TOTE-09", station="bench-2", operator="wang")
    assert frozen["verdict"] == "frozen" and frozen["order_id"] == "SO-1"
