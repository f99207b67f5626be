"""A one-line progress bar on stderr, shown only when stderr is a terminal (never in logs or pipes)."""

from __future__ import annotations

import sys
from typing import TextIO


class Progress:
    def __init__(self, total: int, *, enabled: bool | None = None, stream: TextIO | None = None,
                 width: int = 30) -> None:
        self.stream = stream or sys.stderr
        self.total = max(total, 1)
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.width = width

    def show(self, done: int, label: str = "") -> None:
        if not self.enabled:
            return
        filled = min(self.width, int(self.width * done / self.total))
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r\033[K[{bar}] {done}/{self.total} {label[:40]}")
        self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()

    done = clear
