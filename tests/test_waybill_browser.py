"""/waybill in real Chromium (issue 14, item 8): a distributor's three-field form with only its
own orders, the red mark of a number that breaks its rule and the confirmation of the exception;
a packer's form that does not pre-fill a frozen order and says why in Chinese.

Against a real ``scanedge serve`` with users (so every call needs a session) and the rule
``{"acme": {"length": 12, "min_letters": 1}}``.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import EdgeServer, run_cli
from tests.test_pages_browser import By, browser, js_until, open_page, scan, shot  # noqa: F401
from tests.test_waybill_capture import _label

pytestmark = pytest.mark.slow
RULES = '{"acme": {"length": 12, "min_letters": 1}}'


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Iterator[tuple[EdgeServer, Path]]:
    root = tmp_path_factory.mktemp("waybill-pages")
    data = root / "var"
    run_cli("orders", "import", "--demo", data_dir=data)
    orders = root / "orders.json"
    orders.write_text(json.dumps([
        {"order_id": oid, "distributor": who, "lines": [{"sku": "SKU-A", "name": "A", "qty": 1}]}
        for oid, who in (("DA-1", "acme"), ("DA-2", "acme"), ("DB-1", "beta"))]))
    run_cli("orders", "import", str(orders), data_dir=data)
    run_cli("user", "add", "acme", "--name", "Acme", "--role", "distributor", "--badge",
            "BADGE-ACME-01", data_dir=data)
    run_cli("user", "add", "k1", "--name", "张三", "--role", "packer", "--badge",
            "BADGE-PACKER-1", data_dir=data)
    run_cli("freeze", "DA-2", "--reason", "cancel", data_dir=data)
    photos = root / "photos"
    photos.mkdir()
    for number in ("SF3395329961247", "AC1234567890"):
        (photos / f"{number}.png").write_bytes(_label(number))
    edge = EdgeServer(data, SCANEDGE_PRINTER="dummy://", SCANEDGE_WAYBILL_RULES=RULES).start()
    yield edge, photos
    edge.kill()


def sign_in(driver, edge: EdgeServer, badge: str, path: str) -> None:
    driver.delete_all_cookies()
    driver.get(edge.url + path)
    js_until(driver, "return !document.getElementById('signin').hidden", what="the sign-in screen")
    badge_box = driver.find_element(By.ID, "signin-badge")
    badge_box.send_keys(badge)
    driver.find_element(By.ID, "signin-submit").click()
    js_until(driver, "return window.ScanEdge && ScanEdge.who() !== null", timeout=10,
             what="signed in")


def query(edge: EdgeServer, sql: str, *args):
    con = sqlite3.connect(f"file:{edge.data_dir / 'edge.db'}?mode=ro", uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def test_distributor_three_fields_red_mark_and_exception(shop, browser) -> None:  # noqa: F811
    edge, photos = shop
    sign_in(browser, edge, "BADGE-ACME-01", "/waybill")
    js_until(browser, "return document.getElementById('waybill-distributor') !== null",
             what="the distributor's form")
    fields = browser.execute_script(
        "return Array.from(document.querySelectorAll('input, select, textarea'))"
        ".filter(e => !e.closest('[hidden]') && !e.closest('#signin')).map(e => e.id)")
    assert sorted(fields) == ["waybill-manual", "waybill-order", "waybill-photo"]
    js_until(browser, "return document.querySelectorAll('#waybill-order option').length === 3",
             what="its orders")
    options = browser.execute_script(
        "return Array.from(document.querySelectorAll('#waybill-order option'))"
        ".map(o => [o.value, o.disabled])")
    assert options[0] == ["", False]  # "choose the order"
    assert sorted(options[1:]) == [["DA-1", False], ["DA-2", True]]  # no SO-*, no DB-1
    # the photo before the order: asked for the order, in Chinese
    browser.find_element(By.ID, "waybill-photo").send_keys(str(photos / "SF3395329961247.png"))
    js_until(browser, "return document.getElementById('waybill-status').textContent === '请先选择订单'")
    browser.execute_script("const s = document.getElementById('waybill-order');"
                           "s.value = 'DA-1'; s.dispatchEvent(new Event('change'));")
    browser.find_element(By.ID, "waybill-photo").send_keys(str(photos / "SF3395329961247.png"))
    js_until(browser, "return document.getElementById('waybill-manual').value === 'SF3395329961247'",
             timeout=20, what="the number read from the photo")
    # 标红: the number breaks acme's rule, with the reason in Chinese
    js_until(browser, "return !document.getElementById('waybill-rule').hidden", what="the red mark")
    assert "waybill-manual" in browser.execute_script(
        "return Array.from(document.querySelectorAll('.rule-red')).map(e => e.id)")
    rule_text = browser.find_element(By.ID, "waybill-rule").text
    assert "需 12 位" in rule_text and "15" in rule_text and not re.search("[a-z]{3}", rule_text)
    browser.find_element(By.ID, "waybill-submit").click()
    js_until(browser, "return !document.getElementById('waybill-exception').hidden",
             what="the question to confirm the exception")
    assert query(edge, "SELECT tracking_number FROM orders WHERE order_id = 'DA-1'") == [(None,)]
    shot(browser, "waybill-distributor-rule-360x640")
    browser.find_element(By.ID, "waybill-exception").click()
    js_until(browser, "return !document.getElementById('waybill-done').hidden", what="done")
    assert "SF3395329961247" in browser.find_element(By.ID, "waybill-done").text
    assert "例外" in browser.find_element(By.ID, "waybill-done").text
    assert query(edge, "SELECT tracking_number, carrier FROM orders WHERE order_id = 'DA-1'") == [
        ("SF3395329961247", "SF")]
    (payload,) = query(edge, "SELECT payload FROM events WHERE type = 'waybill_rule_exception'")
    event = json.loads(payload[0])
    assert event["confirmed_by"] == "acme" and event["rule"] == {"length": 12, "min_letters": 1}


def test_packer_page_does_not_prefill_a_frozen_order_and_says_why_in_chinese(shop, browser  # noqa: F811
                                                                              ) -> None:
    edge, photos = shop
    sign_in(browser, edge, "BADGE-PACKER-1", "/scan")
    open_page(browser, edge, "/scan")
    scan(browser, "SO-1003")
    js_until(browser, "return document.getElementById('order-id').textContent === 'SO-1003'",
             what="the open order")
    run_cli("freeze", "SO-1003", "--reason", "cancel", data_dir=edge.data_dir)
    open_page(browser, edge, "/waybill")
    state = browser.execute_script("return ScanEdge.live.state.open_order")
    assert state is None or state["freeze"] is not None  # the open order is the frozen one
    assert browser.find_element(By.ID, "waybill-order").get_attribute("value") == ""
    browser.execute_script("document.getElementById('waybill-order').value = 'SO-1003'")
    browser.find_element(By.ID, "waybill-photo").send_keys(str(photos / "AC1234567890.png"))
    js_until(browser, "return document.getElementById('waybill-status').textContent.indexOf('冻结') >= 0",
             timeout=20, what="the frozen answer")
    status = browser.find_element(By.ID, "waybill-status").get_attribute("textContent")
    assert status == "识别失败:订单已冻结,不能关联运单" and not re.search("[A-Za-z]", status)
