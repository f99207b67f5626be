"""/returns in real Chromium (issue 17): the demo's two RMAs received through the page, each with
a photo taken by Chromium's fake camera (a real getUserMedia stream), one that qualifies and one
that does not; a second receipt of the same RMA refused with the first shown; a parcel with no
RMA recorded as unannounced with a photo from the file picker; an RMA cancelled at the hub while
its parcel is on the bench.

Against a real hub and a real ``scanedge serve`` synced to it, printing to a real
``scanedge printer-sim`` over TCP. The words and the page without a browser:
tests/test_returns_page.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scanedge.edge.demo import demo_rmas
from tests.support import EdgeServer, HubServer, run_cli, wait_until
from tests.test_pages_browser import (
    By,
    PrinterSim,
    chromium,
    js_until,
    open_page,
    scan,
    shot,
)

pytestmark = pytest.mark.slow
FAKE_CAMERA = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")


def get(edge: EdgeServer, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(edge.url + path, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(*FAKE_CAMERA) as driver:
        yield driver


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Iterator[tuple[HubServer, EdgeServer, PrinterSim]]:
    """A hub holding the demo's RMAs, a device of its site that has them, a virtual printer."""
    root = tmp_path_factory.mktemp("returns-pages")
    hub = HubServer(root / "hub", str(root / "hub" / "hub.db")).start()
    token = hub.add_device("ret-dev")
    data = root / "edge"
    run_cli("orders", "import", "--demo", data_dir=data)
    printer = PrinterSim(data)
    edge = EdgeServer(data, SCANEDGE_DEVICE_ID="ret-dev", SCANEDGE_HUB_URL=hub.url,
                      SCANEDGE_HUB_TOKEN=token, SCANEDGE_HUB_PUBLIC_KEY=hub.public_key,
                      SCANEDGE_PRINTER=printer.address)
    edge.start()
    for rma in demo_rmas():
        hub.admin("PUT", f"/api/v1/rmas/{rma['rma_id']}", {k: v for k, v in rma.items() if k != "demo"})
    for rma in demo_rmas():
        wait_until(lambda rma=rma: get(edge, f"/api/v1/returns/lookup?code={rma['rma_id']}")[0] == 200,
                   timeout=20, what=f"{rma['rma_id']} on the device")
    yield hub, edge, printer
    edge.kill()
    hub.kill()
    printer.stop()


def receipt(driver) -> dict | None:
    return driver.execute_script("return ScanEdge.returns.receipt()")


def tap(driver, element_id: str) -> None:
    """A person's tap on a button: scrolled to the middle first, so that the sticky header is
    not what the click lands on."""
    button = driver.find_element(By.ID, element_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()


def text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).get_attribute("textContent")


def take_camera_photo(driver, photos: int) -> None:
    """The fake camera's stream in the page, one still taken: the receipt has `photos` then."""
    tap(driver, "ret-camera-open")
    js_until(driver, "return document.getElementById('ret-video').videoWidth > 0", timeout=10,
             what="the camera's picture")
    tap(driver, "ret-shoot")
    js_until(driver, f"return ScanEdge.returns.receipt().photos.length === {photos}", timeout=10,
             what="the photo stored")
    tap(driver, "ret-camera-close")


def choose(driver, key: str, condition: str) -> None:
    """Pick a line's condition the way a person does (the select's change event sends it)."""
    from selenium.webdriver.support.ui import Select

    selector = f".ret-condition-select[data-sku='{key}']"
    js_until(driver, f"const s = document.querySelector(\"{selector}\"); return s && !s.disabled",
             what=f"the condition of {key}")
    Select(driver.find_element(By.CSS_SELECTOR, selector)).select_by_value(condition)
    js_until(driver, "const r = ScanEdge.returns.receipt(); return r.lines.concat(r.extras)"
                     f".some(l => (l.sku || l.code) === '{key}' && l.condition === '{condition}')",
             what=f"{key} {condition} at the edge")


def stored_photo(edge: EdgeServer, sha256: str) -> bytes:
    con = sqlite3.connect(f"file:{edge.data_dir / 'edge.db'}?mode=ro", uri=True)
    try:
        (path,) = con.execute("SELECT path FROM return_photos WHERE sha256 = ?", [sha256]).fetchone()
    finally:
        con.close()
    return Path(path).read_bytes()


def finish(driver) -> None:
    js_until(driver, "return !document.getElementById('ret-finish').disabled", timeout=10,
             what="finish enabled")
    tap(driver, "ret-finish")
    js_until(driver, "return !document.getElementById('ret-result').hidden", timeout=15,
             what="the verdict")


