"""A heartbeat for keywords that can run for minutes of wall time (``Run For 10 min`` with breakpoint
hooks): a plain line on Robot's console every ``every`` seconds while the keyword runs, so a CI log
shows the run is alive and how long it has taken. It never touches the emulator (the keyword's own
thread owns the connection); it only reports wall time."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator


def _console(text: str) -> None:
    from robot.api import logger

    logger.console(text)


@contextmanager
def heartbeat(label: str, *, every: float = 30.0, write: Callable[[str], None] | None = None) -> Iterator[None]:
    """While the body runs, write ``memhil: <label>: still running, N s wall`` every ``every`` seconds."""
    write = write or _console
    done = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not done.wait(every):
            try:
                write(f"memhil: {label}: still running, {time.monotonic() - started:.0f} s wall so far")
            except Exception:  # noqa: BLE001 - the console may be gone at shutdown; the run goes on
                return

    thread = threading.Thread(target=beat, name=f"memhil-heartbeat {label}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        elapsed = time.monotonic() - started
        if elapsed >= every:
            try:
                write(f"memhil: {label}: done in {elapsed:.0f} s wall")
            except Exception:  # noqa: BLE001
                pass
