"""The pages in a real browser: Debian's headless Chromium driven by selenium, against a real
``scanedge serve`` (demo orders) printing to a real ``scanedge printer-sim`` over TCP.

Each page is looked at as a 360x640 phone; screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import (
    DATA,
    ROOT,
    SCANEDGE,
    EdgeServer,
    HubServer,
    cli_env,
    free_port,
    run_cli,
    wait_until,
)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SHOTS = ROOT / "artifacts" / "screenshots"

if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    pytest.skip("Debian's chromium and chromium-driver are not installed "
                "(apt-get install chromium chromium-driver; scripts/setup.sh test does it)",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (.[dev])")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

pytestmark = pytest.mark.slow


class PrinterSim:
    """``scanedge printer-sim`` as a process; counts the labels it reports on stdout."""

    def __init__(self, data_dir: Path, *extra_args: str) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(  # extra_args: --save DIR, to read what it printed
            [SCANEDGE, "printer-sim", "--listen", f"127.0.0.1:{self.port}", *extra_args],
            env=cli_env(data_dir),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        wait_until(lambda: any("virtual printer on" in line for line in self.lines), timeout=20,
                   what="the virtual printer")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())

    @property
    def labels(self) -> int:
        return sum(1 for line in self.lines if line.startswith("label "))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def rig(tmp_path_factory) -> Iterator[tuple[EdgeServer, PrinterSim]]:
    data = tmp_path_factory.mktemp("pages") / "var"
    run_cli("orders", "import", "--demo", data_dir=data)
    printer = PrinterSim(data)
    edge = EdgeServer(data, SCANEDGE_PRINTER=printer.address).start()
    yield edge, printer
    edge.kill()
    printer.stop()


@contextlib.contextmanager
def chromium(*extra_args: str) -> Iterator[webdriver.Chrome]:
    """Headless Chromium as a 360x640 phone, with a profile of its own; `extra_args` for what
    one test file needs beyond that (the returns page: a fake camera)."""
    profile = tempfile.mkdtemp(prefix="scanedge-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--autoplay-policy=no-user-gesture-required",
                "--window-size=360,640", f"--user-data-dir={profile}", *extra_args):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        # a phone: 360x640 CSS pixels, touch
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 360, "height": 640, "deviceScaleFactor": 1, "mobile": True})
        driver.set_page_load_timeout(20)
        SHOTS.mkdir(parents=True, exist_ok=True)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        yield driver


def js_until(driver, script: str, timeout: float = 5.0, what: str = "the page"):
    try:
        return wait_until(lambda: driver.execute_script(script), timeout=timeout, interval=0.02,
                          what=what)
    except AssertionError as e:  # say what the page said
        logs = [entry["message"] for entry in driver.get_log("browser")]
        raise AssertionError(f"{e}\nbrowser console: {logs}") from None


def open_page(driver, edge: EdgeServer, path: str) -> None:
    driver.get(edge.url + path)
    # connected: the stream's first "state" event has arrived
    js_until(driver, "return window.ScanEdge && ScanEdge.live.state !== null", what=f"{path} to connect")


def scan(driver, code: str) -> None:
    """What a keyboard-wedge scanner does: type into whatever has the focus, then Enter."""
    driver.switch_to.active_element.send_keys(code + Keys.ENTER)


def shot(driver, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def get_json(edge: EdgeServer, path: str) -> dict:
    with urllib.request.urlopen(edge.url + path, timeout=10) as r:
        return json.loads(r.read())


def verdict(driver) -> str | None:
    return driver.execute_script("return document.getElementById('verdict').dataset.verdict || null")


def test_scanner_types_codes_into_the_scan_page(rig, browser) -> None:
    edge, _ = rig
    open_page(browser, edge, "/scan")
    assert browser.execute_script("return innerWidth") == 360
    assert browser.switch_to.active_element.get_attribute("id") == "scan-input"
    scan(browser, "SO-1002")
    js_until(browser, "return document.getElementById('order-id').textContent === 'SO-1002'")
    assert verdict(browser) == "ok"
    # the success sound came after the edge's committed answer, not on the key press
    log = browser.execute_script("return scanedgeLog")
    assert [e["detail"] for e in log if e["kind"] == "sound"] == ["ok"]
    typed = next(e["at"] for e in log if e["kind"] == "scan_typed")
    assert next(e["at"] for e in log if e["kind"] == "sound") >= typed

    # a lost answer: the request reaches the edge, the page never hears back -> it retries with
    # the same scan_id and the edge answers from what it stored (counted once)
    browser.execute_script("""
        const real = window.fetch; let dropped = false;
        window.fetch = function (url, init) {
          const p = real.apply(this, arguments);
          if (!dropped && String(url).endsWith('/api/v1/scans')) {
            dropped = true; return p.then(() => { throw new TypeError('answer lost'); });
          }
          return p;
        };""")
    scan(browser, "9787115428028")
    js_until(browser, "return document.querySelector('#order-lines li[data-sku=\"9787115428028\"]')"
                      "?.classList.contains('line-done')")
    # clicking around the page never takes the focus away from the scan field
    browser.find_element(By.ID, "history-heading").click()
    js_until(browser, "return document.activeElement.id === 'scan-input'")
    scan(browser, "4006381333931")  # not in SO-1002
    js_until(browser, "return document.getElementById('verdict').dataset.verdict === 'wrong_item'")
    assert "verdict-bad" in browser.find_element(By.ID, "verdict").get_attribute("class")
    for _ in range(3):
        scan(browser, "SELLER-CASE-07")
    js_until(browser, "return document.getElementById('order-complete').hidden === false")
    order = get_json(edge, "/api/v1/orders/SO-1002")
    assert [line["packed"] for line in order["lines"]] == [1, 3]  # the retried scan counted once
    shot(browser, "scan-360x640")

    # the last 10 scans survive a reload
    browser.refresh()
    open_page(browser, edge, "/scan")
    items = browser.find_elements(By.CSS_SELECTOR, "#history li")
    assert len(items) == 6 and "SELLER-CASE-07" in items[0].text
    # English on request
    browser.get(edge.url + "/scan?lang=en")
    assert browser.find_element(By.ID, "scan-input").get_attribute("placeholder") == "Scan a barcode"
    browser.get(edge.url + "/scan?lang=zh")


def test_freeze_raises_the_alarm_on_an_open_page_and_enter_does_not_dismiss_it(rig, browser) -> None:
    edge, _ = rig
    open_page(browser, edge, "/bench")
    # the hub is not in this test: the order is frozen on the device (same data dir), and the
    # PDA at this station then scans it: the edge refuses it and raises the alarm
    run_cli("freeze", "SO-1003", "--reason", "cancel", data_dir=Path(edge.data_dir))
    status, body = edge.post("/api/v1/scans", {"code": "SO-1003", "operator": "pda-7"})
    raised = time.monotonic()
    assert status == 200 and body["verdict"] == "frozen"
    js_until(browser, "return !document.getElementById('alarm').hidden", timeout=3)
    delay = time.monotonic() - raised
    assert delay < 1.0, f"the alarm took {delay:.2f} s"
    text = browser.find_element(By.ID, "alarm-message").text
    assert "SO-1003" in text and "已取消" in text
    log = browser.execute_script("return scanedgeLog")
    kinds = {(e["kind"], json.dumps(e["detail"], ensure_ascii=False)) for e in log}
    assert ("sound", '"alarm"') in kinds
    assert any(k == "vibrate" for k, _ in kinds)
    assert any(k == "speak" and "SO-1003" in d for k, d in kinds)
    shot(browser, "alarm-360x640")

    # the scanner keeps typing: Enter does not dismiss the alarm, the scan is held, not lost
    scan(browser, "6901234567892")
    ack = browser.find_element(By.ID, "alarm-ack")
    browser.execute_script("arguments[0].focus()", ack)
    ack.send_keys(Keys.ENTER)
    ack.send_keys(Keys.SPACE)
    time.sleep(0.3)
    assert not browser.execute_script("return document.getElementById('alarm').hidden")
    assert browser.execute_script("return ScanEdge.scanner.queue().length") == 1
    assert "1" in browser.find_element(By.ID, "alarm-held").text
    assert get_json(edge, "/api/v1/alarms")["alarms"][0]["order_id"] == "SO-1003"

    # a deliberate tap acknowledges it, as the signed-in person (here the loopback operator of
    # a device with no users); then the held scan goes out
    assert "本机" in browser.find_element(By.ID, "alarm-who").text
    ack.click()
    js_until(browser, "return document.getElementById('alarm').hidden")
    assert get_json(edge, "/api/v1/alarms")["alarms"] == []
    acked = get_json(edge, "/api/v1/alarms?all=1")["alarms"][0]
    assert acked["acked_by"] == "local"
    js_until(browser, "return ScanEdge.scanner.queue().length === 0")
    js_until(browser, "return ScanEdge.scanner.history()[0].code === '6901234567892'")


def pack_so_1001(driver) -> None:
    """At the bench with SO-1001 open: scan its items (lot L2301), then tap its gift's confirm."""
    for code in ("]C1010690123456789210L2301", "]C1010690123456789210L2301", "4006381333931"):
        scan(driver, code)
    js_until(driver, "return document.getElementById('print-why').textContent.includes('赠品')",
             timeout=10, what="only the gift left")
    # the tap (found and clicked in one step: the panel redraws as scan answers arrive)
    js_until(driver, "const b = document.querySelector('.gift-confirm');"
                     " if (b && !b.disabled) { b.click(); return true; } return false;",
             what="the gift's confirm button")


