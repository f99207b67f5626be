"""OCR engines for the waybill reader, behind one small interface.

* ``rapidocr`` (the default install, scripts/setup.sh; ``auto`` takes it when installed):
  PaddleOCR models (PP-OCRv4) on ONNX Runtime, shipped inside the ``rapidocr-onnxruntime``
  wheel. It reads blurred digits and Chinese carrier names far better than Tesseract, reads
  line crops in batches, and can also find and read every line of a page itself
  (:meth:`RapidOcrEngine.read_page`), which the reader uses when the located runs were not
  enough.
* ``tesserocr`` (optional extra ``scanedge[tesserocr]``): the Tesseract C++ API in-process; each
  crop is read as one line (psm 7) in a few milliseconds.
* ``tesseract`` (pytesseract, the fallback when rapidocr is absent): one ``tesseract`` process
  per call, so the line crops of one photo are stacked into a single image and read in one call
  (psm 6): the ~100 ms process start is paid once per photo, not once per line.

Every engine returns :class:`TextRead` (text and a 0..1 confidence) per crop, and plain text for
a header crop.
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


def one_thread_per_tesseract() -> None:
    """Tesseract with one OpenMP thread, unless the operator set ``OMP_THREAD_LIMIT``.

    With its default threads a page read took 1.86-1.91 s of wall time on 2 cores against 0.62 s
    with one (and 2.1 s of CPU against 0.6 s): the threads spin-wait on each other and on the
    service's own work (docs/benchmarks.md, "Waybill capture"). The tesseract process inherits
    the variable; libtesseract in-process (tesserocr) reads it when OpenMP loads, on import.
    """
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")


class PytesseractEngine:
    name = "tesseract"

    def __init__(self) -> None:
        one_thread_per_tesseract()
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
        one_thread_per_tesseract()
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


@dataclass(frozen=True)
class PageLine:
    """One text line found and read on a whole page (engines that detect text themselves)."""

    text: str
    confidence: float  # 0..1, the engine's own
    quad: tuple[tuple[float, float], ...]  # corners in the pixels of the image that was read
    turned: bool = False  # the line was upside down (turned by half a turn before reading)


class RapidOcrEngine:
    """PaddleOCR (PP-OCRv4 detection + recognition, mobile angle classifier) on ONNX Runtime.

    The models ship inside the ``rapidocr-onnxruntime`` wheel: nothing is downloaded at run
    time. Its own pipeline is called step by step (detect, cut, classify, recognize) so that
    crops are recognized in batches and the page is detected at a size we choose.
    """

    name = "rapidocr"
    PAGE_MAX_SIDE = 1024  # detection size of a whole label: 13-px glyphs still found, ~0.3 s

    def __init__(self) -> None:
        from rapidocr_onnxruntime import RapidOCR

        # limit_type "max": never upscale (the default "min" blows a 700x150 header up to
        # 3400x736 before detecting).
        self._ocr = RapidOCR(det_limit_type="max", det_limit_side_len=self.PAGE_MAX_SIDE,
                             print_verbose=False)
        self._lock = threading.Lock()  # the detector's post-processing keeps state

    @staticmethod
    def _bgr(image: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image

    def read_lines(self, crops: Sequence[np.ndarray]) -> list[TextRead]:
        if not crops:
            return []
        with self._lock:
            res, _ = self._ocr.text_rec([self._bgr(c) for c in crops])
        return [TextRead(str(text).upper(), float(score)) for text, score, *_ in res]

    def read_page(self, image: np.ndarray, max_side: int | None = None) -> list[PageLine]:
        """Every text line of ``image``: detected, turned upright when upside down, read."""
        limit = max_side or self.PAGE_MAX_SIDE
        s = min(1.0, limit / max(image.shape[:2]))
        img = self._bgr(image)
        if s < 1.0:
            img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        with self._lock:
            boxes, _ = self._ocr.text_det(img)
            if boxes is None or len(boxes) == 0:
                return []
            boxes = self._ocr.sorted_boxes(boxes)
            crops = self._ocr.get_crop_img_list(img, boxes)
            crops, turns, _ = self._ocr.text_cls(crops)
            res, _ = self._ocr.text_rec(crops)
        out = []
        for box, turn, (text, score, *_) in zip(boxes, turns, res, strict=True):
            if not str(text).strip():
                continue
            quad = tuple((float(x) / s, float(y) / s) for x, y in np.asarray(box))
            out.append(PageLine(str(text), float(score), quad, turned=str(turn[0]) == "180"))
        return out

    def read_text(self, image: np.ndarray) -> str:
        return "\n".join(line.text for line in self.read_page(image))


def auto_name() -> str:
    """What ``auto`` means here: the best engine installed (docs/benchmarks.md, "Waybill
    capture"): rapidocr (the default install), else tesserocr, else pytesseract."""
    if installed("rapidocr"):
        return "rapidocr"
    return "tesserocr" if installed("tesserocr") and tessdata_dir() else "tesseract"


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
        name = auto_name()
    with _engines_lock:
        if name not in _engines:
            if not installed(name):
                raise EngineUnavailable(f"OCR engine {name!r} is not installed")
            cls = {"tesseract": PytesseractEngine, "tesserocr": TesserocrEngine,
                   "rapidocr": RapidOcrEngine}[name]
            _engines[name] = cls()
        return _engines[name]
