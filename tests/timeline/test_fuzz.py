"""Fuzzing the reader: arbitrary bytes after a valid header give skipped records or documented errors only."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings, strategies as st

from memhil.errors import ConfigError, LogFormatError
from memhil.events import AllocEvent, EventKind as K
from memhil.timeline import TimelineReader, TimelineWriter
from memhil.timeline import format as fmt
from memhil.timeline.scan import RecordWalk, iter_records, replay, scan_file

HEADER = fmt.FileHeader("b", "stm32f4", "qemu", "FUZZ", 0.0, 0, 0).encode()


def _writer_records() -> list[bytes]:
    """The records a real writer makes: checkpoint, a block of 2 events, a tick, a block of 1, END."""
    with tempfile.TemporaryDirectory() as d:
        with TimelineWriter(d, build_id="b", platform="stm32f4", engine="qemu", run_id="FUZZ", block_events=2) as w:
            w.write(AllocEvent(0, 1000, K.ALLOC, 0x100, 8, 24, 1, 0, (0x0800_0100,)))
            w.write(AllocEvent(1, 150_000, K.REALLOC, 0x200, 50, 66, 2, 0, (), 0x100))
            w.tick(400_000)
            w.write(AllocEvent(2, 500_000, K.FREE, 0x200))
        data = next(Path(d).glob("memlog*.bin")).read_bytes()
    head = fmt.decode_header(data)
    spans = [off for _, off, _, _ in iter_records(data, head.records_start, RecordWalk())] + [len(data)]
    return [data[a:b] for a, b in zip(spans, spans[1:])]


GOOD = _writer_records()

chunks = st.one_of(st.binary(max_size=64), st.sampled_from(GOOD), st.sampled_from(GOOD).map(lambda g: g[: len(g) // 2]),
                   st.builds(lambda g, i: g[:i % len(g)] + bytes([g[i % len(g)] ^ 0x41]) + g[i % len(g) + 1:], st.sampled_from(GOOD), st.integers(0, 200)))


def test_writer_records_are_the_expected_five():
    assert [g[4] for g in GOOD] == [fmt.REC_CHECKPOINT, fmt.REC_BLOCK, fmt.REC_TICK, fmt.REC_BLOCK, fmt.REC_END]
    assert all(len(g) % 8 == 0 for g in GOOD)


def _check(parts: list[bytes]) -> None:
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
        # the scan and the replay accept the same blocks
        ledger, _ = replay(path, (len(HEADER) + len(body) + 1) * fmt.POS_SCALE)
        assert ledger.events == s.events
        assert ledger.total.current >= 0
        try:
            r = TimelineReader(d, progress=False)
        except (LogFormatError, ConfigError):
            return
        series = r.all_time_size()
        if parts == GOOD[: len(parts)]:  # a real file cut after a record: the fast scan and the Ledger replay agree
            for t, v in series:
                assert sum(b.bytes for b in r.live_at(t)) == v
        else:
            for t, _ in series:
                r.live_at(t)  # any position the scan hands out replays


def test_whole_writer_file_scan_equals_replay_at_every_interval():
    for n in range(len(GOOD) + 1):
        _check(GOOD[:n])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(chunks, max_size=12))
def test_random_bytes_after_a_valid_header(parts):
    _check(parts)
