"""One frame of a stored call stack (``summary.json``: ``pc``, ``function``, ``file``, ``line`` and, for
images without line information, ``offset``) as people read it, the way gdb and addr2line print it."""

from __future__ import annotations

from typing import Mapping


def _hex(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, int):
        return f"{value:#010x}"
    return str(value)


def frame_text(f: Mapping) -> str:
    """``function (file:line)``; without line information ``function+0x3c (0x08001c3c)`` when the offset
    into the function is known, else ``function (0x08001c3c)``; ``?? (0x08001c3c)`` without a symbol.
    Never ``None:None``, never an absolute address written as an offset."""
    fn = f.get("function") or "??"
    if f.get("file") and f.get("line"):
        return f"{fn} ({f['file']}:{f['line']})"
    pc = _hex(f.get("pc") if f.get("pc") is not None else f.get("address"))
    offset = f.get("offset")
    name = f"{fn}+{offset:#x}" if isinstance(offset, int) and f.get("function") else fn
    return f"{name} ({pc})" if pc else name
