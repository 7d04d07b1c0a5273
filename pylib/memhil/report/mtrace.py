"""glibc ``mtrace``-style "Memory not freed" table: address, size and caller file:line.

Formats as glibc's mtrace.pl does: a header padded to the pointer width, rows
``%#010x %#8x  at <caller>``; "No memory leaks." when nothing is left.
"""

from __future__ import annotations

from memhil.analysis.frames import StackSymbolizer, resolve_stack

from ._blocks import blocks_of

PTR_WIDTH = 10  # "0x" + 8 hex digits on a 32-bit target


def mtrace_text(source: object, symbolizer: StackSymbolizer | None = None) -> str:
    """``source``: a LeakReport (unsuppressed leaks), a Snapshot, or live blocks."""
    blocks = blocks_of(source)
    if not blocks:
        return "No memory leaks.\n"
    lines = ["", "Memory not freed:", "-----------------", " " * (PTR_WIDTH - 7) + "Address     Size     Caller"]
    cache: dict = {}
    for b in blocks:
        lines.append(f"{b.ptr:#0{PTR_WIDTH}x} {b.size:#8x}  at {_caller(b.callers, symbolizer, cache)}")
    return "\n".join(lines) + "\n"


def _caller(callers: tuple[int, ...], symbolizer: StackSymbolizer | None, cache: dict) -> str:
    if not callers:
        return "<unknown>"
    frames = resolve_stack(callers[:1], symbolizer, cache)
    for f in frames:
        if f.file and f.line:
            return f"{f.file}:{f.line}"
    f = frames[-1]
    return f"{f.function}+{f.address:#x}" if f.function else f"{callers[0]:#010x}"
