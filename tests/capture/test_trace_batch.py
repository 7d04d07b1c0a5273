"""The trace ring's batch path (decode_records, _emit_many, the drain-at write) against the one-record path."""

from __future__ import annotations

import random
import struct

import pytest
from capture_fakes import FakeEngine, FakeImage, thumb

from memhil.capture import create_capture
from memhil.capture.trace import MAGIC, REC_SIZE, decode_record, decode_records
from memhil.errors import CaptureError

RING, HALF, DRAIN_AT, CAP = 0x20010000, 0x08000400, 0x20000000, 8


def rec(seq: int, kind: int, module: int, lrs: tuple[int, int, int], t_ms: int = 7) -> bytes:
    return struct.pack("<IIBBHIIII3I", seq, t_ms, kind, module, seq % 5, (0x20004000 + 8 * seq) & 0xFFFFFFFF, 0x20003000 if kind == 3 else 0,
                       seq % 600, seq % 600 + 16, *lrs)


def mixed(n: int, seed: int = 1) -> bytes:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        lrs = tuple(rnd.choice((0, 0x08001001 + 2 * i)) for _ in range(3))
        out.append(rec(0xFFFFFFF0 + i & 0xFFFFFFFF, rnd.choice((1, 2, 3, 4)), rnd.choice((0, 1, 3, 0xFF)), lrs, rnd.getrandbits(32)))
    return b"".join(out)


def test_batch_equals_one_by_one():
    raw = mixed(300)
    batch = decode_records(raw)
    single = [decode_record(raw, i * REC_SIZE) for i in range(300)]
    assert batch == single  # every field, flags and lrs included
    assert [type(e.kind) for e in batch] == [type(e.kind) for e in single]
    assert decode_records(raw, 10) == single[:10]
    assert decode_records(b"") == []


def test_batch_bad_input():
    with pytest.raises(CaptureError, match="unknown event kind 9"):
        decode_records(rec(0, 1, 1, (1, 2, 3)) + rec(1, 9, 1, (1, 2, 3)))
    with pytest.raises(CaptureError, match="whole number"):
        decode_records(b"\0" * (REC_SIZE + 3))


def _ring(eng: FakeEngine, head: int, tail: int, records: dict[int, bytes]) -> None:
    eng._write(RING, struct.pack("<IHHIIIII", MAGIC, 1, 40, CAP, 0, head, tail, 0))
    for counter, raw in records.items():
        eng._write(RING + 28 + (counter % CAP) * 40, raw)


def _image(drain_at: bool) -> FakeImage:
    img = FakeImage()
    img.add_object("g_memhil_trace", RING, 28 + CAP * 40)
    img.add_func("memhil_trace_half_full", HALF, thumb(0x4770))
    if drain_at:
        img.add_object("g_memhil_trace_drain_at", DRAIN_AT, 4)
    return img


def test_attach_asks_for_whole_ring_drains_and_keeps_order_across_sinks():
    eng = FakeEngine()
    eng._write(DRAIN_AT, struct.pack("<I", CAP // 2))
    _ring(eng, 5, 0, {c: rec(c, 1, 1, (1, 2, 3)) for c in range(5)})
    order: list = []
    cap = create_capture("trace", eng, _image(True), sinks=[lambda e: order.append(("a", e.seq)), lambda e: order.append(("b", e.seq))])
    cap.attach()
    assert eng.get32(DRAIN_AT) == CAP and cap.drain_at == CAP
    assert cap.drain() == 5 and cap.events == 5
    assert order == [(s, i) for i in range(5) for s in "ab"]  # each event to every sink before the next


def test_old_firmware_without_drain_at_is_left_alone():
    eng = FakeEngine()
    _ring(eng, 0, 0, {})
    cap = create_capture("trace", eng, _image(False), sinks=[])
    cap.attach()
    assert cap.drain_at is None and eng.get32(DRAIN_AT) == 0


def test_gap_inside_a_batch_is_reported():
    eng = FakeEngine()
    _ring(eng, 4, 0, {0: rec(0, 1, 1, (1, 2, 3)), 1: rec(1, 1, 1, (1, 2, 3)), 2: rec(5, 1, 1, (1, 2, 3)), 3: rec(6, 1, 1, (1, 2, 3))})
    got: list = []
    cap = create_capture("trace", eng, _image(True), sinks=[got.append])
    cap.attach()
    assert cap.drain() == 4 and [e.seq for e in got] == [0, 1, 5, 6]
    assert [(g.after_seq, g.next_seq, g.missing, g.reason) for g in cap.gaps] == [(1, 5, 3, "seq-gap")]


def test_bad_kind_mid_batch_keeps_the_records_before_it():
    eng = FakeEngine()
    _ring(eng, 3, 0, {0: rec(0, 1, 1, (1, 2, 3)), 1: rec(1, 2, 1, (1, 2, 3)), 2: rec(2, 7, 1, (1, 2, 3))})
    got: list = []
    cap = create_capture("trace", eng, _image(True), sinks=[got.append])
    cap.attach()
    with pytest.raises(CaptureError, match="unknown event kind 7"):
        cap.drain()
    assert [e.seq for e in got] == [0, 1]
