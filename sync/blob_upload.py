"""The device's side of the hub's resumable blob upload (sync/hub/blobs.py, docs/evidence.md).

:func:`upload_blob` asks the hub how much it holds, sends the rest in checksummed chunks, and
follows the hub's word after a cut: ``offset_mismatch`` (the hub holds another amount, e.g. a
chunk whose answer was lost arrived after all) resumes from the hub's offset, never from ours.
A throttle keeps the upload at ``rate_bps`` so the bench's scans keep the disk and the CPU.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scanedge.edge.domain.evidence import content_range, next_chunk
from scanedge.sync.client import HubClient, HubProtocolError, HubRefused

CHUNK_BYTES = 1024 * 1024  # a lost chunk costs a second at a few MB/s; the hub takes ~5 MB bodies
MAX_ROUNDS = 10_000  # a hub that never moves forward does not keep a device busy forever


@dataclass
class UploadResult:
    sha256: str
    sent_bytes: int  # what this call sent (less than the size when it resumed)
    chunks: int
    resumed_from: int  # the offset the hub held when this call began


class Throttle:
    """At most ``rate_bps`` on average: after each chunk, wait out what it was ahead."""

    def __init__(self, rate_bps: float, stop: threading.Event,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate_bps, self.stop, self.clock = rate_bps, stop, clock
        self._start = clock()
        self._sent = 0

    def sent(self, n: int) -> None:
        self._sent += n
        ahead = self._sent / self.rate_bps - (self.clock() - self._start)
        if ahead > 0:
            self.stop.wait(ahead)


def blob_path(sha256: str) -> str:
    return f"/api/v1/sync/blobs/{sha256}"


def held(client: HubClient, sha256: str) -> tuple[int, bool]:
    """(bytes the hub holds, complete)."""
    status, answer = client.exchange("GET", blob_path(sha256))
    if status != 200 or not isinstance(answer, dict):
        _refused(status, answer)
    return int(answer.get("offset") or 0), bool(answer.get("complete"))


def upload_blob(client: HubClient, path: Path, sha256: str, size: int, *,
                chunk_bytes: int = CHUNK_BYTES, throttle: Throttle | None = None,
                stop: threading.Event | None = None) -> UploadResult | None:
    """Send the file's bytes the hub does not hold; the result once the hub has it all, None
    when ``stop`` was set first. HubUnavailable (a cut, a timeout) and HubRefused propagate:
    the caller tries again later, and the next call resumes where the hub stands."""
    offset, complete = held(client, sha256)
    result = UploadResult(sha256, 0, 0, offset)
    if complete:
        return result
    with path.open("rb") as f:
        for _ in range(MAX_ROUNDS):
            if stop is not None and stop.is_set():
                return None
            span = next_chunk(offset, size, chunk_bytes)
            if span is None:  # the hub holds every byte but did not say complete: ask again
                offset, complete = held(client, sha256)
                if complete:
                    return result
                raise HubProtocolError(f"blob {sha256}: the hub holds all {size} bytes but "
                                       "does not call it complete")
            start, end = span
            f.seek(start)
            chunk = f.read(end - start)
            status, answer = client.put_bytes(blob_path(sha256), chunk, {
                "Content-Range": content_range(start, end, size),
                "X-Chunk-SHA256": hashlib.sha256(chunk).hexdigest()})
            answer = answer if isinstance(answer, dict) else {}
            if status == 200:
                result.sent_bytes += len(chunk)
                result.chunks += 1
                if answer.get("complete"):
                    return result
                offset = int(answer.get("offset", end))
                if throttle is not None:
                    throttle.sent(len(chunk))
            elif answer.get("error") in ("offset_mismatch", "checksum_mismatch") and isinstance(
                    answer.get("offset"), int):
                offset = answer["offset"]  # the hub's word: where its copy ends
            else:
                _refused(status, answer)
    raise HubProtocolError(f"blob {sha256}: no progress after {MAX_ROUNDS} requests")


def _refused(status: int, answer: object) -> None:
    body = answer if isinstance(answer, dict) else {}
    if status >= 500 or status in (408, 429):
        raise HubProtocolError(f"blob upload: hub answered {status}")
    raise HubRefused(f"blob upload: {status} {body.get('message')}", status=status,
                     code=body.get("error") if isinstance(body.get("error"), str) else None)
