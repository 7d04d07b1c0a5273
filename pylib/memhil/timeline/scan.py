"""Streaming one timeline log file: records, resynchronisation, and the per-interval local maxima.

This is the work one reader worker does on one file (files are independent and
parse in parallel). The file is memory-mapped and walked record by record; each BLOCK of
up to 4096 events is read with ``numpy.frombuffer`` and reduced with array operations
(format version 2, see :mod:`memhil.timeline.format`): live bytes after each event are the
block's starting level plus a cumulative sum of signed deltas, and each interval's local
maximum is a ``np.maximum.reduceat`` over the events that fall in it. Memory is bounded by
one block and the per-interval arrays, never by the number of events; pages already parsed
are handed back to the kernel.

An *instant* is the state after one event (or at the file's checkpoint). The local maximum of
interval ``k`` (virtual time ``[k*I, (k+1)*I)``) is the largest total over the instants in the
interval and the level carried into it (the carried level wins ties); its *position* is
``record_offset * POS_SCALE + events applied from that record``, so :func:`replay` can
rebuild the live blocks at exactly that instant.
"""

from __future__ import annotations

import mmap
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from memhil.errors import LogFormatError
from memhil.events import AllocEvent, EventFlag, EventKind
from memhil.heap.ledger import Ledger
from memhil.heap.model import LiveBlock
from memhil.timeline import format as fmt

_FREE = int(EventKind.FREE)
_KINDS = {k.value: k for k in EventKind}
_RELEASE = 16 << 20  # hand parsed pages back every 16 MiB


@dataclass
class RecordWalk:
    """Counts kept while walking the records of one file."""

    records: int = 0
    bad_records: int = 0  # damaged stretches skipped (each may hold one or more records)
    bad_bytes: int = 0
    ended: bool = False  # an END record was seen (file closed cleanly or rotated)


def iter_records(data: bytes | mmap.mmap, start: int, walk: RecordWalk) -> Iterator[tuple[int, int, int, int]]:
    """Yield ``(type, record_offset, payload_offset, payload_length)`` of each valid record from ``start``.

    A damaged stretch (bad CRC, bad frame, cut-off tail) is skipped by searching for the
    next sync marker that starts a valid record, and counted once in ``walk.bad_records``.
    """
    end = len(data)
    pos = start
    frame_size = fmt.FRAME.size
    while pos < end:
        n = fmt.frame_ok(data, pos, end)
        if n:
            _, rtype, length, _ = fmt.FRAME.unpack_from(data, pos)
            walk.records += 1
            yield rtype, pos, pos + frame_size, length
            pos += n
            continue
        bad_start = pos
        walk.bad_records += 1
        pos = data.find(fmt.SYNC, pos + 1)
        while pos != -1 and not fmt.frame_ok(data, pos, end):
            pos = data.find(fmt.SYNC, pos + 1)
        if pos == -1:
            walk.bad_bytes += end - bad_start
            return
        walk.bad_bytes += pos - bad_start


@dataclass
class FileSummary:
    """What a worker learned from one file: header, counts, and per-interval arrays.

    ``ks[i]`` is an interval index with events (or the checkpoint's, or a tick's interval);
    ``totals[i]`` its local maximum at position ``max_pos[i]``; ``end_totals[i]``/``end_pos[i]``
    the level and position after the interval's last event. ``modules[m]``/``module_ends[m]``
    are aligned with ``ks``.
    """

    path: str
    header: fmt.FileHeader
    size: int = 0
    walk: RecordWalk = field(default_factory=RecordWalk)
    events: int = 0
    lost_events: int = 0  # sequence numbers skipped inside the file (damaged blocks)
    bad_events: int = 0  # records with a valid CRC whose content did not decode
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
    try:
        return data, fmt.decode_header(data[:65536], path=str(path))
    except LogFormatError:
        if isinstance(data, mmap.mmap):
            data.close()
        raise


def _first_true(mask: np.ndarray, seg_of: np.ndarray) -> np.ndarray:
    """Index of the first True of ``mask`` in each segment (every segment has one)."""
    idx = np.flatnonzero(mask)
    seg = seg_of[idx]
    keep = np.empty(len(idx), dtype=bool)
    keep[:1] = True
    np.not_equal(seg[1:], seg[:-1], out=keep[1:])
    return idx[keep]