def test_bench_prints_to_the_virtual_printer(rig, browser) -> None:
    edge, printer = rig
    open_page(browser, edge, "/bench")
    scan(browser, "SO-1001")
    js_until(browser, "return document.getElementById('order-id').textContent === 'SO-1001'")
    assert browser.find_element(By.ID, "order-p0").is_displayed()
    assert "帆布包" in browser.find_element(By.ID, "order-gifts").text
    # the print gate: the button says why it waits until the order is verified here
    assert browser.find_element(By.ID, "print-btn").get_attribute("disabled") is not None
    assert "未装箱" in browser.find_element(By.ID, "print-why").text
    pack_so_1001(browser)
    js_until(browser, "return !document.getElementById('print-btn').disabled", timeout=10,
             what="the print button enabled")
    js_until(browser, "const i = document.getElementById('label-preview');"
                      " return !i.hidden && i.naturalWidth > 300", what="the label preview")
    before = printer.labels
    browser.find_element(By.ID, "print-btn").click()
    wait_until(lambda: printer.labels == before + 1, timeout=15, what="the label at the printer")
    js_until(browser, "return document.querySelector('#jobs li')?.dataset.state === 'printed'",
             timeout=10)
    shot(browser, "bench-360x640")
    # reprint asks for a reason (who is the signed-in person)
    browser.find_element(By.ID, "reprint-btn").click()
    # the submit is on the 360x640 screen as the dialog opens, not below the fold or scrolled away
    js_until(browser, "return document.getElementById('reprint-dialog').open")
    seen = browser.execute_script(
        "const b = document.getElementById('reprint-submit'), r = b.getBoundingClientRect();"
        " const d = document.getElementById('reprint-dialog').getBoundingClientRect();"
        " const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);"
        " return {top: r.top, bottom: r.bottom, shown_to: Math.min(innerHeight, d.bottom),"
        " hit: hit === b};")
    shot(browser, "bench-reprint-360x640")
    assert seen["top"] >= 0 and seen["bottom"] <= seen["shown_to"] and seen["hit"], seen
    browser.find_element(By.CSS_SELECTOR, "input[name=reason]").click()
    browser.find_element(By.ID, "reprint-submit").click()
    wait_until(lambda: printer.labels == before + 2, timeout=15, what="the reprint")
    js_until(browser, "return document.querySelectorAll('#jobs li[data-state=printed]').length === 2",
             timeout=10)
    jobs = browser.find_elements(By.CSS_SELECTOR, "#jobs li")
    assert "卡纸" in jobs[0].text


