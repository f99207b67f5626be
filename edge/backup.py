"""Backups of the SQLite files (edge.db, and hub.db when the hub runs here) and their restore.

Consistent while the service runs: SQLite's online backup API copies the database in one step
inside one read transaction. In WAL mode a reader does not block the writer, so scans go on while
the copy is made, and the copy is the database as of one commit (a prefix of the events, never
half a transaction). Copying the file with ``cp`` is not safe: the newest commits live in the
``-wal`` file until a checkpoint.

Files are ``<kind>-<NNNNNN>-<UTC time>.db`` in ``<data_dir>/backups``. ``NNNNNN`` counts up per
backup run and decides which are kept (``backup_keep``), not the clock: a Pi without a real-time
clock may boot in 1970 and would otherwise delete its newest backups first.

The service takes a shared lock on ``<data_dir>/<kind>.lock`` while it runs; ``restore`` needs the
lock exclusively, so it refuses while the service is running unless forced.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from scanedge.edge.config import Settings

NAME_RE = re.compile(r"^(?P<kind>edge|hub)-(?P<seq>\d{6,})-(?P<stamp>\d{8}T\d{6}Z)\.db$")
KINDS = ("edge", "hub")
CODE_PACKAGES = ("scanedge.edge", "scanedge.ocr", "scanedge.printers", "scanedge.sync")
CODE_MARKER = ".scanedge-code"  # in data_dir: identity of the code that last started here


class BackupError(RuntimeError):
    """A backup or a restore cannot be made; nothing was changed."""


@dataclass(frozen=True)
class BackupFile:
    kind: str
    seq: int
    path: Path


# ---------------------------------------------------------------- where things are


def backup_dir(settings: Settings) -> Path:
    return settings.data_dir / "backups"


def databases(settings: Settings) -> dict[str, Path]:
    """The SQLite files of this machine that exist: edge.db, and hub.db if it is SQLite."""
    found = {}
    if settings.edge_db_path.exists():
        found["edge"] = settings.edge_db_path
    hub = settings.hub_database
    if not hub.startswith(("postgresql://", "postgres://")) and Path(hub).exists():
        found["hub"] = Path(hub)
    return found


def list_backups(directory: Path) -> list[BackupFile]:
    out = []
    if directory.is_dir():
        for p in directory.iterdir():
            m = NAME_RE.match(p.name)
            if m:
                out.append(BackupFile(m["kind"], int(m["seq"]), p))
    return sorted(out, key=lambda b: (b.seq, b.kind))


# ---------------------------------------------------------------- the service lock


def lock_path(settings: Settings, kind: str) -> Path:
    return settings.data_dir / f"{kind}.lock"


@contextlib.contextmanager
def service_lock(settings: Settings, kind: str, *, wait_s: float = 60.0) -> Iterator[None]:
    """Held (shared) by a running service, so that ``restore`` can tell it is running."""
    path = lock_path(settings, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        deadline = time.monotonic() + wait_s
        while True:  # a restore in progress holds it exclusively for a few seconds
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BackupError(f"{path} stays locked (a restore running?)") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def running_pid(settings: Settings, kind: str) -> int | None:
    """The pid of the running service of ``kind``, None when it does not run (lock is free)."""
    path = lock_path(settings, kind)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def _exclusive(settings: Settings, kind: str) -> Iterator[bool]:
    """Hold the service lock exclusively if it is free; yields whether we got it."""
    path = lock_path(settings, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            yield True
        except BlockingIOError:
            yield False
    finally:
        os.close(fd)


# ---------------------------------------------------------------- checks


def integrity_problem(path: Path) -> str | None:
    """None when ``path`` is a SQLite database that passes ``PRAGMA integrity_check``."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as e:
        return f"cannot open: {e}"
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as e:
        return f"not a SQLite database: {e}"
    finally:
        conn.close()
    if rows != [("ok",)]:
        return "; ".join(r[0] for r in rows[:3])
    return None


