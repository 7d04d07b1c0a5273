"""The timeline log writer: buffered binary files, rotated by size, oldest deleted (seed 004, LOG mode).

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
from memhil.events import AllocEvent
from memhil.heap.ledger import Ledger
from memhil.timeline import format as fmt
from memhil.units import parse_size

log = logging.getLogger("memhil.timeline")
trace = logging.getLogger("memhil.trace.timeline")

DEFAULT_MAX_BYTES = 96 * 1024 * 1024
DEFAULT_MAX_FILES = 10
_BUFFER = 1 << 20


class TimelineWriteError(LogFormatError):
    """The timeline log could not be written (disk full, directory not writable)."""


def log_file_name(date: str, run_id: str, index: int) -> str:
    """``memlog<YYYYMMDD>_<RUNID>-<n>.bin``."""
    return f"memlog{date}_{run_id}-{index}.bin"


class TimelineWriter:
    """Writes :class:`AllocEvent` s to rotating log files in ``directory``.

    A new file is started once the current one holds ``max_bytes`` or more; it opens
    with a checkpoint of all live blocks (kept in the writer's own :class:`Ledger`).
    Files of this run beyond the newest ``max_files`` are deleted. Writes are buffered;
    nothing is fsync'ed per record.
    """

    def __init__(self, directory: str | os.PathLike[str], *, build_id: str, platform: str, engine: str,
                 max_bytes: int | str = DEFAULT_MAX_BYTES, max_files: int = DEFAULT_MAX_FILES,
                 run_id: str | None = None, ptr_width: int = 4) -> None:
        self.max_bytes = parse_size(max_bytes)
        if self.max_bytes < 1024:
            raise ConfigError(f"log rotation size {self.max_bytes} bytes is too small", hint="use at least 1 KiB (default 96 MiB)")
        if not isinstance(max_files, int) or max_files < 1:
            raise ConfigError(f"max_files must be a positive integer, got {max_files!r}", hint="keep at least 1 log file (default 10)")
        if run_id is not None and (not run_id or not run_id.isalnum()):
            raise ConfigError(f"run id {run_id!r} must be letters and digits only", hint="leave run_id unset to get a random one")
        self.directory = Path(directory)
        self.build_id = build_id
        self.platform = platform
        self.engine = engine
        self.max_files = max_files
        self.run_id = run_id or secrets.token_hex(7).upper()[:13]
        self.codec = fmt.ItemCodec(ptr_width)
        self.ledger = Ledger()
        self.error: LogFormatError | None = None
        self.index = -1
        self.path: Path | None = None
        self.paths: list[Path] = []
        self.events = 0  # events written, all files
        self.dropped = 0  # events not written because logging stopped
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
        if self.active and t_us > self.ledger.t_us:
            self.ledger.t_us = t_us
            self._guard(self._emit, fmt.REC_TICK, fmt.TICK.pack(t_us))

    def flush(self) -> None:
        if self.active and self._file is not None:
            self._guard(self._file.flush)

    def close(self) -> None:
        """Finish the current file with an END record. Safe to call twice, and after an error."""
        if self._closed:
            return
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

    def _fail(self, exc: BaseException) -> None:
        if isinstance(exc, OSError):
            if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
                why, hint = "the disk is full", "free space on the log disk or lower max_files/max_bytes; the run itself carried on"
            elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
                why, hint = "the log directory is not writable", "choose a writable log directory; the run itself carried on"
            else:
                why, hint = f"an OS error ({exc.strerror or exc})", "check the log directory; the run itself carried on"
        else:
            why, hint = f"an event that does not fit the log format ({exc})", "report this: an event field is out of range for the log format"
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
        header = fmt.FileHeader(self.build_id, self.platform, self.engine, self.run_id, time.time(), self.ledger.t_us,
                                self.index, self.codec.width)
        self._put(header.encode())
        payload = self.codec.encode_checkpoint(self.ledger.last_seq, self.ledger.t_us, self.ledger.live.values())
        self._emit(fmt.REC_CHECKPOINT, payload)
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

    def _write_event(self, event: AllocEvent) -> None:
        payload = self.codec.encode_event(event)  # may raise struct.error before anything changes
        self._emit(fmt.REC_EVENT, payload)
        self.ledger.apply(event)
        self.events += 1
        self._file_events += 1
        if self._file_bytes >= self.max_bytes:
            self._finish(fmt.END_ROTATED)
            self._drop_file()
            self._open_next()

    def _finish(self, reason: int) -> None:
        self._emit(fmt.REC_END, fmt.END.pack(self.ledger.last_seq, self.ledger.t_us, self._file_events, reason))
        assert self._file is not None
        self._file.flush()
