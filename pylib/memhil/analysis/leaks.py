"""Leak reports: blocks allocated between two snapshots and still live, as memcheck-style loss records.

A loss record groups blocks of one kind (definitely/indirectly/possibly lost, or "not freed" when no
reachability scan was done) that share one allocation call stack, as memcheck groups them (by call stack and
kind). Records are ordered as memcheck orders them: smallest total first, so the biggest leak is printed last,
next to the summary.

A *leak site* is an allocation site (:mod:`memhil.analysis.sites`) of a leak: one leaking line is one site,
however many records its blocks make (several kinds, several call stacks into it). Indirectly lost blocks are
charged to the definitely lost block holding them, so their own site counts only when that holder is not
itself reported (allocated before the first snapshot, or suppressed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from memhil.elf.lines import Frame
from memhil.heap.model import LiveBlock, Snapshot

from .diff import new_blocks
from .frames import StackSymbolizer, resolve_stack
from .reachability import LeakKind, Reachability
from .sites import UNKNOWN_SITE, Site, SiteNamer
from .suppress import Suppressions

#: kinds that are leaks (a CI gate fails on them unless suppressed); still reachable is not
LEAK_KINDS = (LeakKind.DEFINITE, LeakKind.INDIRECT, LeakKind.POSSIBLE, LeakKind.UNFREED)
SUMMARY_KINDS = (LeakKind.DEFINITE, LeakKind.INDIRECT, LeakKind.POSSIBLE, LeakKind.REACHABLE, LeakKind.UNFREED)


@dataclass
class LossRecord:
    """Blocks of one ``kind`` sharing one call ``stack``. ``bytes`` counts requested (user) bytes as
    memcheck does; ``node_bytes`` what the pool pays; ``indirect_bytes`` what definitely lost blocks hold."""

    kind: LeakKind
    stack: tuple[int, ...]
    frames: tuple[Frame, ...] = ()
    blocks: list[LiveBlock] = field(default_factory=list)
    bytes: int = 0
    node_bytes: int = 0
    indirect_bytes: int = 0
    suppressed_by: str | None = None
    site: Site = Site(UNKNOWN_SITE)

    @property
    def count(self) -> int:
        return len(self.blocks)

    @property
    def total(self) -> int:
        return self.bytes + self.indirect_bytes

    def as_dict(self) -> dict:
        return {
            "kind": self.kind.value,
            "bytes": self.bytes,
            "blocks": self.count,
            "node_bytes": self.node_bytes,
            "indirect_bytes": self.indirect_bytes,
            "suppressed_by": self.suppressed_by,
            "site": self.site.name,
            "stack": [f"{pc:#010x}" for pc in self.stack],
            "frames": [
                {"address": f"{f.address:#010x}", "function": f.function, "file": f.file, "line": f.line, "inlined": getattr(f, "inlined", False)}
                for f in self.frames
            ],
            "pointers": [f"{b.ptr:#010x}" for b in self.blocks],
        }


@dataclass
class LeakReport:
    """Loss records (leaks, suppressed or not) and still-reachable records between ``before`` and ``after``."""

    before: str | None
    after: str
    records: list[LossRecord]
    reachable: list[LossRecord] = field(default_factory=list)
    checked_reachability: bool = False
    leader: dict[int, int] = field(default_factory=dict)  # indirectly lost block -> the definitely lost block holding it

    @property
    def leak_sites(self) -> list[str]:
        """Distinct allocation sites of the unsuppressed leaks, biggest leak first (see the module docstring)."""
        reported = {b.ptr for r in self.leaks if r.kind is not LeakKind.INDIRECT for b in r.blocks}
        totals: dict[str, int] = {}
        for r in self.leaks:
            if r.kind is LeakKind.INDIRECT and all(self.leader.get(b.ptr) in reported for b in r.blocks):
                continue
            totals[r.site.name] = totals.get(r.site.name, 0) + r.total
        return sorted(totals, key=lambda name: (-totals[name], name))

    @property
    def leaks(self) -> list[LossRecord]:
        """Records not suppressed: what a gate fails on."""
        return [r for r in self.records if not r.suppressed_by]

    @property
    def suppressed(self) -> list[LossRecord]:
        return [r for r in self.records if r.suppressed_by]

    @property
    def ok(self) -> bool:
        return not self.leaks

    def summary(self) -> dict[str, tuple[int, int]]:
        """``kind -> (bytes, blocks)`` over unsuppressed records, plus ``"suppressed"``, like memcheck's LEAK SUMMARY."""
        out = {k.value: (0, 0) for k in SUMMARY_KINDS}
        for r in self.leaks + [r for r in self.reachable if not r.suppressed_by]:
            b, n = out[r.kind.value]
            out[r.kind.value] = (b + r.bytes, n + r.count)
        hidden = self.suppressed + [r for r in self.reachable if r.suppressed_by]
        sb = sum(r.bytes for r in hidden)
        sn = sum(r.count for r in hidden)
        out["suppressed"] = (sb, sn)
        return out

    def as_dict(self) -> dict:
        return {
            "before": self.before,
            "after": self.after,
            "checked_reachability": self.checked_reachability,
            "leak_sites": self.leak_sites,
            "summary": {k: {"bytes": b, "blocks": n} for k, (b, n) in self.summary().items()},
            "records": [r.as_dict() for r in self.records],
            "reachable": [r.as_dict() for r in self.reachable],
        }


def find_leaks(
    before: Snapshot | None,
    after: Snapshot,
    symbolizer: StackSymbolizer | None = None,
    suppressions: Suppressions | None = None,
    reachability: Reachability | None = None,
) -> LeakReport:
    """Blocks live in ``after`` and not in ``before`` as loss records, matched against ``suppressions``.

    Without ``reachability`` every such block is "not freed"; with it, blocks are classified as
    memcheck does and still-reachable ones go to :attr:`LeakReport.reachable`."""
    groups: dict[tuple[LeakKind, tuple[int, ...]], LossRecord] = {}
    for b in new_blocks(before, after):
        kind = reachability.kind(b.ptr) if reachability is not None else LeakKind.UNFREED
        key = (kind, tuple(b.callers))
        rec = groups.get(key)
        if rec is None:
            rec = groups[key] = LossRecord(kind, key[1])
        rec.blocks.append(b)
        rec.bytes += b.size
        rec.node_bytes += b.bytes
        if reachability is not None and kind is LeakKind.DEFINITE:
            rec.indirect_bytes += reachability.indirect_bytes.get(b.ptr, 0)
    cache: dict[int, tuple[Frame, ...]] = {}
    namer = SiteNamer(symbolizer)  # type: ignore[arg-type]
    for rec in groups.values():
        rec.blocks.sort(key=lambda b: b.ptr)
        rec.frames = resolve_stack(rec.stack, symbolizer, cache)
        rec.site = namer(rec.stack[0] if rec.stack else None)
        if suppressions is not None:
            rec.suppressed_by = suppressions.match(rec.frames, rec.kind)
    ordered = sorted(groups.values(), key=lambda r: (r.total, r.count, r.kind.value, r.stack))
    return LeakReport(
        before.name if before is not None else None,
        after.name,
        [r for r in ordered if r.kind is not LeakKind.REACHABLE],
        [r for r in ordered if r.kind is LeakKind.REACHABLE],
        reachability is not None,
        dict(reachability.leader) if reachability is not None else {},
    )
