"""Live memory by allocation site: the ``get_mem_report`` of the timeline's LOG mode.

A block's site is its innermost caller frame (``LiveBlock.callers[0]``: the return
address into the function that called the allocator), symbolized to ``file:line``.
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
    cache: dict[int, tuple[str, str | None, int | None, str | None]] = {}
    total = 0
    for block in blocks:
        total += block.size
        pc = block.callers[0] if block.callers else None
        key = cache.get(pc) if pc is not None else None
        if key is None:
            key = _resolve(pc, resolver)
            if pc is not None:
                cache[pc] = key
        site, file, line, function = key
        row = rows.get(site)
        if row is None:
            row = rows[site] = SiteRow(site, file, line, function)
        row.size += block.size
        row.blocks += 1
        row.node_bytes += block.bytes
        if pc is not None:
            row.pcs.add(pc)
    ordered = sorted(rows.values(), key=lambda r: (-r.size, r.site))
    return MemReport(total, ordered, t_us)


def _resolve(pc: int | None, resolver: SiteResolver | None) -> tuple[str, str | None, int | None, str | None]:
    if pc is None:
        return UNKNOWN_SITE, None, None, None
    if resolver is not None:
        frame = resolver.frame(pc, is_return_address=True)
        if frame.file and frame.line:
            return f"{frame.file}:{frame.line}", frame.file, frame.line, frame.function
        if frame.function:
            return f"{frame.function}+{pc:#x}", None, None, frame.function
    return f"{pc:#010x}", None, None, None


def format_mem_report(report: MemReport) -> str:
    """Text like the LOG mode's ``get_mem_report``: ``file  line:N  size:N``, largest first."""
    width = max((len(r.file or r.site) for r in report.rows), default=10) + 4
    lines = [f"total_size: {report.total_size}", "mem_report:"]
    for r in report.rows:
        where = r.file or r.site
        line = f"line:{r.line}" if r.line else "line:?"
        lines.append(f"    {where:<{width}}{line:<12}size:{r.size:<10} blocks:{r.blocks}" + (f"  {r.function}" if r.function else ""))
    return "\n".join(lines)
