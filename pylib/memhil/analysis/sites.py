"""Allocation sites: the one place a program counter becomes a site name, and live memory by site (a
memory profiler's ``get_mem_report``: bytes and blocks per allocating line).

A block's site is its innermost caller frame (``LiveBlock.callers[0]``: the return address into the function
that called the allocator), named ``file:line`` (the file relative to the symbolizer's source root when it has
one), else ``function+offset`` (the return address's offset into the function), else the raw address; ``<unknown>`` when no call stack was recorded. Reports,
growth, leak counts and the end-of-run results all name sites with :func:`name_site`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Protocol

from memhil.heap.model import LiveBlock

UNKNOWN_SITE = "<unknown>"


class _Frame(Protocol):
    function: str | None
    file: str | None
    line: int | None


class SiteResolver(Protocol):
    def frame(self, pc: int, is_return_address: bool = True) -> _Frame: ...


@dataclass(frozen=True)
class Site:
    name: str
    file: str | None = None
    line: int | None = None
    function: str | None = None


def name_site(pc: int | None, resolver: SiteResolver | None = None) -> Site:
    """The site of return address ``pc`` (None or negative: no stack recorded)."""
    if pc is None or pc < 0:
        return Site(UNKNOWN_SITE)
    if resolver is not None:
        frame = resolver.frame(pc, is_return_address=True)
        file = frame.file
        relative = getattr(resolver, "relative", None)
        if file and relative is not None:
            file = relative(file)
        if file and frame.line:
            return Site(f"{file}:{frame.line}", file, frame.line, frame.function)
        if frame.function:
            # without line info: the offset into the function, as a disassembly shows it (never the address itself)
            where = f"+{frame.offset:#x}" if frame.offset is not None else f" ({pc & ~1:#010x})"
            return Site(f"{frame.function}{where}", None, None, frame.function)
    return Site(f"{pc:#010x}")


def block_site_pc(block: LiveBlock) -> int | None:
    """The pc that names ``block``'s site: its innermost caller, None without a call stack."""
    return block.callers[0] if block.callers else None


class SiteNamer:
    """:func:`name_site` with a cache, for naming many blocks."""

    def __init__(self, resolver: SiteResolver | None = None) -> None:
        self.resolver = resolver
        self._cache: dict[int | None, Site] = {}

    def __call__(self, pc: int | None) -> Site:
        site = self._cache.get(pc)
        if site is None:
            site = self._cache[pc] = name_site(pc, self.resolver)
        return site

    def of(self, block: LiveBlock) -> Site:
        return self(block_site_pc(block))


@dataclass
class SiteRow:
    site: str  # "file:line", or a raw address / UNKNOWN_SITE when no line is known
    file: str | None
    line: int | None
    function: str | None
    size: int = 0  # requested bytes live from this site
    blocks: int = 0
    node_bytes: int = 0  # bytes the pool pays (nodes, headers included)
    pcs: set[int] = field(default_factory=set)


@dataclass
class MemReport:
    total_size: int
    rows: list[SiteRow]
    t_us: int = 0

    def as_dict(self) -> dict:
        return {
            "total_size": self.total_size,
            "t_us": self.t_us,
            "mem_report": [
                {"site": r.site, "file": r.file, "line": r.line, "function": r.function, "size": r.size, "blocks": r.blocks, "node_bytes": r.node_bytes}
                for r in self.rows
            ],
        }


def site_report(blocks: Iterable[LiveBlock], resolver: SiteResolver | None = None, *, t_us: int = 0) -> MemReport:
    """Group ``blocks`` by allocation site, largest first (ties by site name)."""
    rows: dict[str, SiteRow] = {}
    namer = SiteNamer(resolver)
    total = 0
    for block in blocks:
        total += block.size
        pc = block_site_pc(block)
        site = namer(pc)
        row = rows.get(site.name)
        if row is None:
            row = rows[site.name] = SiteRow(site.name, site.file, site.line, site.function)
        row.size += block.size
        row.blocks += 1
        row.node_bytes += block.bytes
        if pc is not None:
            row.pcs.add(pc)
    ordered = sorted(rows.values(), key=lambda r: (-r.size, r.site))
    return MemReport(total, ordered, t_us)
