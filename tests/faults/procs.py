"""Finding emulator processes this test process started (children, grandchildren), from /proc."""

from __future__ import annotations

import os
from pathlib import Path


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def descendants(pid: int | None = None) -> list[int]:
    """Every live descendant of ``pid`` (default: this process)."""
    todo, seen = [pid or os.getpid()], []
    while todo:
        for child in _children(todo.pop()):
            if child not in seen:
                seen.append(child)
                todo.append(child)
    return seen


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def qemu_children() -> list[int]:
    """Descendants of this process that are QEMU, running or zombie."""
    return [p for p in descendants() if _comm(p).startswith("qemu-system")]


def is_zombie_or_gone(pid: int) -> bool:
    return _state(pid) in ("", "Z", "X")
