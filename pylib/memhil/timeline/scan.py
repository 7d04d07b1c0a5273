"""Streaming one timeline log file: records, resynchronisation, and the per-interval local maxima.

This is the work one reader worker does on one file (seed 004: "files are independent and
parse in parallel"). Memory is bounded by the live set, never by the number of events: the
file is memory-mapped and walked once; per interval only a few integers are kept.

An *instant* is the state after one event (or at the file's checkpoint). The local maximum of
interval ``k`` (virtual time ``[k*I, (k+1)*I)``) is the largest total over the instants in the
interval and the level carried into it; its position is the end offset of the record after
which it holds, so :func:`replay` can rebuild the live blocks at exactly that instant.
"""

from __future__ import annotations

import mmap
import struct
import zlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from memhil.errors import LogFormatError
from memhil.events import EventKind
from memhil.heap.ledger import Ledger
from memhil.heap.model import LiveBlock
from memhil.timeline import format as fmt

_FREE = int(EventKind.FREE)
_REALLOC = int(EventKind.REALLOC)
_KINDS = {int(k) for k in EventKind}


@dataclass
class RecordWalk:
    """Counts kept while walking the records of one file."""

    records: int = 0
    bad_records: int = 0
    bad_bytes: int = 0
    ended: bool = False  # an END record was seen (file closed cleanly or rotated)


def iter_records(data: bytes | mmap.mmap, start: int, walk: RecordWalk) -> Iterator[tuple[int, int, int]]:
    """Yield ``(type, payload_start, record_end)`` of each valid record from ``start``.

    A damaged stretch (bad CRC, bad frame, cut-off tail) is skipped by searching for the
    next sync byte that starts a valid record, and counted once in ``walk.bad_records``.
    """
    end = len(data)
    pos = start
    frame_size = fmt.FRAME.size
    unpack = fmt.FRAME.unpack_from
    crc32 = zlib.crc32
    types = fmt.RECORD_TYPES
    while pos < end:
        # fast path: fmt.frame_ok inlined
        if pos + frame_size <= end:
            sync, rtype, length, crc = unpack(data, pos)
            stop = pos + frame_size + length
            if sync == fmt.SYNC and rtype in types and stop <= end and crc32(data[pos + frame_size: stop], crc32(data[pos + 1: pos + 6])) == crc:
                walk.records += 1
                yield rtype, pos + frame_size, stop
                pos = stop
                continue
        bad_start = pos
        walk.bad_records += 1
        pos = data.find(b"\xa5", pos + 1)
        while pos != -1 and not fmt.frame_ok(data, pos, end):
            pos = data.find(b"\xa5", pos + 1)
        if pos == -1:
            walk.bad_bytes += end - bad_start
            return
        walk.bad_bytes += pos - bad_start


@dataclass
class FileSummary:
    """What a worker learned from one file: header, counts, and per-interval arrays.

    ``ks[i]`` is an interval index with events (or the checkpoint's interval); ``totals[i]`` its
    local maximum at record end offset ``max_pos[i]``; ``end_totals[i]``/``end_pos[i]`` the level
    and position at the interval's last record. ``modules[m]``/``module_ends[m]`` are aligned
    with ``ks``.
    """

    path: str
    header: fmt.FileHeader
    size: int = 0
    walk: RecordWalk = field(default_factory=RecordWalk)
    events: int = 0
    lost_events: int = 0  # sequence numbers skipped inside the file (damaged records)
    bad_events: int = 0  # records with a valid CRC that did not decode
    has_checkpoint: bool = False
    first_seq: int = -1
    last_seq: int = -1
    t_first_us: int = 0
    t_last_us: int = 0
    ks: array = field(default_factory=lambda: array("q"))
    totals: array = field(default_factory=lambda: array("q"))
    max_pos: array = field(default_factory=lambda: array("q"))
    end_totals: array = field(default_factory=lambda: array("q"))
    end_pos: array = field(default_factory=lambda: array("q"))
    modules: dict[int, array] = field(default_factory=dict)
    module_ends: dict[int, array] = field(default_factory=dict)


def open_log(path: str | Path) -> tuple[mmap.mmap | bytes, fmt.FileHeader]:
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        data: mmap.mmap | bytes = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    return data, fmt.decode_header(data[:65536], path=str(path))


