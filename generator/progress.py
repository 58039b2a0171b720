"""A one-line progress bar on stderr, drawn only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30
REDRAW_SECONDS = 0.2


class Progress:
    """Rows written out of an expected total; `enabled=False` draws nothing."""

    def __init__(self, total: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = max(total, 1)
        self.done = 0
        self.label = ""
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self._drawn_at = 0.0
        self._width = 0

    def advance(self, rows: int, label: str) -> None:
        self.done += rows
        self.label = label
        now = time.monotonic()
        if self.enabled and now - self._drawn_at >= REDRAW_SECONDS:
            self._drawn_at = now
            self._draw()

    def clear(self) -> None:
        """Erase the bar, so that a log line can take its place; the next advance redraws."""
        if self.enabled:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._drawn_at = 0.0

    def finish(self) -> None:
        if self.enabled:
            self.total = max(self.done, 1)
            self._draw()
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self) -> None:
        share = min(self.done / self.total, 1.0)
        filled = int(share * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        line = f"[{bar}] {share:4.0%} {self.done:,} rows  {self.label:<40}"
        self._width = max(self._width, len(line))
        self.stream.write("\r" + line)
        self.stream.flush()
