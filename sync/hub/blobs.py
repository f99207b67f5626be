"""Pack evidence at the hub (docs/evidence.md): blobs uploaded by devices in checksummed chunks,
resumable, kept content-addressed on disk or in an S3-compatible store (MinIO, Ceph, AWS).

The protocol (``/api/v1/sync/blobs/{sha256}``, the device's side is sync/blob_upload.py):

- ``GET`` says how many bytes of the blob the hub holds (``offset``) and whether it is
  ``complete``; a device resumes from there after a cut.
- ``PUT`` with ``Content-Range: bytes START-LAST/SIZE`` and ``X-Chunk-SHA256`` appends one chunk
  when START is what the hub holds (else ``offset_mismatch`` with the hub's offset) and the chunk
  hashes to what the device said (else ``checksum_mismatch``, nothing written). The last chunk
  completes the blob: the whole is hashed and must be the blob's name, then it moves to the
  store; a blob that is complete already is answered ``complete`` without writing, so an
  interrupted upload resumed or repeated never stores it twice.

Partial uploads are staged on the hub's own disk (``<staging>/<sha256>.part``), whatever the
store: a chunk is hashed before a byte of it is appended, so the staged file is always a correct
prefix of the blob. A file lock per blob serialises two requests for one blob (two hub processes
on one disk included).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import parse_qs, urlsplit

from scanedge.edge.domain.evidence import SHA256_RE
from scanedge.edge.domain.refusal import Refusal
from scanedge.sync.protocol import file_sha256


class BlobStore(Protocol):
    description: str

    def has(self, sha256: str) -> bool: ...

    def put_file(self, sha256: str, path: Path) -> None:
        """Keep the verified file ``path`` as the blob (the file may be moved)."""

    def open(self, sha256: str) -> BinaryIO | None: ...


class DiskBlobs:
    """``<root>/<sha256[:2]>/<sha256>``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = f"disk {root}"

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def put_file(self, sha256: str, path: Path) -> None:
        target = self._path(sha256)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)  # staging is under the root: the same file system
        folder = os.open(target.parent, os.O_RDONLY)
        try:  # the rename on disk before the device hears "complete" and stops resending
            os.fsync(folder)
        finally:
            os.close(folder)

    def open(self, sha256: str) -> BinaryIO | None:
        try:
            return self._path(sha256).open("rb")
        except FileNotFoundError:
            return None


class S3Blobs:
    """An S3 bucket through boto3 (credentials: boto3's usual environment or files)."""

    def __init__(self, bucket: str, prefix: str, *, endpoint_url: str | None = None,
                 region: str | None = None) -> None:
        import boto3
        from botocore.config import Config

        self.bucket, self.prefix = bucket, prefix
        self.client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region,
                                   config=Config(retries={"max_attempts": 3, "mode": "standard"}))
        self.description = f"s3 bucket {bucket}" + (f" at {endpoint_url}" if endpoint_url else "")

    def _key(self, sha256: str) -> str:
        return f"{self.prefix}{sha256[:2]}/{sha256}"

    def has(self, sha256: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(sha256))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def put_file(self, sha256: str, path: Path) -> None:
        # boto3 sends a large file as a multipart upload of its own
        self.client.upload_file(str(path), self.bucket, self._key(sha256),
                                ExtraArgs={"Metadata": {"sha256": sha256}})
        path.unlink(missing_ok=True)

    def open(self, sha256: str) -> BinaryIO | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._key(sha256))
        except ClientError:
            return None
        return answer["Body"]


def open_blob_store(address: str, data_dir: Path) -> tuple[BlobStore, Path]:
    """The store a ``hub_blobs`` setting names, and where partial uploads are staged."""
    if not address:
        root = Path(data_dir) / "hub-blobs"
        return DiskBlobs(root), root / "partial"
    parts = urlsplit(address)
    if parts.scheme == "file":
        root = Path(parts.path)
        return DiskBlobs(root), root / "partial"
    if parts.scheme == "s3":
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        prefix = parts.path.strip("/")
        return (S3Blobs(parts.netloc, f"{prefix}/" if prefix else "",
                        endpoint_url=query.get("endpoint_url"), region=query.get("region")),
                Path(data_dir) / "hub-blob-staging")
    raise ValueError(f"hub_blobs {address!r}: file:///PATH or s3://BUCKET/PREFIX")


def check_sha(sha256: str) -> None:
    if not SHA256_RE.fullmatch(sha256):
        raise Refusal("bad_request", "a blob is named by its SHA-256: 64 lowercase hex digits")


class BlobUploads:
    """Resumable, checksummed uploads into a :class:`BlobStore`."""

    def __init__(self, store: BlobStore, staging: Path) -> None:
        self.store = store
        self.staging = staging
        staging.mkdir(parents=True, exist_ok=True)

    def _part(self, sha256: str) -> Path:
        return self.staging / f"{sha256}.part"

    @contextlib.contextmanager
    def _locked(self, sha256: str) -> Iterator[None]:
        with (self.staging / f"{sha256}.lock").open("a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def status(self, sha256: str) -> dict[str, Any]:
        check_sha(sha256)
        if self.store.has(sha256):
            return {"sha256": sha256, "offset": None, "complete": True}
        part = self._part(sha256)
        return {"sha256": sha256, "offset": part.stat().st_size if part.exists() else 0,
                "complete": False}

    def receive(self, sha256: str, start: int, end: int, size: int, chunk: bytes,
                chunk_sha256: str) -> dict[str, Any]:
        """Append ``chunk`` (bytes ``[start, end)`` of a blob of ``size``); see the module."""
        check_sha(sha256)
        if len(chunk) != end - start:
            raise Refusal("bad_request", f"the chunk has {len(chunk)} bytes, Content-Range says "
                          f"{end - start}")
        if hashlib.sha256(chunk).hexdigest() != chunk_sha256.strip().lower():
            raise Refusal("checksum_mismatch", "the chunk's SHA-256 is not X-Chunk-SHA256: "
                          "nothing was written, send it again", offset=start)
        with self._locked(sha256):
            if self.store.has(sha256):
                return {"sha256": sha256, "offset": size, "complete": True, "stored": False}
            part = self._part(sha256)
            held = part.stat().st_size if part.exists() else 0
            if start != held:
                raise Refusal("offset_mismatch", f"the hub holds {held} bytes of this blob: "
                              f"send from there", offset=held)
            with part.open("ab") as f:
                f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            if end < size:
                return {"sha256": sha256, "offset": end, "complete": False}
            if file_sha256(part) != sha256:
                part.unlink(missing_ok=True)
                raise Refusal("checksum_mismatch", "the blob's SHA-256 is not its name: the "
                              "hub dropped it, send it again from 0", offset=0)
            self.store.put_file(sha256, part)
            return {"sha256": sha256, "offset": size, "complete": True, "stored": True}

