"""Ledger.apply_many (the inlined batch path a trace drain takes) equals apply() one event at a time,
on random streams with the awkward cases: gaps, clocks going back, double allocations, unknown and
double frees, reallocs with and without an old pointer."""

from __future__ import annotations

import random

import pytest

from memhil.events import UNTRACKED_MODULE, AllocEvent, EventFlag, EventKind, event_from_row
from memhil.heap.ledger import Ledger


def stream(seed: int, n: int = 3000) -> list[AllocEvent]:
    rng = random.Random(seed)
    live: list[int] = []
    out: list[AllocEvent] = []
    seq, t = 0, 0
    for _ in range(n):
        seq += 1 if rng.random() > 0.01 else rng.randint(2, 5)  # now and then a gap
        t += rng.choice((0, 1000, 2000)) if rng.random() > 0.01 else -3000  # and a clock step back
        r = rng.random()
        flags = EventFlag.UNTRACKED if rng.random() < 0.1 else EventFlag.NONE
        module, task = rng.randint(0, 4), rng.randint(0, 3)
        if r < 0.45 or not live:
            ptr = rng.choice(live) if live and rng.random() < 0.02 else rng.randrange(0x20000000, 0x20020000, 8)
            kind = EventKind.ALIGNED_ALLOC if rng.random() < 0.05 else EventKind.ALLOC
            live.append(ptr)
            out.append(AllocEvent(seq, t, kind, ptr, rng.randint(1, 512), rng.randint(16, 600), module, task, (), 0, (0x08000101,), flags))
        elif r < 0.85:
            ptr = live.pop(rng.randrange(len(live))) if rng.random() > 0.03 else 0x2FFF0000  # unknown free
            out.append(AllocEvent(seq, t, EventKind.FREE, ptr, 0, 0, module, task, (), 0, (), flags))
        else:
            old = live.pop(rng.randrange(len(live))) if rng.random() > 0.2 else 0
            ptr = rng.randrange(0x20000000, 0x20020000, 8)
            live.append(ptr)
            out.append(AllocEvent(seq, t, EventKind.REALLOC, ptr, rng.randint(1, 512), rng.randint(16, 600), module, task, (), old, (), flags))
    return out


def state(ledger: Ledger):
    return (ledger.live, ledger.total, ledger.modules, ledger.tasks, ledger.anomalies, ledger.last_seq, ledger.t_us, ledger.events)


@pytest.mark.parametrize("seed", range(8))
def test_apply_many_equals_apply(seed):
    events = stream(seed)
    one, batch = Ledger(), Ledger()
    for ev in events:
        one.apply(ev)
    for start in range(0, len(events), 997):  # several batches, as drains come
        batch.apply_many(events[start : start + 997])
    assert state(batch) == state(one)
    assert one.anomalies  # the stream does exercise the general path


def to_row(ev: AllocEvent) -> tuple:
    """The trace ring row of an event (memhil.events.ROW_FIELDS)."""
    lrs = (tuple(ev.lrs) + (0, 0, 0))[:3]
    module = UNTRACKED_MODULE if ev.flags & EventFlag.UNTRACKED else ev.module
    return (ev.seq, ev.t_us // 1000, int(ev.kind), module, ev.task, ev.ptr, ev.old_ptr, ev.size, ev.node_size, *lrs)


@pytest.mark.parametrize("seed", range(8))
def test_apply_rows_equals_apply_of_each_rows_event(seed):
    rows = [to_row(ev) for ev in stream(seed)]
    rng = random.Random(seed)
    for i in rng.sample(range(len(rows)), 60):  # full LR sets and in-place reallocs as well
        seq, t, kind, module, task, ptr, old, size, node, *_ = rows[i]
        rows[i] = (seq, t, kind, module, task, ptr, ptr if kind == 3 else old, size, node, 0x0800A001, 0x0800B001, 0x0800C001)
    one, fast = Ledger(), Ledger()
    for row in rows:
        one.apply(event_from_row(row))
    general = []
    plain_apply = fast.apply
    fast.apply = lambda ev: (general.append(ev.seq), plain_apply(ev))  # type: ignore[method-assign]
    for start in range(0, len(rows), 1024):
        fast.apply_rows(rows[start : start + 1024])
    assert state(fast) == state(one)
    assert 0 < len(general) < len(rows) // 3  # the awkward rows take the general path, the rest do not
    assert one.anomalies and len(one.live) > 10
    assert any(b.flags for b in one.live.values()) and any(len(b.lrs) == 3 for b in one.live.values())


def test_event_from_row_rejects_unknown_kinds():
    with pytest.raises(ValueError):
        event_from_row((1, 0, 9, 0, 0, 0x20000000, 0, 8, 24, 0, 0, 0))
