"""Writer -> reader round trips: rotation, parallel parsing, local maxima, report at a time."""

from __future__ import annotations

import re
import shutil

import pytest

from memhil.events import AllocEvent, EventKind as K
from memhil.heap import Ledger
from memhil.report.memreport import site_report
from memhil.timeline import TimelineReader, TimelineWriter
from memhil.timeline.scan import scan_file
from timeline_synth import BUILD, MAX_BYTES, MAX_FILES, SITE_LEAK, blocks_after, first_kept_seq, log_files, reference


@pytest.fixture(scope="module")
def readers(soak_log):
    directory, _ = soak_log
    return TimelineReader(directory, workers=1, progress=False), TimelineReader(directory, workers=2, progress=False)


def test_rotation_keeps_the_newest_max_files_named_by_date_run_and_index(soak_log):
    directory, writer = soak_log
    files = log_files(directory)
    assert writer.index >= MAX_FILES + 3, "the soak must rotate past the file limit"
    assert len(files) == MAX_FILES
    assert [int(p.stem.rsplit("-", 1)[1]) for p in files] == list(range(writer.index - MAX_FILES + 1, writer.index + 1))
    for p in files:
        assert re.fullmatch(r"memlog\d{8}_5F43FAFD5D7FF-\d+\.bin", p.name)
    # every file but the newest was rotated once it passed max_bytes, by less than one record
    for p in files[:-1]:
        assert MAX_BYTES <= p.stat().st_size < MAX_BYTES + 4096


def test_one_and_two_workers_give_identical_results(readers):
    one, two = readers
    assert one.all_time_size() == two.all_time_size()
    assert one.all_time_size(fill=True) == two.all_time_size(fill=True)
    assert one.modules() == two.modules() == {1, 3, 4}
    for m in one.modules():
        assert one.all_time_size(m) == two.all_time_size(m)
    assert one.stats.events == two.stats.events > 0
    assert one.stats.bad_records == two.stats.bad_records == 0
    assert one.peak() == two.peak()
    assert one.report_at(one.peak()[0]) == two.report_at(two.peak()[0])


def test_local_maxima_match_a_brute_force_ledger(soak, soak_log, readers):
    reader = readers[1]
    ref = reference(soak, 100_000, start_after_seq=first_kept_seq(soak_log[0]))
    assert reader.all_time_size() == [(k * 100, v) for k, v in sorted(ref.totals.items())]
    for m in (1, 3, 4):
        assert reader.all_time_size(m) == [(k * 100, ref.modules[k].get(m, 0)) for k in sorted(ref.totals)]


def test_local_maxima_see_bursts_that_end_inside_the_interval():
    events = [
        AllocEvent(0, 10_000, K.ALLOC, 0x100, 100, 116, 1),
        AllocEvent(1, 20_000, K.ALLOC, 0x200, 1000, 1016, 2),
        AllocEvent(2, 30_000, K.FREE, 0x200),
        AllocEvent(3, 250_000, K.FREE, 0x100),
        AllocEvent(4, 460_000, K.ALLOC, 0x300, 10, 26, 1),
    ]
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        with TimelineWriter(d, build_id="b", platform="stm32f4", engine="qemu") as w:
            w.write_many(events)
            w.tick(900_000)
        r = TimelineReader(d, progress=False)
        # interval 0 peaks at 1132 although it ends at 116; interval 2 starts at 116 before the free
        assert r.all_time_size() == [(0, 1132), (200, 116), (400, 26), (900, 26)]
        assert r.all_time_size(fill=True)[:6] == [(0, 1132), (100, 116), (200, 116), (300, 0), (400, 26), (500, 26)]
        assert r.all_time_size(2) == [(0, 1016), (200, 0), (400, 0), (900, 0)]
        assert sorted(b.ptr for b in r.live_at(50)) == [0x100, 0x200]
        assert [b.ptr for b in r.live_at(350)] == []
        assert r.stats.unclosed_files == []


