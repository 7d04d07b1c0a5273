"""TimelineWriter(follow=ledger): the session's ledger is read instead of a second copy; the log must read back
exactly as one written with the writer's own ledger, rotations and checkpoints included."""

from __future__ import annotations

import pytest

from memhil.errors import ConfigError
from memhil.heap import Ledger
from memhil.timeline import TimelineReader, TimelineWriter
from memhil.timeline.scan import scan_file
from timeline_synth import log_files, soak_events

KW = dict(build_id="b", platform="stm32f4", engine="qemu", max_bytes=64 * 1024, max_files=50, block_events=64)


def _write(directory, events, *, follow: bool, run_id: str) -> tuple[TimelineWriter, Ledger]:
    ledger = Ledger()
    ledger.apply_many(events[:40])  # the log starts mid-run
    kwargs = {"follow": ledger} if follow else {"start_from": ledger}
    writer = TimelineWriter(directory, run_id=run_id, **KW, **kwargs)
    for i, ev in enumerate(events[40:]):
        writer.write(ev)  # the session's order: the writer sees the event first, then the ledger applies it
        ledger.apply(ev)
        if i % 500 == 0:
            writer.tick(ev.t_us + 1)
    writer.close()
    return writer, ledger


@pytest.fixture(scope="module")
def events():
    return soak_events(2.0, seed=11)


def test_followed_ledger_log_reads_back_like_an_owned_one(events, tmp_path):
    own, _ = _write(tmp_path / "own", events, follow=False, run_id="OWN")
    fol, ledger = _write(tmp_path / "fol", events, follow=True, run_id="FOL")
    assert fol.index == own.index >= 3, "the run must rotate a few times"
    assert fol.events == own.events == len(events) - 40
    a, b = TimelineReader(tmp_path / "own", progress=False), TimelineReader(tmp_path / "fol", progress=False)
    assert a.all_time_size() == b.all_time_size()
    for m in a.modules():
        assert a.all_time_size(m) == b.all_time_size(m)
    t_end = a.t_range_ms[1]
    for t in (t_end // 3, t_end // 2, t_end):
        assert sorted(x.ptr for x in b.live_at(t)) == sorted(x.ptr for x in a.live_at(t))
    assert len(ledger.live) > 0 and fol.ledger is ledger
    assert b.stats.bad_records == 0 and b.stats.unclosed_files == []
    # every file still opens with a checkpoint and parses alone
    for fa, fb in zip(log_files(tmp_path / "own"), log_files(tmp_path / "fol")):
        sa, sb = scan_file(str(fa), 100_000), scan_file(str(fb), 100_000)
        assert sb.has_checkpoint and sb.walk.ended
        assert sa.walk.ended == sb.walk.ended


def test_follow_and_start_from_together_are_refused(tmp_path):
    with pytest.raises(ConfigError) as err:
        TimelineWriter(tmp_path, build_id="b", platform="p", engine="e", follow=Ledger(), start_from=Ledger())
    assert "not both" in str(err.value)
