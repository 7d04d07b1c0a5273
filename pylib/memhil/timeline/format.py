"""The timeline log format (the memory-log profiler's LOG mode), version 2: block records.

A log is a run of files ``memlog<YYYYMMDD>_<RUNID>-<n>.bin``. Every file parses on its
own: it starts with a header and then a CHECKPOINT record holding every live block.
All integers are little-endian. Version 1 (one record per event) is refused with a
:class:`LogFormatError` that names the version: read such logs with the memhil that wrote
them (commit 9b34b6e or older).

File header (unchanged from version 1 but for the version number)::

    offset  size  field
    0       8     magic  b"MEMHILTL"
    8       2     format version (u16, currently 2)
    10      2     header length in bytes, CRC included (u16)
    12      1     pointer width in bytes (u8: 4 or 8) for ptr/size/stack fields
    13      3     reserved, zero
    16      8     wall-clock start of this file, seconds since the epoch (f64)
    24      8     virtual time at the start of this file, microseconds (u64)
    32      4     file index n within the run (u32)
    36      ...   four strings, each u16 length + UTF-8: build id, platform, engine, run id
    end-4   4     CRC32 (zlib.crc32) of every header byte before it

Records follow, each starting at an offset that is a multiple of 8 (zero padding after the
previous record's payload, outside its CRC)::

    0  4  sync marker b"\\xa5MHB"
    4  1  record type (u8)
    5  3  reserved, zero
    8  4  payload length (u32)
    12 4  CRC32 of the type byte and the length (u32), then the payload
    16 .. payload

A record whose frame or CRC is wrong is skipped whole: the reader resynchronises on the next
sync marker that starts a valid record and counts the damaged stretch as one bad record.
The events of a skipped BLOCK are lost; they show as a gap in sequence numbers.

Record types:

- ``BLOCK`` (5): up to :data:`MAX_BLOCK_EVENTS` events as a *block body* (below).
- ``CHECKPOINT`` (2): ``last_seq`` (i64), ``t_us`` (u64), then a block body with one ALLOC
  entry per live block (its own seq and t_us; old_ptr, freed and stale 0). First record of
  every file.
- ``TICK`` (3): ``t_us`` (u64): virtual time went on without allocator events.
- ``END`` (4): ``last_seq`` (i64), ``t_us`` (u64), events in this file (u64), reason (u8:
  0 closed, 1 rotated), 7 bytes zero. A file without END was cut short (crash, disk full).

Block body (all parts 8-byte aligned, so ``numpy.frombuffer`` maps each part at once)::

    count u32, n_words u32, n_levels u32, reserved u32, total_before i64
    n_levels x (module u32, reserved u32, level i64)     module levels before the block (non-zero only)
    count x entry                                        fixed size, see entry_dtype()
    n_words x P                                          call stacks and LRs, P = pointer width

``total_before`` and the level table are the writer's live bytes (node sizes) before the
block, so a block parses without the blocks before it. An entry carries what its event
removed from the live set, which the writer knows from its own ledger: ``freed`` bytes of
module ``freed_module`` (the block a FREE released, or a REALLOC's old block) and ``stale``
bytes of ``stale_module`` (a block an allocation displaced at the same pointer). Its words
are ``stack`` (``n_stack``) then ``lrs`` (``n_lrs``) starting at ``word_off``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from memhil.errors import LogFormatError

MAGIC = b"MEMHILTL"
VERSION = 2
SYNC = b"\xa5MHB"

REC_CHECKPOINT = 2
REC_TICK = 3
REC_END = 4
REC_BLOCK = 5
RECORD_TYPES = frozenset({REC_CHECKPOINT, REC_TICK, REC_END, REC_BLOCK})

END_CLOSED = 0
END_ROTATED = 1

#: refuse absurd lengths when resynchronising (a checkpoint of 1M blocks is ~60 MB)
MAX_RECORD = 256 * 1024 * 1024
#: the most events one BLOCK may hold (positions keep the event index below POS_SCALE)
MAX_BLOCK_EVENTS = 65535
#: a position in a file is ``record_offset * POS_SCALE + events_applied_from_that_record``
POS_SCALE = 1 << 20

FRAME = struct.Struct("<4sB3xII")  # sync, type, length, crc
_TYPE_LEN = struct.Struct("<BI")
_HEAD_FIXED = struct.Struct("<8sHHB3xdQI")
_STR_LEN = struct.Struct("<H")
_CRC = struct.Struct("<I")
BLOCK_HEAD = struct.Struct("<IIIIq")  # count, n_words, n_levels, reserved, total_before
CHECKPOINT_HEAD = struct.Struct("<qQ")  # last_seq, t_us
TICK = struct.Struct("<Q")
END = struct.Struct("<qQQB7x")

LEVEL_DTYPE = np.dtype([("module", "<u4"), ("reserved", "<u4"), ("level", "<i8")])


def align8(n: int) -> int:
    return (n + 7) & ~7


def _check_width(ptr_width: int) -> str:
    if ptr_width == 4:
        return "I"
    if ptr_width == 8:
        return "Q"
    raise LogFormatError(f"unsupported pointer width {ptr_width}", hint="memhil logs use 4- or 8-byte pointers", ptr_width=ptr_width)


def entry_struct(ptr_width: int) -> struct.Struct:
    """One fixed-size entry for :func:`struct.pack`; the same layout as :func:`entry_dtype`."""
    p = _check_width(ptr_width)
    return struct.Struct(f"<qQBBBBHH{p * 6}HHI")


def entry_dtype(ptr_width: int) -> np.dtype:
    """The numpy dtype of one entry (56 bytes with 4-byte pointers, 80 with 8-byte ones)."""
    p = "<u4" if _check_width(ptr_width) == "I" else "<u8"
    dt = np.dtype([("seq", "<i8"), ("t_us", "<u8"), ("kind", "u1"), ("flags", "u1"), ("n_stack", "u1"), ("n_lrs", "u1"),
                   ("module", "<u2"), ("task", "<u2"), ("ptr", p), ("size", p), ("node_size", p), ("old_ptr", p),
                   ("freed", p), ("stale", p), ("freed_module", "<u2"), ("stale_module", "<u2"), ("word_off", "<u4")])
    assert dt.itemsize == entry_struct(ptr_width).size
    return dt


@dataclass(frozen=True)
class FileHeader:
    """The identity block at the start of every log file."""

    build_id: str
    platform: str
    engine: str
    run_id: str
    wall_start: float
    t_start_us: int
    index: int
    ptr_width: int = 4
    version: int = VERSION
    length: int = 0  # bytes on disk, filled in by :func:`decode_header`

    def encode(self) -> bytes:
        """The header bytes, padded with zeros so the first record starts 8-byte aligned."""
        strings = b"".join(_STR_LEN.pack(len(b)) + b for b in (s.encode("utf-8") for s in (self.build_id, self.platform, self.engine, self.run_id)))
        length = _HEAD_FIXED.size + len(strings) + _CRC.size
        body = _HEAD_FIXED.pack(MAGIC, self.version, length, self.ptr_width, self.wall_start, self.t_start_us, self.index) + strings
        return body + _CRC.pack(zlib.crc32(body)) + bytes(align8(length) - length)

    @property
    def records_start(self) -> int:
        return align8(self.length)


def decode_header(data: bytes | memoryview, *, path: object = None) -> FileHeader:
    """Parse and check a file header; :class:`LogFormatError` if it is not a memhil log of a known version."""
    if len(data) < _HEAD_FIXED.size + _CRC.size:
        raise LogFormatError("file is too short for a timeline log header", hint="the file is empty or was cut short; it cannot be used", path=path)
    magic, version, length, width, wall, t0, index = _HEAD_FIXED.unpack_from(data, 0)
    if magic != MAGIC:
        raise LogFormatError("not a memhil timeline log (bad magic)", hint="point the reader at a directory of memlog*.bin files written by memhil", path=path)
    if version == 1:
        raise LogFormatError("timeline log format version 1 (one record per event) is no longer read; this memhil reads version 2 (block records)",
                             hint="read the log with the memhil that wrote it (commit 9b34b6e or older), or record it again", path=path, version=version)
    if version != VERSION:
        raise LogFormatError(f"timeline log format version {version} is not supported (this memhil reads version {VERSION})",
                             hint="read the log with the memhil version that wrote it", path=path, version=version)
    if length > len(data) or length < _HEAD_FIXED.size + 4 * _STR_LEN.size + _CRC.size:
        raise LogFormatError("timeline log header is truncated or has a bad length", hint="the file header is damaged; the file cannot be used", path=path)
    (crc,) = _CRC.unpack_from(data, length - _CRC.size)
    if zlib.crc32(bytes(data[: length - _CRC.size])) != crc:
        raise LogFormatError("timeline log header checksum mismatch", hint="the file header is damaged; the file cannot be used", path=path)
    if width not in (4, 8):
        raise LogFormatError(f"unsupported pointer width {width}", hint="memhil logs use 4- or 8-byte pointers", path=path)
    pos = _HEAD_FIXED.size
    strings = []
    for _ in range(4):
        (n,) = _STR_LEN.unpack_from(data, pos)
        pos += _STR_LEN.size
        strings.append(bytes(data[pos: pos + n]).decode("utf-8", "replace"))
        pos += n
    if pos != length - _CRC.size:
        raise LogFormatError("timeline log header strings do not fit its length", hint="the file header is damaged; the file cannot be used", path=path)
    build_id, platform, engine, run_id = strings
    return FileHeader(build_id, platform, engine, run_id, wall, t0, index, width, version, length)


def frame(rtype: int, payload: bytes | bytearray | memoryview) -> bytes:
    """One framed record: sync, type, length, CRC, payload, zero padding to a multiple of 8."""
    n = len(payload)
    crc = zlib.crc32(payload, zlib.crc32(_TYPE_LEN.pack(rtype, n)))
    return b"".join((FRAME.pack(SYNC, rtype, n, crc), payload, bytes(align8(n) - n)))


def frame_ok(data: bytes | memoryview, pos: int, end: int) -> int:
    """Bytes from ``pos`` to the end of the valid record there (padding included, cut at ``end``), or 0 if none."""
    if pos + FRAME.size > end:
        return 0
    sync, rtype, length, crc = FRAME.unpack_from(data, pos)
    if sync != SYNC or rtype not in RECORD_TYPES or length > MAX_RECORD:
        return 0
    stop = pos + FRAME.size + length
    if stop > end:
        return 0
    if zlib.crc32(data[pos + FRAME.size: stop], zlib.crc32(_TYPE_LEN.pack(rtype, length))) != crc:
        return 0
    return min(align8(stop), end) - pos


@dataclass
class Block:
    """A decoded block body: numpy views of its level table, entries and words (no copies)."""

    total_before: int
    levels: np.ndarray  # LEVEL_DTYPE
    entries: np.ndarray  # entry_dtype(width)
    words: np.ndarray  # u4 or u8


def decode_block(data, offset: int, length: int, ptr_width: int) -> Block | None:
    """The block body at ``data[offset:offset+length]``, or None if it is not well formed.

    Checks that the parts fill the payload exactly, every kind is 1..4 and the word offsets run
    on from 0 to ``n_words``; the scan and the replay both use this, so they accept the same blocks.
    """
    if length < BLOCK_HEAD.size:
        return None
    count, n_words, n_levels, _, total = BLOCK_HEAD.unpack_from(data, offset)
    dt = entry_dtype(ptr_width)
    if count > MAX_RECORD // dt.itemsize or n_levels > 65536:
        return None
    p_lev = offset + BLOCK_HEAD.size
    p_ent = p_lev + n_levels * LEVEL_DTYPE.itemsize
    p_words = p_ent + count * dt.itemsize
    if p_words + n_words * ptr_width != offset + length:
        return None
    levels = np.frombuffer(data, LEVEL_DTYPE, n_levels, p_lev)
    entries = np.frombuffer(data, dt, count, p_ent)
    words = np.frombuffer(data, "<u4" if ptr_width == 4 else "<u8", n_words, p_words)
    if count:
        kind = entries["kind"]
        if int(kind.min()) < 1 or int(kind.max()) > 4:
            return None
        n = entries["n_stack"].astype(np.int64) + entries["n_lrs"]
        ends = np.cumsum(n)
        off = entries["word_off"]
        if ends[-1] != n_words or off[0] != 0 or not np.array_equal(off[1:], ends[:-1]):
            return None
    elif n_words:
        return None
    return Block(total, levels, entries, words)


class BlockBuilder:
    """Collects events (already packed as entries) into one block body, as the writer fills it."""

    def __init__(self, ptr_width: int = 4) -> None:
        self.width = ptr_width
        self.entry = entry_struct(ptr_width)
        self._pack_words = "<%d" + ("I" if ptr_width == 4 else "Q")
        self._word_max = (1 << (8 * ptr_width)) - 1
        self.entries = bytearray()
        self.words: list[int] = []
        self.count = 0
        self.nbytes = BLOCK_HEAD.size  #: size of the body built so far (with an empty level table)

    def add(self, seq: int, t_us: int, kind: int, flags: int, module: int, task: int, ptr: int, size: int, node_size: int,
            old_ptr: int, stack: tuple[int, ...], lrs: tuple[int, ...], freed: int = 0, freed_module: int = 0,
            stale: int = 0, stale_module: int = 0) -> None:
        """Append one entry. Raises ``struct.error`` (nothing appended) when a value does not fit the format."""
        if len(stack) > 255:
            stack = stack[:255]
        if len(lrs) > 255:
            lrs = lrs[:255]
        words = self.words
        entry = self.entry.pack(seq, t_us, kind, flags, len(stack), len(lrs), module, task, ptr, size, node_size, old_ptr,
                                freed, stale, freed_module, stale_module, len(words))
        for w in (*stack, *lrs):  # range check before appending (what struct.pack of the words would refuse)
            if not 0 <= w <= self._word_max:
                raise struct.error(f"address {w!r} does not fit a {self.width}-byte word")
        self.entries += entry
        words.extend(stack)
        words.extend(lrs)
        self.count += 1
        self.nbytes += len(entry) + self.width * (len(stack) + len(lrs))

    def body(self, total_before: int = 0, levels: dict[int, int] | None = None) -> bytes:
        """The block body with the writer's levels before its first event (non-zero levels only)."""
        lev = sorted((m, v) for m, v in (levels or {}).items() if v)
        parts = [BLOCK_HEAD.pack(self.count, len(self.words), len(lev), 0, total_before)]
        parts += [struct.pack("<IIq", m, 0, v) for m, v in lev]
        parts.append(bytes(self.entries))
        if self.words:
            parts.append(struct.pack(self._pack_words % len(self.words), *self.words))
        return b"".join(parts)

    def clear(self) -> None:
        self.entries = bytearray()
        self.words = []
        self.count = 0
        self.nbytes = BLOCK_HEAD.size
