"""The dock end to end (issue 18 item 4): a real hub, a real ``scanedge serve`` synced to it,
printing to a real ``scanedge printer-sim`` over TCP, and /dock in real Chromium as a 360x640 PDA.

An order frozen at the hub after its label printed is refused at the dock with the station's
alarm ("pull it"), and the interception report counts it at stage ``dock`` as intercepted after
print; the batch closes with its manifest, printed on the virtual printer and as CSV; the hub
shows each loaded order as loaded. Without a browser: tests/test_dock_api.py (fast).
"""

from __future__ import annotations

import csv
import io
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import EdgeServer, HubServer, wait_until
from tests.test_pages_browser import By, PrinterSim, chromium, js_until, open_page, scan, shot

pytestmark = pytest.mark.slow
SKU = "6901234567892"


def get(edge: EdgeServer, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(edge.url + path, timeout=10) as r:
            body = r.read()
            return r.status, json.loads(body) if r.headers.get_content_type() == "application/json" \
                else body.decode()
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[HubServer, EdgeServer, PrinterSim]]:
    root = tmp_path_factory.mktemp("dock")
    hub = HubServer(root / "hub", str(root / "hub" / "hub.db")).start()
    token = hub.add_device("dock-dev")
    data = root / "edge"
    printer = PrinterSim(data)
    edge = EdgeServer(data, SCANEDGE_DEVICE_ID="dock-dev", SCANEDGE_HUB_URL=hub.url,
                      SCANEDGE_HUB_TOKEN=token, SCANEDGE_HUB_PUBLIC_KEY=hub.public_key,
                      SCANEDGE_PRINTER=printer.address, SCANEDGE_SYNC_POLL_S="0.3")
    edge.start()
    yield hub, edge, printer
    edge.kill()
    hub.kill()
    printer.stop()


def packed_and_printed(hub: HubServer, edge: EdgeServer, printer: PrinterSim, order_id: str,
                       tracking: str, carrier: str = "SF") -> None:
    """The order from the hub, packed at a bench of its own (a later freeze alarms there, not at
    the next order's bench) and its label printed at the virtual printer."""
    hub.admin("PUT", f"/api/v1/orders/{order_id}", {
        "lines": [{"sku": SKU, "qty": 1, "name": "保温杯"}], "carrier": carrier,
        "tracking_number": tracking, "priority": "P2"})
    wait_until(lambda: get(edge, f"/api/v1/orders/{order_id}")[0] == 200, timeout=15,
               what=f"{order_id} on the device")
    bench = f"bench-{order_id}"
    for code in (order_id, SKU):
        status, body = edge.post("/api/v1/scans", {"code": code, "station": bench})
        assert status == 200 and body["verdict"] == "ok", body
    before = printer.labels
    status, job = edge.post("/api/v1/print-jobs", {"order_id": order_id, "station": bench})
    assert status == 202, job
    wait_until(lambda: printer.labels == before + 1, timeout=15, what=f"the label of {order_id}")
    wait_until(lambda: get(edge, f"/api/v1/print-jobs/{job['job_id']}")[1]["state"] == "printed",
               timeout=10, what="the job printed")