def test_report_at_equals_ledger_snapshot_grouped_by_site(soak, soak_log, readers):
    reader = readers[0]
    ref = reference(soak, 100_000, start_after_seq=first_kept_seq(soak_log[0]))
    peak_t, peak_bytes = reader.peak()
    ks = sorted(ref.totals)
    for k in (ks[1], ks[len(ks) // 2], peak_t // 100, ks[-1]):
        expected = site_report(blocks_after(soak, ref.max_after[k]), t_us=k * 100_000)
        got = reader.report_at(k * 100 + 37)
        assert got == expected
        assert sum(b.bytes for b in reader.live_at(k * 100)) == ref.totals[k]
    leak_row = next(r for r in reader.report_at(ks[-1] * 100).rows if SITE_LEAK in r.pcs)
    leaks = [e for e in soak if e.stack[:1] == (SITE_LEAK,)]
    assert len(leaks) >= 12 and leak_row.blocks == len(leaks) and leak_row.size == 48 * len(leaks)
    assert min(e.t_us for e in leaks) >= 6 * 3600_000_000


def test_report_in_an_interval_without_events_is_the_level_carried_into_it(soak, readers):
    reader = readers[0]
    ks = [t // 100 for t, _ in reader.all_time_size()]
    i = next(i for i in range(len(ks) - 1) if ks[i + 1] > ks[i] + 1)
    t_empty = (ks[i] + 1) * 100
    ledger = Ledger()
    ledger.apply_many(e for e in soak if e.t_us < t_empty * 1000)
    assert reader.report_at(t_empty) == site_report(ledger.live.values(), t_us=t_empty * 1000)


def test_each_file_parses_alone_from_its_checkpoint(soak_log, readers, tmp_path):
    full = readers[0]
    whole = dict(full.all_time_size())
    files = log_files(soak_log[0])
    for f in (files[0], files[4], files[-1]):
        alone_dir = tmp_path / f.stem
        alone_dir.mkdir()
        shutil.copy(f, alone_dir)
        alone = TimelineReader(alone_dir, progress=False)
        series = alone.all_time_size()
        assert len(series) > 10
        for t, v in series[1:-1]:  # inner intervals lie wholly in this file
            assert whole[t] == v
        assert series[0][1] <= whole[series[0][0]]
        last_t = series[-1][0]
        summary = scan_file(str(f), 100_000)
        assert sum(b.bytes for b in alone.live_at(last_t)) <= whole[last_t]
        assert summary.has_checkpoint and summary.walk.ended


def test_progress_callback_counts_files_and_bytes(soak_log):
    calls = []
    TimelineReader(soak_log[0], workers=2, progress=lambda *a: calls.append(a))
    total = sum(p.stat().st_size for p in log_files(soak_log[0]))
    assert [c[0] for c in calls] == list(range(1, MAX_FILES + 1))
    assert all(c[1] == MAX_FILES for c in calls)
    assert calls[-1][2] == total


def test_build_id_checked_and_reader_metadata(soak_log):
    r = TimelineReader(soak_log[0], build_id=BUILD, progress=False)
    assert (r.build_id, r.platform, r.engine, r.run_id) == (BUILD, "stm32f4", "qemu", "5F43FAFD5D7FF")
    assert r.t_range_ms[1] >= 8 * 3600_000 - 5_000


def test_newest_run_is_read_when_several_runs_share_a_directory(tmp_path):
    old = TimelineWriter(tmp_path, build_id="old-build", platform="stm32f4", engine="qemu", run_id="AAAA")
    old.write(AllocEvent(0, 0, K.ALLOC, 0x10, 8, 24, 1))
    old.close()
    new = TimelineWriter(tmp_path, build_id="new-build", platform="stm32f4", engine="renode", run_id="BBBB")
    new.write(AllocEvent(0, 0, K.ALLOC, 0x10, 100, 116, 2))
    new.close()
    r = TimelineReader(tmp_path, progress=False)
    assert (r.run_id, r.build_id, r.engine) == ("BBBB", "new-build", "renode")
    assert r.all_time_size() == [(0, 116)]


def test_eight_byte_pointers_round_trip(tmp_path):
    big = 0x7FFF_0000_1000
    with TimelineWriter(tmp_path, build_id="host", platform="host", engine="native", ptr_width=8) as w:
        w.write(AllocEvent(0, 5, K.ALLOC, big, 40, 56, 7, 1, (big + 4, big + 8), 0, (big + 4,)))
    assert w.error is None
    blocks = TimelineReader(tmp_path, progress=False).live_at(0)
    assert [(b.ptr, b.stack, b.lrs, b.module) for b in blocks] == [(big, (big + 4, big + 8), (big + 4,), 7)]


def test_default_progress_bar_draws_to_the_end():
    import io

    from memhil.timeline.reader import FilesProgress

    out = io.StringIO()
    bar = FilesProgress(out, live=True)
    bar(1, 4, 2**20)
    bar(4, 4, 4 * 2**20)
    text = out.getvalue()
    assert "[#######.......................]  25% files, 1.0 MiB" in text
    assert text.endswith("[##############################] 100% files, 4.0 MiB\n") and text.count("\n") == 1


def test_progress_in_a_log_is_a_plain_line_per_file():
    import io

    from memhil.timeline.reader import FilesProgress

    out = io.StringIO()
    bar = FilesProgress(out)
    for i in range(1, 4):
        bar(i, 3, i * 2**20)
    assert out.getvalue().splitlines() == [f"parsing timeline: {i}/3 ({100 * i // 3}%) files, {i}.0 MiB" for i in range(1, 4)]
