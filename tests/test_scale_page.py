"""The bench's weight panel (docs/scale.md): served in Chinese and English with every word in the
catalogue (fast), and at work in real Chromium against a real edge and a virtual scale on TCP:
expected vs measured while the parcel is on the scale, the label refused outside the tolerance
with the words and the supervisor's override offered, then printed once the weight fits (slow)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scanedge.edge.web.pages import catalogue

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "edge" / "static" / "bench.js"
TEMPLATE = ROOT / "edge" / "templates" / "bench.html"
MUG = "6901234567021"


def weight_keys() -> set[str]:
    text = SCRIPT.read_text(encoding="utf-8") + TEMPLATE.read_text(encoding="utf-8")
    keys = set(re.findall(r"\b(weight_[a-z_]+)\b", text)) - {"weight_kg", "weight_off", "weight_missing"}
    # t('weight_state_' + s.state): every state the scale can be in without a weight
    return keys - {"weight_state_"} | {f"weight_state_{s}" for s in
                                       ("overload", "underload", "error", "disconnected")}


def test_every_word_of_the_weight_panel_is_in_the_catalogue_in_chinese_and_english() -> None:
    words = catalogue()
    keys = weight_keys()
    assert {"weight_title", "weight_measured", "weight_expected", "weight_moving"} <= keys
    for lang in ("zh", "en"):
        missing = sorted(k for k in keys if k not in words[lang])
        assert not missing, f"{lang}: {missing}"
    chinese = [k for k in keys if re.search(r"[\u4e00-\u9fff]", words["en"][k])]
    assert not chinese, chinese


def test_the_bench_has_the_weight_panel_hidden_until_a_scale_answers(client) -> None:
    html = client.get("/bench").get_data(as_text=True)
    assert re.search(r'<section[^>]*id="weight-card"[^>]*hidden', html)
    assert ">称重</h2>" in html
    assert ">Weight</h2>" in client.get("/bench?lang=en").get_data(as_text=True)


@pytest.mark.slow
def test_the_bench_weighs_refuses_and_prints_in_chromium(tmp_path) -> None:
    from scanedge.edge.scale_sim import VirtualScale
    from tests.support import EdgeServer, run_cli, wait_until
    from tests.test_pages_browser import (
        PrinterSim,
        chromium,
        get_json,
        js_until,
        open_page,
        scan,
        shot,
    )

    data = tmp_path / "var"
    run_cli("orders", "import", "--demo", data_dir=data)
    printer = PrinterSim(data)
    with VirtualScale(weight_kg=1.234, interval=0.05) as scale:
        edge = EdgeServer(data, SCANEDGE_PRINTER=printer.address, SCANEDGE_SCALE=scale.address).start()
        try:
            with chromium() as browser:
                open_page(browser, edge, "/bench")
                js_until(browser, "return !document.getElementById('weight-card').hidden",
                         timeout=10, what="the weight panel")
                js_until(browser, "return document.getElementById('weight-measured').textContent"
                                  " === '1.234 kg'", timeout=10, what="the weight on the scale")
                for code in ("SO-1004", MUG, MUG):
                    scan(browser, code)
                js_until(browser, "return document.getElementById('weight-expected').textContent"
                                  " === '0.700 kg ±0.050 kg'", timeout=10, what="the expected weight")
                js_until(browser, "const c = document.getElementById('weight-check');"
                                  " return c.dataset.passes === 'false' && c.textContent.includes('偏重')",
                         timeout=10, what="the verdict before printing")
                js_until(browser, "return !document.getElementById('print-btn').disabled", timeout=10,
                         what="the order packed")
                assert get_json(edge, "/api/v1/scale?order_id=SO-1004")["check"]["verdict"] == "too_heavy"
                before = printer.labels
                browser.find_element("id", "print-btn").click()
                js_until(browser, "return document.getElementById('print-why').textContent"
                                  ".includes('重量不符')", timeout=10, what="the refusal's words")
                # open mode: the local person is an admin, who may override (with a reason)
                assert browser.find_element("id", "override-btn").is_displayed()
                shot(browser, "bench-weight-refused-360x640")
                scale.set_mode("unstable")
                js_until(browser, "return document.getElementById('weight-measured').textContent"
                                  ".includes('读数不稳')", timeout=10, what="a parcel being put down")
                scale.set_mode("ok")
                scale.set_weight(0.72)
                js_until(browser, "const c = document.getElementById('weight-check');"
                                  " return c.dataset.passes === 'true' && c.textContent.includes('0.720')",
                         timeout=10, what="the weight fits")
                browser.find_element("id", "print-btn").click()
                wait_until(lambda: printer.labels == before + 1, timeout=15, what="the label printed")
                js_until(browser, "return document.getElementById('print-why').hidden", timeout=10)
                shot(browser, "bench-weight-printed-360x640")
                scale.set_mode("disconnect")
                js_until(browser, "return document.getElementById('weight-measured').textContent"
                                  " === '秤未连接'", timeout=10, what="the cable pulled")
        finally:
            edge.kill()
            printer.stop()
