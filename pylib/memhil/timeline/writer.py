"""The timeline log writer: buffered binary files, rotated by size, oldest deleted (the memory-log profiler's LOG mode).

The writer never raises into the emulation once it is running: a full disk or an
unwritable directory stops logging, keeps the error in :attr:`TimelineWriter.error`
(a :class:`~memhil.errors.LogFormatError`) and logs one warning; the caller's own
ledger and assertions carry on.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import struct
import time
from pathlib import Path
from typing import BinaryIO, Iterable

from memhil.errors import ConfigError, LogFormatError
from memhil.events import AllocEvent, EventKind
from memhil.heap.ledger import Ledger
from memhil.timeline import format as fmt
from memhil.units import parse_size

log = logging.getLogger("memhil.timeline")
trace = logging.getLogger("memhil.trace.timeline")

DEFAULT_MAX_BYTES = 96 * 1024 * 1024
DEFAULT_MAX_FILES = 10
DEFAULT_BLOCK_EVENTS = 4096
_BUFFER = 1 << 20


class TimelineWriteError(LogFormatError):
    """The timeline log could not be written (disk full, directory not writable)."""


def log_file_name(date: str, run_id: str, index: int) -> str:
    """``memlog<YYYYMMDD>_<RUNID>-<n>.bin``."""
    return f"memlog{date}_{run_id}-{index}.bin"


class TimelineWriter:
    """Writes :class:`AllocEvent` s to rotating log files in ``directory``.

    Events are gathered into BLOCK records of up to ``block_events`` events (format version 2);
    a block is written when full, before a tick, on :meth:`flush` and :meth:`close`, so a crash
    loses at most the block being filled. Each entry carries the bytes its event freed, taken
    from the writer's own :class:`Ledger`, which lets the reader sum live bytes with numpy.
    A new file is started once the current one (with the block being filled) reaches
    ``max_bytes``; it opens with a checkpoint of all live blocks. Files of this run beyond the
    newest ``max_files`` are deleted. Writes are buffered; nothing is fsync'ed per record.

    ``follow``: a ledger the caller keeps and applies each event to right after :meth:`write`
    (the session's). The writer reads levels and live blocks from it instead of applying every
    event to a second ledger of its own, which halves the host's ledger work per event in a soak.
    """

    def __init__(self, directory: str | os.PathLike[str], *, build_id: str, platform: str, engine: str,
                 max_bytes: int | str = DEFAULT_MAX_BYTES, max_files: int = DEFAULT_MAX_FILES,
                 run_id: str | None = None, ptr_width: int = 4, block_events: int = DEFAULT_BLOCK_EVENTS,
                 start_from: Ledger | None = None, follow: Ledger | None = None) -> None:
        self.max_bytes = parse_size(max_bytes)
        if self.max_bytes < 1024:
            raise ConfigError(f"log rotation size {self.max_bytes} bytes is too small", hint="use at least 1 KiB (default 96 MiB)")
        if not isinstance(max_files, int) or max_files < 1:
            raise ConfigError(f"max_files must be a positive integer, got {max_files!r}", hint="keep at least 1 log file (default 10)")
        if not isinstance(block_events, int) or not 1 <= block_events <= fmt.MAX_BLOCK_EVENTS:
            raise ConfigError(f"block_events must be 1..{fmt.MAX_BLOCK_EVENTS}, got {block_events!r}", hint="the default is 4096 events per block")
        if run_id is not None and (not run_id or not run_id.isalnum()):
            raise ConfigError(f"run id {run_id!r} must be letters and digits only", hint="leave run_id unset to get a random one")
        self.directory = Path(directory)
        self.build_id = build_id
        self.platform = platform
        self.engine = engine
        self.max_files = max_files
        self.run_id = run_id or secrets.token_hex(7).upper()[:13]
        self.ptr_width = ptr_width
        self.block_events = block_events
        self._block = fmt.BlockBuilder(ptr_width)
        self._block_total = 0  # live bytes before the block being filled
        self._block_levels: dict[int, int] = {}
        if follow is not None and start_from is not None:
            raise ConfigError("give the writer start_from or follow, not both", hint="follow= already starts from what that ledger holds")
        # follow: read the caller's ledger (which applies each event just after handing it to write()) instead of
        # keeping a second copy of every live block; the writer then only tracks its own time line
        self._owns_ledger = follow is None
        if follow is not None:
            self.ledger = follow
        else:
            # a log started mid-run begins from what is live already: its first checkpoint holds those blocks
            self.ledger = Ledger(start_from.live.values(), t_us=start_from.t_us) if start_from is not None else Ledger()
            if start_from is not None:
                self.ledger.last_seq = start_from.last_seq
        self._t_us = self.ledger.t_us  # the log's time: events and ticks
        self._rotate_due = False
        self._block_last_seq: int | None = None
        self.error: LogFormatError | None = None
        self.index = -1
        self.path: Path | None = None
        self.paths: list[Path] = []
        self.events = 0  # events written (in blocks handed to the file), all files
        self.dropped = 0  # events not written because logging stopped (with those of a block that failed to write)
        self.bytes_written = 0  # all files
        self._file: BinaryIO | None = None
        self._file_bytes = 0
        self._file_events = 0
        self._date = time.strftime("%Y%m%d", time.localtime())
        self._closed = False
        self._guard(self._open_next)

    # -- public ------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """True while events are being logged (no error, not closed)."""
        return self.error is None and not self._closed

    def write(self, event: AllocEvent) -> None:
        """Log one event. Never raises: after a write error, events are counted in :attr:`dropped`."""
        if not self.active:
            self.dropped += 1
            return
        self._guard(self._write_event, event)

    def write_many(self, events: Iterable[AllocEvent]) -> None:
        for event in events:
            self.write(event)

    def tick(self, t_us: int) -> None:
        """Record that virtual time reached ``t_us`` with no allocator event (extends the timeline)."""
        if self.active and t_us > self._t_us:
            self._guard(self._settle)
            self._guard(self._write_block)
            if self.active:
                self._t_us = t_us
                if self._owns_ledger:
                    self.ledger.t_us = t_us
                self._guard(self._emit, fmt.REC_TICK, fmt.TICK.pack(t_us))

    def flush(self) -> None:
        """Write the block being filled and flush the file, so a reader sees every event so far."""
        if self.active:
            self._guard(self._settle)
        if self.active and self._file is not None:
            self._guard(self._write_block)
            if self.active and self._file is not None:
                self._guard(self._file.flush)

    def close(self) -> None:
        """Finish the current file with an END record. Safe to call twice, and after an error."""
        if self._closed:
            return
        if self.error is None:
            self._guard(self._settle)
        if self.error is None and self._file is not None:
            self._guard(self._finish, fmt.END_CLOSED)
        self._closed = True
        self._drop_file()

    def __enter__(self) -> "TimelineWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------
    def _open(self, path: Path) -> BinaryIO:
        """Open one log file (tests replace this to simulate a full disk)."""
        return open(path, "xb", buffering=_BUFFER)

    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except (OSError, ValueError, OverflowError, struct.error) as exc:
            self._fail(exc)

    def _take_block(self) -> int:
        """Forget the block being filled (it failed to write); returns how many events it held."""
        n = self._block.count
        self._block.clear()
        return n

    def _fail(self, exc: BaseException) -> None:
        if not isinstance(exc, OSError) and self._file is not None:
            try:  # an event that does not fit: keep the events before it
                self._write_block()
                self._file.flush()
            except (OSError, ValueError, struct.error):
                pass
        if isinstance(exc, OSError):
            if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                why, hint = "the disk is full", "free space on the log disk or lower max_files/max_bytes; the run itself carried on"
            elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                why, hint = "the log directory is not writable", "choose a writable log directory; the run itself carried on"
            else:
                why, hint = f"an OS error ({exc.strerror or exc})", "check the log directory; the run itself carried on"
        else:
            why, hint = f"an event that does not fit the log format ({exc})", "report this: an event field is out of range for the log format"
        lost = self._take_block()
        self.events -= lost
        self.dropped += lost
        self.error = TimelineWriteError(f"timeline logging stopped: {why}", hint=hint, path=str(self.path or self.directory),
                                        events_written=self.events)
        log.warning("%s", self.error)
        self._drop_file()

    def _drop_file(self) -> None:
        f, self._file = self._file, None
        if f is not None:
            try:
                f.close()
            except OSError:
                pass

    def _open_next(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.index += 1
        self.path = self.directory / log_file_name(self._date, self.run_id, self.index)
        self._file = self._open(self.path)
        self.paths.append(self.path)
        self._file_bytes = 0
        self._file_events = 0
        header = fmt.FileHeader(self.build_id, self.platform, self.engine, self.run_id, time.time(), self._t_us,
                                self.index, self.ptr_width)
        self._put(header.encode())
        self._emit(fmt.REC_CHECKPOINT, self._checkpoint())
        trace.debug("opened %s with %d live blocks", self.path, len(self.ledger.live))
        self._prune()

    def _prune(self) -> None:
        """Delete this run's files older than the newest ``max_files``."""
        while len(self.paths) > self.max_files:
            old = self.paths.pop(0)
            try:
                old.unlink()
            except FileNotFoundError:
                pass
            trace.debug("deleted %s", old)

    def _put(self, data: bytes) -> None:
        assert self._file is not None
        self._file.write(data)
        self._file_bytes += len(data)
        self.bytes_written += len(data)

    def _emit(self, rtype: int, payload: bytes) -> None:
        self._put(fmt.frame(rtype, payload))

    def _checkpoint(self) -> bytes:
        cp = fmt.BlockBuilder(self.ptr_width)
        for b in self.ledger.live.values():
            cp.add(b.seq, b.t_us, int(EventKind.ALLOC), int(b.flags), b.module, b.task, b.ptr, b.size, b.node_size, 0, b.stack, b.lrs)
        return fmt.CHECKPOINT_HEAD.pack(self.ledger.last_seq, self._t_us) + cp.body()

    def _last_seq(self) -> int:
        """Sequence number of the newest event in the log (a followed ledger has not applied the newest yet)."""
        return self._block_last_seq if not self._owns_ledger and self._block_last_seq is not None else self.ledger.last_seq

    def _settle(self) -> None:
        """Open the next file if the last event filled the current one. With a followed ledger this waits for the
        next call, so that the new file's checkpoint includes that event (the caller applies it after write())."""
        if self._rotate_due:
            self._rotate_due = False
            self._drop_file()
            self._open_next()

    def _write_event(self, event: AllocEvent) -> None:
        if self._rotate_due:
            self._settle()
        live = self.ledger.live
        freed = freed_mod = stale = stale_mod = 0
        kind = event.kind
        if kind is EventKind.FREE:
            old = live.get(event.ptr)
            if old is not None:
                freed, freed_mod = old.bytes, old.module
        else:
            gone = event.old_ptr if kind is EventKind.REALLOC else 0
            if gone:
                old = live.get(gone)
                if old is not None:
                    freed, freed_mod = old.bytes, old.module
            if event.ptr != gone:
                old = live.get(event.ptr)
                if old is not None:  # double alloc: the ledger drops the stale block
                    stale, stale_mod = old.bytes, old.module
        if not self._block.count:
            self._block_total = self.ledger.total.current
            self._block_levels = {m: s.current for m, s in self.ledger.modules.items() if s.current}
        # may raise struct.error before anything changes
        block = self._block
        block.add(event.seq, event.t_us, kind, event.flags, event.module, event.task, event.ptr, event.size,
                  event.node_size, event.old_ptr, event.stack, event.lrs, freed, freed_mod, stale, stale_mod)
        if self._owns_ledger:
            self.ledger.apply(event)
        self._block_last_seq = event.seq
        if event.t_us > self._t_us:
            self._t_us = event.t_us
        self.events += 1
        self._file_events += 1
        if self._file_bytes + block.nbytes + fmt.FRAME.size >= self.max_bytes:
            self._write_block()
            self._finish(fmt.END_ROTATED)
            if self._owns_ledger:
                self._drop_file()
                self._open_next()
            else:
                self._rotate_due = True
        elif block.count >= self.block_events:
            self._write_block()

    def _write_block(self) -> None:
        if self._block.count and self._file is not None:
            body = self._block.body(self._block_total, self._block_levels)
            self._emit(fmt.REC_BLOCK, body)
            self._block.clear()

    def _finish(self, reason: int) -> None:
        self._write_block()
        self._emit(fmt.REC_END, fmt.END.pack(self._last_seq(), self._t_us, self._file_events, reason))
        assert self._file is not None
        self._file.flush()