def test_waybill_photo_upload(rig, browser) -> None:
    edge, _ = rig
    open_page(browser, edge, "/waybill")
    photo = DATA / "waybills" / "barcode_0000_EMS.jpg"
    browser.find_element(By.ID, "waybill-photo").send_keys(str(photo))
    js_until(browser, "return document.getElementById('waybill-number').textContent !== ''",
             timeout=20, what="the tracking number")
    assert browser.find_element(By.ID, "waybill-number").text == "1174567041595"
    js_until(browser, "return document.querySelector('#waybill-overlay polygon') !== null",
             what="the photo region")
    shot(browser, "waybill-360x640")
    browser.find_element(By.ID, "waybill-confirm").click()
    js_until(browser, "return !document.getElementById('waybill-done').hidden")
    assert "1174567041595" in browser.find_element(By.ID, "waybill-done").text


def test_supervisor_page_updates_live(rig, browser) -> None:
    edge, _ = rig
    open_page(browser, edge, "/supervisor")
    js_until(browser, "return document.getElementById('sup-sync').textContent.includes('单机')")
    run_cli("freeze", "SO-1002", "--reason", "address_change", data_dir=Path(edge.data_dir))
    edge.post("/api/v1/scans", {"code": "SO-1002", "station": "bench-2", "operator": "pda-9"})
    # another station's alarm: listed here, no full-screen alarm on this station's pages
    js_until(browser, "return document.querySelector('#sup-unacked li[data-alarm-id]') !== null",
             timeout=3, what="the new alarm on the supervisor page")
    assert browser.execute_script("return document.getElementById('alarm').hidden")
    assert "SO-1002" in browser.find_element(By.ID, "sup-unacked").text
    assert "2" in browser.find_element(By.ID, "sup-int-summary").text  # SO-1003, SO-1002
    shot(browser, "supervisor-360x640")
    browser.get(edge.url + "/")
    shot(browser, "menu-360x640")


