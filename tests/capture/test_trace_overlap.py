"""Trace drains that copy at the stop and decode after the resume (Engine.add_background)."""

from __future__ import annotations

import struct

import pytest
from capture_fakes import FakeEngine, FakeImage, thumb

from memhil.capture import create_capture
from memhil.capture.trace import MAGIC
from memhil.contract import DRAIN_AT_SYMBOL, HALF_FULL_FUNCTION, RING_SYMBOL
from memhil.engines.base import Capability
from memhil.errors import CaptureError, EngineError

RING, HALF, CAP = 0x20010000, 0x08000400, 8


class BackgroundEngine(FakeEngine):
    """A fake engine that runs background work when told the target resumed, and refuses target access then."""

    def __init__(self) -> None:
        super().__init__()
        self.capabilities = Capability.BREAKPOINTS | Capability.BACKGROUND
        self.works: list = []
        self.running = False

    def add_background(self, work, *, poll: bool = False) -> None:
        assert not poll, "no live window here: nothing to poll"
        self.works.append(work)

    def remove_background(self, work) -> None:
        self.works.remove(work)

    def resume(self) -> None:
        self.running = True
        try:
            for work in list(self.works):
                work()
        finally:
            self.running = False

    def read_memory(self, address: int, size: int) -> bytes:
        if self.running:
            raise EngineError("target running")
        return super().read_memory(address, size)

    def write_memory(self, address: int, data: bytes) -> None:
        if self.running:
            raise EngineError("target running")
        super().write_memory(address, data)


def rec(seq: int, kind: int = 1) -> bytes:
    return struct.pack("<IIBBHIIII3I", seq, 3, kind, 1, 0, 0x20004000 + 16 * seq, 0, 8, 24, 0x08001001, 0, 0)


def fill(eng: FakeEngine, first: int, count: int, kinds: dict[int, int] | None = None) -> None:
    """The firmware wrote records first..first+count-1 (seq = counter) and advanced head."""
    kinds = kinds or {}
    for c in range(first, first + count):
        eng._write(RING + 28 + (c % CAP) * 40, rec(c, kinds.get(c, 1)))
    eng.put32(RING + 16, first + count)


def setup(sinks, *, head: int = 0, drain_at: bool = False) -> tuple[BackgroundEngine, object]:
    """An attached trace capture on an empty ring whose head and tail are ``head``; ``drain_at``: the firmware
    has ``g_memhil_trace_drain_at`` (the host sets it to the capacity: the doorbell rings when the ring is full)."""
    eng = BackgroundEngine()
    eng._write(RING, struct.pack("<IHHIIIII", MAGIC, 1, 40, CAP, 0, head, head, 0))
    img = FakeImage()
    img.add_object(RING_SYMBOL, RING, 28 + CAP * 40)
    img.add_func(HALF_FULL_FUNCTION, HALF, thumb(0x4770))
    if drain_at:
        img.add_object(DRAIN_AT_SYMBOL, 0x20000000, 4)
    cap = create_capture("trace", eng, img, sinks=sinks)
    cap.attach()
    return eng, cap


class HostSink(list):
    host_only = True

    def __call__(self, event) -> None:
        self.append(event.seq)


def test_stop_copies_and_frees_slots_decoding_waits_for_the_resume():
    got = HostSink()
    eng, cap = setup([got])
    fill(eng, 0, 8)
    assert eng.hit(HALF)
    assert got == [] and eng.get32(RING + 20) == 8  # slots freed at the stop, nothing decoded yet
    fill(eng, 8, 8)  # the firmware refills the ring before the host decoded the first batch
    eng.resume()
    assert got == list(range(8))
    assert eng.hit(HALF)
    fill(eng, 16, 3)
    assert cap.drain() == 8 + 3  # the pending batch first, then the ring, in order
    assert got == list(range(19)) and cap.events == 19 and cap.deferred_drains == 2 and not cap.gaps
    cap.detach()
    assert eng.works == []


def test_a_sink_that_may_read_the_target_is_fed_at_the_stop():
    seen: list = []
    eng, cap = setup([lambda ev: seen.append(eng.read_memory(RING, 4))])  # no host_only: may read the target
    fill(eng, 0, 8)
    eng.hit(HALF)
    assert len(seen) == 8 and cap.deferred_drains == 0
    eng.resume()
    assert len(seen) == 8


def test_bad_record_in_a_pending_batch_is_raised_at_the_next_drain_and_later_records_are_kept():
    got = HostSink()
    eng, cap = setup([got])
    fill(eng, 0, 8, kinds={5: 9})
    eng.hit(HALF)
    fill(eng, 8, 8)
    eng.resume()  # the error is kept, not raised into the engine's run loop
    assert got == [0, 1, 2, 3, 4]
    eng.hit(HALF)
    eng.resume()
    with pytest.raises(CaptureError, match="unknown event kind 9"):
        cap.drain()
    assert got == [0, 1, 2, 3, 4] + list(range(8, 16))
    assert [(g.after_seq, g.next_seq, g.missing) for g in cap.gaps] == [(4, 8, 3)]  # never silent
    assert cap.drain() == 0  # raised once


def test_engine_without_background_decodes_at_the_stop():
    got = HostSink()
    eng, cap = setup([got])
    eng.capabilities = Capability.BREAKPOINTS
    cap.detach()
    cap.attach()
    fill(eng, 0, 8)
    eng.hit(HALF)
    assert got == list(range(8)) and cap.deferred_drains == 0


def test_full_ring_is_read_with_its_header_in_one_request_also_when_wrapped():
    got = HostSink()
    eng, cap = setup([got], head=5, drain_at=True)
    assert cap.drain_at == CAP
    cap.last_seq = 4
    fill(eng, 5, CAP)  # slots 5, 6, 7, 0, 1, ...: the copy wraps
    before = eng.round_trips
    eng.hit(HALF)
    assert eng.round_trips - before == 2  # the ring with its header, then tail
    eng.resume()
    assert got == list(range(5, 5 + CAP)) and eng.get32(RING + 20) == 5 + CAP and not cap.gaps


def test_a_stop_that_decodes_at_once_also_reads_a_full_ring_in_one_request():
    seen: list = []
    eng, cap = setup([lambda ev: seen.append(ev.seq)], drain_at=True)  # no host_only: fed at the stop
    assert cap.drain_at == CAP
    fill(eng, 0, CAP)
    before = eng.round_trips
    eng.hit(HALF)
    assert eng.round_trips - before == 2  # the ring with its header, then tail
    assert seen == list(range(CAP)) and cap.deferred_drains == 0 and eng.get32(RING + 20) == CAP