def test_an_rma_that_qualifies_is_received_with_a_camera_photo_and_a_second_receipt_is_refused(
        shop, browser) -> None:
    hub, edge, printer = shop
    rma = next(r for r in demo_rmas() if r.get("demo") == "qualifies")
    open_page(browser, edge, "/returns")
    assert browser.switch_to.active_element.get_attribute("id") == "scan-input"
    scan(browser, rma["return_tracking"])  # the waybill on the parcel
    js_until(browser, f"const r = ScanEdge.returns.receipt(); return r && r.rma_id === '{rma['rma_id']}'",
             timeout=10, what="the receipt started by the scan")
    facts = text(browser, "ret-facts")
    assert rma["order_id"] in facts and rma["reason"] in facts
    rows = browser.find_elements(By.CSS_SELECTOR, "#ret-lines li")
    assert [r.get_attribute("data-sku") for r in rows] == [ln["sku"] for ln in rma["lines"]]
    assert all(r.find_element(By.CLASS_NAME, "line-count").text.startswith("0/") for r in rows)
    # finish waits for the items, a photo and the conditions, and says so
    assert browser.find_element(By.ID, "ret-finish").get_attribute("disabled") is not None
    assert "照片" in text(browser, "ret-finish-why")

    for line in rma["lines"]:
        for _ in range(line["qty"]):
            scan(browser, line["sku"])
    js_until(browser, "return ScanEdge.returns.queue().length === 0 && ScanEdge.returns.receipt()"
                      ".lines.every(l => l.received === l.expected)", timeout=10, what="every item counted")
    assert browser.find_elements(By.CSS_SELECTOR, "#ret-lines li.line-done")
    assert browser.find_element(By.ID, "ret-extras-box").get_attribute("hidden") is not None

    take_camera_photo(browser, 1)
    for line in rma["lines"]:
        choose(browser, line["sku"], "resaleable")
    shot(browser, "returns-rma-360x640")
    before = printer.labels
    finish(browser)
    assert browser.find_element(By.ID, "ret-result").get_attribute("data-qualifies") == "yes"
    assert text(browser, "ret-outcome") == "符合退货条件"
    dispositions = browser.find_elements(By.CSS_SELECTOR, "#ret-dispositions li")
    assert {d.get_attribute("data-disposition") for d in dispositions} == {"restock"}
    assert all("上架" in d.text and "→" in d.text for d in dispositions)  # to a bin
    # the returns label reached the printer, and the page says so
    wait_until(lambda: printer.labels == before + 1, timeout=15, what="the returns label")
    js_until(browser, "return document.getElementById('ret-label').dataset.state === 'printed'",
             timeout=10, what="the label shown printed")
    assert text(browser, "ret-label") == "退货标签已打印"
    shot(browser, "returns-verdict-360x640")

    # the photo on the device is the camera's still, stored by its hash
    done = receipt(browser)
    (photo,) = done["photos"]
    stored = stored_photo(edge, photo["sha256"])
    assert hashlib.sha256(stored).hexdigest() == photo["sha256"] and stored[:3] == b"\xff\xd8\xff"
    from PIL import Image

    assert Image.open(io.BytesIO(stored)).size[0] >= 320
    # the order system reads the outcome at the hub and releases the refund on it
    outcome = wait_until(lambda: hub.admin("GET", f"/api/v1/rmas/{rma['rma_id']}")["outcome"],
                         timeout=20, what="the outcome at the hub")
    assert outcome["qualifies"] is True and outcome["receipt_id"] == done["receipt_id"]
    (event,) = [e for e in hub.events() if e["type"] == "return_received"
                and e["payload"]["rma_id"] == rma["rma_id"]]
    assert [p["sha256"] for p in event["payload"]["photos"]] == [photo["sha256"]]

    # a bench screen: the same page side by side, nothing scrolls sideways
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
    try:
        assert browser.execute_script("return document.scrollingElement.scrollWidth <= innerWidth")
        shot(browser, "returns-bench-1280x800")
    finally:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": 360, "height": 640, "deviceScaleFactor": 1, "mobile": True})
    assert browser.execute_script("return document.scrollingElement.scrollWidth <= innerWidth")

    # the same parcel again: refused, the first receipt shown, red, with the buzz
    tap(browser, "ret-next")
    scan(browser, rma["rma_id"])
    js_until(browser, "return document.getElementById('ret-verdict').dataset.verdict === 'already'",
             timeout=10, what="the second receipt refused")
    assert not browser.find_element(By.ID, "ret-first").get_attribute("hidden")
    first = text(browser, "ret-first-facts")
    assert "bench-1" in first and "符合退货条件" in first
    assert receipt(browser)["receipt_id"] == done["receipt_id"]  # the first, not a new one
    log = browser.execute_script("return scanedgeLog")
    assert any(e["kind"] == "returns_flag" and e["detail"] == "rma_already_received" for e in log)
    assert any(e["kind"] == "vibrate" for e in log)
    shot(browser, "returns-already-360x640")
    received = [e for e in hub.events() if e["type"] == "return_received"
                and e["payload"]["rma_id"] == rma["rma_id"]]
    assert len(received) == 1


