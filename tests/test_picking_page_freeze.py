"""A freeze mid-wave on the picker's page /pick, in real Chromium (360x640): a real hub, a real
``scanedge serve`` with a layout enrolled at it (tests/test_picking_freeze_e2e.py's rig). The
picker walks the wave by scanning; the order system freezes the half-picked order at the hub;
the alarm comes up on the page (only a deliberate tap dismisses it, the scanner's Enter does
not), the frozen order's stops go, the put-back list shows, and a scan confirms the put-back.

No timing asserts: every wait is generous.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.keys import Keys

from tests.support import EdgeServer, HubServer
from tests.test_pages_browser import browser, js_until, open_page, scan, shot  # noqa: F401
from tests.test_picking_freeze_e2e import ORDERS, STATION, get, start_rig

pytestmark = pytest.mark.slow
WAIT = 30.0


@pytest.fixture
def page_rig(tmp_path) -> Iterator[tuple[HubServer, EdgeServer]]:
    hub, edge = start_rig(tmp_path, ORDERS, device_id="pda-page")
    yield hub, edge
    edge.kill()
    hub.kill()


def current(edge: EdgeServer) -> dict:
    return get(edge, f"/api/v1/pick/current?station={STATION}")[1]["wave"]


def text(driver, element_id: str) -> str:
    return driver.execute_script(f"return document.getElementById('{element_id}').textContent")


def step_is(driver, step: str) -> None:
    js_until(driver, f"return document.getElementById('pick-expect').dataset.step === '{step}'",
             timeout=WAIT, what=f"the page to ask for the {step}")


def walk_stop_on_the_page(driver, edge: EdgeServer, stop: dict) -> None:
    """Bin, item once per unit, tote: scanned as a keyboard-wedge scanner types them."""
    assert text(driver, "pick-location") == stop["location"]
    scan(driver, stop["location"])
    step_is(driver, "item")
    for n in range(stop["qty"]):
        scan(driver, stop["sku"])
        js_until(driver, f"return document.getElementById('pick-qty').textContent"
                         f" === '{n + 1}/{stop['qty']}'", timeout=WAIT, what=f"item {n + 1}")
    step_is(driver, "tote")
    scan(driver, f"TOTE-{stop['slot']:02d}")
    js_until(driver, "return document.getElementById('pick-verdict').dataset.verdict === 'ok'"
                     " && document.getElementById('pick-expect').dataset.step !== 'tote'",
             timeout=WAIT, what="the tote scan answered")


def test_freeze_mid_wave_alarms_on_the_pick_page(page_rig, browser) -> None:  # noqa: F811
    hub, edge = page_rig
    open_page(browser, edge, f"/pick?station={STATION}&lang=en")
    js_until(browser, "return ScanEdge.lastSync() && ScanEdge.lastSync().online === true",
             timeout=WAIT, what="the hub to be online")
    browser.find_element("id", "pick-claim").click()
    js_until(browser, "return !document.getElementById('pick-wave').hidden", timeout=WAIT)
    total = len(current(edge)["stops"])
    assert total == 3
    # walk the route until one of PK-1's stops is in its tote
    while True:
        stop = current(edge)["current"]
        walk_stop_on_the_page(browser, edge, stop)
        if stop["order_id"] == "PK-1":
            picked = stop
            break
    wave = current(edge)
    assert any(s["order_id"] == "PK-1" and s["state"] == "todo" for s in wave["stops"])
    assert text(browser, "pick-progress").endswith(f"/{total} stops")

    # the order system freezes PK-1 at the hub: the alarm comes up on the picker's page
    hub.admin("POST", "/api/v1/orders/PK-1/freeze", {"reason": "cancel"})
    js_until(browser, "return !document.getElementById('alarm').hidden", timeout=WAIT,
             what="the freeze alarm on /pick")
    assert "PK-1" in browser.find_element("id", "alarm-message").text
    log = browser.execute_script("return scanedgeLog")
    assert any(e["kind"] == "sound" and e["detail"] == "alarm" for e in log)
    assert any(e["kind"] == "vibrate" for e in log)
    # behind it: PK-1's remaining stop is gone, the put-back is listed (tote slot -> bin)
    js_until(browser, "return document.querySelector("
                      f"'#pick-putbacks li[data-order=\"PK-1\"][data-location=\"{picked['location']}\"]')"
                      " !== null", timeout=WAIT, what="the put-back list")
    assert not browser.find_element("id", "pick-putback-box").get_attribute("hidden")
    item = browser.find_element("css selector", "#pick-putbacks li").get_attribute("textContent")
    assert f"Slot {picked['slot']}" in item and f"TOTE-{picked['slot']:02d}" in item
    assert f"×{picked['qty']}" in item and picked["location"] in item
    # the frozen order's stops (the one walked too) leave the wave's count
    left = total - sum(1 for s in wave["stops"] if s["order_id"] == "PK-1")
    js_until(browser, f"return document.getElementById('pick-progress').textContent"
                      f".endsWith('/{left} stops')", timeout=WAIT, what="the count without PK-1")
    assert browser.execute_script("return document.getElementById('pick-expect').dataset.step") \
        == "putback"
    shot(browser, "pick-freeze-alarm-360x640")

    # the scanner keeps typing: Enter does not dismiss the alarm, the scan is held, not sent
    scan(browser, picked["location"])
    ack = browser.find_element("id", "alarm-ack")
    browser.execute_script("arguments[0].focus()", ack)
    ack.send_keys(Keys.ENTER)
    ack.send_keys(Keys.SPACE)
    time.sleep(0.3)  # give a wrong dismissal the chance to happen (not a timing assert)
    assert not browser.execute_script("return document.getElementById('alarm').hidden")
    assert "1" in browser.find_element("id", "alarm-held").text
    assert current(edge)["putbacks"], "a scan under the alarm went out"

    # a deliberate tap dismisses it; the held scan then confirms the put-back
    ack.click()
    js_until(browser, "return document.getElementById('alarm').hidden", timeout=WAIT)
    js_until(browser, "return document.getElementById('pick-putback-box').hidden", timeout=WAIT,
             what="the put-back confirmed")
    assert current(edge)["putbacks"] == []
    assert get(edge, "/api/v1/alarms?all=1")[1]["alarms"][0]["acked_by"] == "local"
    # no stop of the frozen order is shown again
    wave = current(edge)
    if wave["current"] is not None:
        assert wave["current"]["order_id"] == "PK-2"
        js_until(browser, "return document.getElementById('pick-stop').dataset.order === 'PK-2'",
                 timeout=WAIT)
    shot(browser, "pick-after-putback-360x640")
    browser.get("about:blank")
