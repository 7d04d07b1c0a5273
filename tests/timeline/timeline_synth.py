"""Synthetic allocator event streams and a brute-force reference for the timeline tests."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from memhil.events import AllocEvent, EventKind as K
from memhil.heap import Ledger, LiveBlock

BUILD = "elf-sha1:3f2a9c0d"
MAX_BYTES = 48 * 1024
MAX_FILES = 10
BLOCK_EVENTS = 64  # several blocks per 48 KiB file, so intervals span blocks
HOUR_US = 3600 * 1_000_000
MIN_US = 60 * 1_000_000
SITE_WORK = 0x08001235 & ~1
SITE_BUF = 0x08001340
SITE_LEAK = 0x08002222
SITE_RESIZE = 0x08003000


def node(size: int) -> int:
    return (size + 16 + 7) & ~7


def soak_events(hours: float = 8.0, *, seed: int = 7, step_us: int = 2_000_000, leak_after_h: float = 6.0) -> list[AllocEvent]:
    """A soak-like day, compressed: module 1 allocates and frees (bursts inside 100 ms intervals,
    reallocs), module 3 leaks 48 bytes every 10 virtual minutes after ``leak_after_h`` hours."""
    rng = random.Random(seed)
    events: list[AllocEvent] = []
    live: dict[int, int] = {}
    next_ptr = 0x20000100
    seq = 0
    t = 0
    end = int(hours * HOUR_US)
    next_leak = int(leak_after_h * HOUR_US)

    def emit(t_us: int, kind: K, ptr: int, size: int = 0, module: int = 1, stack: tuple[int, ...] = (), old: int = 0, task: int = 2) -> None:
        nonlocal seq
        events.append(AllocEvent(seq, t_us, kind, ptr, size, node(size) if size else 0, module, task, stack, old, (stack[0] | 1,) if stack else ()))
        seq += 1

    while t < end:
        t += rng.randrange(step_us // 2, step_us * 3 // 2)
        if t >= next_leak:
            emit(t, K.ALLOC, next_ptr, 48, module=3, stack=(SITE_LEAK, 0x08000500), task=5)
            next_ptr += 0x40
            next_leak += 10 * MIN_US
        # a burst inside one interval: peak then back down
        burst = []
        for i in range(rng.randrange(1, 4)):
            size = rng.choice((16, 32, 100, 256))
            emit(t + i * 1000, K.ALLOC, next_ptr, size, stack=(SITE_WORK, 0x08000400))
            burst.append(next_ptr)
            next_ptr += 0x200
        for i, p in enumerate(burst[1:]):
            emit(t + 20_000 + i * 1000, K.FREE, p)
        live[burst[0]] = 1
        r = rng.random()
        if r < 0.3 and live:
            p = rng.choice(sorted(live))
            del live[p]
            emit(t + 50_000, K.FREE, p)
        elif r < 0.4 and live:
            p = rng.choice(sorted(live))
            del live[p]
            emit(t + 50_000, K.REALLOC, next_ptr, 300, stack=(SITE_RESIZE,), old=p)
            live[next_ptr] = 1
            next_ptr += 0x200
        elif r < 0.45:
            emit(t + 60_000, K.ALIGNED_ALLOC, next_ptr, 64, module=4, stack=(SITE_BUF,))
            live[next_ptr] = 1
            next_ptr += 0x200
        if len(live) > 40:  # keep module 1 bounded: it is not the leaker
            for p in sorted(live)[:20]:
                del live[p]
                emit(t + 80_000, K.FREE, p)
    return events


@dataclass
class Reference:
    """Brute-force local maxima from a Ledger applied event by event."""

    totals: dict[int, int] = field(default_factory=dict)
    modules: dict[int, dict[int, int]] = field(default_factory=dict)
    max_after: dict[int, int] = field(default_factory=dict)  # interval -> number of events applied at its max


def reference(events: list[AllocEvent], interval_us: int, *, start_after_seq: int = -1) -> Reference:
    """Local maxima per interval over the instants after event ``start_after_seq`` (a checkpoint) onward."""
    ledger = Ledger()
    ref = Reference()
    i = 0
    while i < len(events) and events[i].seq <= start_after_seq:
        ledger.apply(events[i])
        i += 1
    k = ledger.t_us // interval_us
    ref.totals[k] = ledger.total.current
    ref.max_after[k] = i
    ref.modules[k] = {m: s.current for m, s in ledger.modules.items()}
    for n, ev in enumerate(events[i:], start=i):
        k = ev.t_us // interval_us
        if k not in ref.totals:
            ref.totals[k] = ledger.total.current
            ref.max_after[k] = n
            ref.modules[k] = {m: s.current for m, s in ledger.modules.items()}
        ledger.apply(ev)
        if ledger.total.current > ref.totals[k]:
            ref.totals[k] = ledger.total.current
            ref.max_after[k] = n + 1
        mods = ref.modules[k]
        for m, s in ledger.modules.items():
            if s.current > mods.get(m, 0):
                mods[m] = s.current
    return ref


def blocks_after(events: list[AllocEvent], n: int) -> list[LiveBlock]:
    ledger = Ledger()
    ledger.apply_many(events[:n])
    return list(ledger.snapshot().blocks.values())


def log_files(directory: Path) -> list[Path]:
    """The log files of a directory in index order."""
    return sorted(Path(directory).glob("memlog*.bin"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))


def first_kept_seq(directory: Path) -> int:
    """The checkpoint sequence number of the oldest kept file (events up to it are in the checkpoint)."""
    from memhil.timeline.scan import scan_file

    return scan_file(str(log_files(directory)[0]), 100_000).first_seq
