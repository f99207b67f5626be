"""OCR engines for the waybill reader, behind one small interface.

* ``tesseract`` (pytesseract, the default install): one ``tesseract`` process per call, so the
  line crops of one photo are stacked into a single image and read in one call (psm 6): the
  ~100 ms process start is paid once per photo, not once per line.
* ``tesserocr`` (optional extra ``scanedge[tesserocr]``): the Tesseract C++ API in-process; each
  crop is read as one line (psm 7) in a few milliseconds.
* ``rapidocr`` (optional extra ``scanedge[rapidocr]``): PaddleOCR models on ONNX Runtime, shipped
  inside the wheel. Slower, but it reads Chinese carrier names and hard photos far better.

``engine("auto")`` takes tesserocr when it is installed, else pytesseract. Every engine returns
:class:`TextRead` (text and a 0..1 confidence) per crop, and plain text for a header crop.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import cv2
import numpy as np

# Tracking numbers are digits and capitals; telling Tesseract so removes most confusions.
NUMBER_WHITELIST = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ENGINE_NAMES = ("auto", "tesseract", "tesserocr", "rapidocr")


class EngineUnavailable(RuntimeError):
    """The named OCR engine is not installed here."""


@dataclass(frozen=True)
class TextRead:
    text: str
    confidence: float  # 0..1, the engine's own


class TextEngine(Protocol):
    name: str

    def read_lines(self, crops: Sequence[np.ndarray]) -> list[TextRead]:
        """One read per crop (gray, one text line each, glyphs ~30-40 px tall)."""
        ...

    def read_text(self, image: np.ndarray) -> str:
        """Free text (Chinese and English) of a small region such as a label header."""
        ...


def _stack(crops: Sequence[np.ndarray], gap: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Crops one under another on white, with their y ranges in the stacked image."""
    width = max(c.shape[1] for c in crops) + 2 * gap
    height = sum(c.shape[0] for c in crops) + gap * (len(crops) + 1)
    out = np.full((height, width), 255, np.uint8)
    spans = []
    y = gap
    for c in crops:
        out[y : y + c.shape[0], gap : gap + c.shape[1]] = c
        spans.append((y, y + c.shape[0]))
        y += c.shape[0] + gap
    return out, spans


