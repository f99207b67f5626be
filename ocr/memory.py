"""How much image work runs at once, and giving its memory back afterwards.

Every decode and waybill read (HTTP, CLI, library) runs inside :func:`image_job`, which reserves
the job's estimated peak memory from one process-wide budget, ``image_memory_mb`` (setting,
default 256 MB):

* the estimate comes from the image's header, before any pixel is decoded
  (:meth:`ocr.images.Pending.cost` plus what the reader does with the working image);
* jobs run while their reservations fit in the budget and no more than one per CPU (the work is
  CPU-bound: more at once only makes each slower and holds more images in memory); the others
  wait in arrival order (FIFO, so a big photo is not starved by small ones);
* a job whose estimate alone is larger than the whole budget is refused (``too_many_pixels``,
  HTTP 413): it could never run within it. With the default that is, e.g., a WebP over ~28 MP
  (libwebp and Pillow each hold it whole); PNG and JPEG are read in reduced size and fit at any
  size up to ``max_image_megapixels``;
* at most :data:`MAX_WAITING` jobs wait; one more, or a wait longer than :data:`MAX_WAIT_S`, is
  refused with ``busy`` (HTTP 503), so a burst of uploads cannot tie up every HTTP thread.

Jobs nest: a waybill read reserves once for itself and the decode it runs inside.

glibc keeps freed memory in its heaps (and per-thread arenas), so after a burst of big images the
process would keep its peak RSS for good. Two measures (measured in benchmarks/image_memory.py):
blocks of 4 MiB and more (image buffers: a 2 MP gray image is one) are mmap'ed, so freeing one
gives it back at once (``mallopt(M_MMAP_THRESHOLD)``, which also stops glibc from raising that
threshold after the first big free; 1 MiB made the PNG bands measurably slower: every band
buffer was a fresh mapping), and when the last job of a burst ends after a big one,
``malloc_trim(0)`` returns the free pages of every arena.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from scanedge.ocr.images import ImageError

log = logging.getLogger(__name__)

DEFAULT_MEMORY_MB = 256
MAX_WAITING = 16
MAX_WAIT_S = 30.0
MIN_JOB_BYTES = 4 * 1024 * 1024
TRIM_AFTER_BYTES = 16 * 1024 * 1024  # a job at least this big is followed by malloc_trim
MMAP_THRESHOLD = 4 * 1024 * 1024
_M_MMAP_THRESHOLD = -3


class ImageGate:
    """A weighted FIFO semaphore: bytes of memory and CPU slots."""

    def __init__(self, memory_bytes: int, slots: int) -> None:
        self.capacity = memory_bytes
        self.slots = slots
        self.used = 0
        self.running = 0
        self.peak_used = 0
        self._big_since_trim = False
        self._cond = threading.Condition()
        self._queue: deque[object] = deque()
        self._local = threading.local()

    def configure(self, memory_bytes: int | None = None, slots: int | None = None) -> None:
        with self._cond:
            if memory_bytes:
                self.capacity = int(memory_bytes)
            if slots:
                self.slots = int(slots)
            self._cond.notify_all()

    @contextmanager
    def reserve(self, need: int, what: str = "image") -> Iterator[int]:
        """Hold ``need`` bytes (and one CPU slot) while the block runs; nested calls on the same
        thread run inside the outer reservation."""
        if getattr(self._local, "held", 0):
            yield 0
            return
        need = max(MIN_JOB_BYTES, int(need))
        if need > self.capacity:
            raise ImageError(
                "too_many_pixels",
                f"{what} needs about {need / 2**20:.0f} MB to decode; the limit for image work "
                f"is {self.capacity / 2**20:.0f} MB (setting image_memory_mb)")
        ticket = object()
        deadline = time.monotonic() + MAX_WAIT_S
        with self._cond:
            if len(self._queue) >= MAX_WAITING:
                raise ImageError("busy", "too many images are being read; try again shortly")
            self._queue.append(ticket)
            try:
                while not (self._queue[0] is ticket and self.running < self.slots
                           and self.used + need <= self.capacity):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise ImageError("busy", "too many images are being read; try again "
                                                 "shortly")
                    self._cond.wait(left)
            finally:
                self._queue.remove(ticket)
                self._cond.notify_all()
            self.used += need
            self.running += 1
            self.peak_used = max(self.peak_used, self.used)
        self._local.held = need
        try:
            yield need
        finally:
            self._local.held = 0
            with self._cond:
                self.used -= need
                self.running -= 1
                self._big_since_trim |= need >= TRIM_AFTER_BYTES
                idle = self.running == 0 and self._big_since_trim
                if idle:
                    self._big_since_trim = False
                self._cond.notify_all()
            if idle:
                trim()


GATE = ImageGate(DEFAULT_MEMORY_MB * 2**20, max(1, os.cpu_count() or 1))
_tuned = False
_tune_lock = threading.Lock()


def configure(memory_mb: float | None = None) -> None:
    """Size the gate from the ``image_memory_mb`` setting (idempotent, cheap)."""
    tune_malloc()
    if memory_mb and int(memory_mb * 2**20) != GATE.capacity:
        GATE.configure(int(memory_mb * 2**20))


@contextmanager
def image_job(need: int, what: str = "image") -> Iterator[int]:
    tune_malloc()
    with GATE.reserve(need, what) as held:
        yield held


@lru_cache(maxsize=1)
def _libc():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018  (glibc only: musl and others have none)
        libc.mallopt  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


def tune_malloc() -> None:
    """Once per process: image-sized blocks are mmap'ed (freed straight back to the system)."""
    global _tuned
    if _tuned:
        return
    with _tune_lock:
        if _tuned:
            return
        _tuned = True
        libc = _libc()
        if libc is not None:
            libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def trim() -> None:
    """Give the free pages of every malloc arena back to the system (glibc)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