def test_a_parcel_frozen_at_the_hub_after_its_label_printed_is_pulled_at_the_dock_and_the_rest_is_loaded(
        site, browser) -> None:
    hub, edge, printer = site
    packed_and_printed(hub, edge, printer, "DOCK-1", "SF1000000000011")
    packed_and_printed(hub, edge, printer, "DOCK-2", "SF1000000000022")
    packed_and_printed(hub, edge, printer, "DOCK-3", "SF1000000000033")

    open_page(browser, edge, "/dock?station=dock-1")
    assert browser.execute_script("return innerWidth") == 360
    js_until(browser, "return ScanEdge.lastSync() && ScanEdge.lastSync().online === true",
             timeout=15, what="the hub to be online")
    assert browser.switch_to.active_element.get_attribute("id") == "scan-input"
    # the loader picks the SF truck (a person's taps on the select and the button)
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "dock-carrier")).select_by_value("SF")
    browser.find_element(By.ID, "dock-open").click()
    js_until(browser, "const b = ScanEdge.dock.batch(); return b && b.carrier === 'SF'"
                      " && (b.not_scanned || []).length === 3", timeout=10,
             what="the SF batch with the three labels expected")
    batch_id = browser.execute_script("return ScanEdge.dock.batch().batch_id")

    scan(browser, "SF1000000000011")  # the tracking number's barcode on the label
    js_until(browser, "return ScanEdge.dock.batch().count === 1", timeout=10, what="DOCK-1 in")
    assert browser.find_element(By.ID, "dock-verdict").get_attribute("data-verdict") == "accepted"
    scan(browser, "DOCK-1:L1")  # the label's QR: the same parcel again
    js_until(browser, "return document.getElementById('dock-verdict').dataset.verdict === 'duplicate'",
             timeout=10, what="the second scan flagged")
    assert browser.execute_script("return ScanEdge.dock.batch().count") == 1

    # DOCK-2 is cancelled at the hub after its label printed: the dock is the last place to pull it
    hub.admin("POST", "/api/v1/orders/DOCK-2/freeze", {"reason": "cancel"})
    wait_until(lambda: get(edge, "/api/v1/orders/DOCK-2")[1].get("freeze") is not None,
               timeout=10, what="the freeze on the device")
    scan(browser, "SF1000000000022")
    js_until(browser, "return !document.getElementById('alarm').hidden", timeout=10,
             what="the station's alarm")
    assert "DOCK-2" in browser.find_element(By.ID, "alarm-message").text
    assert "拦截" in browser.find_element(By.ID, "alarm-message").text
    js_until(browser, "return document.getElementById('dock-verdict').dataset.verdict === 'frozen'",
             timeout=10, what="the parcel refused")
    shot(browser, "dock-frozen-alarm-360x640")
    # the scanner keeps typing: held under the alarm, not sent, not lost
    scan(browser, "SF1000000000033")
    assert browser.execute_script("return ScanEdge.dock.queue().length") == 1
    assert browser.find_element(By.ID, "dock-close").get_attribute("disabled") is not None
    browser.find_element(By.ID, "alarm-ack").click()  # a person's tap
    js_until(browser, "return ScanEdge.dock.batch().count === 2", timeout=10,
             what="DOCK-3 in after the alarm")
    assert browser.execute_script("return ScanEdge.dock.batch().parcels.map(p => p.order_id)") == [
        "DOCK-1", "DOCK-3"]

    js_until(browser, "return !document.getElementById('dock-close').disabled", timeout=10,
             what="装车完成 enabled")
    browser.find_element(By.ID, "dock-close").click()
    js_until(browser, "return !document.getElementById('dock-manifest').hidden", timeout=15,
             what="the manifest")
    total = browser.find_element(By.CSS_SELECTOR, "#dock-counts .dock-total b").text
    assert total == "2"
    assert browser.find_element(By.CSS_SELECTOR, "#dock-counts li[data-carrier=SF] b").text == "2"
    shot(browser, "dock-manifest-360x640")
    before = printer.labels
    browser.find_element(By.ID, "dock-print").click()
    wait_until(lambda: printer.labels == before + 1, timeout=15, what="the manifest printed")
    js_until(browser, "return document.getElementById('dock-print-state').dataset.state === 'printed'",
             timeout=10, what="the page says it printed")
    status, text = get(edge, f"/api/v1/dock/batches/{batch_id}/manifest.csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert status == 200 and [r[2] for r in rows[1:]] == ["DOCK-1", "DOCK-3"]

    # the hub: loaded for each order on the truck, not for the pulled one; the report's dock stage
    def loaded(order_id: str) -> dict | None:
        return hub.admin("GET", f"/api/v1/orders/{order_id}")["loaded"]

    wait_until(lambda: loaded("DOCK-1") is not None and loaded("DOCK-3") is not None, timeout=15,
               what="the loaded events at the hub")
    got = loaded("DOCK-1")
    assert got["batch_id"] == batch_id and got["station"] == "dock-1" and got["device_id"] == "dock-dev"
    assert loaded("DOCK-2") is None
    closed = [e for e in hub.admin("GET", "/api/v1/events?limit=5000")["events"]
              if e["type"] == "handover_closed"]
    assert len(closed) == 1 and closed[0]["payload"]["counts"]["parcels"] == 2

    def report() -> dict:
        return hub.admin("GET", "/api/v1/reports/interceptions?since=2020-01-01")

    wait_until(lambda: next(s for s in report()["stages"] if s["stage"] == "dock")["interceptions"] >= 1,
               timeout=15, what="the dock interception at the hub")
    assert report()["total"]["intercepted_after_print"] >= 1
    assert any(r["station"] == "dock-1" for r in report()["rows"])


def test_a_parcel_frozen_after_it_went_on_the_truck_keeps_the_truck_until_it_is_taken_off(
        site, browser) -> None:
    from selenium.webdriver.support.ui import Select

    hub, edge, printer = site
    packed_and_printed(hub, edge, printer, "DOCK-4", "SF1000000000044")
    packed_and_printed(hub, edge, printer, "DOCK-5", "SF1000000000055")
    open_page(browser, edge, "/dock?station=dock-3")
    js_until(browser, "return ScanEdge.lastSync() && ScanEdge.lastSync().online === true",
             timeout=15, what="the hub to be online")
    Select(browser.find_element(By.ID, "dock-carrier")).select_by_value("SF")
    browser.find_element(By.ID, "dock-open").click()
    js_until(browser, "const b = ScanEdge.dock.batch(); return b && b.station === 'dock-3'",
             timeout=10, what="the batch")
    scan(browser, "DOCK-4")
    scan(browser, "SF1000000000055")
    js_until(browser, "return ScanEdge.dock.batch().count === 2", timeout=10, what="both in")
    hub.admin("POST", "/api/v1/orders/DOCK-4/freeze", {"reason": "cancel"})
    # the page hears the freeze: the parcel in red with its button, 装车完成 says why it waits
    js_until(browser, "return document.querySelector('.dock-remove[data-order=\"DOCK-4\"]') !== null",
             timeout=10, what="DOCK-4 marked frozen on the truck")
    assert browser.find_element(By.ID, "dock-close").get_attribute("disabled") is not None
    assert "DOCK-4" in browser.find_element(By.ID, "dock-close-why").text
    shot(browser, "dock-frozen-on-truck-360x640")
    browser.find_element(By.CSS_SELECTOR, ".dock-remove[data-order='DOCK-4']").click()
    js_until(browser, "return ScanEdge.dock.batch().count === 1", timeout=10, what="DOCK-4 off")
    js_until(browser, "return !document.getElementById('dock-close').disabled", timeout=10,
             what="装车完成 enabled")
    browser.find_element(By.ID, "dock-close").click()
    js_until(browser, "return !document.getElementById('dock-manifest').hidden", timeout=15,
             what="the manifest")
    assert browser.find_element(By.CSS_SELECTOR, "#dock-counts .dock-total b").text == "1"

    def loaded(order_id: str) -> dict | None:
        return hub.admin("GET", f"/api/v1/orders/{order_id}")["loaded"]

    wait_until(lambda: loaded("DOCK-5") is not None, timeout=15, what="DOCK-5 loaded at the hub")
    assert loaded("DOCK-4") is None
    removed = [e for e in hub.events(order_id="DOCK-4") if e["type"] == "dock_removed"]
    assert len(removed) == 1 and removed[0]["payload"]["frozen"] is True


def test_the_dock_in_english_on_a_bench_screen_has_no_sideways_scrolling(site, browser) -> None:
    _, edge, _ = site
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    try:
        open_page(browser, edge, "/dock?station=dock-2&lang=en")
        assert "Loading done" in browser.find_element(By.ID, "dock-close").get_attribute("textContent")
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= innerWidth")
    finally:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": 360, "height": 640, "deviceScaleFactor": 1, "mobile": True})
