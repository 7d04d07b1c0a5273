"""Reachability of live blocks from the target's memory, classified as Valgrind memcheck does.

Roots (every writable section, the registers, each task's live stack: :mod:`memhil.analysis.roots`) are
scanned for aligned 32-bit little-endian words. A word
equal to a block's start is a start pointer, one inside it an interior pointer. Blocks found from
roots by a start pointer are *still reachable*; by an interior pointer only, *possibly lost*. Blocks
reached are scanned in turn (a start pointer from a reachable block keeps it reachable, anything
else gives possibly lost). What is left is lost: each remaining block starts a clique, the blocks it
reaches are *indirectly lost* and charged to it, and clique leaders are *definitely lost*
(memcheck's mc_leakcheck.c algorithm, as described in the Valgrind user manual, section 4.2.8).

A ``heuristic`` (like memcheck's ``--leak-check-heuristics``) may accept an interior pointer as a start pointer;
blocks reached that way are still reachable and :attr:`Reachability.heuristic` names the heuristic.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

from memhil.heap.model import LiveBlock


class LeakKind(str, enum.Enum):
    DEFINITE = "definitely lost"
    INDIRECT = "indirectly lost"
    POSSIBLE = "possibly lost"
    REACHABLE = "still reachable"
    UNFREED = "not freed"  # no reachability information: allocated and never freed

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Region:
    """Bytes of target memory starting at ``start`` (a section, a stack, the heap)."""

    name: str
    start: int
    data: bytes

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    @classmethod
    def read(cls, read_memory: Callable[[int, int], bytes], name: str, start: int, size: int) -> "Region":
        return cls(name, start, bytes(read_memory(start, size)))


@dataclass
class Reachability:
    """The class of each block (by user pointer); for indirectly lost blocks, the definitely lost block holding them."""

    kinds: dict[int, LeakKind]
    leader: dict[int, int] = field(default_factory=dict)
    indirect_bytes: dict[int, int] = field(default_factory=dict)
    heuristic: dict[int, str] = field(default_factory=dict)

    def kind(self, ptr: int) -> LeakKind:
        return self.kinds.get(ptr, LeakKind.UNFREED)

    def count(self, kind: LeakKind) -> int:
        return sum(1 for k in self.kinds.values() if k is kind)


_UNREACHED, _POSSIBLE, _REACHABLE = 0, 1, 2


class _Index:
    def __init__(self, blocks: list[LiveBlock]) -> None:
        self.blocks = sorted(blocks, key=lambda b: b.ptr)
        self.starts = [b.ptr for b in self.blocks]
        self.ends = [b.ptr + max(b.size, 1) for b in self.blocks]
        self.lo = self.starts[0] if self.starts else 0
        self.hi = max(self.ends) if self.ends else 0

    def find(self, value: int) -> tuple[int, bool] | None:
        if not self.lo <= value < self.hi:
            return None
        i = bisect.bisect_right(self.starts, value) - 1
        if i >= 0 and value < self.ends[i]:
            return i, value == self.starts[i]
        return None


def _words(start: int, data: bytes) -> Iterable[tuple[int, int]]:
    """(address, value) of each aligned 32-bit word in ``data``."""
    skip = (-start) % 4
    usable = (len(data) - skip) // 4 * 4
    if usable <= 0:
        return ()
    view = memoryview(data)[skip : skip + usable].cast("I")
    base = start + skip
    return ((base + 4 * k, v) for k, v in enumerate(view))


def _contents(block: LiveBlock, memory: Sequence[Region], views: dict[int, Region] | None = None) -> tuple[int, bytes]:
    if views and block.ptr in views:
        view = views[block.ptr]
        return view.start, view.data
    end = block.ptr + block.size
    for r in memory:
        if r.start <= block.ptr < r.end:
            return block.ptr, r.data[block.ptr - r.start : min(end, r.end) - r.start]
    return block.ptr, b""


class _Words:
    """Aligned 32-bit reads over the regions read from the target (for heuristics). Regions may nest: coalesced
    block contents span the small root regions between heap blocks (a variable between two heap_5 regions), so a
    read falls back to an earlier region that covers the address."""

    def __init__(self, regions: Sequence[Region]) -> None:
        self.regions = sorted((r for r in regions if r.start), key=lambda r: r.start)
        self.starts = [r.start for r in self.regions]
        self.reach: list[int] = []  # the furthest end of regions[0..i]
        for r in self.regions:
            self.reach.append(max(r.start + len(r.data), self.reach[-1] if self.reach else 0))

    def __call__(self, address: int) -> int | None:
        i = bisect.bisect_right(self.starts, address) - 1
        while i >= 0 and self.reach[i] >= address + 4:
            r = self.regions[i]
            off = address - r.start
            if off + 4 <= len(r.data):
                return int.from_bytes(r.data[off : off + 4], "little")
            i -= 1
        return None


Heuristic = Callable[[LiveBlock, int, Callable[[int], "int | None"]], "str | None"]


def classify(
    blocks: Iterable[LiveBlock],
    roots: Sequence[Region],
    heap: Sequence[Region] = (),
    *,
    views: dict[int, Region] | None = None,
    heuristic: Heuristic | None = None,
) -> Reachability:
    """Classify ``blocks``; ``roots`` are scanned for pointers, ``heap`` (and roots) supply block contents.

    ``views`` replaces the contents of some blocks (a heap-allocated task stack counts only from its saved SP
    up); ``heuristic`` may accept an interior pointer as a start pointer. Root words that lie inside a live block
    are ignored, so passing all of RAM as one root is safe."""
    idx = _Index(list(blocks))
    n = len(idx.blocks)
    state = [_UNREACHED] * n
    memory = list(heap) + list(roots)
    word = _Words(memory) if heuristic is not None else None
    via: dict[int, str] = {}
    work: list[int] = []

    def mark(j: int, new: int) -> None:
        if new > state[j]:
            state[j] = new
            work.append(j)

    def start_like(j: int, value: int, at_start: bool) -> bool:
        """Whether a pointer to block ``j`` counts as a start pointer. As memcheck's
        lc_push_without_clique_if_a_chunk_ptr: a block already reachable is not put to the heuristic again, and a
        start pointer to it clears the heuristic it was reached by."""
        if at_start:
            via.pop(j, None)
            return True
        if heuristic is None or state[j] == _REACHABLE:
            return False
        name = heuristic(idx.blocks[j], value, word)  # type: ignore[arg-type]
        if name:
            via[j] = name
            return True
        return False

    for region in roots:
        for addr, value in _words(region.start, region.data):
            hit = idx.find(value)
            if hit is None or (region.start and idx.find(addr) is not None):
                continue
            j, at_start = hit
            mark(j, _REACHABLE if start_like(j, value, at_start) else _POSSIBLE)
    while work:
        i = work.pop()
        from_reachable = state[i] == _REACHABLE
        for _, value in _words(*_contents(idx.blocks[i], memory, views)):
            hit = idx.find(value)
            if hit is not None and hit[0] != i:
                j, at_start = hit
                mark(j, _REACHABLE if (from_reachable and start_like(j, value, at_start)) else _POSSIBLE)

    result = Reachability({})
    members: dict[int, list[int]] = {}
    owner: dict[int, int] = {}
    for i in range(n):
        if state[i] != _UNREACHED or i in owner:
            continue
        members[i] = []
        todo = [i]
        while todo:
            k = todo.pop()
            for _, value in _words(*_contents(idx.blocks[k], memory, views)):
                hit = idx.find(value)
                if hit is None:
                    continue
                j = hit[0]
                if state[j] != _UNREACHED or j == i or j in owner:
                    continue
                if j in members:  # an earlier clique leader: it and its clique join this one
                    for m in members.pop(j):
                        owner[m] = i
                        members[i].append(m)
                owner[j] = i
                members[i].append(j)
                todo.append(j)
    for i, b in enumerate(idx.blocks):
        if state[i] == _REACHABLE:
            result.kinds[b.ptr] = LeakKind.REACHABLE
            if i in via:
                result.heuristic[b.ptr] = via[i]
        elif state[i] == _POSSIBLE:
            result.kinds[b.ptr] = LeakKind.POSSIBLE
        elif i in owner:
            result.kinds[b.ptr] = LeakKind.INDIRECT
            result.leader[b.ptr] = idx.blocks[owner[i]].ptr
        else:
            result.kinds[b.ptr] = LeakKind.DEFINITE
            result.indirect_bytes[b.ptr] = sum(idx.blocks[m].size for m in members.get(i, ()))
    return result
