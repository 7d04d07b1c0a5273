"""A log started mid-run begins with the blocks already live (the session's ledger)."""

from memhil.events import AllocEvent, EventKind
from memhil.heap import Ledger
from memhil.timeline.reader import TimelineReader
from memhil.timeline.writer import TimelineWriter


def test_log_started_mid_run_checkpoints_the_live_blocks(tmp_path):
    ledger = Ledger()
    ledger.apply(AllocEvent(0, 1_000, EventKind.ALLOC, 0x20001000, 100, 116, 2))
    ledger.apply(AllocEvent(1, 2_000, EventKind.ALLOC, 0x20002000, 48, 64, 3))
    with TimelineWriter(tmp_path, build_id="b", platform="p", engine="e", start_from=ledger) as writer:
        writer.write(AllocEvent(2, 500_000, EventKind.FREE, 0x20001000, 0, 116, 2))
        writer.tick(800_000)
    reader = TimelineReader(tmp_path, workers=1)
    assert reader.stats.bad_records == 0
    series = dict(reader.all_time_size())
    assert max(series.values()) == 180  # both seeded blocks were live before the free
    assert sorted(b.ptr for b in reader.live_at(500)) == [0x20001000, 0x20002000]  # local max: before the free
    assert [b.ptr for b in reader.live_at(700)] == [0x20002000]  # the free found its seeded block
