"""The one event type every stage downstream of capture works on."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class EventFlag(enum.IntFlag):
    """Extra facts about an event."""

    NONE = 0
    #: allocated through the plain API (``LOS_MemAlloc``), so the firmware's per-module
    #: statistics do not count it (seed 000's precaution); the trace ring marks it with module 0xFF
    UNTRACKED = 1


class EventKind(enum.IntEnum):
    """What an allocator call did. Values are shared with the firmware trace ring and the log format."""

    ALLOC = 1
    FREE = 2
    REALLOC = 3
    ALIGNED_ALLOC = 4


@dataclass(frozen=True, slots=True)
class AllocEvent:
    """One allocator event, as seen by hooks, the trace ring, or a log.

    ``t_us`` is virtual time in microseconds since the target's reset. For a
    realloc, ``ptr`` is the new block and ``old_ptr`` the block it replaced (equal
    when resized in place). A realloc to size 0 is reported as a FREE, a failed
    allocation is not reported. ``stack`` holds program counters, innermost first
    (Thumb bit cleared); ``lrs`` the link registers the firmware itself recorded in
    the node header (LOSCFG_MEM_LEAKCHECK), if any. ``node_size`` is the whole node
    (header included) as the allocator accounts it; 0 where the allocator has no nodes
    (newlib), in which case ``size`` is used.
    """

    seq: int
    t_us: int
    kind: EventKind
    ptr: int
    size: int = 0
    node_size: int = 0
    module: int = 0
    task: int = 0
    stack: tuple[int, ...] = ()
    old_ptr: int = 0
    lrs: tuple[int, ...] = field(default=())
    flags: EventFlag = EventFlag.NONE

    @property
    def is_alloc(self) -> bool:
        return self.kind in (EventKind.ALLOC, EventKind.ALIGNED_ALLOC)


#: An event as a plain tuple in the trace ring's record order (firmware/kernel/mem/memhil_trace.h):
#: what a trace drain unpacks, and what :meth:`memhil.heap.ledger.Ledger.apply_rows` takes without building
#: an :class:`AllocEvent` per event. ``t_ms`` is virtual milliseconds; zero LRs are "not recorded".
ROW_FIELDS = ("seq", "t_ms", "kind", "module", "task", "ptr", "old_ptr", "size", "node_size", "lr0", "lr1", "lr2")
#: the module a row carries for an allocation the firmware's statistics do not count (EventFlag.UNTRACKED)
UNTRACKED_MODULE = 0xFF
Row = tuple[int, int, int, int, int, int, int, int, int, int, int, int]


def event_from_row(row: Row, stack: tuple = ()) -> AllocEvent:
    """The :class:`AllocEvent` of one row (t_us = t_ms * 1000), with ``stack`` (rows carry none). Raises
    ValueError on an unknown kind."""
    seq, t_ms, kind, module, task, ptr, old_ptr, size, node_size, lr0, lr1, lr2 = row
    flags = EventFlag.NONE
    if module == UNTRACKED_MODULE:
        module, flags = 0, EventFlag.UNTRACKED
    lrs = tuple(v for v in (lr0, lr1, lr2) if v)
    return AllocEvent(seq, t_ms * 1000, EventKind(kind), ptr, size, node_size, module, task, stack, old_ptr, lrs, flags)