class PytesseractEngine:
    name = "tesseract"

    def __init__(self) -> None:
        import pytesseract

        self._tess = pytesseract

    def read_lines(self, crops: Sequence[np.ndarray]) -> list[TextRead]:
        if not crops:
            return []
        stacked, spans = _stack(crops, gap=max(24, max(c.shape[0] for c in crops) // 2))
        data = self._tess.image_to_data(
            stacked,
            config=f"--psm 6 -c tessedit_char_whitelist={NUMBER_WHITELIST}",
            output_type=self._tess.Output.DICT,
        )
        words: list[list[tuple[int, str, float]]] = [[] for _ in crops]
        for text, left, top, h, conf in zip(
            data["text"], data["left"], data["top"], data["height"], data["conf"], strict=True
        ):
            text = text.strip()
            if not text:
                continue
            cy = top + h / 2
            for i, (y0, y1) in enumerate(spans):
                if y0 - 4 <= cy <= y1 + 4:
                    words[i].append((left, text, max(0.0, float(conf)) / 100))
                    break
        out = []
        for ws in words:
            ws.sort()
            out.append(TextRead(" ".join(w[1] for w in ws), min((w[2] for w in ws), default=0.0)))
        return out

    def read_text(self, image: np.ndarray) -> str:
        # psm 11 (sparse text): a header is a few words between frames and logos.
        return self._tess.image_to_string(image, lang=_header_langs(), config="--psm 11")


@cache
def _header_langs() -> str:
    """chi_sim+eng when the Chinese model is installed (scripts/setup.sh installs it)."""
    return "chi_sim+eng" if "chi_sim" in _tess_languages() else "eng"


@cache
def _tess_languages() -> frozenset[str]:
    exe = shutil.which("tesseract")
    if not exe:
        return frozenset()
    try:
        out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    return frozenset(line.strip() for line in out.stdout.splitlines()[1:] if line.strip())


@cache
def tessdata_dir() -> str | None:
    """Where the system's traineddata files are (tesserocr's wheel has its own default)."""
    candidates = [os.environ.get("TESSDATA_PREFIX", "")]
    exe = shutil.which("tesseract")
    if exe:
        try:
            out = subprocess.run([exe, "--list-langs"], capture_output=True, text=True, timeout=10)
            first = (out.stdout.splitlines() or [""])[0]
            if '"' in first:
                candidates.append(first.split('"')[1])
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += [
        "/usr/share/tesseract-ocr/5/tessdata", "/usr/share/tesseract-ocr/4.00/tessdata",
        "/usr/share/tessdata", "/usr/local/share/tessdata",
    ]
    for d in candidates:
        if d and os.path.isfile(os.path.join(d, "eng.traineddata")):
            return d.rstrip("/") + "/"
    return None


class TesserocrEngine:
    name = "tesserocr"

    def __init__(self) -> None:
        import tesserocr

        self._mod = tesserocr
        self._local = threading.local()  # a TessBaseAPI is not thread-safe

    def _api(self, kind: str):
        api = getattr(self._local, kind, None)
        if api is None:
            t = self._mod
            path = tessdata_dir() or ""
            if kind == "line":
                api = t.PyTessBaseAPI(path=path, lang="eng", psm=t.PSM.SINGLE_LINE)
                api.SetVariable("tessedit_char_whitelist", NUMBER_WHITELIST)
            else:
                langs = "chi_sim+eng" if os.path.isfile(path + "chi_sim.traineddata") else "eng"
                api = t.PyTessBaseAPI(path=path, lang=langs, psm=t.PSM.SPARSE_TEXT)
            setattr(self._local, kind, api)
        return api

    def read_lines(self, crops: Sequence[np.ndarray]) -> list[TextRead]:
        from PIL import Image

        api = self._api("line")
        out = []
        for c in crops:
            api.SetImage(Image.fromarray(c))
            text = api.GetUTF8Text().strip()
            confs = [w for w in api.AllWordConfidences() if w >= 0]
            out.append(TextRead(text, min(confs, default=0) / 100))
        return out

    def read_text(self, image: np.ndarray) -> str:
        from PIL import Image

        api = self._api("block")
        api.SetImage(Image.fromarray(image))
        return api.GetUTF8Text()


class RapidOcrEngine:
    name = "rapidocr"

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self._ocr = RapidOCR()
        self._lock = threading.Lock()

    def read_lines(self, crops: Sequence[np.ndarray]) -> list[TextRead]:
        out = []
        for c in crops:
            bgr = cv2.cvtColor(c, cv2.COLOR_GRAY2BGR) if c.ndim == 2 else c
            with self._lock:
                res, _ = self._ocr(bgr, use_det=False, use_cls=False, use_rec=True)
            if res:
                text, score = res[0][0], float(res[0][1])
                out.append(TextRead(text.upper(), score))
            else:
                out.append(TextRead("", 0.0))
        return out

    def read_text(self, image: np.ndarray) -> str:
        bgr = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
        with self._lock:
            res, _ = self._ocr(bgr)
        return "\n".join(r[1] for r in res or ())


def installed(name: str) -> bool:
    module = {"tesseract": "pytesseract", "tesserocr": "tesserocr",
              "rapidocr": "rapidocr_onnxruntime"}[name]
    return importlib.util.find_spec(module) is not None


_engines: dict[str, TextEngine] = {}
_engines_lock = threading.Lock()


def engine(name: str = "auto") -> TextEngine:
    """The engine called ``name`` (one of ENGINE_NAMES), created once per process."""
    if name not in ENGINE_NAMES:
        raise ValueError(f"unknown OCR engine {name!r}: one of {', '.join(ENGINE_NAMES)}")
    if name == "auto":
        name = "tesserocr" if installed("tesserocr") and tessdata_dir() else "tesseract"
    with _engines_lock:
        if name not in _engines:
            if not installed(name):
                raise EngineUnavailable(f"OCR engine {name!r} is not installed")
            cls = {"tesseract": PytesseractEngine, "tesserocr": TesserocrEngine,
                   "rapidocr": RapidOcrEngine}[name]
            _engines[name] = cls()
        return _engines[name]
