"""The CJK TrueType font labels are drawn with.

Labels carry Chinese (gift lines, "补打"), "×" and full-width punctuation. The printer's own text
mode (GB18030 code pages) garbles several of these on common printers, so every character is
drawn into the raster image with one TrueType font that covers CJK.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

from PIL import ImageFont

CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)
PROBE = "含赠品×"


class FontError(RuntimeError):
    """No usable CJK font: the message says what to install."""


def _covers_cjk(path: str) -> bool:
    try:
        font = ImageFont.truetype(path, 24)
    except OSError:
        return False
    # A font without the glyphs draws the same "missing" box for all of them.
    masks = {bytes(font.getmask(ch)) for ch in PROBE}
    return len(masks) == len(PROBE) and all(m.strip(b"\x00") for m in masks)


def _fc_match() -> str | None:
    if shutil.which("fc-match") is None:
        return None
    try:
        out = subprocess.run(
            ["fc-match", "-f", "%{file}", ":lang=zh-cn"],
            capture_output=True, text=True, timeout=5, check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out or None


@functools.cache
def find_cjk_font(preferred: str = "") -> str:
    """Path of a font that draws Chinese; :class:`FontError` naming what to install if none.

    ``preferred`` (the ``label_font`` setting) is tried first.
    """
    tried: list[str] = []
    paths = [preferred] if preferred else []
    paths += [p for p in CANDIDATES if Path(p).is_file()]
    matched = _fc_match()
    if matched:
        paths.append(matched)
    for path in paths:
        tried.append(path)
        if Path(path).is_file() and _covers_cjk(path):
            return path
    raise FontError(
        "no CJK TrueType font found for labels (install fonts-wqy-microhei, or set "
        f"label_font = '/path/to/font.ttc'); tried: {', '.join(tried) or 'nothing found'}"
    )


@functools.lru_cache(maxsize=64)
def font(size: int, preferred: str = "") -> ImageFont.FreeTypeFont:
    """The label font at ``size`` dots (cached: loading a .ttc costs milliseconds)."""
    return ImageFont.truetype(find_cjk_font(preferred), size)
