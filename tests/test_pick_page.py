"""The picker's page /pick in real Chromium (360x640) against a real ``scanedge serve`` with the
demo orders (they have locations) and the demo layout."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.support import ROOT, EdgeServer, run_cli
from tests.test_pages_browser import browser, js_until, open_page, scan, shot  # noqa: F401

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pick_rig(tmp_path_factory) -> Iterator[EdgeServer]:
    data = tmp_path_factory.mktemp("pick") / "var"
    run_cli("orders", "import", "--demo", data_dir=data)
    shutil.copy(ROOT / "edge" / "demo" / "layout.toml", data / "layout.toml")
    edge = EdgeServer(data, SCANEDGE_PRINTER="dummy://").start()
    yield edge
    edge.kill()


def text(driver, element_id: str) -> str:
    return driver.execute_script(f"return document.getElementById('{element_id}').textContent")


def test_a_picker_claims_a_wave_and_walks_it(pick_rig, browser) -> None:  # noqa: F811
    edge = pick_rig
    open_page(browser, edge, "/pick?station=pda-1&lang=en")
    assert browser.execute_script("return innerWidth") == 360
    js_until(browser, "return !document.getElementById('pick-idle').hidden")
    browser.find_element("id", "pick-claim").click()
    js_until(browser, "return !document.getElementById('pick-wave').hidden")
    wave = edge.post("/api/v1/pick/claim", {"station": "pda-1"})[1]["wave"]  # the same one
    first = wave["current"]
    assert text(browser, "pick-location") == first["location"]
    assert text(browser, "pick-level") == str(first["level"])
    assert text(browser, "pick-box") == first["location"]
    assert text(browser, "pick-slot") == str(first["slot"])
    assert first["name"] in text(browser, "pick-name")
    assert "Scan bin" in text(browser, "pick-expect")
    assert "m left" in text(browser, "pick-remaining")
    shot(browser, "pick-360x640")
    # the big buttons fit the phone and are glove-sized
    for bid in ("pick-short", "pick-skip"):
        size = browser.find_element("id", bid).size
        assert size["height"] >= 48 and size["width"] >= 120
    scan(browser, "A-99-99-9")
    js_until(browser, "return document.getElementById('pick-verdict').dataset.verdict === 'wrong_bin'")
    scan(browser, first["location"])
    js_until(browser, "return document.getElementById('pick-expect').dataset.step === 'item'")
    scan(browser, "4006381333931" if first["sku"] != "4006381333931" else "9787115428028")
    js_until(browser, "return document.getElementById('pick-verdict').dataset.verdict === 'wrong_item'")
    # skip this stop: the next one shows, the skipped one comes back at the end
    browser.find_element("id", "pick-skip").click()
    js_until(browser, f"return document.getElementById('pick-location').textContent !== '{first['location']}'"
                      " || document.getElementById('pick-verdict').dataset.verdict === 'skipped'")
    now = edge.post("/api/v1/pick/claim", {"station": "pda-1"})[1]["wave"]
    assert now["stops"][-1]["stop_no"] == first["stop_no"] or len(now["stops"]) == 1
    # short at the current stop: found 0, bin empty
    current = now["current"]
    browser.find_element("id", "pick-short").click()
    browser.find_element("id", "pick-found").clear()
    browser.find_element("id", "pick-found").send_keys("0")
    browser.find_element("id", "pick-short-send").click()
    js_until(browser, "return document.getElementById('pick-verdict').dataset.verdict === 'short'")
    after = edge.post("/api/v1/pick/claim", {"station": "pda-1"})[1]["wave"]
    done = next(s for s in after["stops"] if s["stop_no"] == current["stop_no"])
    assert done["state"] == "done" and done["short_qty"] == current["qty"]
    # Chinese by default
    browser.get(edge.url + "/pick?station=pda-1&lang=zh")
    js_until(browser, "return document.getElementById('pick-expect').textContent.length > 0")
    assert "扫" in text(browser, "pick-expect") or "放" in text(browser, "pick-expect")
