"""The pack video in real Chromium (issue 18 item 2, slow): with evidence_policy = require_video
the bench's print and carrier-label buttons wait, saying why; the packer records the packing
with the fake camera (Chromium's --use-fake-device-for-media-stream: a real getUserMedia stream
into a real MediaRecorder) for at least pack_video_min_s (2 s here; the stop button waits for
it), the clip is kept on the device, the label prints at the virtual printer, and the video
reaches a real hub in the background, its bytes the clip's.

Against a real hub and a real ``scanedge serve`` synced to it. The words without a browser:
tests/test_evidence_page.py; the gate through the API (the default 10 s included):
tests/test_evidence_api.py."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import EdgeServer, HubServer, run_cli, wait_until
from tests.test_pages_browser import By, PrinterSim, chromium, js_until, open_page, scan, shot
from tests.test_returns_browser import FAKE_CAMERA

pytestmark = pytest.mark.slow
MUG = "6901234567021"  # SO-1004: 2 mugs, no gift, no lot


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium(*FAKE_CAMERA) as driver:
        yield driver


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Iterator[tuple[HubServer, EdgeServer, PrinterSim]]:
    root = tmp_path_factory.mktemp("evidence-pages")
    hub = HubServer(root / "hub", str(root / "hub" / "hub.db")).start()
    token = hub.add_device("ev-dev")
    data = root / "edge"
    run_cli("orders", "import", "--demo", data_dir=data)
    printer = PrinterSim(data)
    edge = EdgeServer(data, SCANEDGE_DEVICE_ID="ev-dev", SCANEDGE_HUB_URL=hub.url,
                      SCANEDGE_HUB_TOKEN=token, SCANEDGE_HUB_PUBLIC_KEY=hub.public_key,
                      SCANEDGE_PRINTER=printer.address, SCANEDGE_EVIDENCE_POLICY="require_video",
                      SCANEDGE_PACK_VIDEO_MIN_S="2")
    edge.start()
    yield hub, edge, printer
    edge.kill()
    hub.kill()
    printer.stop()


def text(driver, element_id: str) -> str:
    return driver.find_element(By.ID, element_id).get_attribute("textContent")


def tap(driver, element_id: str) -> None:
    button = driver.find_element(By.ID, element_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    button.click()


def test_a_video_required_bench_prints_only_after_the_packing_is_filmed(shop, browser) -> None:
    hub, edge, printer = shop
    open_page(browser, edge, "/bench")
    for code in ("SO-1004", MUG, MUG):
        scan(browser, code)
    js_until(browser, "return document.getElementById('order-id').textContent === 'SO-1004'")
    js_until(browser, "const s = ScanEdge.evidence.status(); return s && s.policy === 'require_video'",
             what="the evidence policy")
    # packed, but no video: the buttons wait and say why
    js_until(browser, "return document.getElementById('print-why').textContent.includes('装箱视频')",
             what="the print gate's reason")
    assert browser.find_element(By.ID, "print-btn").get_attribute("disabled") is not None
    assert browser.find_element(By.ID, "ewaybill-btn").get_attribute("disabled") is not None
    assert "至少 2 秒" in text(browser, "evidence-policy")
    # the packing filmed: the stop button waits for the minimum, then the clip is kept
    tap(browser, "evidence-record")
    js_until(browser, "return ScanEdge.evidence.recording() &&"
                      " document.getElementById('evidence-video').videoWidth > 0", timeout=10,
             what="the fake camera recording")
    assert browser.find_element(By.ID, "evidence-stop").get_attribute("disabled") is not None
    js_until(browser, "return !document.getElementById('evidence-stop').disabled", timeout=10,
             what="the minimum recorded")
    tap(browser, "evidence-stop")
    js_until(browser, "const s = ScanEdge.evidence.status(); return s && s.satisfied", timeout=15,
             what="the video stored on the device")
    shot(browser, "evidence-bench-recorded")
    (item,) = browser.execute_script("return ScanEdge.evidence.status().items")
    assert item["kind"] == "video" and item["mime"] in ("video/webm", "video/mp4")
    assert item["duration_s"] >= 2.0 and item["size"] > 1000
    assert "待上传" in text(browser, "evidence-list") or "已上传" in text(browser, "evidence-list")
    # now the label prints
    js_until(browser, "return !document.getElementById('print-btn').disabled", timeout=10,
             what="the print button enabled")
    before = printer.labels
    tap(browser, "print-btn")
    wait_until(lambda: printer.labels > before, timeout=15, what="the label at the virtual printer")
    # and the clip reaches the hub, whole
    sha = item["sha256"]

    def stored() -> bool:
        answer = hub.admin("GET", "/api/v1/orders/SO-1004/evidence")["evidence"]
        return bool(answer) and answer[0]["stored"]
    wait_until(stored, timeout=30, what="the video at the hub")
    req = urllib.request.Request(f"{hub.url}/api/v1/blobs/{sha}",
                                 headers={"Authorization": f"Bearer {hub.ADMIN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert hashlib.sha256(r.read()).hexdigest() == sha
    status = json.loads(urllib.request.urlopen(edge.url + "/api/v1/evidence/uploads",
                                               timeout=10).read())
    assert status["hub"] is True


def test_the_english_bench_says_what_it_waits_for(shop, browser) -> None:
    _, edge, _ = shop
    browser.get(edge.url + "/bench?lang=en")
    js_until(browser, "return window.ScanEdge && ScanEdge.live.state !== null", what="the bench")
    scan(browser, "SO-1002")
    js_until(browser, "return document.getElementById('order-id').textContent === 'SO-1002'")
    js_until(browser, "return document.getElementById('evidence-policy').textContent"
                      ".includes('at least 2 s')", what="the policy in English")
    assert "Record the packing" in text(browser, "evidence-record")
    browser.get(edge.url + "/bench?lang=zh")  # the next test file's language
