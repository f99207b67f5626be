"""The returns bench page /returns without a browser (issue 17): served in Chinese and English,
in the menu, and every word it can show is in the catalogue in both languages. The page at work,
in real Chromium against a real edge and hub: tests/test_returns_browser.py (slow)."""

from __future__ import annotations

import re
from pathlib import Path

from scanedge.edge.domain import returns as domain
from scanedge.edge.web.pages import catalogue

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "edge" / "templates" / "returns.html"
SCRIPT = ROOT / "edge" / "static" / "returns.js"

# Words the script builds from a prefix and a value: every value it can meet needs its word.
FAMILIES = {
    "ret_condition_": domain.CONDITIONS,
    "ret_disposition_": domain.DISPOSITIONS,
    "ret_rma_reason_": domain.REASONS,
    "ret_verdict_": tuple(domain.MESSAGES),
    "ret_flag_": ("not_on_rma", "over_quantity"),
    "ret_word_": ("ok", "unknown", "refused", "frozen", "already", "not_on_rma", "over_quantity",
                  "qualifies", "rejected"),
    "err_": ("rma_unknown", "receipt_unknown", "rma_already_received", "rma_frozen",
             "receipt_finished", "bad_condition", "not_an_image", "truncated", "too_large",
             "too_many_pixels", "empty", "disk_full"),
    "job_": ("queued", "sending", "printed", "failed", "cancelled", "needs_confirmation"),
}


def used_keys() -> set[str]:
    html = TEMPLATE.read_text(encoding="utf-8")
    js = SCRIPT.read_text(encoding="utf-8")
    keys = set(re.findall(r"\bt\.([a-z_0-9]+)", html))
    keys |= set(re.findall(r"\bt\('([a-z_0-9]+)'[,)]", js))
    keys |= {k for k in re.findall(r"'(ret_[a-z_]+)'", js) if not k.endswith("_")}
    keys |= {prefix + value for prefix, values in FAMILIES.items() for value in values}
    return keys


def test_every_word_of_the_returns_page_is_in_the_catalogue_in_chinese_and_english() -> None:
    words = catalogue()
    keys = used_keys()
    assert len(keys) > 100  # the parse found the page's words, not nothing
    for lang in ("zh", "en"):
        missing = sorted(k for k in keys if k not in words[lang])
        assert not missing, f"{lang}: {missing}"
    # the English page says nothing in Chinese (the RMA's own reason codes are named in English)
    chinese = [k for k in keys if k.startswith("ret_") and re.search(r"[\u4e00-\u9fff]", words["en"][k])]
    assert not chinese, chinese


def test_the_returns_page_is_served_in_chinese_by_default_and_in_english_on_request(client) -> None:
    page = client.get("/returns")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<title>退货入库" in html and 'id="scan-input"' in html
    assert "请扫描退货运单号、退货单号或原订单号" in html
    assert re.search(r'src="/static/returns\.js\?v=[0-9a-f]{12}"', html)
    english = client.get("/returns?lang=en").get_data(as_text=True)
    assert "<title>Returns" in english and "Scan the return waybill" in english
    assert 'capture="environment"' in english  # the file picker opens a phone's camera


def test_the_menu_offers_the_returns_page(client) -> None:
    html = client.get("/?lang=zh").get_data(as_text=True)
    assert 'id="menu-returns"' in html and 'href="/returns' in html and "退货入库" in html
