"""What the benchmark scripts share: a free loopback port, waiting for a server to answer, the
machine's facts for a table's header, the spread of several runs, a process's CPU time.

The scripts run as ``python benchmarks/NAME.py``, so this folder is on ``sys.path`` and they
import this module as ``_common``.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, timeout: float = 20) -> None:
    """Return once ``url`` answers; exit with one line if it does not within ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server at {url} did not start")


def machine_facts() -> str:
    """One line for a table's header: what the numbers were measured on, and how busy it was."""
    import os
    import platform
    import sys

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"{os.cpu_count()} CPUs, load average {load} (1/5/15 min) at start, "
            f"Python {platform.python_version()} ({sys.implementation.name}), "
            f"{platform.system()} {platform.machine()}, {time.strftime('%Y-%m-%d %H:%M')}")


def load_now() -> float:
    import os

    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def spread(values: list[float], fmt: str = "{:.0f}") -> str:
    """``median [min-max]`` of several runs (one run: the value alone)."""
    import statistics

    values = [v for v in values if v == v]  # NaN: a run without that number
    if not values:
        return "-"
    if len(values) == 1:
        return fmt.format(values[0])
    return (f"{fmt.format(statistics.median(values))} "
            f"[{fmt.format(min(values))}-{fmt.format(max(values))}]")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; NaN elsewhere)."""
    import os

    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def import_root(code_root: str | os.PathLike[str]) -> str:
    """A folder to put on ``PYTHONPATH`` so that ``scanedge.*`` imports another checkout's code.

    The project's folders install as ``scanedge.edge``, ``scanedge.ocr`` ... (pyproject.toml's
    package-dir), which a plain checkout on ``sys.path`` does not provide: this makes
    ``<code_root>/.bench-import/scanedge/{edge,ocr,printers,sync}`` links (kept, cheap) and
    returns ``<code_root>/.bench-import``. A ``PYTHONPATH`` entry comes before the editable
    install's import hook, so that checkout's code is what runs.
    """
    from pathlib import Path

    root = Path(code_root).resolve()
    pkg = root / ".bench-import" / "scanedge"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").touch()
    for name in ("edge", "ocr", "printers", "sync"):
        link = pkg / name
        if not link.is_symlink():
            link.symlink_to(root / name, target_is_directory=True)
    return str(pkg.parent)
