"""A note (备注) at the bench in real Chromium: the dialog that blocks the station until read.

A real hub signs the note, a real edge applies it; the page is driven as a packer would (a
scanner typing, a tap on the button), across a reload.
"""

from __future__ import annotations

import json

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from tests import test_pages_browser as pages
from tests.support import ROOT, EdgeServer, HubServer, run_cli
from tests.test_pages_browser import get_json, js_until, open_page, scan, shot

pytestmark = pages.pytestmark  # slow; the module skips without Chromium
browser = pages.browser  # one headless Chromium for the module


@pytest.fixture(scope="module")
def hub_rig(tmp_path_factory):
    """A hub whose "fast" orders have 1 s and "slow" ones 600 s, one edge with the demo orders,
    and a registered device that never runs (every countdown misses it: its fuse trips)."""
    root = tmp_path_factory.mktemp("countdown-pages")
    hub = HubServer(root / "hub", str(root / "hub" / "hub.db"),
                    SCANEDGE_COUNTDOWN_BY_CATEGORY='{"slow": 600, "fast": 1}').start()
    token = hub.add_device("page-dev")
    hub.add_device("absent-dev")
    run_cli("orders", "import", "--demo", data_dir=root / "edge")
    edge = EdgeServer(root / "edge", SCANEDGE_DEVICE_ID="page-dev", SCANEDGE_HUB_URL=hub.url,
                      SCANEDGE_HUB_TOKEN=token, SCANEDGE_HUB_PUBLIC_KEY=hub.public_key,
                      SCANEDGE_PRINTER="dummy://")
    edge.start()
    yield hub, edge
    edge.kill()
    hub.kill()

ITEM = "9787115428028"  # SO-1002's first line
NOTE_UP = "return !document.getElementById('note').hidden"


def test_a_note_blocks_the_bench_until_it_is_read_across_a_reload(hub_rig, browser) -> None:
    hub, edge = hub_rig
    demo = json.loads((ROOT / "edge" / "demo" / "orders.json").read_text(encoding="utf-8"))
    hub.admin("PUT", "/api/v1/orders/SO-1002", demo[1])
    open_page(browser, edge, "/bench")
    js_until(browser, "return ScanEdge.lastSync() && ScanEdge.lastSync().online === true",
             timeout=15, what="the hub to be online")
    scan(browser, "SO-1002")
    js_until(browser, "return document.getElementById('order-id').textContent === 'SO-1002'",
             what="the order to open")
    hub.admin("POST", "/api/v1/orders/SO-1002/note", {"note": "客户要求:换成礼盒包装"})
    js_until(browser, NOTE_UP, timeout=15, what="the note dialog")
    assert "换成礼盒包装" in browser.find_element(By.ID, "note-text").text
    shot(browser, "note-dialog-360x640")

    # a scan while the dialog is up waits on the page (nothing sent, nothing counted) ...
    scan(browser, ITEM)
    js_until(browser, "return ScanEdge.scanner.queue().length === 1", what="the held scan")
    # ... also across a reload: the order's view brings the dialog back before anything is sent
    open_page(browser, edge, "/bench")
    js_until(browser, NOTE_UP, what="the note dialog after the reload")
    assert browser.execute_script("return ScanEdge.scanner.queue().length") == 1
    assert get_json(edge, "/api/v1/orders/SO-1002")["items_packed"] == 0

    # the scanner's Enter on the focused button does not read it; a tap does
    browser.find_element(By.ID, "note-read").send_keys("\n")
    assert browser.execute_script(NOTE_UP)
    ActionChains(browser).click(browser.find_element(By.ID, "note-read")).perform()
    js_until(browser, "return document.getElementById('note').hidden", what="the dialog to go")
    # the held scan goes out now and counts
    js_until(browser, "return ScanEdge.scanner.queue().length === 0", what="the held scan sent")
    assert get_json(edge, "/api/v1/orders/SO-1002")["items_packed"] == 1
    assert get_json(edge, "/api/v1/orders/SO-1002")["note"] is None
    browser.get("about:blank")


def test_the_hub_supervisor_page_counts_down_and_shows_the_fuse(hub_rig, browser) -> None:
    hub, _ = hub_rig
    for order_id, category in (("SO-S1", "slow"), ("SO-F2", "fast")):
        hub.admin("PUT", f"/api/v1/orders/{order_id}", {
            "category": category, "lines": [{"sku": "6901234567892", "qty": 1}]})
    browser.get(hub.url + "/supervisor")
    js_until(browser, "return !document.getElementById('login').hidden", what="the token form")
    browser.find_element(By.ID, "token").send_keys(hub.ADMIN + "\n")
    slow = hub.admin("POST", "/api/v1/orders/SO-S1/freeze", {"reason": "cancel"})
    row = f"#rows tr[data-command-id='{slow['command_id']}']"
    js_until(browser, f"return document.querySelector(\"{row}\")", timeout=10,
             what="the countdown row")

    def seconds_left() -> float:
        return float(browser.find_element(By.CSS_SELECTOR, f"{row} td.clock").text.split()[0])

    first = seconds_left()
    js_until(browser, f"return parseFloat(document.querySelector(\"{row} td.clock\")"
                      f".textContent) < {first}", what="the countdown to tick")
    assert 0 < seconds_left() < 600
    cells = [c.text for c in browser.find_elements(By.CSS_SELECTOR, f"{row} td")]
    assert cells[0] == "SO-S1" and "取消" in cells[1] and cells[3].endswith("/2")
    assert browser.find_element(By.ID, "fuse-alert").get_attribute("hidden")

    fast = hub.admin("POST", "/api/v1/orders/SO-F2/note", {"note": "改用顺丰"})
    row = f"#rows tr[data-command-id='{fast['command_id']}']"
    js_until(browser, f"return (document.querySelector(\"{row}\") || {{}}).className"
                      " === 'state-tripped'", timeout=15, what="the fuse on the page")
    cells = [c.text for c in browser.find_elements(By.CSS_SELECTOR, f"{row} td")]
    assert cells[2] == "熔断" and "absent-dev" in cells[4]
    alert = browser.find_element(By.ID, "fuse-alert")
    assert alert.is_displayed() and "熔断 1 单" in alert.text
    shot(browser, "hub-supervisor-fuse")

    # the device's supervisor page shows the same, through the device, and the warning
    open_page(browser, hub_rig[1], "/supervisor")
    row = f"#cd-rows li[data-command-id='{fast['command_id']}']"
    js_until(browser, f"return (document.querySelector(\"{row}\") || {{}}).className"
                      " === 'cd-row cd-tripped'", timeout=15, what="the fuse on the device page")
    text = browser.find_element(By.CSS_SELECTOR, row).text
    assert "熔断" in text and "absent-dev" in text and "SO-F2" in text
    assert browser.find_element(By.ID, "cd-tripped").text == "1"
    shot(browser, "supervisor-countdown-360x640")
    browser.get("about:blank")
