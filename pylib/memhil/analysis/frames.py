"""Call stacks (program counters, innermost first) to symbolized frames, with inlined frames expanded."""

from __future__ import annotations

from typing import Iterable, Protocol, Sequence

from memhil.elf.lines import Frame


class StackSymbolizer(Protocol):
    """What analysis needs of :class:`memhil.elf.Symbolizer`; ``frames`` is optional (inlined frames)."""

    def frame(self, pc: int, *, is_return_address: bool = False) -> Frame: ...


def resolve_stack(pcs: Sequence[int], symbolizer: StackSymbolizer | None, cache: dict[int, tuple[Frame, ...]] | None = None) -> tuple[Frame, ...]:
    """Frames for ``pcs`` (return addresses, innermost first); a pc expands to its inlined frames, innermost first."""
    out: list[Frame] = []
    for pc in pcs:
        got = cache.get(pc) if cache is not None else None
        if got is None:
            got = _frames(pc, symbolizer)
            if cache is not None:
                cache[pc] = got
        out.extend(got)
    return tuple(out)


def _frames(pc: int, symbolizer: StackSymbolizer | None) -> tuple[Frame, ...]:
    if symbolizer is None:
        return (Frame(pc, None, None, None),)
    many = getattr(symbolizer, "frames", None)
    if many is not None:
        got = tuple(many(pc, is_return_address=True))
        if got:
            return got
    return (symbolizer.frame(pc, is_return_address=True),)


def frame_label(frame: Frame) -> str:
    """Short label for folded stacks and tables: the function, else ``file:line``, else the address."""
    if frame.function:
        return frame.function
    if frame.file and frame.line:
        return f"{frame.file}:{frame.line}"
    return f"{frame.address:#010x}"


def frame_site(frame: Frame) -> str | None:
    return f"{frame.file}:{frame.line}" if frame.file and frame.line else None


def stack_key(pcs: Iterable[int]) -> tuple[int, ...]:
    return tuple(pcs)
