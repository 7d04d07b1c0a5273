"""The timeline reader: newest run of log files, parsed in parallel, queried by virtual time.

The memory-log profiler's queries (``start_mem_log_profiler`` / ``get_all_time_size`` / ``get_mem_report_with_time``):
files are independent (each opens with a checkpoint), so one worker process per file walks
it (:func:`memhil.timeline.scan.scan_file`) and the results are merged in file order. The
reader keeps per-interval arrays only; the live blocks at an interval's maximum are rebuilt
on demand by replaying one file up to that instant (:func:`memhil.timeline.scan.replay`).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import time
from array import array
from bisect import bisect_right
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, TextIO

from memhil.errors import ConfigError, LogFormatError
from memhil.heap.model import LiveBlock
from memhil.progress import StepProgress
from memhil.report.memreport import MemReport, SiteResolver, site_report
from memhil.timeline import format as fmt
from memhil.timeline.scan import FileSummary, check_header_only, replay, scan_file

log = logging.getLogger("memhil.timeline")

Progress = Callable[[int, int, int], None]


@dataclass(frozen=True)
class Gap:
    """Log files missing from a run: ``missing`` indexes between the files ``before`` and ``after``.

    With ``span="contiguous"`` the files before the gap are not parsed; they are in ``skipped``.
    """

    missing: tuple[int, ...]
    before: str | None
    after: str
    t_after_ms: int
    skipped: tuple[str, ...] = ()


@dataclass
class ReaderStats:
    files: int = 0
    bytes: int = 0
    records: int = 0
    events: int = 0
    bad_records: int = 0  # damaged stretches skipped (CRC, framing, cut-off tail)
    bad_bytes: int = 0
    undecodable: int = 0  # records with a good CRC whose content did not decode
    lost_events: int = 0  # sequence numbers missing inside files or between adjacent files
    unclosed_files: list[str] = field(default_factory=list)  # no END record (crash, disk full, still being written)
    unreadable_files: list[str] = field(default_factory=list)  # header damaged or not a memhil log
    seconds: float = 0.0


class FilesProgress:
    """The reader's progress (files parsed, bytes) as a :class:`~memhil.progress.StepProgress`: a bar redrawn
    in place on a terminal, a plain line per file elsewhere. The CLI passes one; by default the reader
    shows one only when standard error is a terminal."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream, self.live = stream, live
        self.bar: StepProgress | None = None

    def __call__(self, done: int, total: int, nbytes: int) -> None:
        if self.bar is None:
            self.bar = StepProgress(total, "parsing timeline", stream=self.stream, live=self.live)
        self.bar.step(done, f"files, {nbytes / 2**20:.1f} MiB")


def _default_progress() -> Progress | None:
    return FilesProgress() if sys.stderr is not None and sys.stderr.isatty() else None


