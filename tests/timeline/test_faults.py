"""Bad input and faults: damaged files, missing files, foreign logs, full disks, bad arguments."""

from __future__ import annotations

import errno
import io
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memhil.errors import ConfigError, LogFormatError
from memhil.events import AllocEvent, EventKind as K
from memhil.timeline import TimelineReader, TimelineWriteError, TimelineWriter
from memhil.timeline import format as fmt
from memhil.timeline.scan import RecordWalk, iter_records, scan_file
from timeline_synth import BLOCK_EVENTS, BUILD, log_files

ROOT = Path(__file__).resolve().parents[2]


def _events(n: int, start: int = 0):
    for i in range(start, start + n):
        yield AllocEvent(i, i * 50_000, K.ALLOC if i % 2 == 0 else K.FREE, 0x2000_0000 + (i // 2) * 64, 24, 40, 1, 1, (0x0800_1000,))


def test_truncated_file_keeps_everything_before_the_cut(soak_copy):
    last = log_files(soak_copy)[-1]
    intact = scan_file(str(last), 100_000)
    data = last.read_bytes()
    last.write_bytes(data[: len(data) * 2 // 3 + 5])  # cut in the middle of a record
    cut = scan_file(str(last), 100_000)
    assert cut.walk.bad_records == 1
    assert not cut.walk.ended
    assert 0 < cut.events < intact.events
    n = len(cut.ks) - 1  # intervals before the cut are unchanged
    assert list(cut.ks[:n]) == list(intact.ks[:n]) and list(cut.totals[:n]) == list(intact.totals[:n])
    r = TimelineReader(soak_copy, progress=False)
    assert r.stats.bad_records == 1 and r.stats.unclosed_files == [str(last)]


def test_bit_flip_skips_one_block_and_resynchronises(soak_copy):
    f = log_files(soak_copy)[3]
    intact = scan_file(str(f), 100_000)
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x10
    f.write_bytes(bytes(data))
    damaged = scan_file(str(f), 100_000)
    assert damaged.walk.bad_records == 1
    assert damaged.walk.records == intact.walk.records - 1
    # the whole block is lost (BLOCK_EVENTS events), and shows as a gap in sequence numbers
    assert damaged.lost_events == BLOCK_EVENTS == intact.events - damaged.events
    assert damaged.walk.ended and damaged.bad_events == 0
    # later blocks carry the writer's levels: intervals after the damage are exact again
    whole, cut = dict(zip(intact.ks, intact.totals)), dict(zip(damaged.ks, damaged.totals))
    later = list(damaged.ks)[-5:]
    assert [cut[k] for k in later] == [whole[k] for k in later]
    assert len(cut) < len(whole)  # the lost block's own intervals are gone
    r = TimelineReader(soak_copy, workers=2, progress=False)
    assert r.stats.bad_records == 1 and r.stats.lost_events == BLOCK_EVENTS
    assert r.stats.events == sum(scan_file(str(p), 100_000).events for p in log_files(soak_copy))


def test_damaged_checkpoint_still_reads_the_events_at_the_right_level(soak_copy):
    f = log_files(soak_copy)[2]
    intact = scan_file(str(f), 100_000)
    data = bytearray(f.read_bytes())
    head = fmt.decode_header(bytes(data[:4096]))
    data[head.records_start + fmt.FRAME.size + 3] ^= 0xFF
    f.write_bytes(bytes(data))
    s = scan_file(str(f), 100_000)
    assert not s.has_checkpoint and s.walk.bad_records == 1 and s.events == intact.events
    assert list(s.totals)[-10:] == list(intact.totals)[-10:]  # block levels stand in for the checkpoint


def test_block_with_a_good_crc_but_bad_content_is_counted_undecodable(tmp_path):
    with TimelineWriter(tmp_path, build_id="b", platform="p", engine="e", block_events=2) as w:
        w.write_many(_events(6))
    path = log_files(tmp_path)[0]
    data = bytearray(path.read_bytes())
    head = fmt.decode_header(bytes(data))
    offs = [(t, off, p, n) for t, off, p, n in iter_records(bytes(data), head.records_start, RecordWalk())]
    _, off, p, n = [r for r in offs if r[0] == fmt.REC_BLOCK][1]
    payload = bytearray(data[p:p + n])
    payload[fmt.BLOCK_HEAD.size + 16] = 9  # kind 9 of the first entry, then a fresh CRC
    data[off:off + fmt.align8(fmt.FRAME.size + n)] = fmt.frame(fmt.REC_BLOCK, bytes(payload))
    path.write_bytes(bytes(data))
    s = scan_file(str(path), 100_000)
    assert (s.bad_events, s.walk.bad_records, s.events, s.lost_events) == (1, 0, 4, 2)
    r = TimelineReader(tmp_path, progress=False)
    assert r.stats.undecodable == 1 and r.stats.events == 4


def test_missing_middle_file_is_a_gap_not_merged(soak_copy):
    files = log_files(soak_copy)
    files[4].unlink()
    r = TimelineReader(soak_copy, progress=False)
    assert len(r.gaps) == 1
    gap = r.gaps[0]
    assert gap.missing == (int(files[4].stem.rsplit("-", 1)[1]),)
    assert gap.after == str(files[5]) and gap.skipped == tuple(str(p) for p in files[:4])
    assert r.files == [str(p) for p in files[5:]]  # the newest contiguous run, as the memory-log profiler reads it
    whole = TimelineReader(soak_copy, span="all", progress=False)
    assert len(whole.files) == len(files) - 1
    filled = dict(whole.all_time_size(fill=True))
    ts = [t for t, _ in whole.all_time_size()]
    assert len(filled) < (ts[-1] - ts[0]) // 100 + 1  # no invented values across the gap
    hole = next(t for t in range(ts[0], ts[-1], 100) if t not in filled)
    with pytest.raises(ConfigError, match="gap"):
        whole.report_at(hole)


def test_log_from_another_build_is_refused_naming_both(soak_log):
    with pytest.raises(LogFormatError) as info:
        TimelineReader(soak_log[0], build_id="elf-sha1:deadbeef", progress=False)
    assert BUILD in str(info.value) and "elf-sha1:deadbeef" in str(info.value)
    assert "Hint:" in str(info.value)


def test_mixed_builds_in_one_run_are_refused(tmp_path):
    for i, build in enumerate(("build-a", "build-b")):
        w = TimelineWriter(tmp_path, build_id=build, platform="stm32f4", engine="qemu", run_id="RUN1")
        w.write(AllocEvent(0, 0, K.ALLOC, 0x10, 8, 24, 1))
        w.close()
        w.path.rename(tmp_path / f"memlog20250101_RUN1-{i}.bin")
    with pytest.raises(LogFormatError, match="build-a and build-b"):
        TimelineReader(tmp_path, progress=False)


def test_not_a_log_and_unknown_version_are_skipped_or_refused(tmp_path):
    (tmp_path / "memlog_garbage-0.bin").write_bytes(b"hello, not a log" * 10)
    with pytest.raises(LogFormatError, match="no readable timeline log"):
        TimelineReader(tmp_path, progress=False)
    w = TimelineWriter(tmp_path, build_id="b", platform="p", engine="e")
    w.write_many(_events(4))
    w.close()
    r = TimelineReader(tmp_path, progress=False)
    assert r.stats.unreadable_files == [str(tmp_path / "memlog_garbage-0.bin")]
    head = fmt.FileHeader("b", "p", "e", "R", 0.0, 0, 0, version=9).encode()
    with pytest.raises(LogFormatError, match="version 9"):
        fmt.decode_header(head)
    v1 = fmt.FileHeader("b", "p", "e", "R", 0.0, 0, 0, version=1).encode()
    with pytest.raises(LogFormatError, match="version 1 .* no longer read") as info:
        fmt.decode_header(v1)
    assert "9b34b6e" in str(info.value)
    (tmp_path / "memlog20240101_OLD-0.bin").write_bytes(v1 + bytes(64))
    r = TimelineReader(tmp_path, progress=False)
    assert str(tmp_path / "memlog20240101_OLD-0.bin") in r.stats.unreadable_files
    bad_crc = bytearray(fmt.FileHeader("b", "p", "e", "R", 0.0, 0, 0).encode())
    bad_crc[20] ^= 1
    with pytest.raises(LogFormatError, match="checksum"):
        fmt.decode_header(bytes(bad_crc))


def test_bad_reader_arguments_and_queries(tmp_path):
    with pytest.raises(LogFormatError, match="does not exist"):
        TimelineReader(tmp_path / "nope")
    with pytest.raises(LogFormatError, match="no readable"):
        TimelineReader(tmp_path)
    for kwargs in ({"interval_ms": 0}, {"workers": 0}, {"span": "some"}):
        with pytest.raises(ConfigError):
            TimelineReader(tmp_path, **kwargs)
    with TimelineWriter(tmp_path, build_id="b", platform="p", engine="e") as w:
        w.write_many(_events(10))
    r = TimelineReader(tmp_path, progress=False)
    with pytest.raises(ConfigError, match="outside the timeline"):
        r.report_at(10_000_000)
    assert r.all_time_size(module=99) == [(t, 0) for t, _ in r.all_time_size()]


def test_bad_writer_arguments(tmp_path):
    with pytest.raises(ConfigError):
        TimelineWriter(tmp_path, build_id="b", platform="p", engine="e", max_bytes=100)
    with pytest.raises(ConfigError):
        TimelineWriter(tmp_path, build_id="b", platform="p", engine="e", max_files=0)
    with pytest.raises(ConfigError):
        TimelineWriter(tmp_path, build_id="b", platform="p", engine="e", run_id="../x")
    for bad in (0, 70_000, "4"):
        with pytest.raises(ConfigError, match="block_events"):
            TimelineWriter(tmp_path, build_id="b", platform="p", engine="e", block_events=bad)
    w = TimelineWriter(tmp_path, build_id="b", platform="p", engine="e", max_bytes="2KiB")
    assert w.max_bytes == 2048
    w.close()


class _FullDisk(io.RawIOBase):
    """A file that accepts ``room`` bytes, then fails like a full disk."""

    def __init__(self, room: int) -> None:
        self.room = room

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return len(data)


def test_disk_full_stops_logging_without_raising(tmp_path, caplog):
    class Writer(TimelineWriter):
        def _open(self, path):
            return _FullDisk(3000 if self.index == 0 else 0)

    caplog.set_level(logging.WARNING, logger="memhil.timeline")
    w = Writer(tmp_path, build_id="b", platform="p", engine="e", block_events=4)
    for ev in _events(200):  # unbuffered fake: the 3000 bytes run out after ~40 events
        w.write(ev)
    assert isinstance(w.error, TimelineWriteError) and isinstance(w.error, LogFormatError)
    assert "disk is full" in str(w.error) and "carried on" in str(w.error)
    # the events of the block that failed to write count as dropped, with all later ones
    assert w.dropped > 100 and w.events + w.dropped == 200 and w.events % 4 == 0 and w.events > 0
    assert len([r for r in caplog.records if "timeline logging stopped" in r.getMessage()]) == 1
    w.close()  # safe after an error
    assert not w.active


def test_unwritable_directory_sets_error(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    w = TimelineWriter(blocker / "logs", build_id="b", platform="p", engine="e")
    w.write_many(_events(3))
    assert w.error is not None and w.dropped == 3

    class Denied(TimelineWriter):
        def _open(self, path):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))

    d = Denied(tmp_path / "ro", build_id="b", platform="p", engine="e")
    d.write_many(_events(2))
    assert "not writable" in str(d.error) and d.dropped == 2


def test_event_that_does_not_fit_the_format_stops_logging_cleanly(tmp_path):
    w = TimelineWriter(tmp_path, build_id="b", platform="p", engine="e")
    w.write_many(_events(3))
    w.write(AllocEvent(3, 0, K.ALLOC, 1 << 40, 8, 24, 1))
    assert w.error is not None and "does not fit" in str(w.error)
    assert (w.events, w.dropped) == (3, 0)
    w.close()
    assert TimelineReader(tmp_path, progress=False).stats.events == 3  # the events before it were kept


def test_file_size_limit_in_a_subprocess_behaves_like_a_full_disk(tmp_path):
    script = textwrap.dedent("""
        import resource, signal, sys
        from memhil.events import AllocEvent, EventKind as K
        from memhil.timeline import TimelineWriter
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        w = TimelineWriter(sys.argv[1], build_id="b", platform="p", engine="e", max_bytes=8 << 20)
        for i in range(100000):
            w.write(AllocEvent(i, i * 1000, K.ALLOC, 0x20000000 + i * 16, 8, 24, 1, 0, (0x08001000,)))
        w.close()
        print("ERROR:", w.error)
        print("EVENTS:", w.events)
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT / "pylib")})
    assert proc.returncode == 0, proc.stderr
    assert "disk is full" in proc.stdout
    written = int(proc.stdout.split("EVENTS:")[1])
    assert 0 < written < 100000
    r = TimelineReader(tmp_path, progress=False)
    assert r.stats.unclosed_files and 0 < r.stats.events <= written
