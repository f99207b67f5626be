"""The bench's parcels card without a browser: every word parcels.js and the card use is in the
catalogue in Chinese and English, the bench serves the card and the script. The card at work in
real Chromium: tests/test_parcels_browser.py (slow)."""

from __future__ import annotations

import re
from pathlib import Path

from scanedge.edge.web.pages import catalogue

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "edge" / "static" / "parcels.js"
TEMPLATE = ROOT / "edge" / "templates" / "bench.html"
# the problems a parcel's label waits for come from the edge in both languages; the refusals
# the bench can meet are words of the catalogue
REFUSALS = ("err_order_split", "err_bad_split", "err_not_split")


def used_keys() -> set[str]:
    js = SCRIPT.read_text(encoding="utf-8")
    html = TEMPLATE.read_text(encoding="utf-8")
    keys = set(re.findall(r"\bt\('([a-z_0-9]+)'[,)]", js))
    keys |= {k for k in re.findall(r"\bt\.([a-z_0-9]+)", html) if k.startswith("parcels_")}
    return keys | set(REFUSALS)


def test_every_word_of_the_parcels_card_is_in_the_catalogue_in_chinese_and_english() -> None:
    words, keys = catalogue(), used_keys()
    assert len(keys) > 15  # the parse found the card's words
    for lang in ("zh", "en"):
        missing = sorted(k for k in keys if k not in words[lang])
        assert not missing, f"{lang}: {missing}"
    chinese = [k for k in keys if re.search(r"[\u4e00-\u9fff]", words["en"][k])]
    assert not chinese, chinese


def test_the_bench_serves_the_parcels_card_in_both_languages(client) -> None:
    html = client.get("/bench?lang=zh").get_data(as_text=True)
    assert 'id="parcels-card"' in html and "分包(一单多件)" in html
    assert re.search(r'src="/static/parcels\.js\?v=[0-9a-f]{12}"', html)
    assert "Parcels (one order, several boxes)" in client.get("/bench?lang=en").get_data(
        as_text=True)
