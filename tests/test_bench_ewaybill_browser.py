"""The bench's 打印面单 in real Chromium (issue 19, "done when"): on a packed order one tap gets an
SF number from the carrier simulator through the hub, the bench printer prints the SF layout, and
the label read back from what the printer printed carries that number and the carrier's 2D code.

Real parts: Debian's headless Chromium, ``scanedge serve`` synced to a ``scanedge hub`` whose site
has an SF account pointing at the SF simulator (sync/carriers/sim.py, on 127.0.0.1, checking the
丰桥 signature), and ``scanedge printer-sim --save`` over TCP. The button's words without a
browser: tests/test_bench_ewaybill_page.py.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from PIL import Image

from scanedge.edge.demo import demo_orders
from scanedge.printers.selfcheck import decode_symbols, ewaybill_problems, ocr
from scanedge.sync.carriers.sim import CarrierSimulator
from tests.support import EdgeServer, HubServer, run_cli, wait_until
from tests.test_pages_browser import (
    By,
    PrinterSim,
    chromium,
    js_until,
    open_page,
    pack_so_1001,
    scan,
    shot,
)

pytestmark = pytest.mark.slow

ACCOUNTS = """[sites.default]
default = "SF"
[sites.default.SF]
url = "{url}"
key = "partner"
secret = "checkword"
sender = {{ name = "杭州仓", phone = "0571-88888888", address = "浙江省杭州市余杭区仓前街道1号" }}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture
def shop(tmp_path) -> Iterator[dict[str, Any]]:
    """The SF simulator, a hub with the site's SF account and the demo orders, a device synced to
    it printing to a virtual printer that saves what it prints."""
    sim = CarrierSimulator("sf", key="partner", secret="checkword").start()
    accounts = tmp_path / "carriers.toml"
    accounts.write_text(ACCOUNTS.format(url=sim.url), encoding="utf-8")
    hub = HubServer(tmp_path / "hub", str(tmp_path / "hub" / "hub.db"),
                    SCANEDGE_HUB_CARRIER_ACCOUNTS=str(accounts)).start()
    token = hub.add_device("bench-dev")
    for doc in demo_orders():
        hub.admin("PUT", f"/api/v1/orders/{doc['order_id']}", doc)
    data = tmp_path / "edge"
    run_cli("orders", "import", "--demo", data_dir=data)
    saved = tmp_path / "printed"
    saved.mkdir()
    printer = PrinterSim(data, "--save", str(saved))
    edge = EdgeServer(data, SCANEDGE_DEVICE_ID="bench-dev", SCANEDGE_HUB_URL=hub.url,
                      SCANEDGE_HUB_TOKEN=token, SCANEDGE_HUB_PUBLIC_KEY=hub.public_key,
                      SCANEDGE_PRINTER=printer.address)
    edge.start()
    yield {"sim": sim, "hub": hub, "edge": edge, "printer": printer, "saved": saved}
    edge.kill()
    hub.kill()
    printer.stop()
    sim.stop()


def issued(edge: EdgeServer) -> list[dict[str, Any]]:
    """The device's ewaybill_issued events (its outbox, read-only)."""
    con = sqlite3.connect(f"file:{edge.data_dir / 'edge.db'}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT payload FROM events WHERE type = 'ewaybill_issued'").fetchall()
    finally:
        con.close()
    return [json.loads(p) for (p,) in rows]


def test_one_tap_on_a_packed_order_prints_an_sf_label_that_reads_back(shop, browser) -> None:
    edge, printer, sim, hub = shop["edge"], shop["printer"], shop["sim"], shop["hub"]
    open_page(browser, edge, "/bench")
    scan(browser, "SO-1001")
    js_until(browser, "return document.getElementById('order-id').textContent === 'SO-1001'")
    button = browser.find_element(By.ID, "ewaybill-btn")
    assert button.text == "打印电子面单"  # beside our own label's 打印面单
    assert button.get_attribute("disabled") is not None  # the print gate: nothing packed yet
    pack_so_1001(browser)
    js_until(browser, "return !document.getElementById('ewaybill-btn').disabled", timeout=10,
             what="the carrier label button enabled")
    before = printer.labels
    browser.find_element(By.ID, "ewaybill-btn").click()
    js_until(browser, "return document.getElementById('ewaybill-status').dataset.state === 'printing'",
             timeout=30, what="the number from the carrier")
    number = browser.execute_script("return document.getElementById('ewaybill-status').dataset.number")
    assert number.startswith("SF") and number in browser.find_element(By.ID, "ewaybill-status").text
    assert sim.live()["SO-1001"]["number"] == number and sim.creates == 1
    # the bench printer printed the SF layout: read back from what the printer printed
    wait_until(lambda: printer.labels == before + 1, timeout=20, what="the label at the printer")
    png = wait_until(lambda: sorted(shop["saved"].glob("label-*.png")), 10, what="the saved label")
    image = np.asarray(Image.open(png[-1]).convert("L"))
    (event,) = issued(edge)
    ewaybill = event["ewaybill"]
    assert ewaybill["number"] == number and ewaybill["carrier"] == "SF"
    assert ewaybill_problems(image, number, ewaybill["qr"]) == []
    assert [s.text for s in decode_symbols(image) if s.format == "Code128"] == [number]
    assert image.shape[1] == 576 and 1040 <= image.shape[0] <= 1300  # 76 x 130 on the 80 mm printer
    text = ocr(image)
    assert "顺丰" in text and ewaybill["sort_code"].replace(" ", "") in text
    assert "含赠品" in text  # SO-1001's gift line, where the SF layout leaves room
    js_until(browser, "const li = document.querySelector('#jobs li');"
                      " return li && li.dataset.state === 'printed' && li.textContent.includes('面单')",
             timeout=10, what="the carrier label's job, printed")
    shot(browser, "bench-ewaybill-360x640")
    # the number went back to the order system: the hub's order has it
    wait_until(lambda: hub.admin("GET", "/api/v1/orders/SO-1001").get("tracking_number") == number,
               timeout=20, what="the number on the hub's order")
    # a second tap: the same waybill and the same print job, not a second label
    browser.find_element(By.ID, "ewaybill-btn").click()
    js_until(browser, "return document.getElementById('ewaybill-status').dataset.state === 'printing'",
             timeout=30, what="the second answer")
    assert browser.execute_script(
        "return document.getElementById('ewaybill-status').dataset.number") == number
    assert sim.creates == 1 and len(issued(edge)) == 1
    assert len(browser.find_elements(By.CSS_SELECTOR, "#jobs li")) == 1


def test_the_hub_away_the_button_says_it_waits(tmp_path, browser) -> None:
    data = tmp_path / "edge"
    run_cli("orders", "import", "--demo", data_dir=data)
    edge = EdgeServer(data, SCANEDGE_PRINTER="dummy://", SCANEDGE_PRINT_POLICY="off").start()
    try:
        open_page(browser, edge, "/bench")
        scan(browser, "SO-1002")
        js_until(browser, "return document.getElementById('order-id').textContent === 'SO-1002'")
        js_until(browser, "return !document.getElementById('ewaybill-btn').disabled", timeout=10,
                 what="the button (print_policy off)")
        browser.find_element(By.ID, "ewaybill-btn").click()
        js_until(browser, "return document.getElementById('ewaybill-status').dataset.state"
                          " === 'hub_unreachable'", timeout=15, what="the refusal")
        assert "等待总部" in browser.find_element(By.ID, "ewaybill-status").text
    finally:
        edge.kill()