class _Segments:
    """Per-interval pieces from each block, tick and checkpoint, merged once at the end of the file."""

    def __init__(self) -> None:
        self.ks: list[np.ndarray] = []
        self.mx: list[np.ndarray] = []
        self.mpos: list[np.ndarray] = []
        self.end: list[np.ndarray] = []
        self.epos: list[np.ndarray] = []
        self.mods: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        self.n = 0  # segments so far

    def add(self, ks, mx, mpos, end, epos, mods: dict[int, tuple[np.ndarray, np.ndarray]], levels: dict[int, int]) -> None:
        """``mods`` holds (max, end) of modules that changed; every other known module stays at ``levels[m]``."""
        count = len(ks)
        self.ks.append(ks)
        self.mx.append(mx)
        self.mpos.append(mpos)
        self.end.append(end)
        self.epos.append(epos)
        for m in mods.keys() | levels.keys():
            col = self.mods.get(m)
            if col is None:
                col = self.mods[m] = ([np.zeros(self.n, np.int64)], [np.zeros(self.n, np.int64)])
            if m in mods:
                col[0].append(mods[m][0])
                col[1].append(mods[m][1])
            else:
                level = np.full(count, levels[m], np.int64)
                col[0].append(level)
                col[1].append(level)
        for m, col in self.mods.items():
            if m not in mods and m not in levels:
                zero = np.zeros(count, np.int64)
                col[0].append(zero)
                col[1].append(zero)
        self.n += count

    def point(self, k: int, total: int, pos: int, levels: dict[int, int]) -> None:
        one = np.array([k], np.int64)
        t = np.array([total], np.int64)
        p = np.array([pos], np.int64)
        self.add(one, t, p, t, p, {}, levels)

    def finish(self, s: FileSummary) -> None:
        """Merge consecutive pieces of one interval: the largest maximum (the first on ties), the last end."""
        if not self.n:
            return
        ks = np.concatenate(self.ks)
        mx = np.concatenate(self.mx)
        starts = np.flatnonzero(np.concatenate(([True], ks[1:] != ks[:-1])))
        ends = np.append(starts[1:], len(ks)) - 1
        gmax = np.maximum.reduceat(mx, starts)
        seg_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(ks))))
        first = _first_true(mx == gmax[seg_of], seg_of)
        del mx, self.mx[:]
        s.ks = _arr(ks[starts])
        s.totals = _arr(gmax)
        s.max_pos = _arr(np.concatenate(self.mpos)[first])
        s.end_totals = _arr(np.concatenate(self.end)[ends])
        s.end_pos = _arr(np.concatenate(self.epos)[ends])
        del ks, self.ks[:], self.mpos[:], self.end[:], self.epos[:]
        for m in sorted(self.mods):
            cmax, cend = self.mods.pop(m)  # free each module's pieces once merged
            s.modules[m] = _arr(np.maximum.reduceat(np.concatenate(cmax), starts))
            s.module_ends[m] = _arr(np.concatenate(cend)[ends])


def _arr(a: np.ndarray) -> array:
    out = array("q")
    out.frombytes(memoryview(np.ascontiguousarray(a, dtype="<i8")).cast("B"))
    return out


def _alloc_bytes(e: np.ndarray) -> np.ndarray:
    node = e["node_size"].astype(np.int64)
    nbytes = np.where(node != 0, node, e["size"].astype(np.int64))
    nbytes[e["kind"] == _FREE] = 0
    return nbytes