def test_an_rma_that_does_not_qualify_flags_an_item_not_on_it_in_english(shop, browser) -> None:
    hub, edge, _ = shop
    rma = next(r for r in demo_rmas() if r.get("demo") == "rejected")
    open_page(browser, edge, "/returns?lang=en")
    scan(browser, rma["rma_id"])
    js_until(browser, f"const r = ScanEdge.returns.receipt(); return r && r.rma_id === '{rma['rma_id']}'",
             timeout=10, what="the receipt")
    # an item that is not on the RMA: red, listed, with the low tone, a buzz and a flash
    skus = {ln["sku"] for ln in rma["lines"]}
    stranger = next(c for c in ("4006381333931", "9787115428028", "SELLER-CASE-07") if c not in skus)
    scan(browser, stranger)
    js_until(browser, "return document.getElementById('ret-verdict').dataset.verdict === 'not_on_rma'",
             timeout=10, what="the item flagged")
    assert "verdict-bad" in browser.find_element(By.ID, "ret-verdict").get_attribute("class")
    assert text(browser, "ret-verdict-message") == f"{stranger} is not on the RMA!"
    extras = browser.find_element(By.ID, "ret-extras-box")
    assert extras.is_displayed() and stranger in extras.text
    assert browser.execute_script(
        "return getComputedStyle(document.getElementById('ret-extras-box')).color") == "rgb(185, 28, 28)"
    log = browser.execute_script("return scanedgeLog")
    assert any(e["kind"] == "returns_flag" and e["detail"] == "not_on_rma" for e in log)
    assert any(e["kind"] == "sound" and e["detail"] == "error" for e in log)
    assert any(e["kind"] == "vibrate" for e in log)
    shot(browser, "returns-not-on-rma-360x640")
    # a reload in the middle: the same receipt comes back, with what was counted
    before = receipt(browser)
    browser.refresh()
    open_page(browser, edge, "/returns?lang=en")
    js_until(browser, "const r = ScanEdge.returns.receipt();"
                      f" return r && r.receipt_id === '{before['receipt_id']}'",
             timeout=10, what="the receipt resumed after a reload")
    assert receipt(browser)["extras"] == before["extras"]
    assert browser.find_element(By.ID, "ret-extras-box").is_displayed()

    for line in rma["lines"]:
        scan(browser, line["sku"])  # one of each: a partial return where a line expects more
    js_until(browser, "return ScanEdge.returns.queue().length === 0", timeout=10)
    take_camera_photo(browser, 1)
    for line in rma["lines"]:
        choose(browser, line["sku"], "used")
    finish(browser)
    assert browser.find_element(By.ID, "ret-result").get_attribute("data-qualifies") == "no"
    assert text(browser, "ret-outcome") == "Does not qualify"
    reasons = [li.get_attribute("data-code")
               for li in browser.find_elements(By.CSS_SELECTOR, "#ret-reasons li")]
    assert "not_on_rma" in reasons and len(reasons) >= 2
    words = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#ret-reasons li")]
    assert "Items that are not on the RMA (4006381333931)" in words or stranger != "4006381333931"
    # the reasons in English; only the products' own names (in brackets) are Chinese
    assert not [w for w in words if re.search(r"[\u4e00-\u9fff]", re.sub(r" \(.*\)$", "", w))]
    assert "Return to customer" in text(browser, "ret-dispositions") or "Quarantine" in text(
        browser, "ret-dispositions")
    shot(browser, "returns-rejected-360x640")
    event = wait_until(lambda: next((e for e in hub.events() if e["type"] == "return_received"
                                     and e["payload"]["rma_id"] == rma["rma_id"]), None),
                       timeout=20, what="the return at the hub")
    assert event["payload"]["verdict"]["qualifies"] is False
    browser.get(edge.url + "/returns?lang=zh")


