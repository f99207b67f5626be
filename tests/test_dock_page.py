"""The dock page /dock without a browser: served in Chinese and English, in the menu, and every
word it can show is in the catalogue in both languages. The page at work, in real Chromium against
a real edge and hub: tests/test_dock_e2e.py (slow)."""

from __future__ import annotations

import re
from pathlib import Path

from scanedge.edge.domain.dock import REFUSAL_CODE, DockVerdict
from scanedge.edge.web.pages import catalogue

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "edge" / "templates" / "dock.html"
SCRIPT = ROOT / "edge" / "static" / "dock.js"

# Words the script builds from a prefix and a value: every value it can meet needs its word.
REFUSALS = (*REFUSAL_CODE.values(), "batch_closed", "batch_unknown", "frozen_in_batch")
FAMILIES = {
    "dock_word_": (*(v.value for v in DockVerdict), "refused", "removed", "loaded"),
    "err_": REFUSALS,
    "dock_refused_": (*REFUSAL_CODE.values(), "batch_closed"),
    "job_": ("queued", "sending", "printed", "failed", "cancelled", "needs_confirmation"),
}


def used_keys() -> set[str]:
    html = TEMPLATE.read_text(encoding="utf-8")
    js = SCRIPT.read_text(encoding="utf-8")
    keys = set(re.findall(r"\bt\.([a-z_0-9]+)", html))
    keys |= set(re.findall(r"\bt\('([a-z_0-9]+)'[,)]", js))
    keys |= {k for k in re.findall(r"'(dock_[a-z_]+)'", js) if not k.endswith("_")}
    keys |= {prefix + value for prefix, values in FAMILIES.items() for value in values}
    return keys


def test_every_word_of_the_dock_page_is_in_the_catalogue_in_chinese_and_english() -> None:
    words = catalogue()
    keys = used_keys()
    assert len(keys) > 60  # the parse found the page's words, not nothing
    for lang in ("zh", "en"):
        missing = sorted(k for k in keys if k not in words[lang])
        assert not missing, f"{lang}: {missing}"
    chinese = [k for k in keys if re.search(r"[\u4e00-\u9fff]", words["en"][k])]
    assert not chinese, chinese


def test_the_dock_page_is_served_in_chinese_by_default_and_in_english_on_request(client) -> None:
    page = client.get("/dock?station=dock-1")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<title>装车交接" in html and 'id="scan-input"' in html and "装车完成" in html
    assert '<option value="SF">SF · 顺丰速运' in html or '<option value="SF">SF · ' in html
    assert re.search(r'src="/static/dock\.js\?v=[0-9a-f]{12}"', html)
    english = client.get("/dock?lang=en").get_data(as_text=True)
    assert "<title>Dock" in english and "Loading done" in english and "Mixed" in english


def test_the_menu_offers_the_dock_page(client) -> None:
    html = client.get("/?lang=zh").get_data(as_text=True)
    assert 'id="menu-dock"' in html and 'href="/dock' in html and "装车交接" in html
