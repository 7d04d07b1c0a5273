"""Fuzzing the reader: arbitrary bytes after a valid header give skipped records or documented errors only."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from memhil.errors import ConfigError, LogFormatError
from memhil.events import AllocEvent, EventKind as K
from memhil.timeline import TimelineReader
from memhil.timeline import format as fmt
from memhil.timeline.scan import replay, scan_file

HEADER = fmt.FileHeader("b", "stm32f4", "qemu", "FUZZ", 0.0, 0, 0).encode()
CODEC = fmt.ItemCodec(4)
GOOD = [
    fmt.frame(fmt.REC_CHECKPOINT, CODEC.encode_checkpoint(-1, 0, [])),
    fmt.frame(fmt.REC_EVENT, CODEC.encode_event(AllocEvent(0, 1000, K.ALLOC, 0x100, 8, 24, 1, 0, (0x0800_0100,)))),
    fmt.frame(fmt.REC_EVENT, CODEC.encode_event(AllocEvent(1, 150_000, K.REALLOC, 0x200, 50, 66, 2, 0, (), 0x100))),
    fmt.frame(fmt.REC_TICK, fmt.TICK.pack(400_000)),
    fmt.frame(fmt.REC_EVENT, CODEC.encode_event(AllocEvent(2, 500_000, K.FREE, 0x200))),
]

chunks = st.one_of(st.binary(max_size=64), st.sampled_from(GOOD), st.sampled_from(GOOD).map(lambda g: g[: len(g) // 2]),
                   st.builds(lambda g, i: g[:i % len(g)] + bytes([g[i % len(g)] ^ 0x41]) + g[i % len(g) + 1:], st.sampled_from(GOOD), st.integers(0, 30)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(chunks, max_size=12))
def test_random_bytes_after_a_valid_header(parts):
    body = b"".join(parts)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "memlog20250101_FUZZ-0.bin"
        path.write_bytes(HEADER + body)
        s = scan_file(str(path), 100_000)
        if body:
            assert s.walk.records + s.walk.bad_records >= 1
        if all(p in GOOD for p in parts):
            assert (s.walk.records, s.walk.bad_records) == (len(parts), 0)
        assert s.walk.bad_bytes <= len(body)
        assert all(v >= 0 for v in s.totals)
        assert list(s.ks) == sorted(s.ks)
        try:
            r = TimelineReader(d, progress=False)
        except (LogFormatError, ConfigError):
            return
        for t, v in r.all_time_size():
            live = r.live_at(t)
            assert sum(b.bytes for b in live) == v  # the fast scan and the Ledger replay agree
        ledger, _ = replay(path, len(HEADER) + len(body))
        assert ledger.total.current >= 0
