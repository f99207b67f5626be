"""The bench page's carrier label button (打印面单, issue 19) without a browser: served in Chinese
and English, and every word the button can show is in the catalogue in both languages. The
button at work in real Chromium against a real edge, hub and carrier simulator:
tests/test_bench_ewaybill_browser.py (slow)."""

from __future__ import annotations

import re
from pathlib import Path

from scanedge.edge.web.pages import catalogue

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "edge" / "static" / "bench.js"
TEMPLATE = ROOT / "edge" / "templates" / "bench.html"


def ewaybill_keys() -> set[str]:
    text = SCRIPT.read_text(encoding="utf-8") + TEMPLATE.read_text(encoding="utf-8")
    # the refusal code ewaybill_gate is a code, not a word
    return set(re.findall(r"\b(ewaybill_[a-z_]+)\b", text)) - {"ewaybill_btn", "ewaybill_status",
                                                              "ewaybill_gate"}


def test_every_word_of_the_carrier_label_button_is_in_the_catalogue_in_both_languages() -> None:
    words = catalogue()
    keys = ewaybill_keys()
    assert {"ewaybill_print", "ewaybill_waiting_hub", "ewaybill_carrier_refused",
            "ewaybill_sent", "ewaybill_sent_pool", "ewaybill_job"} <= keys
    for lang in ("zh", "en"):
        missing = sorted(k for k in keys if k not in words[lang])
        assert not missing, f"{lang}: {missing}"
    chinese = [k for k in keys if re.search(r"[\u4e00-\u9fff]", words["en"][k])]
    assert not chinese, chinese
    # the placeholders the script fills are in both languages' sentences
    for key in ("ewaybill_sent", "ewaybill_sent_pool", "ewaybill_not_printed"):
        for lang in ("zh", "en"):
            assert "{carrier}" in words[lang][key] and "{number}" in words[lang][key]


def test_the_bench_offers_the_carrier_label_button_in_chinese_and_english(client) -> None:
    html = client.get("/bench").get_data(as_text=True)
    assert re.search(r'<button[^>]*id="ewaybill-btn"[^>]*disabled[^>]*>打印电子面单</button>', html)
    english = client.get("/bench?lang=en").get_data(as_text=True)
    assert re.search(r'id="ewaybill-btn"[^>]*>Carrier label</button>', english)
    js = SCRIPT.read_text(encoding="utf-8")
    # it calls the device's endpoint of docs/carriers.md, for the open order
    assert "'/api/v1/orders/' + encodeURIComponent(id) + '/ewaybill'" in js
