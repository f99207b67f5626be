"""Multi-parcel orders at the bench in real Chromium (docs/parcels.md): the demo's SO-1004 split
into two parcels on the page, one mug scanned into each box, both parcels' labels printed by
``scanedge printer-sim --save`` and read back (zxing and zbar: each parcel's QR, the number)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.support import run_cli, wait_until
from tests.test_pages_browser import (
    By,
    EdgeServer,
    PrinterSim,
    chromium,
    js_until,
    open_page,
    scan,
    shot,
)

pytestmark = pytest.mark.slow
MUG = "6901234567021"  # SO-1004: two of them


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def bench(tmp_path) -> Iterator[tuple[EdgeServer, PrinterSim, object]]:
    data = tmp_path / "var"
    run_cli("orders", "import", "--demo", data_dir=data)
    saved = tmp_path / "printed"
    saved.mkdir()
    printer = PrinterSim(data, "--save", str(saved))
    edge = EdgeServer(data, SCANEDGE_PRINTER=printer.address).start()
    yield edge, printer, saved
    edge.kill()
    printer.stop()


def items_in(driver, parcel_no: int) -> str:
    return driver.execute_script(
        "const li = document.querySelector('.parcel[data-parcel=\"' + arguments[0] + '\"]');"
        " return li ? li.textContent : '';", parcel_no)


def tap(driver, css: str) -> None:
    """Click the button once it is there and enabled (the card redraws as answers arrive)."""
    js_until(driver, "const b = document.querySelector(arguments[0]);"
                     " if (b && !b.disabled) { b.click(); return true; } return false;"
             .replace("arguments[0]", repr(css)), timeout=10, what=css)


def test_a_packer_splits_an_order_into_two_parcels_and_prints_both_labels(bench, browser) -> None:
    edge, printer, saved = bench
    open_page(browser, edge, "/bench")
    scan(browser, "SO-1004")
    js_until(browser, "return document.getElementById('order-id').textContent === 'SO-1004'")
    assert browser.find_element(By.ID, "parcels-card").is_displayed()
    assert "整单一个包裹" in browser.find_element(By.ID, "parcels-summary").text

    browser.find_element(By.ID, "parcels-split").click()  # two boxes (the count's default)
    js_until(browser, "return document.querySelectorAll('.parcel').length === 2", timeout=10,
             what="two parcels")
    assert "包裹 1/2" in items_in(browser, 1) and "正在装" in items_in(browser, 1)
    scan(browser, MUG)  # into parcel 1, the box being packed
    js_until(browser, "return document.querySelector('.parcel[data-parcel=\"1\"]')"
                      ".textContent.includes('1 件')", timeout=10, what="a mug in parcel 1")
    tap(browser, '.parcel[data-parcel="2"] .parcel-open-btn')
    js_until(browser, "return document.querySelector('.parcel[data-parcel=\"2\"]')"
                      ".classList.contains('parcel-open')", timeout=10, what="parcel 2 packing")
    scan(browser, MUG)
    js_until(browser, "return document.querySelector('.parcel[data-parcel=\"2\"]')"
                      ".textContent.includes('1 件')", timeout=10, what="a mug in parcel 2")
    # the order's single label gives way to the parcels' labels
    assert browser.find_element(By.ID, "print-btn").get_attribute("disabled") is not None
    assert "分包" in browser.find_element(By.ID, "print-why").text

    before = printer.labels
    tap(browser, '.parcel[data-parcel="1"] .parcel-print')
    wait_until(lambda: printer.labels == before + 1, timeout=15, what="parcel 1's label")
    tap(browser, '.parcel[data-parcel="2"] .parcel-print')
    wait_until(lambda: printer.labels == before + 2, timeout=15, what="parcel 2's label")
    js_until(browser, "return [...document.querySelectorAll('.parcel .job-printed')].length === 2",
             timeout=10, what="both parcels shown printed")
    browser.execute_script("document.getElementById('parcels-card').scrollIntoView()")
    shot(browser, "bench-parcels")

    from scanedge.printers.selfcheck import decode_symbols, decode_symbols_zbar

    pngs = wait_until(lambda: sorted(saved.glob("label-*.png"))[-2:]
                      if len(list(saved.glob("label-*.png"))) >= 2 else None, 10,
                      what="the saved labels")
    for k, png in enumerate(pngs, 1):
        image = np.array(Image.open(png).convert("L"))
        for read in (decode_symbols, decode_symbols_zbar):
            texts = {s.text for s in read(image)}
            assert {f"SO-1004:L1:P{k}", "75318204569137"} <= texts, (png, texts)


def test_the_parcels_card_speaks_english(bench, browser) -> None:
    edge, _, _ = bench
    open_page(browser, edge, "/bench?lang=en")
    scan(browser, "SO-1004")
    js_until(browser, "return document.getElementById('order-id').textContent === 'SO-1004'")
    browser.find_element(By.ID, "parcels-split").click()
    js_until(browser, "return document.querySelectorAll('.parcel').length === 2", timeout=10,
             what="two parcels")
    assert "Parcel 2/2" in items_in(browser, 2) and "Print 2/2" in items_in(browser, 2)
    assert "Split into 2 parcels" in browser.find_element(By.ID, "parcels-status").text