class _FileScan:
    """The running state of one file's scan: levels, time, sequence numbers."""

    def __init__(self, s: FileSummary, interval_us: int) -> None:
        self.s = s
        self.interval = interval_us
        self.total = 0
        self.levels: dict[int, int] = {}  # modules with a level in this file (known ones stay, at 0)
        self.t_last = s.header.t_start_us
        self.k = -1
        self.last_seq = -1
        self.seg = _Segments()

    def checkpoint(self, block: fmt.Block, last_seq: int, t_us: int, rec_off: int) -> None:
        e = block.entries
        nbytes = _alloc_bytes(e)
        mods = e["module"].astype(np.int64)
        self.total = int(nbytes.sum())
        if len(e):
            sums = np.bincount(mods, weights=nbytes)
            for m in np.flatnonzero(np.bincount(mods)):
                self.levels[int(m)] = int(sums[m])
        self.s.has_checkpoint = True
        self.s.first_seq = self.last_seq = last_seq
        self.t_last = max(self.t_last, t_us)
        self.k = self.t_last // self.interval
        pos = rec_off * fmt.POS_SCALE + 1
        self.seg.point(self.k, self.total, pos, self.levels)

    def tick(self, t_us: int, rec_off: int) -> None:
        if t_us > self.t_last:
            self.t_last = t_us
            k = t_us // self.interval
            if k != self.k:
                self.k = k
                self.seg.point(k, self.total, rec_off * fmt.POS_SCALE, self.levels)

    def block(self, block: fmt.Block, rec_off: int) -> None:
        e = block.entries
        n = len(e)
        if not n:
            return
        s = self.s
        base = rec_off * fmt.POS_SCALE
        # sequence numbers: events lost inside the file show as gaps (as the v1 walk counted them)
        seq = e["seq"]
        run = np.maximum.accumulate(np.concatenate(([self.last_seq], seq)))
        prev = run[:-1]
        gaps = seq - prev - 1
        s.lost_events += int(gaps[(prev >= 0) & (gaps > 0)].sum())
        if s.first_seq < 0 and not s.has_checkpoint:
            s.first_seq = int(seq[0]) - 1
        self.last_seq = int(run[-1])
        # virtual time runs on (never back); intervals of the instants after each event
        t = np.maximum.accumulate(e["t_us"].astype(np.int64))
        np.maximum(t, self.t_last, out=t)
        self.t_last = int(t[-1])
        ks = t // self.interval
        starts = np.flatnonzero(np.concatenate(([True], ks[1:] != ks[:-1])))
        seg_ends = np.append(starts[1:], n) - 1
        seg_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, n)))
        # live bytes after each event, from the writer's level before the block
        alloc = _alloc_bytes(e)
        freed = e["freed"].astype(np.int64)
        stale = e["stale"].astype(np.int64)
        total0 = block.total_before
        level = np.cumsum(alloc - freed - stale)
        level += total0
        pre = np.concatenate(([total0], level[:-1]))[starts]  # carried into each piece
        smax = np.maximum.reduceat(level, starts)
        first = _first_true(level == smax[seg_of], seg_of)
        carried = pre >= smax
        mx = np.where(carried, pre, smax)
        mpos = base + np.where(carried, starts, first + 1)
        # modules: the table gives each one's level before the block; only touched ones change
        levels = {m: 0 for m in self.levels}
        levels.update((int(m), int(v)) for m, v in zip(block.levels["module"], block.levels["level"]))
        kinds_alloc = e["kind"] != _FREE
        modules = e["module"]
        fmod, smod = e["freed_module"], e["stale_module"]
        touched = set(np.unique(modules[kinds_alloc]).tolist())
        touched.update(np.unique(fmod[freed > 0]).tolist())
        touched.update(np.unique(smod[stale > 0]).tolist())
        mods: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for m in touched:
            start = levels.get(m, 0)
            d = np.where(modules == m, alloc, 0)
            d -= np.where(fmod == m, freed, 0)
            d -= np.where(smod == m, stale, 0)
            lv = np.cumsum(d)
            lv += start
            mpre = np.concatenate(([start], lv[:-1]))[starts]
            mods[m] = (np.maximum(mpre, np.maximum.reduceat(lv, starts)), lv[seg_ends])
            levels[m] = int(lv[-1])
        untouched = {m: v for m, v in levels.items() if m not in mods}
        self.seg.add(ks[starts], mx, mpos, level[seg_ends], base + seg_ends + 1, mods, untouched)
        self.levels = levels
        self.total = int(level[-1])
        self.k = int(ks[-1])
        s.events += n


