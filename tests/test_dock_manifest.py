"""The printed handover manifest (printers/manifest_label.py): every paper, a long batch as
several pages of the stock's size, nothing cut off."""

from __future__ import annotations

import pytest

from scanedge.edge.domain.dock import Batch, Loaded, Printed, manifest
from scanedge.printers.layout import load_template
from scanedge.printers.manifest_label import manifest_rows, page_fields, render_manifest


def doc(parcels: int, carrier: str | None = "SF") -> dict:
    loaded = [Loaded(f"SO-{i}", carrier, f"SF{i:013d}", 2 if i == 3 else 1, "t")
              for i in range(parcels)]
    return manifest(Batch("01JDOCK", carrier), loaded, [Printed("SO-X", "SF", None, "t"),
                                                        Printed("SO-Y", "SF", None, "t", True)],
                    station="dock-1", operator="li", opened_at="2026-05-01T09:00:00.000Z",
                    closed_at="2026-05-01T10:00:00.000Z")


@pytest.mark.parametrize("paper, width", [("58", 384), ("80", 576), ("76x130", 608),
                                          ("100x150", 800), ("100x180", 800)])
def test_a_long_manifest_prints_as_pages_of_the_stock_on_every_paper(paper, width) -> None:
    template = load_template(f"manifest_{paper}")
    per_page = next(b for b in template.blocks if b.get("rows"))["per_page"]
    parcels = 2 * per_page + 1
    pages = render_manifest(doc(parcels), paper)
    assert len(pages) == 3
    assert {p.width for p in pages} == {width}
    if template.length is not None:  # die-cut stock: every page exactly one label
        assert {p.height for p in pages} == {template.length}


def test_the_last_page_says_what_was_not_scanned_and_a_parcel_scanned_twice_is_marked() -> None:
    d = doc(5)
    rows = manifest_rows(d)
    assert rows[0] == "1. SF0000000000000  SO-0" and rows[3].endswith("×2")
    first = page_fields(d, page=1, pages=2)
    last = page_fields(d, page=2, pages=2)
    assert first["missing"] == "" and not first["last"]
    assert "已打印未扫描 1 件" in last["missing"] and "已冻结待拦截 1 件" in last["missing"]
    assert last["carrier_name"] == "承运商 SF" and last["count"] == "5"
    assert page_fields(doc(1, None), page=1, pages=1)["carrier_name"] == "混装 MIXED"


def test_an_empty_manifest_still_prints_one_page() -> None:
    assert len(render_manifest(doc(0), "80")) == 1