def kind_of(path: Path) -> str | None:
    """Which database a file is a copy of: "edge", "hub" or None."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "schema_version" in tables and conn.execute(
                "SELECT 1 FROM schema_version WHERE component = 'edge'").fetchone():
            return "edge"
        if {"hub_meta", "changes", "devices"} <= tables:
            return "hub"
        return None
    finally:
        conn.close()


def stored_schema_versions(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute(
            "SELECT component, MAX(version) FROM schema_version GROUP BY component").fetchall()
    except sqlite3.OperationalError:  # no schema_version table yet
        return {}
    finally:
        conn.close()
    return dict(rows)


def code_identity() -> str:
    """A hash of the program's Python sources: changes with every upgrade (or local edit)."""
    h = hashlib.sha256()
    for package in CODE_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            continue
        base = Path(spec.origin).parent
        for path in sorted(base.rglob("*.py")):
            h.update(str(path.relative_to(base.parent)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:20]


# ---------------------------------------------------------------- backup


def _copy(src_path: Path, dst_path: Path) -> None:
    """Online backup of ``src_path`` into a new single file ``dst_path`` (written, then renamed)."""
    part = dst_path.with_name(dst_path.name + ".part")
    part.unlink(missing_ok=True)
    src = sqlite3.connect(str(src_path), timeout=30)
    try:
        src.execute("PRAGMA busy_timeout = 30000")
        dst = sqlite3.connect(str(part))
        try:
            # pages=-1: everything in one step, i.e. in one read transaction -> one consistent
            # snapshot. Step-wise copies restart whenever the live database changes, which on a
            # busy bench might be never-ending.
            src.backup(dst, pages=-1)
            # The copy inherits WAL mode from the header; a backup should be one self-contained
            # file (no -wal beside it when it is opened or moved).
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()
    problem = integrity_problem(part)
    if problem:
        part.unlink(missing_ok=True)
        raise BackupError(f"the copy of {src_path} fails its integrity check: {problem}")
    with open(part, "rb") as f:
        os.fsync(f.fileno())
    os.replace(part, dst_path)
    _fsync_dir(dst_path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def backup(settings: Settings, *, to: Path | None = None, keep: int | None = None,
           kinds: Sequence[str] = KINDS) -> list[Path]:
    """Back up every SQLite database of this machine; keep the newest ``keep`` runs per kind."""
    directory = Path(to) if to is not None else backup_dir(settings)
    keep = settings.backup_keep if keep is None else keep
    if keep < 1:
        raise BackupError("keep: at least 1")
    found = {k: p for k, p in databases(settings).items() if k in kinds}
    if not found:
        return []
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o750)
    except OSError as e:
        raise BackupError(f"cannot create {directory}: {e.strerror or e}") from None
    existing = list_backups(directory)
    seq = max((b.seq for b in existing), default=0) + 1
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    made = []
    for kind, path in found.items():
        dst = directory / f"{kind}-{seq:06d}-{stamp}.db"
        try:
            _copy(path, dst)
        except (sqlite3.Error, OSError) as e:
            raise BackupError(f"backup of {path} to {directory} failed: {e}") from None
        made.append(dst)
    prune(directory, keep)
    return made


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest backups of each kind (newest = highest number)."""
    removed = []
    for kind in KINDS:
        files = [b for b in list_backups(directory) if b.kind == kind]
        for b in files[:-keep] if len(files) > keep else []:
            b.path.unlink(missing_ok=True)
            removed.append(b.path)
    return removed


def backup_before_upgrade(settings: Settings) -> list[Path]:
    """Called by ``scanedge serve`` before it opens the store (which runs the migrations).

    Backs edge.db up when the code differs from the code that last started on this data (an
    upgrade, or the first start of a version with this check). Any component's migration can
    only come with new code, so this covers every schema change without a list of components to
    keep up to date, and a normal start costs a hash of the sources, no copy. The marker is
    written right after the copy: a migration that then fails and restarts in a loop does not
    make a copy per attempt that would rotate the good one away.
    """
    path = settings.edge_db_path
    marker = settings.data_dir / CODE_MARKER
    current = code_identity()
    try:
        previous = marker.read_text().strip()
    except OSError:
        previous = ""
    if previous == current:
        return []
    made = backup(settings, kinds=("edge",)) if path.exists() else []
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(current + "\n")
    os.replace(tmp, marker)
    return made


# ---------------------------------------------------------------- restore


def restore(settings: Settings, file: Path, *, force: bool = False,
            kind: str | None = None) -> tuple[str, Path, Path | None]:
    """Put a backup back. Returns (kind, the database restored, the safety copy made first).

    The file is checked first (integrity, kind, schema not newer than this code). It is copied
    into place with the backup API, through SQLite's own locking: replacing the file by hand
    beside a live ``-wal`` file would corrupt the database.
    """
    file = Path(file)
    if not file.is_file():
        raise BackupError(f"{file}: no such file")
    problem = integrity_problem(file)
    if problem:
        raise BackupError(f"{file} is not a sound database: {problem}")
    found_kind = kind_of(file)
    if found_kind is None:
        raise BackupError(f"{file} is neither an edge nor a hub database")
    if kind is not None and kind != found_kind:
        raise BackupError(f"{file} is a {found_kind} database, not a {kind} one")
    if found_kind == "edge":
        target = settings.edge_db_path
        # The live database was migrated by this code: a file with a newer schema comes from a
        # newer scanedge (with no live database, the start itself refuses such a file).
        live = stored_schema_versions(target) if target.exists() else {}
        newer = [f"{c} {v} > {live[c]}" for c, v in stored_schema_versions(file).items()
                 if c in live and v > live[c]]
        if newer:
            raise BackupError(f"{file} has a newer schema than this scanedge "
                              f"({', '.join(newer)}): upgrade first")
    else:
        if settings.hub_database.startswith(("postgresql://", "postgres://")):
            raise BackupError("hub_database is PostgreSQL here: restore it with pg_restore")
        target = Path(settings.hub_database)
    with _exclusive(settings, found_kind) as free:
        if not free and not force:
            pid = running_pid(settings, found_kind)
            raise BackupError(
                f"the {found_kind} service is running (pid {pid}): stop it first "
                f"(systemctl stop {'scanedge' if found_kind == 'edge' else 'scanedge-hub'}) "
                "or give --force")
        safety = None
        if target.exists():
            made = backup(settings, kinds=(found_kind,), keep=max(settings.backup_keep, 1))
            safety = made[0] if made else None
        target.parent.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(f"file:{file}?mode=ro", uri=True)
        try:
            dst = sqlite3.connect(str(target), timeout=30)
            try:
                dst.execute("PRAGMA busy_timeout = 30000")
                src.backup(dst, pages=-1)
                dst.execute("PRAGMA journal_mode = WAL")
                rows = dst.execute("PRAGMA quick_check").fetchall()
            finally:
                dst.close()
        except sqlite3.Error as e:
            raise BackupError(f"restore into {target} failed: {e}") from None
        finally:
            src.close()
        if rows != [("ok",)]:
            raise BackupError(f"{target} fails its check after the restore: {rows[0][0]}")
    return found_kind, target, safety


def become_data_owner(data_dir: Path) -> None:
    """Run as root, act as the owner of the data directory (the service user).

    A root-owned ``-shm`` or ``-wal`` file left beside the database would stop the service from
    opening it; so ``sudo scanedge backup`` drops to the owner before touching anything.
    """
    if os.geteuid() != 0:
        return
    try:
        st = data_dir.stat()
    except OSError:
        return
    if st.st_uid == 0:
        return
    import pwd

    try:
        name = pwd.getpwuid(st.st_uid).pw_name
        os.initgroups(name, st.st_gid)
    except KeyError:
        os.setgroups([])
    os.setgid(st.st_gid)
    os.setuid(st.st_uid)