@pytest.fixture
def hub_rig(tmp_path) -> Iterator[tuple[HubServer, EdgeServer]]:
    hub = HubServer(tmp_path / "hub", str(tmp_path / "hub" / "hub.db")).start()
    token = hub.add_device("page-dev")
    data = tmp_path / "edge"
    run_cli("orders", "import", "--demo", data_dir=data)
    edge = EdgeServer(data, SCANEDGE_DEVICE_ID="page-dev", SCANEDGE_HUB_URL=hub.url,
                      SCANEDGE_HUB_TOKEN=token, SCANEDGE_HUB_PUBLIC_KEY=hub.public_key,
                      SCANEDGE_PRINTER="dummy://")
    edge.start()
    yield hub, edge
    edge.kill()  # graceful shutdowns are tested elsewhere; here they only cost time
    hub.kill()


def test_hub_freeze_raises_the_alarm_within_a_second(hub_rig, browser) -> None:
    hub, edge = hub_rig
    demo = json.loads((ROOT / "edge" / "demo" / "orders.json").read_text(encoding="utf-8"))
    hub.admin("PUT", "/api/v1/orders/SO-1001", demo[0])
    open_page(browser, edge, "/scan")
    js_until(browser, "return ScanEdge.lastSync() && ScanEdge.lastSync().online === true",
             timeout=15, what="the hub to be online")
    scan(browser, "SO-1001")  # the order is open at this station: a freeze must alarm here
    js_until(browser, "return document.getElementById('order-id').textContent === 'SO-1001'")
    issued = time.monotonic()
    hub.admin("POST", "/api/v1/orders/SO-1001/freeze", {"reason": "cancel"})
    js_until(browser, "return !document.getElementById('alarm').hidden", timeout=5,
             what="the freeze alarm")
    delay = time.monotonic() - issued
    assert delay < 1.0, f"hub freeze -> alarm on the page took {delay:.2f} s"
    assert "SO-1001" in browser.find_element(By.ID, "alarm-message").text
    shot(browser, "hub-freeze-alarm-360x640")
    browser.get("about:blank")


