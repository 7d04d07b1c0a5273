"""Snapshot diff: what was allocated between two snapshots and is still live (a per-site
memory report taken before and after), grouped by allocation site and by full call stack."""

from __future__ import annotations

from dataclasses import dataclass, field

from memhil.elf.lines import Frame
from memhil.heap.model import LiveBlock, Snapshot
from memhil.analysis.sites import MemReport, SiteResolver, site_report

from .frames import StackSymbolizer, resolve_stack


@dataclass
class StackGroup:
    """New live blocks sharing one call stack; ``size`` is requested bytes, ``bytes`` what the pool pays."""

    stack: tuple[int, ...]
    frames: tuple[Frame, ...] = ()
    blocks: list[LiveBlock] = field(default_factory=list)
    size: int = 0
    bytes: int = 0

    @property
    def count(self) -> int:
        return len(self.blocks)


@dataclass
class SnapshotDiff:
    before: str
    after: str
    dt_us: int
    new: list[LiveBlock]
    freed: list[LiveBlock]
    by_site: MemReport
    by_stack: list[StackGroup]

    @property
    def new_bytes(self) -> int:
        return sum(b.bytes for b in self.new)

    @property
    def freed_bytes(self) -> int:
        return sum(b.bytes for b in self.freed)

    @property
    def net_bytes(self) -> int:
        return self.new_bytes - self.freed_bytes


def same_block(a: LiveBlock, b: LiveBlock) -> bool:
    """Whether two live blocks at one address are the same allocation: same sequence number when both
    come from events, else (heap walks have no history) same node size and recorded call stack."""
    if a.seq >= 0 and b.seq >= 0:
        return a.seq == b.seq
    return a.node_size == b.node_size and a.size == b.size and a.callers == b.callers


def new_blocks(before: Snapshot | None, after: Snapshot) -> list[LiveBlock]:
    """Blocks live in ``after`` that were not live in ``before`` (all of ``after`` when ``before`` is None)."""
    if before is None:
        return list(after.blocks.values())
    old = before.blocks
    return [b for p, b in after.blocks.items() if p not in old or not same_block(old[p], b)]


def freed_blocks(before: Snapshot, after: Snapshot) -> list[LiveBlock]:
    return new_blocks(after, before)


def group_by_stack(blocks: list[LiveBlock], symbolizer: StackSymbolizer | None = None) -> list[StackGroup]:
    """Group by the full call stack, largest requested size first (ties: more blocks, then the stack)."""
    groups: dict[tuple[int, ...], StackGroup] = {}
    for b in blocks:
        key = tuple(b.callers)
        g = groups.get(key)
        if g is None:
            g = groups[key] = StackGroup(key)
        g.blocks.append(b)
        g.size += b.size
        g.bytes += b.bytes
    cache: dict[int, tuple[Frame, ...]] = {}
    for g in groups.values():
        g.frames = resolve_stack(g.stack, symbolizer, cache)
    return sorted(groups.values(), key=lambda g: (-g.size, -g.count, g.stack))


def diff_snapshots(before: Snapshot, after: Snapshot, symbolizer: StackSymbolizer | None = None) -> SnapshotDiff:
    new = new_blocks(before, after)
    freed = freed_blocks(before, after)
    resolver: SiteResolver | None = symbolizer  # type: ignore[assignment]
    return SnapshotDiff(
        before.name,
        after.name,
        after.t_us - before.t_us,
        sorted(new, key=lambda b: b.ptr),
        sorted(freed, key=lambda b: b.ptr),
        site_report(new, resolver, t_us=after.t_us),
        group_by_stack(new, symbolizer),
    )
