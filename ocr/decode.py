"""Read every barcode in a photo: a cascade of readers, validated, planned from the image.

The cascade (steps and order chosen by measurement on the dev set: docs/decode.md,
``benchmarks/decode.py``):

1. ``fast``: zxing-cpp on the whole image. Small images (up to 1.2 MP) get all of zxing-cpp's
   own tries (90° turns, inversion, downscaling); bigger ones a cheap pass (no turns or
   inversion). zxing-cpp also reports symbols it saw but could not decode: those places become
   *regions* for the later steps. Photos are read at most 4096 px on their longer side
   (``WORK_MAX_SIDE``); bigger ones are reduced while they are decoded (``ocr.images``).
2. ``zbar``: the second library, on the whole image (small images) or on the regions; on a
   big image without any region (nothing seen, nothing located), on the whole image reduced to
   at most 2.5 MP.
3. ``locate1d``: OpenCV's 1D-barcode locator; each located code is cut out, turned horizontal,
   scaled up and read by both libraries.
4. ``deskew``, ``tilt±30``: one turn by the dominant edge direction, then ±30°, cheap zxing-cpp
   passes: tilted PDF417 and 1D codes (zxing-cpp only tries 90° turns). These run without a
   sign of a code (a tilted PDF417 leaves none).
5. only where something looks like a code (an undecodable symbol or a located 1D code; the
   whole image when it is small): ``clahe`` (both libraries), ``sharpen``, ``up1.5``,
   ``otsu``, ``global-histogram``, ``rot±15``, ``rot±45`` (zxing-cpp only: zbar misreads
   turned and re-binarised images measurably more often).

The cascade stops at the first step that produced a valid symbol (after one ``closer`` look,
both libraries on an enlarged crop, at symbols zxing-cpp saw but nothing decoded; or never,
with ``exhaustive``).

**Which steps run is decided from the image alone**: its size, and what the earlier steps found.
Each step has an estimated cost (``COSTS``: ms per call and per megapixel, measured on the dev
box) and a decode plans steps, in order, while their estimates add up to at most ``PLAN_MS``.
The same photo therefore takes the same steps, and reads the same, on a Raspberry Pi, on a
loaded machine and in the tests. The time budget (``budget_ms``) is only a safety net: past it,
no further step starts (``report.cut_short``); ``budget_ms=None`` (or 0) turns it off.

Every read is validated (:mod:`ocr.validate`). Weak reads (no check digit in the symbology)
need the other library to agree; two reads of one place that disagree are both rejected and
listed in :attr:`DecodeReport.rejected`: a miss is better than a wrong read.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from scanedge.ocr.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, Pending, open_image
from scanedge.ocr.memory import image_job
from scanedge.ocr.readers import Read, View, bbox, identity_view, read_zbar, read_zxing
from scanedge.ocr.symbols import Rejected, Symbol, family, is_linear
from scanedge.ocr.validate import validate

log = logging.getLogger(__name__)

DEFAULT_BUDGET_MS = 300  # the setting decode_budget_ms; the library's own default is None
SMALL_IMAGE_PIXELS = 1_200_000  # up to here the whole image is cheap enough for every step
WORK_MAX_SIDE = 4096  # photos are read at most this long ...
WORK_MAX_PIXELS = 4096 * 3072  # ... and this big: a 12 MP phone photo at full size
ZBAR_WHOLE_MAX_PIXELS = 2_500_000  # zbar on a whole big image: reduced to this first
MAX_REGIONS = 6

# Estimated cost of one call, ms = fixed + per_mp * megapixels, measured on the 2-core dev box
# on cluttered images (the slow case: a clean image is several times faster). Only used to
# plan: a decode runs the steps, in order, whose estimates add up to at most PLAN_MS.
COSTS: dict[str, tuple[float, float]] = {
    "zxing": (2.0, 60.0),
    "zxing_cheap": (1.0, 8.0),
    "zbar": (1.5, 80.0),
    "locate": (4.0, 1.5),  # OpenCV shrinks big images itself
}
PLAN_MS = 400.0
# Memory of a decode besides the working image itself, per working pixel: zxing-cpp's pass
# over the whole image holds up to ~7.6 bytes a pixel on noise (2 on a photo); and fixed: zbar
# on at most 2.5 MP, the views of the fallback steps (crops of at most 1 MP, turned or scaled).
# Measured in benchmarks/image_memory.py.
WORK_BYTES_PER_PIXEL = 8.0
WORK_FIXED_BYTES = 24 * 1024 * 1024


@dataclass(frozen=True)
class _Fallback:
    """One fallback step: how to prepare the image, and how to read it."""

    name: str
    make: Callable[[np.ndarray], View | None] | None  # None: the region as it is
    zbar: bool = False  # also ask zbar (not on rotated or binarised images: it misreads more)
    binarizer: str = "LocalAverage"
    cheap: bool = False  # zxing-cpp without its own rotations, inversion and downscaling
    needs_evidence: bool = True
    grows: float = 1.0  # pixels of the prepared image / pixels of the region


def _rot(deg: float) -> Callable[[np.ndarray], View]:
    def make(g: np.ndarray) -> View:
        from scanedge.ocr.views import rotated

        return rotated(g, deg)

    return make


def _deskew(g: np.ndarray) -> View | None:
    from scanedge.ocr.views import dominant_angle, rotated

    angle = dominant_angle(g)
    if angle is None or abs(angle) < 4.0 or abs(angle) > 86.0:
        return None  # upright or at 90 degrees: zxing-cpp has tried that already
    return rotated(g, angle, "deskew")


def _prep(name: str) -> Callable[[np.ndarray], View]:
    def make(g: np.ndarray) -> View:
        from scanedge.ocr import views

        if name == "up1.5":
            return views.scaled(g, 1.5, name)
        return getattr(views, name)(g)

    return make


# In order of (codes rescued on the dev set) / (time), see docs/decode.md.
FALLBACKS: tuple[_Fallback, ...] = (
    _Fallback("deskew", _deskew, needs_evidence=False, grows=1.6),
    _Fallback("tilt+30", _rot(30), binarizer="GlobalHistogram", cheap=True,
              needs_evidence=False, grows=1.9),
    _Fallback("tilt-30", _rot(-30), binarizer="GlobalHistogram", cheap=True,
              needs_evidence=False, grows=1.9),
    _Fallback("clahe", _prep("clahe"), zbar=True),
    _Fallback("sharpen", _prep("sharpen")),
    _Fallback("up1.5", _prep("up1.5"), grows=2.25),
    _Fallback("otsu", _prep("otsu")),
    _Fallback("global-histogram", None, binarizer="GlobalHistogram"),
    _Fallback("rot+15", _rot(15), grows=1.6),
    _Fallback("rot-15", _rot(-15), grows=1.6),
    _Fallback("rot+45", _rot(45), grows=2.0),
    _Fallback("rot-45", _rot(-45), grows=2.0),
)


@dataclass
class DecodeReport:
    """Everything a decode did: the accepted symbols and what was rejected, and why."""

    symbols: list[Symbol] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)  # the steps that ran, in order
    skipped_by_plan: list[str] = field(default_factory=list)  # estimates beyond PLAN_MS
    skipped_for_budget: list[str] = field(default_factory=list)  # the safety net stopped them
    cut_short: bool = False  # the time budget ran out: a slower run than planned
    elapsed_ms: float = 0.0  # from the call: waiting for memory, reading the image, the cascade
    waited_ms: float = 0.0
    load_ms: float = 0.0
    width: int = 0  # of the image as read (at most WORK_MAX_SIDE a side)
    height: int = 0


def decode(
    image: str | os.PathLike | bytes | np.ndarray,
    *,
    budget_ms: float | None = None,
    exhaustive: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[Symbol]:
    """Decode every barcode in ``image`` (a path, encoded bytes or a BGR/gray array).

    Returns the validated symbols (possibly none). ``budget_ms`` is a safety net, off by default
    (the library reads the same everywhere; the service and the CLI set it from the setting
    ``decode_budget_ms``, DEFAULT_BUDGET_MS): past it no further step starts. ``exhaustive``
    keeps going after the first step that found something (slower; finds more codes in crowded
    frames). Raises
    :class:`ocr.images.ImageError` for input that is not an image (or too big to decode within
    ``image_memory_mb``: ``ocr.memory``).
    """
    return decode_report(image, budget_ms=budget_ms, exhaustive=exhaustive,
                         max_bytes=max_bytes, max_pixels=max_pixels).symbols


def job_bytes(pending: Pending) -> int:
    """Estimated peak memory of decoding ``pending`` (reserved in ``ocr.memory``): reading it,
    then the cascade on the working image (one after the other)."""
    w, h = pending.out_size(WORK_MAX_SIDE, WORK_MAX_PIXELS)
    load = pending.cost(grayscale=True, max_side=WORK_MAX_SIDE, max_area=WORK_MAX_PIXELS)
    work = int(w * h * (1 + WORK_BYTES_PER_PIXEL)) + WORK_FIXED_BYTES
    return max(load, work)


def load_working_image(pending: Pending) -> np.ndarray:
    """The gray image the cascade reads (and the waybill reader starts from)."""
    return pending.load(grayscale=True, max_side=WORK_MAX_SIDE, max_area=WORK_MAX_PIXELS)


def decode_report(
    image: str | os.PathLike | bytes | np.ndarray,
    *,
    budget_ms: float | None = None,
    exhaustive: bool = False,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> DecodeReport:
    """Like :func:`decode`, with the rejected reads, the steps run and the time taken."""
    start = time.perf_counter()
    pending = open_image(image, max_bytes=max_bytes, max_pixels=max_pixels)
    with image_job(job_bytes(pending), "this image"):
        admitted = time.perf_counter()
        gray = load_working_image(pending)
        loaded = time.perf_counter()
        # The budget is the cascade's: reading the pixels is bounded by their number (a 40 MP
        # PNG takes ~1 s here), waiting for memory by the other jobs.
        report = decode_loaded(gray, budget_ms=budget_ms, exhaustive=exhaustive, start=loaded)
    report.waited_ms = (admitted - start) * 1000.0
    report.load_ms = (loaded - admitted) * 1000.0
    report.elapsed_ms = (time.perf_counter() - start) * 1000.0
    return report


def decode_loaded(gray: np.ndarray, *, budget_ms: float | None = None,
                  exhaustive: bool = False, start: float | None = None) -> DecodeReport:
    """The cascade on a gray image already loaded (and reserved for) by the caller."""
    start = time.perf_counter() if start is None else start
    cascade = _Cascade(gray, start=start, budget_ms=budget_ms, exhaustive=exhaustive)
    cascade.run()
    cascade.report.elapsed_ms = (time.perf_counter() - start) * 1000.0
    return cascade.report


# --------------------------------------------------------------------------------------------


@dataclass
class _Candidate:
    read: Read
    strong: bool
    gs1: bool
    gs1_data: object
    gs1_error: str
    confirmations: set[str] = field(default_factory=set)  # readers/steps that agreed
    asked_other: bool = False  # the other library was run on this place


class _Cascade:
    def __init__(self, gray: np.ndarray, *, start: float, budget_ms: float | None,
                 exhaustive: bool):
        self.gray = gray
        self.deadline = start + budget_ms / 1000.0 if budget_ms else None
        self.planned_ms = 0.0
        self.exhaustive = exhaustive
        self.report = DecodeReport(height=gray.shape[0], width=gray.shape[1])
        self.small = gray.size <= SMALL_IMAGE_PIXELS
        self.work = identity_view(gray, "fast")
        self.accepted: list[_Candidate] = []
        self.pending: list[_Candidate] = []  # valid but weak: waiting for a second read
        self.conflicted: list[Read] = []  # places where two reads disagreed
        self.error_regions: list[tuple] = []  # zxing-cpp: "a symbol is here, could not decode"
        self._located: list | None = None
        self._looked_closer = False

    # -- the plan (deterministic) and the safety net (the clock) -------------------------------

    @staticmethod
    def _estimate(kind: str, pixels: float, calls: int = 1) -> float:
        fixed, per_mp = COSTS[kind]
        return fixed * calls + per_mp * pixels / 1e6

    def _plan(self, name: str, kind: str, pixels: float, calls: int = 1, *,
              always: bool = False) -> bool:
        """May step ``name`` run? Its estimate must fit in what is left of PLAN_MS (unless
        ``always``), and the time budget must not have run out."""
        if self._out_of_time():
            self.report.skipped_for_budget.append(name)
            return False
        cost = self._estimate(kind, pixels, calls)
        if not always and self.planned_ms + cost > PLAN_MS:
            self.report.skipped_by_plan.append(name)
            return False
        self.planned_ms += cost
        return True

    def _out_of_time(self) -> bool:
        if self.deadline is not None and time.perf_counter() > self.deadline:
            self.report.cut_short = True
            return True
        return False

    # -- the cascade ----------------------------------------------------------------------------

    def run(self) -> None:
        from scanedge.ocr import views

        gray, work = self.gray, self.work
        # 1. fast path: always runs (an answer without looking would be worse than a late one).
        # Big images get the cheap pass.
        cheap = not self.small
        self.planned_ms += self._estimate("zxing_cheap" if cheap else "zxing", work.gray.size)
        self.report.steps.append("fast")
        self._take(read_zxing(work, try_rotate=not cheap, try_invert=not cheap,
                              return_errors=True, stage="fast"), "fast")
        if self._done():
            return self._finish()

        # 2. the second library. A big photo in which neither zxing-cpp nor OpenCV's locator saw
        # a sign of a code has no regions: zbar then reads the whole image (reduced to at most
        # ZBAR_WHOLE_MAX_PIXELS), since its scanner finds smudged or blurred 1D codes that
        # neither of the others sees at all.
        regions = self._regions_for_fallbacks()
        if not regions and not self.accepted:
            regions = [self._whole_reduced("zbar")]
        if regions and self._plan("zbar", "zbar", sum(v.gray.size for v in regions),
                                  len(regions)):
            self.report.steps.append("zbar")
            for region in regions:
                self._take(read_zbar(View(region.gray, region.to_source, "zbar")), "zbar")
        if self._done():
            return self._finish()

        # 3. a big photo got the cheap pass: a code in it that is turned (90/180/270 degrees) or
        # inverted (light on dark) needs zxing-cpp's own tries, on the image reduced as for zbar
        if not self.small and not self.accepted:
            whole = self._whole_reduced("turns")
            if self._plan("turns", "zxing", whole.gray.size):
                self.report.steps.append("turns")
                self._take(read_zxing(whole, stage="turns"), "turns")
                if self._done():
                    return self._finish()

        # 4. locate and straighten 1D codes: both libraries on each located code, then zxing-cpp
        # on it sharpened (blurred photos of EAN-13s; zbar is not asked there: on sharpened and
        # blurred bars it reads EAN-13s wrong with a valid check digit, measured)
        quads = self._located_1d() if not self.accepted else []
        if quads:
            self.report.steps.append("locate1d")
        straight = [views.straightened(gray, np.asarray(q, dtype=np.float32), index=i)
                    for i, q in enumerate(quads)]
        for v in straight:
            if not self._plan(v.name, "zxing", v.gray.size):
                break
            self._take(read_zxing(v, stage="locate1d"), "locate1d")
            if self._plan(v.name + "/zbar", "zbar", v.gray.size):
                self._take(read_zbar(v, stage="locate1d"), "locate1d")
        if self._done():
            return self._finish()
        for v in straight:
            sharp = _derive(v, views.sharpen)
            if sharp is None or not self._plan(v.name + "/sharpen", "zxing", v.gray.size):
                break
            self._take(read_zxing(View(sharp.gray, sharp.to_source, "locate1d"),
                                  stage="locate1d"), "locate1d")
        if self._done():
            return self._finish()

        # 5. tilt: PDF417 and 1D codes tilted by 15-45 degrees (zxing-cpp only tries 90 degree
        # turns). Cheap passes, run even without a sign of a code: stacked codes leave none.
        # 6. contrast, focus, scale: only where something looks like a code (zxing-cpp saw an
        # undecodable symbol, or OpenCV located a 1D code); on a small image, all of it.
        evidence = bool(self.error_regions or self._located_1d())
        for fb in FALLBACKS:
            if fb.needs_evidence and not evidence:
                continue
            regions = self._regions_for_fallbacks()
            self._step(fb, regions)
            if self._done():
                break
        return self._finish()

    def _whole_reduced(self, name: str) -> View:
        """The whole image, reduced to at most ZBAR_WHOLE_MAX_PIXELS."""
        from scanedge.ocr.views import fit_within

        g = self.gray
        if g.size <= ZBAR_WHOLE_MAX_PIXELS:
            return identity_view(g, name)
        return fit_within(g, int(max(g.shape) * (ZBAR_WHOLE_MAX_PIXELS / g.size) ** 0.5), name)

    def _step(self, fb: _Fallback, regions: list[View]) -> None:
        if not regions:
            return
        pixels = sum(v.gray.size for v in regions) * fb.grows
        kind = "zxing_cheap" if fb.cheap else "zxing"
        calls = len(regions)
        cost_pixels = pixels * (1 + COSTS["zbar"][1] / COSTS[kind][1] if fb.zbar else 1)
        if not self._plan(fb.name, kind, cost_pixels, calls * (2 if fb.zbar else 1)):
            return
        self.report.steps.append(fb.name)
        for region in regions:
            if self._out_of_time():
                self.report.skipped_for_budget.append(fb.name)
                break
            view = _derive(region, fb.make) if fb.make is not None else region
            if view is None:
                continue
            view = View(view.gray, view.to_source, fb.name)
            self._take(read_zxing(view, binarizer=fb.binarizer, try_rotate=not fb.cheap,
                                  try_invert=not fb.cheap, try_downscale=not fb.cheap,
                                  stage=fb.name), fb.name)
            if fb.zbar:
                self._take(read_zbar(view, stage=fb.name), fb.name)

    def _regions_for_fallbacks(self) -> list[View]:
        """Where the fallbacks look.

        A small image: all of it. A big one: crops around what zxing-cpp saw but could not
        decode and around located 1D codes. After a success: only the places of undecoded
        symbols (another code in the same frame).
        """
        from scanedge.ocr import views

        quads = list(self._open_errors())
        if not self.accepted:
            if self.small:
                return [identity_view(self.gray, "region")]
            quads += self._located_1d()
        return [views.crop_around(self.gray, q, name="region") for q in quads[:MAX_REGIONS]]

    def _located_1d(self) -> list:
        from scanedge.ocr import views

        if self._located is None:
            self._located = []
            if self._plan("locate1d", "locate", self.work.gray.size, always=True):
                self._located = [self.work.map_points([tuple(p) for p in q])
                                 for q in views.locate_1d(self.work.gray)]
        return self._located

    def _done(self) -> bool:
        if self._out_of_time():
            self.report.skipped_for_budget.append(f"after {self.report.steps[-1]}")
            return True
        if self.exhaustive:
            return False
        if not self.accepted:
            return False
        # Found something. zxing-cpp may also have seen a symbol it could not decode (another
        # code in the frame, or clutter that looked like one): one closer look there, both
        # libraries on an enlarged crop, and no more (clutter must not cost the full cascade).
        open_errors = self._open_errors()
        if open_errors and not self._looked_closer:
            self._looked_closer = True
            self._look_closer(open_errors)
        return True

    def _look_closer(self, quads: list) -> None:
        from scanedge.ocr.views import crop_around

        self.report.steps.append("closer")
        for q in quads[:MAX_REGIONS]:
            view = crop_around(self.gray, q, margin=0.3, name="closer")
            if not self._plan("closer", "zxing", view.gray.size * 2):
                break
            self._take([r for r in read_zxing(view, stage="closer") if not r.error], "closer")
            self._take(read_zbar(view, stage="closer"), "closer")

    def _open_errors(self) -> list:
        """Places where zxing-cpp saw a symbol that nothing has decoded yet."""
        done = [c.read.position for c in self.accepted] + self.conflicted_positions()
        return [q for q in self.error_regions if not any(_overlap(q, p) for p in done)]

    def conflicted_positions(self) -> list:
        return [r.position for r in self.conflicted]

    # -- accepting reads ------------------------------------------------------------------------

    def _take(self, reads: Iterable[Read], step: str) -> None:
        for read in reads:
            if read.error:
                self.error_regions.append(read.position)
                continue
            verdict = validate(read)
            if not verdict.ok:
                self._reject(read, verdict.reason)
                continue
            cand = _Candidate(read, verdict.strong, verdict.gs1, verdict.gs1_data,
                              verdict.gs1_error, {f"{read.reader}@{step}"})
            self._add(cand)
        self._confirm_pending()

    def _confirm_pending(self) -> None:
        """Ask the other library about each weak read, on a crop around it."""
        from scanedge.ocr.views import crop_around

        for cand in list(self.pending):
            if cand.asked_other or cand not in self.pending:
                continue
            cand.asked_other = True  # always: a weak read is never reported without it
            view = crop_around(self.gray, cand.read.position, margin=0.3, name="confirm")
            if cand.read.reader == "zxing-cpp":
                reads = read_zbar(view, stage="confirm")
            else:
                reads = read_zxing(view, stage="confirm")
            self._take([r for r in reads if not r.error], "confirm")

    def _add(self, cand: _Candidate) -> None:
        read = cand.read
        if any(_same_place(read, c) for c in self.conflicted):
            self._reject(read, "another read of this place disagreed")
            return
        for pool in (self.accepted, self.pending):
            for other in pool:
                if not _same_place(read, other.read):
                    continue
                if _same(read, other.read):
                    other.confirmations |= cand.confirmations
                    if read.reader == "zxing-cpp" and other.read.reader != "zxing-cpp":
                        # zxing-cpp knows more (raw bytes, AIM identifier, GS1 flag): keep its
                        other.read, other.gs1, other.gs1_data, other.gs1_error = (
                            read, cand.gs1, cand.gs1_data, cand.gs1_error)
                    if pool is self.pending and _independent(other.confirmations):
                        self.pending.remove(other)
                        self.accepted.append(other)
                    return
                if _contained_read(read, other.read):
                    continue  # e.g. a 2D code inside a label next to a 1D code: both can be
                self._conflict(read, other, pool)
                return
        (self.accepted if cand.strong else self.pending).append(cand)

    def _conflict(self, read: Read, other: _Candidate, pool: list[_Candidate]) -> None:
        pool.remove(other)
        self.conflicted.extend([read, other.read])
        why = (f"{read.reader} ({read.stage}) and {other.read.reader} ({other.read.stage}) "
               f"read this {family(read.format)} code differently")
        log.warning("decode: %s; neither is reported", why)
        self._reject(read, why)
        self._reject(other.read, why)

    def _reject(self, read: Read, reason: str) -> None:
        self.report.rejected.append(Rejected(read.format, reason, _int_quad(read.position),
                                             read.reader, read.stage))

    def _finish(self) -> None:
        for cand in self.pending:
            self._reject(cand.read, f"{cand.read.format} has no check digit and no second "
                                    "reading agreed")
        symbols = [_to_symbol(c) for c in self.accepted]
        symbols.sort(key=lambda s: (s.position[0][1], s.position[0][0]))
        self.report.symbols = symbols


def _derive(region: View, fn: Callable[[np.ndarray], View | None]) -> View | None:
    """Apply a preprocessing function to a region view, composing the transforms back."""
    inner = fn(region.gray)
    if inner is None:
        return None
    a = np.vstack([region.to_source, [0.0, 0.0, 1.0]])
    b = np.vstack([inner.to_source, [0.0, 0.0, 1.0]])
    return View(inner.gray, (a @ b)[:2], inner.name)


def _same(a: Read, b: Read) -> bool:
    return a.text == b.text and family(a.format) == family(b.format)


def _independent(confirmations: set[str]) -> bool:
    """Both libraries read the same text. (One library twice is not enough: a truncated ITF
    read comes out the same from several rotations.)"""
    return len({c.split("@")[0] for c in confirmations}) > 1


def _contained_read(a: Read, b: Read) -> bool:
    """A 1D code and a 2D code side by side on a label are not a disagreement."""
    from scanedge.ocr.symbols import is_linear

    return is_linear(a.format) != is_linear(b.format)


def _same_place(a: Read, b: Read) -> bool:
    return _overlap(a.position, b.position) or _stacked_1d(a, b)


def _stacked_1d(a: Read, b: Read) -> bool:
    """Two reads of one 1D family that touch along the bars: one printed code read on two bands
    of scan lines (zbar reports each band's own box). Seen: a photographed EAN-13 whose lower
    band read right and whose upper band, read upside down, gave other digits with a valid
    check digit. Two different codes never touch like this (quiet zones, printed text)."""
    if family(a.format) != family(b.format) or not is_linear(a.format):
        return False
    a0, b0 = bbox(a.position), bbox(b.position)
    for across, along in ((0, 1), (1, 0)):  # bars upright (x across them), or lying
        lo = max(a0[across], b0[across])
        hi = min(a0[across + 2], b0[across + 2])
        narrower = min(a0[across + 2] - a0[across], b0[across + 2] - b0[across])
        gap = max(a0[along], b0[along]) - min(a0[along + 2], b0[along + 2])
        tall = max(a0[along + 2] - a0[along], b0[along + 2] - b0[along])
        if narrower > 0 and hi - lo >= 0.5 * narrower and gap <= max(4.0, 0.1 * tall):
            return True
    return False


def _overlap(qa, qb) -> bool:
    """Same place: the centre of either lies in the other's box (grown by a quarter)."""
    for q1, q2 in ((qa, qb), (qb, qa)):
        x0, y0, x1, y1 = bbox(q1)
        gx, gy = (x1 - x0) * 0.25 + 4, (y1 - y0) * 0.25 + 4
        cx = sum(p[0] for p in q2) / len(q2)
        cy = sum(p[1] for p in q2) / len(q2)
        if x0 - gx <= cx <= x1 + gx and y0 - gy <= cy <= y1 + gy:
            return True
    return False


def _int_quad(quad) -> tuple:
    return tuple((round(p[0]), round(p[1])) for p in quad)


def _to_symbol(c: _Candidate) -> Symbol:
    r = c.read
    readers = sorted({x.split("@")[0] for x in c.confirmations}, key=lambda n: n != "zxing-cpp")
    return Symbol(
        format=r.format,
        text=r.text,
        raw=r.raw,
        position=_int_quad(r.position),
        gs1=c.gs1,
        gs1_data=c.gs1_data,  # type: ignore[arg-type]
        gs1_error=c.gs1_error,
        symbology_identifier=r.symbology_identifier,
        content_type="GS1" if c.gs1 and r.content_type == "Text" else r.content_type,
        readers=tuple(readers),
        stage=r.stage,
        charset=r.charset,
    )