def test_supervisor_decides_a_conflict_on_the_page(hub_rig, browser) -> None:
    """Expedite + cancel at the hub: a supervisor signs in, sees the conflict, taps 发货, confirms;
    the row goes and the hub records who on which device."""
    hub, edge = hub_rig
    demo = json.loads((ROOT / "edge" / "demo" / "orders.json").read_text(encoding="utf-8"))
    hub.admin("PUT", "/api/v1/orders/SO-1002", demo[1])
    hub.admin("POST", "/api/v1/orders/SO-1002/expedite", {})
    hub.admin("POST", "/api/v1/orders/SO-1002/freeze", {"reason": "cancel"})
    wait_until(lambda: (get_json(edge, "/api/v1/orders/SO-1002")["freeze"] or {}).get("reason")
               == "needs_decision", timeout=10, what="SO-1002 waiting for a decision")
    subprocess.run([SCANEDGE, "hub", "device", "page-dev", "--can-decide"], env=hub.env,
                   capture_output=True, timeout=60, check=True)
    run_cli("user", "add", "s1", "--name", "李四", "--role", "supervisor", "--badge",
            "BADGE-SUPER-0001", data_dir=Path(edge.data_dir))
    row = "document.querySelector('#sup-conflicts li[data-order-id=\"SO-1002\"]')"
    try:
        browser.delete_all_cookies()
        browser.get(edge.url + "/supervisor")
        js_until(browser, "return !document.getElementById('signin').hidden", what="the sign-in")
        scan(browser, "BADGE-SUPER-0001")
        js_until(browser, f"return ScanEdge.who() && ScanEdge.live.state !== null && {row}"
                          f" && {row}.querySelector('.decide-ship')", timeout=10,
                 what="the conflict with its buttons")
        assert "加急" in browser.find_element(By.ID, "sup-conflicts").text
        browser.execute_script(f"{row}.scrollIntoView()")
        shot(browser, "supervisor-conflict-360x640")
        browser.execute_script(f"return {row}.querySelector('.decide-ship')").click()
        js_until(browser, "return document.getElementById('decide-dialog').open")
        assert "SO-1002" in browser.find_element(By.ID, "decide-text").text
        shot(browser, "supervisor-decide-360x640")
        browser.find_element(By.ID, "decide-confirm").click()
        js_until(browser, f"return {row} === null && document.getElementById("
                          "'sup-decide-result').textContent.includes('SO-1002')", timeout=10,
                 what="the row gone and the result shown")
        assert "李四" in browser.find_element(By.ID, "sup-decide-result").text
        decided = next(c for c in hub.admin("GET", "/api/v1/conflicts")["conflicts"]
                       if c["order_id"] == "SO-1002")
        assert (decided["decision"], decided["decided_by"], decided["decided_device"]) == (
            "ship", "s1", "page-dev")
        # every visible word through the catalogue: no raw keys in Chinese
        text = browser.find_element(By.TAG_NAME, "main").text
        assert not any(raw in text for raw in ("needs_confirmation", "queued", " · hub", "sup_"))
    finally:
        browser.delete_all_cookies()
        browser.get("about:blank")


def test_edge_unreachable_is_shown_and_scans_wait(rig, browser) -> None:
    edge, _ = rig
    open_page(browser, edge, "/scan")
    edge.kill()  # as a power cut would
    try:
        js_until(browser, "return !document.getElementById('conn-edge').hidden", timeout=10,
                 what="the edge-unreachable banner")
        scan(browser, "SO-1002")  # taken by the page, not by the edge: it waits
        time.sleep(0.5)
        assert browser.execute_script("return ScanEdge.scanner.queue().length") == 1
        shot(browser, "edge-down-360x640")
    finally:
        edge.start()
    js_until(browser, "return ScanEdge.scanner.queue().length === 0", timeout=15,
             what="the waiting scan to be sent")
    js_until(browser, "return document.getElementById('conn-edge').hidden", timeout=10)


