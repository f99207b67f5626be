"""Pack evidence (装箱视频 / photos): what a clip must be, and what the policy asks of an order
before its label or its carrier's tracking number (pure rules, docs/evidence.md).

``evidence_policy``: ``off`` asks nothing; ``require_video`` asks for one video of the packing
of at least ``pack_video_min_s`` seconds; ``require_photo`` for one photo (a video does too: it
shows more). Evidence counts once it is stored on the device: the upload to the hub may finish
later, so a network cut never stops the bench.

The chunked upload's arithmetic is here as well (:func:`next_chunk`): the hub says how many bytes
it holds, the device sends the next chunk from there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from scanedge.edge.domain.print_gate import GateProblem, GateVerdict
from scanedge.edge.domain.refusal import Refusal

POLICIES = ("off", "require_video", "require_photo")
KINDS = ("video", "photo")
# what MediaRecorder gives (Chromium: webm; Safari: mp4), and the still images of the photo path
TYPES = {"video": ("video/webm", "video/mp4"), "photo": ("image/jpeg", "image/png")}
SHA256_RE = re.compile(r"[0-9a-f]{64}")
MAX_DURATION_S = 3600.0  # an hour of packing is a recorder left running, not one parcel


@dataclass(frozen=True)
class Evidence:
    """One clip or photo of an order's packing, as the device keeps it."""

    kind: str  # video | photo
    sha256: str
    size: int
    duration_s: float | None = None  # videos: what the recorder measured


def clip_kind(mime: str) -> str:
    """``video`` or ``photo`` for a content type the bench sends; a Refusal for anything else."""
    base = mime.split(";")[0].strip().lower()
    for kind, types in TYPES.items():
        if base in types:
            return kind
    raise Refusal("bad_evidence", "send the clip's bytes as the body with Content-Type "
                  "video/webm or video/mp4 (a recording), image/jpeg or image/png (a photo)")


def check_clip(kind: str, size: int, duration_s: float | None, *, min_video_s: float,
               max_bytes: int) -> None:
    """Refuse a clip that cannot count: empty, beyond the size cap, a video without a duration
    or shorter than the minimum. A photo's duration is ignored."""
    if size == 0:
        raise Refusal("bad_evidence", "the body is empty: send the recording's bytes")
    if size > max_bytes:
        raise Refusal("too_large", f"the clip is {size} bytes, more than the {max_bytes} kept "
                      "per clip (evidence_clip_max_mb)")
    if kind != "video":
        return
    if duration_s is None or not 0 < duration_s <= MAX_DURATION_S:
        raise Refusal("bad_evidence", "duration_s: the recording's length in seconds "
                      f"(more than 0, at most {MAX_DURATION_S:g})")
    if duration_s < min_video_s:
        raise Refusal("clip_too_short", f"the video is {duration_s:.1f} s: at least "
                      f"{min_video_s:g} s of packing are needed (pack_video_min_s)",
                      duration_s=duration_s, min_s=min_video_s)


def evidence_problems(policy: str, items: Sequence[Evidence],
                      min_video_s: float) -> tuple[GateProblem, ...]:
    """What the policy still asks for, given the order's stored evidence."""
    if policy == "off":
        return ()
    videos = [e for e in items if e.kind == "video" and (e.duration_s or 0) >= min_video_s]
    if policy == "require_video" and not videos:
        return (GateProblem("video_missing", f"装箱视频未保存(至少 {min_video_s:g} 秒),不能打印或取号",
                            f"no pack video yet (at least {min_video_s:g} s): no label or "
                            "tracking number"),)
    if policy == "require_photo" and not videos and not any(e.kind == "photo" for e in items):
        return (GateProblem("photo_missing", "装箱照片未保存,不能打印或取号",
                            "no pack photo yet: no label or tracking number"),)
    return ()


def with_evidence(verdict: GateVerdict, problems: tuple[GateProblem, ...]) -> GateVerdict:
    """The print gate with the evidence policy's problems: these refuse whatever
    ``print_policy`` says (a supervisor's override still may, audited)."""
    if not problems:
        return verdict
    return GateVerdict(False, verdict.problems + problems)


def next_chunk(held: int, size: int, chunk_bytes: int) -> tuple[int, int] | None:
    """The byte range ``[start, end)`` to send next when the hub holds ``held`` bytes of a blob
    of ``size``; None when it holds them all."""
    if not 0 <= held <= size or chunk_bytes <= 0:
        raise ValueError(f"held {held} of {size} bytes (chunk {chunk_bytes})")
    if held == size:
        return None
    return held, min(size, held + chunk_bytes)


def content_range(start: int, end: int, size: int) -> str:
    """The ``Content-Range`` of the bytes ``[start, end)`` of a blob of ``size``."""
    return f"bytes {start}-{end - 1}/{size}"


def parse_content_range(value: str) -> tuple[int, int, int]:
    """``bytes START-LAST/SIZE`` -> (start, end exclusive, size); ValueError when malformed."""
    m = re.fullmatch(r"bytes (\d{1,15})-(\d{1,15})/(\d{1,15})", value.strip())
    if not m:
        raise ValueError("Content-Range: 'bytes START-LAST/SIZE'")
    start, last, size = (int(g) for g in m.groups())
    if not start <= last < size:
        raise ValueError(f"Content-Range: bytes {start}-{last} are not within a blob of {size}")
    return start, last + 1, size