def scan_file(path: str, interval_us: int) -> FileSummary:
    """Walk one file and compute its per-interval local maxima (the reader's worker function)."""
    data, header = open_log(path)
    summary = FileSummary(str(path), header, len(data))
    scan = _FileScan(summary, interval_us)
    width = header.ptr_width
    released = 0
    try:
        for rtype, rec_off, p, length in iter_records(data, header.records_start, summary.walk):
            if rtype == fmt.REC_BLOCK:
                block = fmt.decode_block(data, p, length, width)
                if block is None:
                    summary.bad_events += 1
                else:
                    scan.block(block, rec_off)
                del block
            elif rtype == fmt.REC_CHECKPOINT:
                block = fmt.decode_block(data, p + fmt.CHECKPOINT_HEAD.size, length - fmt.CHECKPOINT_HEAD.size, width) \
                    if length >= fmt.CHECKPOINT_HEAD.size else None
                if block is None or summary.has_checkpoint or summary.events:
                    summary.bad_events += 1  # undecodable, or a second checkpoint (not part of the format)
                else:
                    cp_seq, cp_t = fmt.CHECKPOINT_HEAD.unpack_from(data, p)
                    scan.checkpoint(block, cp_seq, cp_t, rec_off)
                del block
            elif rtype == fmt.REC_TICK:
                if length == fmt.TICK.size:
                    scan.tick(fmt.TICK.unpack_from(data, p)[0], rec_off)
            elif rtype == fmt.REC_END:
                summary.walk.ended = True
            if isinstance(data, mmap.mmap) and rec_off - released >= _RELEASE:
                upto = rec_off & ~(mmap.PAGESIZE - 1)
                data.madvise(mmap.MADV_DONTNEED, released, upto - released)
                released = upto
        scan.seg.finish(summary)
    finally:
        if isinstance(data, mmap.mmap):
            data.close()
    summary.last_seq = scan.last_seq
    summary.t_first_us = header.t_start_us
    summary.t_last_us = scan.t_last
    return summary


def _events(block: fmt.Block, n: int) -> Iterator[AllocEvent]:
    """The first ``n`` events of a block as :class:`AllocEvent` s (replay only: a Python loop)."""
    limit = int(block.entries["word_off"][n]) if n < len(block.entries) else len(block.words)
    words = block.words[:limit].tolist()
    for row in block.entries[:n].tolist():
        seq, t_us, kind, flags, ns, nl, module, task, ptr, size, node, old, _, _, _, _, off = row
        yield AllocEvent(seq, t_us, _KINDS[kind], ptr, size, node, module, task, tuple(words[off: off + ns]), old,
                         tuple(words[off + ns: off + ns + nl]), EventFlag(flags))


def _checkpoint_blocks(block: fmt.Block) -> list[LiveBlock]:
    words = block.words.tolist()
    out = []
    for row in block.entries.tolist():
        seq, t_us, _, flags, ns, nl, module, task, ptr, size, node, _, _, _, _, _, off = row
        out.append(LiveBlock(ptr, size, node, module, task, seq, t_us, tuple(words[off: off + ns]), tuple(words[off + ns: off + ns + nl]), EventFlag(flags)))
    return out


def replay(path: str | Path, pos: int) -> tuple[Ledger, fmt.FileHeader]:
    """The ledger of one file at position ``pos`` (see the module docstring): checkpoint, then events."""
    data, header = open_log(path)
    width = header.ptr_width
    at, upto = divmod(pos, fmt.POS_SCALE)
    ledger: Ledger | None = None
    walk = RecordWalk()
    try:
        for rtype, rec_off, p, length in iter_records(data, header.records_start, walk):
            if rec_off > at or (rec_off == at and upto == 0):
                break
            if rtype == fmt.REC_CHECKPOINT and ledger is None and length >= fmt.CHECKPOINT_HEAD.size:
                block = fmt.decode_block(data, p + fmt.CHECKPOINT_HEAD.size, length - fmt.CHECKPOINT_HEAD.size, width)
                if block is None:
                    continue
                last_seq, t_us = fmt.CHECKPOINT_HEAD.unpack_from(data, p)
                ledger = Ledger(_checkpoint_blocks(block), t_us=t_us)
                ledger.last_seq = last_seq
            elif rtype == fmt.REC_BLOCK:
                block = fmt.decode_block(data, p, length, width)
                if block is None:
                    continue
                n = len(block.entries) if rec_off < at else min(upto, len(block.entries))
                if not n:
                    continue
                if ledger is None:
                    ledger = Ledger(t_us=header.t_start_us)
                ledger.apply_many(_events(block, n))
            elif rtype == fmt.REC_TICK and ledger is not None and length == fmt.TICK.size:
                ledger.t_us = max(ledger.t_us, fmt.TICK.unpack_from(data, p)[0])
            block = None
    finally:
        block = None
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
