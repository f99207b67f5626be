"""The bench's pack-video card (edge/static/evidence.js) without a browser: served in Chinese and
English, every word it can show in the catalogue in both languages. At work in real Chromium
with a fake camera: tests/test_evidence_browser.py (slow)."""

from __future__ import annotations

import re
from pathlib import Path

from scanedge.edge.web.pages import catalogue

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "edge" / "static" / "evidence.js"
TEMPLATE = ROOT / "edge" / "templates" / "bench.html"


def test_every_word_of_the_pack_video_card_is_in_the_catalogue_in_both_languages() -> None:
    words = catalogue()
    text = SCRIPT.read_text(encoding="utf-8") + TEMPLATE.read_text(encoding="utf-8")
    keys = set(re.findall(r"\b(ev_[a-z_]+)\b", text)) - {"ev_err_"} | {
        "evidence_title", "err_clip_too_short", "err_bad_evidence", "ev_err_too_large"}
    assert {"ev_record", "ev_stop", "ev_recording_short", "ev_policy_video", "ev_saved"} <= keys
    for lang in ("zh", "en"):
        missing = sorted(k for k in keys if k not in words[lang])
        assert not missing, f"{lang}: {missing}"
    chinese = [k for k in keys if re.search(r"[\u4e00-\u9fff]", words["en"][k])]
    assert not chinese, chinese
    for lang in ("zh", "en"):  # the placeholders the script fills
        assert "{s}" in words[lang]["ev_policy_video"] and "{min}" in words[lang]["ev_recording_short"]
        assert "{min_s}" in words[lang]["err_clip_too_short"]


def test_the_bench_has_the_pack_video_card_in_chinese_and_english(client) -> None:
    html = client.get("/bench").get_data(as_text=True)
    assert 'id="evidence-card"' in html and ">开始录制装箱视频</button>" in html
    assert html.index("evidence.js") < html.index("bench.js")  # bench.js asks it what is missing
    english = client.get("/bench?lang=en").get_data(as_text=True)
    assert ">Record the packing</button>" in english and "Choose a video or photo" in english
    assert client.get("/static/evidence.js").status_code == 200