def test_sign_in_by_badge_then_work_is_recorded_as_that_person(tmp_path, browser) -> None:
    import sqlite3

    data = tmp_path / "var"
    run_cli("orders", "import", "--demo", data_dir=data)
    run_cli("user", "add", "k1", "--name", "张三", "--role", "packer", "--badge", "BADGE-K1-0001",
            data_dir=data)
    edge = EdgeServer(data, SCANEDGE_PRINTER="dummy://").start()
    try:
        browser.delete_all_cookies()
        browser.get(edge.url + "/scan")
        js_until(browser, "return !document.getElementById('signin').hidden", what="the sign-in")
        shot(browser, "signin-360x640")
        # the badge field has the focus: the scanner types the badge and Enter
        scan(browser, "NOT-A-BADGE")
        js_until(browser, "return document.getElementById('signin-error').textContent !== ''")
        scan(browser, "BADGE-K1-0001")
        js_until(browser, "return document.getElementById('signin').hidden"
                          " && window.ScanEdge && ScanEdge.who() && ScanEdge.live.state !== null",
                 timeout=10, what="signed in and connected")
        assert "张三" in browser.find_element(By.ID, "who").text
        scan(browser, "SO-1001")
        js_until(browser, "return ScanEdge.scanner.queue().length === 0"
                          " && ScanEdge.scanner.history().length === 1")
        db = sqlite3.connect(data / "edge.db")
        operators = {json.loads(p)["operator"] for (p,) in db.execute(
            "SELECT payload FROM events WHERE type = 'scan'")}
        assert operators == {"k1"}
        browser.find_element(By.ID, "who").click()  # sign out
        js_until(browser, "return !document.getElementById('signin').hidden", timeout=10,
                 what="the sign-in screen after signing out")
    finally:
        browser.delete_all_cookies()
        edge.stop()


def test_alarm_holds_scans_across_a_reload_a_second_tab_and_both_pages(rig, browser) -> None:
    """A scan typed under an alarm is not sent before a person acknowledged it: not after a
    reload of the page, not from a second tab (/bench beside /scan); the device holds the
    station's scans too (alarm_pending) for whatever client did not know."""
    import sqlite3

    edge, _ = rig
    station = "bench-7"

    def scans_of(code: str) -> list[str]:
        db = sqlite3.connect(Path(edge.data_dir) / "edge.db")
        return [json.loads(p)["verdict"] for (p,) in db.execute(
            "SELECT payload FROM events WHERE type = 'scan' ORDER BY seq")
                if json.loads(p)["station"] == station and json.loads(p)["code"] == code]

    run_cli("freeze", "SO-1002", "--reason", "hold", data_dir=Path(edge.data_dir))
    open_page(browser, edge, f"/scan?station={station}")
    first = browser.current_window_handle
    scan(browser, "SO-1002")  # frozen: the station's alarm goes up
    js_until(browser, "return !document.getElementById('alarm').hidden", timeout=5)
    scan(browser, "9787115428028")  # typed under the alarm: held here
    assert browser.execute_script("return ScanEdge.scanner.queue().length") == 1
    browser.refresh()
    js_until(browser, "return window.ScanEdge && ScanEdge.live.state !== null", what="reconnected")
    js_until(browser, "return !document.getElementById('alarm').hidden", timeout=5)
    assert browser.execute_script("return ScanEdge.scanner.queue().length") == 1
    assert scans_of("9787115428028") == []  # the reload did not send it
    # another client that does not know about the alarm is held by the device itself
    status, body = edge.post("/api/v1/scans", {"code": "SO-1001", "station": station})
    assert status == 200 and body["verdict"] == "alarm_pending"
    # a second tab, the bench of the same station: the alarm is up there too
    browser.switch_to.new_window("tab")
    open_page(browser, edge, f"/bench?station={station}")
    js_until(browser, "return !document.getElementById('alarm').hidden", timeout=5)
    assert browser.find_element(By.ID, "print-btn").get_attribute("disabled") is not None
    browser.find_element(By.ID, "alarm-ack").click()  # a person acknowledges it here
    js_until(browser, "return document.getElementById('alarm').hidden")
    browser.close()
    browser.switch_to.window(first)
    # the first tab hears the acknowledgement and only now sends the held scan
    js_until(browser, "return document.getElementById('alarm').hidden", timeout=5)
    js_until(browser, "return ScanEdge.scanner.queue().length === 0", timeout=10)
    assert scans_of("9787115428028") == ["unknown"]  # SO-1002 stayed frozen: no open order
    run_cli("unfreeze", "SO-1002", data_dir=Path(edge.data_dir))