class TimelineReader:
    """Reads the newest run of ``memlog*.bin`` files in ``directory``.

    ``build_id`` (if given) must match the files' ELF identity. ``workers`` defaults to one
    process per file; ``workers=1`` parses in this process. ``interval_ms`` is the width of
    the intervals whose local maxima are kept. ``progress`` is ``callback(files_done,
    files_total, bytes_done)``; by default a :class:`FilesProgress` bar when standard error is
    a terminal, ``False`` for none. ``span`` is ``"contiguous"`` (the newest contiguous files,
    as the memory-log profiler reads them) or ``"all"`` (every file
    of the run; the series then has holes where files are missing).
    """

    def __init__(self, directory: str | os.PathLike[str], *, build_id: str | None = None, workers: int | None = None,
                 interval_ms: int = 100, progress: Progress | None | Literal[False] = None,
                 span: Literal["contiguous", "all"] = "contiguous") -> None:
        if not isinstance(interval_ms, int) or interval_ms <= 0:
            raise ConfigError(f"interval_ms must be a positive integer, got {interval_ms!r}", hint="the default is 100 ms")
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ConfigError(f"workers must be a positive integer, got {workers!r}", hint="leave it unset for one worker per file")
        if span not in ("contiguous", "all"):
            raise ConfigError(f"span must be 'contiguous' or 'all', got {span!r}", hint="'contiguous' reads the newest unbroken run of files")
        self.directory = Path(directory)
        self.interval_ms = interval_ms
        self.stats = ReaderStats()
        self.gaps: list[Gap] = []
        self.summaries: list[FileSummary] = []
        self._cache: tuple[tuple[int, int], list[LiveBlock]] | None = None
        started = time.perf_counter()
        paths = self._select(build_id, span)
        self.files = [str(p) for p in paths]
        first = self._headers[paths[0]]
        self.build_id, self.platform, self.engine, self.run_id = first.build_id, first.platform, first.engine, first.run_id
        self.wall_start = first.wall_start
        if progress is None:
            progress = _default_progress()
        self.summaries = self._parse(paths, workers or len(paths), progress or None)
        self._merge()
        self.stats.seconds = time.perf_counter() - started
        log.info("timeline: %d files, %d events, %d ms of virtual time from %s (%d bad records)", len(paths), self.stats.events,
                 self.duration_ms, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.wall_start)), self.stats.bad_records)

    # -- finding files -------------------------------------------------------------------
    def _select(self, build_id: str | None, span: str) -> list[Path]:
        if not self.directory.is_dir():
            raise LogFormatError("timeline log directory does not exist", hint="pass the directory the TimelineWriter wrote to", path=str(self.directory))
        self._headers: dict[Path, fmt.FileHeader] = {}
        for path in sorted(self.directory.glob("memlog*.bin")):
            try:
                self._headers[path] = check_header_only(path)
            except LogFormatError as exc:
                log.warning("skipping %s: %s", path, exc.message)
                self.stats.unreadable_files.append(str(path))
        if not self._headers:
            raise LogFormatError("no readable timeline log files (memlog*.bin) in the directory",
                                 hint="run with timeline logging on, or point at the directory the logs were copied to", path=str(self.directory))
        runs: dict[str, list[Path]] = {}
        for path, head in self._headers.items():
            runs.setdefault(head.run_id, []).append(path)
        run_id = max(runs, key=lambda r: max(self._headers[p].wall_start for p in runs[r]))
        paths = sorted(runs[run_id], key=lambda p: self._headers[p].index)
        ids = sorted({self._headers[p].build_id for p in paths})
        if len(ids) > 1:
            raise LogFormatError(f"timeline files of run {run_id} come from different ELFs: build ids {' and '.join(ids)}",
                                 hint="keep one run's files together; remove the files copied in from another build", run_id=run_id)
        if build_id is not None and ids[0] != build_id:
            raise LogFormatError(f"timeline log is from another ELF: the log's build id is {ids[0]}, the firmware's is {build_id}",
                                 hint="read the logs with the firmware ELF that wrote them (or pass build_id=None to skip the check)",
                                 log_build_id=ids[0], expected_build_id=build_id, run_id=run_id)
        indexes = [self._headers[p].index for p in paths]
        if len(set(indexes)) != len(indexes):
            raise LogFormatError("two timeline files claim the same index in one run", hint="remove the copied duplicate", run_id=run_id)
        for i in range(1, len(paths)):
            a, b = indexes[i - 1], indexes[i]
            if b != a + 1:
                head = self._headers[paths[i]]
                skipped = tuple(str(p) for p in paths[:i]) if span == "contiguous" else ()
                self.gaps.append(Gap(tuple(range(a + 1, b)), str(paths[i - 1]), str(paths[i]), head.t_start_us // 1000, skipped))
                log.warning("timeline: log files %s of run %s are missing", list(range(a + 1, b)), run_id)
        if span == "contiguous" and self.gaps:
            start = max(i for i in range(len(paths)) if i == 0 or indexes[i] != indexes[i - 1] + 1)
            paths = paths[start:]
        return paths

    # -- parsing -------------------------------------------------------------------------
    def _parse(self, paths: list[Path], workers: int, progress: Progress | None) -> list[FileSummary]:
        interval_us = self.interval_ms * 1000
        results: dict[int, FileSummary] = {}
        done_bytes = 0
        if workers == 1 or len(paths) == 1:
            for i, path in enumerate(paths):
                results[i] = self._scan_one(path, interval_us)
                done_bytes += results[i].size
                if progress:
                    progress(i + 1, len(paths), done_bytes)
        else:
            # fork: workers need nothing but scan_file, and unlike spawn/forkserver it does not
            # re-run the caller's __main__ (a script without a main guard would recurse)
            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
            with ProcessPoolExecutor(max_workers=min(workers, len(paths)), mp_context=ctx) as pool:
                futures = {pool.submit(scan_file, str(path), interval_us): i for i, path in enumerate(paths)}
                for n, future in enumerate(as_completed(futures), 1):
                    i = futures[future]
                    try:
                        results[i] = future.result()
                    except LogFormatError:
                        raise
                    except OSError as exc:
                        raise LogFormatError(f"cannot read timeline log: {exc.strerror}", hint="check the file's permissions", path=str(paths[i])) from exc
                    except BrokenProcessPool as exc:
                        raise LogFormatError("a timeline parser worker died", hint="retry with workers=1 to parse in this process and see the error",
                                             path=str(paths[i])) from exc
                    done_bytes += results[i].size
                    if progress:
                        progress(n, len(paths), done_bytes)
        return [results[i] for i in range(len(paths))]

    @staticmethod
    def _scan_one(path: Path, interval_us: int) -> FileSummary:
        try:
            return scan_file(str(path), interval_us)
        except OSError as exc:
            raise LogFormatError(f"cannot read timeline log: {exc.strerror}", hint="check the file's permissions", path=str(path)) from exc

    def _merge(self) -> None:
        """Join the files' interval arrays in time order; an interval split by a rotation takes the larger maximum."""
        self.ks = array("q")
        self.totals = array("q")
        self.end_totals = array("q")
        # where each interval's maximum (and its last state) is: file number and record end offset
        self.max_file, self.max_pos = array("i"), array("q")
        self.end_file, self.end_pos = array("i"), array("q")
        self.module_max: dict[int, array] = {}
        self.module_end: dict[int, array] = {}
        self._breaks: set[int] = set()  # interval positions after which a gap begins (span="all")
        gap_after = {g.before for g in self.gaps if not g.skipped}
        st = self.stats
        prev_last_seq = None
        for fno, s in enumerate(self.summaries):
            st.files += 1
            st.bytes += s.size
            st.records += s.walk.records
            st.events += s.events
            st.bad_records += s.walk.bad_records
            st.bad_bytes += s.walk.bad_bytes
            st.undecodable += s.bad_events
            st.lost_events += s.lost_events
            if not s.walk.ended:
                st.unclosed_files.append(s.path)
            if prev_last_seq is not None and s.first_seq > prev_last_seq:
                st.lost_events += s.first_seq - prev_last_seq
            prev_last_seq = s.last_seq
            first = 0
            n = len(self.ks)
            # the interval a rotation split: the previous file's last one continues here
            while first < len(s.ks) and n and s.ks[first] <= self.ks[-1] and (n - 1) not in self._breaks:
                i, j = first, n - 1
                if s.totals[i] > self.totals[j]:
                    self.totals[j] = s.totals[i]
                    self.max_file[j], self.max_pos[j] = fno, s.max_pos[i]
                self.end_totals[j] = s.end_totals[i]
                self.end_file[j], self.end_pos[j] = fno, s.end_pos[i]
                for m in self.module_max:
                    if m not in s.modules:
                        self.module_end[m][j] = 0  # not live anywhere in this file
                for m, arr in s.modules.items():
                    col = self._module_col(m, n)
                    col[j] = max(col[j], arr[i])
                    self.module_end[m][j] = s.module_ends[m][i]
                first += 1
            count = len(s.ks) - first
            self.ks.extend(s.ks[first:])
            self.totals.extend(s.totals[first:])
            self.end_totals.extend(s.end_totals[first:])
            self.max_pos.extend(s.max_pos[first:])
            self.end_pos.extend(s.end_pos[first:])
            self.max_file.extend(array("i", [fno]) * count)
            self.end_file.extend(array("i", [fno]) * count)
            zeros = array("q", bytes(8 * count))
            for m in s.modules:
                self._module_col(m, n)
            for m in self.module_max:
                if m in s.modules:
                    self.module_max[m].extend(s.modules[m][first:])
                    self.module_end[m].extend(s.module_ends[m][first:])
                else:
                    self.module_max[m].extend(zeros)
                    self.module_end[m].extend(zeros)
            if s.path in gap_after and len(self.ks):
                self._breaks.add(len(self.ks) - 1)

    def _module_col(self, m: int, length: int) -> array:
        col = self.module_max.get(m)
        if col is None:
            col = self.module_max[m] = array("q", bytes(8 * length))
            self.module_end[m] = array("q", bytes(8 * length))
        return col

    # -- queries -------------------------------------------------------------------------
    @property
    def duration_ms(self) -> int:
        return (self.ks[-1] - self.ks[0] + 1) * self.interval_ms if self.ks else 0

    @property
    def t_range_ms(self) -> tuple[int, int]:
        """Start of the first and of the last interval, in ms of virtual time."""
        return (self.ks[0] * self.interval_ms, self.ks[-1] * self.interval_ms) if self.ks else (0, 0)

    def modules(self) -> set[int]:
        return set(self.module_max)

    def all_time_size(self, module: int | None = None, *, fill: bool = False) -> list[tuple[int, int]]:
        """``[(t_ms, bytes)]``: the local maximum of live bytes (node sizes) per interval, ``t_ms`` its start.

        Only intervals with events (and each file's checkpoint interval) are listed: between them
        the level is constant. ``fill=True`` lists every interval (864,000 for 24 h at 100 ms),
        except inside gaps. ``module`` limits the figure to one module (0 where it had nothing).
        """
        if module is None:
            values, ends = self.totals, self.end_totals
        else:
            values = self.module_max.get(module)
            ends = self.module_end.get(module)
            if values is None:
                values = ends = array("q", bytes(8 * len(self.ks)))
        step = self.interval_ms
        if not fill:
            return [(k * step, v) for k, v in zip(self.ks, values)]
        out: list[tuple[int, int]] = []
        for i, k in enumerate(self.ks):
            out.append((k * step, values[i]))
            if i + 1 < len(self.ks) and i not in self._breaks:
                level = ends[i]
                out.extend((j * step, level) for j in range(k + 1, self.ks[i + 1]))
        return out

    def peak(self, module: int | None = None) -> tuple[int, int]:
        """``(t_ms, bytes)`` of the largest local maximum (the first one on ties)."""
        values = self.totals if module is None else self.module_max.get(module, array("q"))
        if not values:
            return (0, 0)
        best = max(range(len(values)), key=lambda i: (values[i], -i))
        return self.ks[best] * self.interval_ms, values[best]

    def _locate(self, t_ms: int) -> tuple[int, int, int]:
        """(file number, offset, interval start ms) of the instant that stands for ``t_ms``'s interval."""
        if not self.ks:
            raise ConfigError("the timeline is empty", hint="the log files held no readable records")
        k = int(t_ms) // self.interval_ms
        i = bisect_right(self.ks, k) - 1
        lo, hi = self.t_range_ms
        if i < 0 or k > self.ks[-1]:
            raise ConfigError(f"t_ms={t_ms} is outside the timeline", hint=f"the timeline covers {lo}..{hi + self.interval_ms - 1} ms of virtual time")
        if self.ks[i] == k:
            fno, pos = self.max_file[i], self.max_pos[i]
        else:
            if i in self._breaks:
                raise ConfigError(f"t_ms={t_ms} falls in a gap of missing log files", hint=f"gaps: {[g.missing for g in self.gaps]}")
            fno, pos = self.end_file[i], self.end_pos[i]
        return fno, pos, k * self.interval_ms

    def live_at(self, t_ms: int) -> list[LiveBlock]:
        """Live blocks at the local maximum of the interval holding ``t_ms`` (its level if it had no events)."""
        fno, pos, _ = self._locate(t_ms)
        if self._cache is None or self._cache[0] != (fno, pos):
            ledger, _ = replay(self.files[fno], pos)
            self._cache = ((fno, pos), list(ledger.live.values()))
        return list(self._cache[1])

    def report_at(self, t_ms: int, resolver: SiteResolver | None = None) -> MemReport:
        """Live memory by allocation site at the local maximum of ``t_ms``'s interval (the memory-log profiler's ``get_mem_report_with_time``)."""
        _, _, start = self._locate(t_ms)
        return site_report(self.live_at(t_ms), resolver, t_us=start * 1000)