def test_a_parcel_with_no_rma_is_recorded_as_unannounced_with_a_photo_from_the_file_picker(
        shop, browser, tmp_path) -> None:
    _, edge, _ = shop
    from PIL import Image

    photo = tmp_path / "parcel.jpg"
    Image.new("RGB", (800, 600), (200, 180, 40)).save(photo, "JPEG")
    not_a_photo = tmp_path / "notes.png"
    not_a_photo.write_bytes(b"this is no picture at all")
    # a PDA on plain http has no getUserMedia: the page offers the file picker alone
    hidden = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
        "source": "Object.defineProperty(navigator, 'mediaDevices', {value: undefined})"})
    try:
        open_page(browser, edge, "/returns")
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument",
                                {"identifier": hidden["identifier"]})
    scan(browser, "YT9999000011112")  # a return waybill nobody announced
    js_until(browser, "return !document.getElementById('ret-unknown').hidden", timeout=10,
             what="the offer of an unannounced return")
    assert "YT9999000011112" in text(browser, "ret-unknown-text")
    tap(browser, "ret-unannounced")
    js_until(browser, "const r = ScanEdge.returns.receipt(); return r && r.unannounced", timeout=10,
             what="the unannounced receipt")
    assert browser.find_element(By.ID, "ret-camera-open").get_attribute("hidden") is not None
    assert browser.find_element(By.CSS_SELECTOR, "label[for=ret-file]").is_displayed()
    # a file that is not an image: refused with the reason in words, nothing stored
    browser.find_element(By.ID, "ret-file").send_keys(str(not_a_photo))
    js_until(browser, "return document.getElementById('ret-photo-status').textContent.includes('不是照片')",
             timeout=10, what="the bad image refused")
    assert receipt(browser)["photos"] == []
    browser.find_element(By.ID, "ret-file").send_keys(str(photo))
    js_until(browser, "return ScanEdge.returns.receipt().photos.length === 1", timeout=10)
    scan(browser, "6901234567892")
    js_until(browser, "return ScanEdge.returns.receipt().extras.length === 1", timeout=10)
    # no RMA: its items are a list to match later, not a fault (no red flag)
    assert browser.execute_script("return document.getElementById('ret-verdict').dataset.verdict") == "ok"
    shot(browser, "returns-unannounced-360x640")
    finish(browser)
    assert browser.find_element(By.ID, "ret-result").get_attribute("data-qualifies") == "no"
    assert [li.get_attribute("data-code") for li in browser.find_elements(
        By.CSS_SELECTOR, "#ret-reasons li")] == ["unannounced"]
    status, listed = get(edge, "/api/v1/returns/receipts?state=unannounced")
    assert status == 200
    mine = next(r for r in listed["receipts"] if r["receipt_id"] == receipt(browser)["receipt_id"])
    assert mine["code"] == "YT9999000011112" and len(mine["photos"]) == 1


def test_an_rma_cancelled_at_the_hub_while_on_the_bench_raises_the_alarm_and_is_refused(
        shop, browser) -> None:
    hub, edge, _ = shop
    base = next(r for r in demo_rmas() if r.get("demo") == "qualifies")
    rma = {**base, "rma_id": "RMA-CANCEL-1", "return_tracking": "SF1000000000111"}
    rma.pop("demo", None)
    hub.admin("PUT", "/api/v1/rmas/RMA-CANCEL-1", rma)
    wait_until(lambda: get(edge, "/api/v1/returns/lookup?code=RMA-CANCEL-1")[0] == 200, timeout=20,
               what="the RMA on the device")
    open_page(browser, edge, "/returns")
    js_until(browser, "return ScanEdge.lastSync() && ScanEdge.lastSync().online === true",
             timeout=15, what="the hub to be online")
    scan(browser, "RMA-CANCEL-1")
    js_until(browser, "const r = ScanEdge.returns.receipt(); return r && r.rma_id === 'RMA-CANCEL-1'",
             timeout=10)
    sku = rma["lines"][0]["sku"]
    scan(browser, sku)
    js_until(browser, "return ScanEdge.returns.receipt().lines[0].received === 1", timeout=10)
    hub.admin("POST", "/api/v1/rmas/RMA-CANCEL-1/cancel", {"reason": "customer cancelled"})
    js_until(browser, "return !document.getElementById('alarm').hidden", timeout=10,
             what="the station's alarm")
    assert "RMA-CANCEL-1" in text(browser, "alarm-message")
    shot(browser, "returns-cancelled-alarm-360x640")
    # the scanner keeps typing: the scan is held under the alarm, not sent, not lost
    scan(browser, sku)
    assert browser.execute_script("return ScanEdge.returns.queue().length") == 1
    browser.find_element(By.ID, "alarm-ack").click()  # a person's tap
    # then it goes out and is refused: the RMA is cancelled, nothing more is counted
    js_until(browser, "return ScanEdge.returns.queue().length === 0", timeout=10)
    js_until(browser, "return document.getElementById('ret-verdict').dataset.verdict === 'frozen'",
             timeout=10, what="the item refused")
    assert not browser.find_element(By.ID, "ret-cancelled").get_attribute("hidden")
    assert browser.find_element(By.ID, "ret-finish").get_attribute("disabled") is not None
    status, now = get(edge, f"/api/v1/returns/receipts/{receipt(browser)['receipt_id']}")
    assert status == 200 and now["lines"][0]["received"] == 1 and now["state"] == "open"
    # the refused scan raised the alarm again: acknowledge it so the next test starts clean
    js_until(browser, "return !document.getElementById('alarm').hidden", timeout=10)
    browser.find_element(By.ID, "alarm-ack").click()
    js_until(browser, "return document.getElementById('alarm').hidden", timeout=10)