def scan_file(path: str, interval_us: int) -> FileSummary:
    """Walk one file and compute its per-interval local maxima (the reader's worker function)."""
    data, header = open_log(path)
    summary = FileSummary(str(path), header, len(data))
    codec = fmt.ItemCodec(header.ptr_width)
    fixed = codec.fixed
    unpack = fixed.unpack_from
    live: dict[int, tuple[int, int]] = {}  # ptr -> (bytes, module)
    mod: dict[int, int] = {}
    total = 0
    s = summary
    cur_k = -1
    cur_max = cur_pos = 0
    mod_max: dict[int, int] = {}
    last_end = header.length
    last_seq = -1
    t_last = header.t_start_us

    def close_interval() -> None:
        s.ks.append(cur_k)
        s.totals.append(cur_max)
        s.max_pos.append(cur_pos)
        s.end_totals.append(total)
        s.end_pos.append(last_end)
        n = len(s.ks) - 1
        for m in mod:
            if m not in s.modules:
                s.modules[m] = array("q", bytes(8 * n))
                s.module_ends[m] = array("q", bytes(8 * n))
            level = mod[m]
            s.modules[m].append(mod_max.get(m, level))
            s.module_ends[m].append(level)

    for rtype, p, rec_end in iter_records(data, header.length, s.walk):
        if rtype == fmt.REC_EVENT:
            try:
                f = unpack(data, p)
                if f[2] not in _KINDS or rec_end - p != fixed.size + (f[10] + f[11]) * codec.width:
                    raise ValueError("bad event item")
            except (struct.error, ValueError):
                s.bad_events += 1
                last_end = rec_end
                continue
            seq, t_us, kind, ptr, module = f[0], f[1], f[2], f[6], f[4]
            if last_seq >= 0 and seq > last_seq + 1:
                s.lost_events += seq - last_seq - 1
            if seq > last_seq:
                last_seq = seq
            if s.first_seq < 0 and not s.has_checkpoint:
                s.first_seq = seq - 1
            if t_us > t_last:
                t_last = t_us
            k = t_last // interval_us
            if k != cur_k:
                if cur_k >= 0:
                    close_interval()
                cur_k, cur_max, cur_pos = k, total, last_end
                mod_max = {}
            # remember each touched module's level before the event (the carried level)
            if kind == _FREE:
                old = live.pop(ptr, None)
                if old is not None:
                    m = old[1]
                    if m not in mod_max:
                        mod_max[m] = mod[m]
                    total -= old[0]
                    mod[m] -= old[0]
            else:
                if kind == _REALLOC and f[9]:
                    old = live.pop(f[9], None)
                    if old is not None:
                        m = old[1]
                        if m not in mod_max:
                            mod_max[m] = mod[m]
                        total -= old[0]
                        mod[m] -= old[0]
                old = live.pop(ptr, None)
                if old is not None:  # double alloc: the ledger drops the stale block
                    m = old[1]
                    if m not in mod_max:
                        mod_max[m] = mod[m]
                    total -= old[0]
                    mod[m] -= old[0]
                nbytes = f[8] or f[7]
                live[ptr] = (nbytes, module)
                level = mod.get(module, 0)
                if module not in mod_max:
                    mod_max[module] = level
                level += nbytes
                mod[module] = level
                total += nbytes
                if level > mod_max[module]:
                    mod_max[module] = level
            if total > cur_max:
                cur_max, cur_pos = total, rec_end
            s.events += 1
        elif rtype == fmt.REC_CHECKPOINT:
            if s.has_checkpoint or s.events:
                s.bad_events += 1  # a second checkpoint is not part of the format
            else:
                try:
                    cp_seq, cp_t, blocks = codec.decode_checkpoint(data[p:rec_end])
                except (struct.error, ValueError):
                    s.bad_events += 1
                    last_end = rec_end
                    continue
                s.has_checkpoint = True
                s.first_seq = last_seq = cp_seq
                t_last = max(t_last, cp_t)
                for b in blocks:
                    live[b.ptr] = (b.bytes, b.module)
                    mod[b.module] = mod.get(b.module, 0) + b.bytes
                    total += b.bytes
                cur_k, cur_max, cur_pos = t_last // interval_us, total, rec_end
                mod_max = {}
        elif rtype == fmt.REC_TICK:
            (t_us,) = fmt.TICK.unpack_from(data, p) if rec_end - p == fmt.TICK.size else (t_last,)
            if t_us > t_last:
                t_last = t_us
                k = t_last // interval_us
                if k != cur_k:
                    if cur_k >= 0:
                        close_interval()
                    cur_k, cur_max, cur_pos = k, total, last_end
                    mod_max = {}
        elif rtype == fmt.REC_END:
            s.walk.ended = True
        last_end = rec_end
    if cur_k >= 0:
        close_interval()
    s.last_seq = last_seq
    s.t_first_us = header.t_start_us
    s.t_last_us = t_last
    if isinstance(data, mmap.mmap):
        data.close()
    return s


def replay(path: str | Path, pos: int) -> tuple[Ledger, fmt.FileHeader]:
    """The ledger of one file after the record ending at byte offset ``pos`` (checkpoint, then events)."""
    data, header = open_log(path)
    codec = fmt.ItemCodec(header.ptr_width)
    ledger: Ledger | None = None
    walk = RecordWalk()
    try:
        for rtype, p, rec_end in iter_records(data, header.length, walk):
            if rec_end > pos:
                break
            if rtype == fmt.REC_CHECKPOINT and ledger is None:
                try:
                    last_seq, t_us, blocks = codec.decode_checkpoint(data[p:rec_end])
                except (struct.error, ValueError):
                    continue
                ledger = Ledger(blocks, t_us=t_us)
                ledger.last_seq = last_seq
            elif rtype == fmt.REC_EVENT:
                try:
                    ev, stop = codec.decode_event(data, p)
                except (struct.error, ValueError):
                    continue
                if stop != rec_end:  # as scan_file: an item must fill its record exactly
                    continue
                if ledger is None:
                    ledger = Ledger(t_us=header.t_start_us)
                ledger.apply(ev)
            elif rtype == fmt.REC_TICK and ledger is not None and rec_end - p == fmt.TICK.size:
                ledger.t_us = max(ledger.t_us, fmt.TICK.unpack_from(data, p)[0])
    finally:
        if isinstance(data, mmap.mmap):
            data.close()
    return (ledger if ledger is not None else Ledger(t_us=header.t_start_us)), header


def live_blocks(path: str | Path, pos: int) -> list[LiveBlock]:
    ledger, _ = replay(path, pos)
    return list(ledger.live.values())


def check_header_only(path: str | Path) -> fmt.FileHeader:
    """Read just the header of ``path``; :class:`LogFormatError` if unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError as exc:
        raise LogFormatError(f"cannot read timeline log: {exc.strerror}", hint="check the file's permissions", path=str(path)) from exc
    return fmt.decode_header(head, path=str(path))
