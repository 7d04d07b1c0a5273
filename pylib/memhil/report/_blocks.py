"""What a report can be given: a leak report, a snapshot, or plain live blocks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Union

from memhil.heap.model import LiveBlock, Snapshot

if TYPE_CHECKING:
    from memhil.analysis.leaks import LeakReport

BlockSource = Union["LeakReport", Snapshot, Iterable[LiveBlock]]


def blocks_of(source: object) -> list[LiveBlock]:
    """Live blocks of a LeakReport (its unsuppressed leak records), a Snapshot, or an iterable, by address."""
    if isinstance(source, Snapshot):
        blocks = list(source.blocks.values())
    elif hasattr(source, "records") and hasattr(source, "leaks"):
        blocks = [b for r in source.leaks for b in r.blocks]  # type: ignore[attr-defined]
    else:
        blocks = list(source)  # type: ignore[call-overload]
    return sorted(blocks, key=lambda b: b.ptr)
