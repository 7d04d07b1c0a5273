"""TraceCapture on a fake ring: wrap-around, sequence gaps, lost counter, half-full drains, bad rings."""

from __future__ import annotations

import logging
import struct

import pytest
from capture_fakes import FakeEngine, FakeImage, thumb

from memhil.capture import TraceCapture, create_capture
from memhil.capture.trace import MAGIC, decode_record
from memhil.errors import CaptureError
from memhil.events import EventFlag, EventKind

RING = 0x20010000
HALF = 0x08000400
CAP = 8
RECS = RING + 28


def image(with_ring: bool = True) -> FakeImage:
    img = FakeImage()
    if with_ring:
        img.add_object("g_memhil_trace", RING, 28 + CAP * 40)
    img.add_func("memhil_trace_half_full", HALF, thumb(0x4770))
    return img


def rec(seq: int, kind: int = 1, ptr: int = 0x20004000, module: int = 3, size: int = 16, lrs=(0x08001235, 0, 0)) -> bytes:
    return struct.pack("<IIBBHIIII3I", seq, seq * 2, kind, module, 7, ptr + 16 * seq, 0, size, size + 16, *lrs)


def ring(eng: FakeEngine, head: int, tail: int, records: dict[int, bytes], lost: int = 0, magic: int = MAGIC) -> None:
    eng._write(RING, struct.pack("<IHHIIIII", magic, 1, 40, CAP, 0, head, tail, lost))
    for counter, raw in records.items():
        eng._write(RECS + (counter % CAP) * 40, raw)


def test_decode_record():
    ev = decode_record(rec(5, kind=4, module=0xFF))
    assert (ev.seq, ev.t_us, ev.kind, ev.module, ev.task, ev.node_size) == (5, 10_000, EventKind.ALIGNED_ALLOC, 0, 7, 32)
    assert ev.flags == EventFlag.UNTRACKED and ev.lrs == (0x08001235,)
    with pytest.raises(CaptureError, match="unknown event kind 9"):
        decode_record(rec(1, kind=9))


def test_drain_wraps_around_and_writes_tail():
    eng = FakeEngine()
    events: list = []
    ring(eng, head=11, tail=6, records={c: rec(c) for c in range(6, 11)})
    cap = create_capture("trace", eng, image(), sinks=[events.append])
    cap.attach()
    assert eng.get32(RING + 12) == 1  # enabled
    assert HALF in eng.bps
    assert cap.drain() == 5
    assert [e.seq for e in events] == [6, 7, 8, 9, 10]
    assert [e.ptr for e in events] == [0x20004000 + 16 * s for s in range(6, 11)]
    assert eng.get32(RING + 20) == 11 and cap.gaps == []
    assert cap.drain() == 0
    cap.detach()
    assert eng.get32(RING + 12) == 0 and not eng.bps


def test_half_full_breakpoint_drains_through_the_stop(caplog):
    eng = FakeEngine()
    events: list = []
    ring(eng, head=0, tail=0, records={})
    cap = TraceCapture(eng, image(), sinks=[events.append])
    cap.attach()
    ring(eng, head=4, tail=0, records={c: rec(c) for c in range(4)})
    eng.hit(HALF)
    assert [e.seq for e in events] == [0, 1, 2, 3] and cap.drains == 1
    # the firmware keeps running: counters pass 2**32 without confusing the drain
    ring(eng, head=2, tail=0xFFFFFFFE, records={0xFFFFFFFE: rec(4), 0xFFFFFFFF: rec(5), 0: rec(6), 1: rec(7)})
    eng.put32(RING + 12, 1)
    cap.drain()
    assert [e.seq for e in events][-4:] == [4, 5, 6, 7] and cap.gaps == []
    cap.detach()


def test_seq_gap_and_lost_are_reported(caplog):
    eng = FakeEngine()
    events: list = []
    ring(eng, head=3, tail=0, records={0: rec(10), 1: rec(11), 2: rec(14)}, lost=0)
    cap = TraceCapture(eng, image(), sinks=[events.append])
    cap.attach()
    with caplog.at_level(logging.WARNING, logger="memhil.capture"):
        cap.drain()
        ring(eng, head=3, tail=3, records={}, lost=2)
        cap.drain()
    assert [(g.after_seq, g.next_seq, g.missing, g.reason) for g in cap.gaps] == [(11, 14, 2, "seq-gap"), (14, -1, 2, "lost")]
    assert "missing between seq 11 and 14" in caplog.text and "dropped 2" in caplog.text
    assert len(events) == 3  # what arrived is kept
    cap.detach()


def test_missing_ring_and_bad_rings():
    with pytest.raises(CaptureError, match="LOSCFG_MEM_TRACE"):
        TraceCapture(FakeEngine(), image(with_ring=False))
    eng = FakeEngine()
    ring(eng, 0, 0, {}, magic=0)
    with pytest.raises(CaptureError, match="magic"):
        TraceCapture(eng, image()).attach()
    assert not eng.bps
    eng = FakeEngine()
    ring(eng, head=100, tail=0, records={})
    cap = TraceCapture(eng, image())
    cap.attach()
    with pytest.raises(CaptureError, match="room for 8"):
        cap.drain()
