"""Progress of long work on standard error (a soak, parsing a timeline): a live bar redrawn in place on
a terminal, one plain line per step elsewhere (a CI log keeps every line and never sees a carriage return)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class StepProgress:
    """``progress.step(done, text)`` after each of ``total`` steps; ``close()`` ends the bar's line.

    ``live`` defaults to whether ``stream`` is a terminal. Without a terminal at most ``max_lines``
    lines are printed (evenly spaced steps, and always the last), so 10,000 steps stay a short log.
    """

    def __init__(self, total: int, label: str, *, stream: TextIO | None = None, live: bool | None = None,
                 width: int = 30, max_lines: int = 50) -> None:
        self.total = max(1, int(total))
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.live = bool(isatty and isatty()) if live is None else live
        self.width = width
        self.every = max(1, -(-self.total // max_lines))
        self.started = time.monotonic()
        self._open = False

    def step(self, done: int, text: str = "") -> None:
        pct = 100 * done // self.total
        if self.live:
            filled = self.width * done // self.total
            self.stream.write(f"\r\x1b[2K{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {pct:3d}% {text}")
            self._open = True
            if done >= self.total:
                self.close()
        elif done % self.every == 0 or done >= self.total:
            self.stream.write(f"{self.label}: {done}/{self.total} ({pct}%) {text}".rstrip() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
