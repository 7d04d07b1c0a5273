"""The ledger: live blocks by pointer and usage per module and task, built from events."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from itertools import repeat
from typing import Iterable

from memhil.events import UNTRACKED_MODULE, AllocEvent, EventFlag, EventKind, Row, event_from_row
from memhil.heap.model import LiveBlock, Snapshot, UsageStat

log = logging.getLogger("memhil.trace.alloc")


@dataclass(frozen=True, slots=True)
class Anomaly:
    """An event the ledger could not apply cleanly (free of an unknown pointer, a gap in sequence numbers...)."""

    kind: str  # "unknown-free", "double-alloc", "seq-gap", "unknown-realloc"
    seq: int
    ptr: int
    detail: str


class Ledger:
    """Live blocks and usage, kept exactly from an :class:`AllocEvent` stream.

    Module and task figures count whole nodes, as LiteOS's module statistics do
    (``malloc(0x10)`` counts 32 bytes with a 16-byte header). Anomalies are recorded,
    never raised, so a damaged stream still yields what it can.
    """

    def __init__(self, blocks: Iterable[LiveBlock] = (), *, t_us: int = 0) -> None:
        self.live: dict[int, LiveBlock] = {}
        self.total = UsageStat()
        self.modules: dict[int, UsageStat] = {}
        self.tasks: dict[int, UsageStat] = {}
        self.anomalies: list[Anomaly] = []
        self.last_seq = -1
        self.t_us = t_us
        self.events = 0
        for block in blocks:
            self._add(block)
        # a checkpoint restores state, not history: peaks start at the restored level, counts at zero
        for stat in (self.total, *self.modules.values(), *self.tasks.values()):
            stat.allocs = 0

    # -- applying events -------------------------------------------------------------
    def apply(self, ev: AllocEvent) -> None:
        if self.last_seq >= 0 and ev.seq > self.last_seq + 1:
            missing = ev.seq - self.last_seq - 1
            self.anomalies.append(Anomaly("seq-gap", ev.seq, 0, f"{missing} events missing before seq {ev.seq}"))
        if ev.seq > self.last_seq:
            self.last_seq = ev.seq
        self.t_us = max(self.t_us, ev.t_us)
        self.events += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s", ev)
        kind = ev.kind
        if kind is EventKind.FREE:
            self._free(ev.ptr, ev)
        elif kind is EventKind.REALLOC:
            if ev.old_ptr:
                if ev.old_ptr in self.live:
                    self._remove(ev.old_ptr)
                else:
                    self.anomalies.append(Anomaly("unknown-realloc", ev.seq, ev.old_ptr, "realloc of a block the ledger never saw allocated"))
            self._alloc(ev)
        else:
            self._alloc(ev)

    def apply_many(self, events: Iterable[AllocEvent]) -> None:
        """:meth:`apply` for each event, with the common cases inlined (a batch from a trace drain)."""
        if log.isEnabledFor(logging.DEBUG):
            for ev in events:
                self.apply(ev)
            return
        live, total, modules, tasks = self.live, self.total, self.modules, self.tasks
        free, realloc, from_event = EventKind.FREE, EventKind.REALLOC, LiveBlock.from_event
        for ev in events:
            seq = ev.seq
            last = self.last_seq
            if seq != last + 1 or ev.t_us < self.t_us or (ev.kind is realloc and ev.old_ptr):
                self.apply(ev)  # gaps, clock steps back, reallocs: the general path
                continue
            self.last_seq = seq
            self.t_us = ev.t_us
            self.events += 1
            ptr = ev.ptr
            if ev.kind is free:
                block = live.pop(ptr, None)
                if block is None:
                    self.anomalies.append(Anomaly("unknown-free", seq, ptr, "free of a pointer that is not live (double free, foreign pointer, or allocated before capture)"))
                    continue
                n = block.node_size or block.size
                total.sub(n)
                modules[block.module].sub(n)
                tasks[block.task].sub(n)
                continue
            if ptr in live:
                self._alloc(ev)  # double allocation: recorded by the general path
                continue
            block = from_event(ev)
            live[ptr] = block
            n = block.node_size or block.size
            total.add(n)
            stat = modules.get(block.module)
            if stat is None:
                stat = modules[block.module] = UsageStat()
            stat.add(n)
            stat = tasks.get(block.task)
            if stat is None:
                stat = tasks[block.task] = UsageStat()
            stat.add(n)

    def apply_rows(self, rows: Iterable[Row], stacks: Iterable[tuple] | None = None) -> None:
        """:meth:`apply` for each row of ``memhil.events.ROW_FIELDS`` (a trace drain's unpacked records), with
        no :class:`AllocEvent` built for the common cases: an allocation, a free or a realloc of a live block,
        in sequence, its module tracked. Anything else goes through :meth:`apply`. Rows must have valid kinds
        (the trace capture checks them before it hands rows over). ``stacks``: each row's call stack, in order
        (patched hooks record one; a trace row has none)."""
        stacks = repeat(()) if stacks is None else stacks
        if log.isEnabledFor(logging.DEBUG):
            for row, stack in zip(rows, stacks):
                self.apply(event_from_row(row, stack))
            return
        live, total, modules, tasks = self.live, self.total, self.modules, self.tasks
        no_flags, block_of, pop = EventFlag.NONE, LiveBlock, live.pop
        last, t_us, n = self.last_seq, self.t_us, 0
        # UsageStat.sub/add written out, the three stats one after the other (no method calls, no loop): this is
        # the host's per-event cost under trace and patched hooks
        for row, stack in zip(rows, stacks):
            seq, t_ms, kind, module, task, ptr, old_ptr, size, node_size, lr0, lr1, lr2 = row
            t = t_ms * 1000
            if kind == 2:
                block = pop(ptr, None) if seq == last + 1 and t >= t_us and module != UNTRACKED_MODULE else None
            elif (seq != last + 1 or t < t_us or module == UNTRACKED_MODULE or ptr in live and ptr != old_ptr
                  or kind == 3 and old_ptr and old_ptr not in live):
                block = None
            else:
                block = pop(old_ptr) if kind == 3 and old_ptr else True
            if block is None:  # gaps, clock steps, untracked, bad frees, double allocations: the general path
                self.last_seq, self.t_us, self.events = last, t_us, self.events + n
                n = 0
                self.apply(event_from_row(row, stack))
                last, t_us = self.last_seq, self.t_us
                continue
            last, t_us = seq, t
            n += 1
            if block is not True:  # a free, or the block a realloc replaced
                b = block.node_size or block.size
                total.current -= b
                total.blocks -= 1
                total.frees += 1
                stat = modules[block.module]
                stat.current -= b
                stat.blocks -= 1
                stat.frees += 1
                stat = tasks[block.task]
                stat.current -= b
                stat.blocks -= 1
                stat.frees += 1
                if kind == 2:
                    continue
            lrs = (lr0, lr1, lr2) if lr0 and lr1 and lr2 else tuple(v for v in (lr0, lr1, lr2) if v)
            live[ptr] = block_of(ptr, size, node_size, module, task, seq, t, stack, lrs, no_flags)
            b = node_size or size
            cur = total.current = total.current + b
            total.blocks += 1
            total.allocs += 1
            if cur > total.peak:
                total.peak = cur
            stat = modules.get(module)
            if stat is None:
                stat = modules[module] = UsageStat()
            cur = stat.current = stat.current + b
            stat.blocks += 1
            stat.allocs += 1
            if cur > stat.peak:
                stat.peak = cur
            stat = tasks.get(task)
            if stat is None:
                stat = tasks[task] = UsageStat()
            cur = stat.current = stat.current + b
            stat.blocks += 1
            stat.allocs += 1
            if cur > stat.peak:
                stat.peak = cur
        self.last_seq, self.t_us, self.events = last, t_us, self.events + n

    def _alloc(self, ev: AllocEvent) -> None:
        if ev.ptr in self.live:
            self.anomalies.append(Anomaly("double-alloc", ev.seq, ev.ptr, "pointer handed out twice without a free in between"))
            self._remove(ev.ptr)
        self._add(LiveBlock.from_event(ev))

    def _free(self, ptr: int, ev: AllocEvent) -> None:
        if ptr not in self.live:
            self.anomalies.append(Anomaly("unknown-free", ev.seq, ptr, "free of a pointer that is not live (double free, foreign pointer, or allocated before capture)"))
            return
        self._remove(ptr)

    def _add(self, block: LiveBlock) -> None:
        self.live[block.ptr] = block
        n = block.bytes
        self.total.add(n)
        self._stat(self.modules, block.module).add(n)
        self._stat(self.tasks, block.task).add(n)

    def _remove(self, ptr: int) -> LiveBlock:
        block = self.live.pop(ptr)
        n = block.bytes
        self.total.sub(n)
        self.modules[block.module].sub(n)
        self.tasks[block.task].sub(n)
        return block

    @staticmethod
    def _stat(table: dict[int, UsageStat], key: int) -> UsageStat:
        stat = table.get(key)
        if stat is None:
            stat = table[key] = UsageStat()
        return stat

    # -- queries ---------------------------------------------------------------------
    def module_used(self, module: int, *, tracked_only: bool = False) -> int:
        """Current bytes of ``module``; ``tracked_only`` leaves out blocks the firmware's statistics do not count."""
        if not tracked_only:
            stat = self.modules.get(module)
            return stat.current if stat else 0
        return sum(b.bytes for b in self.live.values() if b.module == module and b.tracked)

    def module_peak(self, module: int) -> int:
        stat = self.modules.get(module)
        return stat.peak if stat else 0

    def snapshot(self, name: str = "") -> Snapshot:
        return Snapshot(
            name=name,
            t_us=self.t_us,
            blocks={p: _copy(b) for p, b in self.live.items()},
            source="ledger",
            modules={m: s.current for m, s in self.modules.items() if s.current},
        )


def _copy(block: LiveBlock) -> LiveBlock:
    return LiveBlock(block.ptr, block.size, block.node_size, block.module, block.task, block.seq, block.t_us, block.stack, block.lrs, block.flags)
