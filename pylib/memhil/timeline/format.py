"""The timeline log format (memhil issue 7; seed 004's LOG mode), version 1.

A log is a run of files ``memlog<YYYYMMDD>_<RUNID>-<n>.bin``. Every file parses on its
own: it starts with a header and then a CHECKPOINT record holding every live block.
All integers are little-endian.

File header::

    offset  size  field
    0       8     magic  b"MEMHILTL"
    8       2     format version (u16, currently 1)
    10      2     header length in bytes, CRC included (u16)
    12      1     pointer width in bytes (u8: 4 or 8) for ptr/size/stack fields
    13      3     reserved, zero
    16      8     wall-clock start of this file, seconds since the epoch (f64)
    24      8     virtual time at the start of this file, microseconds (u64)
    32      4     file index n within the run (u32)
    36      ...   four strings, each u16 length + UTF-8: build id, platform, engine, run id
    end-4   4     CRC32 (zlib.crc32) of every header byte before it

Records follow, each framed as::

    0  1  sync byte 0xA5
    1  1  record type (u8)
    2  4  payload length (u32)
    6  4  CRC32 of bytes 1..6 (type and length) followed by the payload
    10 .. payload

A record whose frame or CRC is wrong is skipped: the reader resynchronises on the next
sync byte that starts a valid record and counts the damaged stretch as one bad record.

Record types:

- ``EVENT`` (1): one :class:`~memhil.events.AllocEvent` as an *item* (below).
- ``CHECKPOINT`` (2): ``last_seq`` (i64), ``t_us`` (u64), block count (u32), then one item
  per live block (kind ALLOC, old_ptr 0). First record of every file.
- ``TICK`` (3): ``t_us`` (u64): virtual time went on without allocator events.
- ``END`` (4): ``last_seq`` (i64), ``t_us`` (u64), events in this file (u64), reason (u8:
  0 closed, 1 rotated). A file without END was cut short (crash, disk full).

Item (event or block), with ``P`` the pointer width (``I`` or ``Q``)::

    seq i64, t_us u64, kind u8, flags u8, module u16, task u16,
    ptr P, size P, node_size P, old_ptr P, n_stack u8, n_lrs u8,
    stack P * n_stack, lrs P * n_lrs
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Iterable

from memhil.errors import LogFormatError
from memhil.events import AllocEvent, EventFlag, EventKind
from memhil.heap.model import LiveBlock

MAGIC = b"MEMHILTL"
VERSION = 1
SYNC = 0xA5

REC_EVENT = 1
REC_CHECKPOINT = 2
REC_TICK = 3
REC_END = 4
RECORD_TYPES = frozenset({REC_EVENT, REC_CHECKPOINT, REC_TICK, REC_END})

END_CLOSED = 0
END_ROTATED = 1

#: refuse absurd lengths when resynchronising (a checkpoint of 1M blocks is ~50 MB)
MAX_RECORD = 256 * 1024 * 1024

FRAME = struct.Struct("<BBII")  # sync, type, length, crc
_TYPE_LEN = struct.Struct("<BI")
_HEAD_FIXED = struct.Struct("<8sHHB3xdQI")
_STR_LEN = struct.Struct("<H")
_CRC = struct.Struct("<I")
CHECKPOINT_HEAD = struct.Struct("<qQI")
TICK = struct.Struct("<Q")
END = struct.Struct("<qQQB")

_KINDS = {k.value: k for k in EventKind}


def item_struct(ptr_width: int) -> struct.Struct:
    """The fixed part of an item for a pointer width of 4 or 8 bytes."""
    if ptr_width == 4:
        return struct.Struct("<qQBBHHIIIIBB")
    if ptr_width == 8:
        return struct.Struct("<qQBBHHQQQQBB")
    raise LogFormatError(f"unsupported pointer width {ptr_width}", hint="memhil logs use 4- or 8-byte pointers", ptr_width=ptr_width)


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
        strings = b"".join(_STR_LEN.pack(len(b)) + b for b in (s.encode("utf-8") for s in (self.build_id, self.platform, self.engine, self.run_id)))
        length = _HEAD_FIXED.size + len(strings) + _CRC.size
        body = _HEAD_FIXED.pack(MAGIC, self.version, length, self.ptr_width, self.wall_start, self.t_start_us, self.index) + strings
        return body + _CRC.pack(zlib.crc32(body))


def decode_header(data: bytes | memoryview, *, path: object = None) -> FileHeader:
    """Parse and check a file header; :class:`LogFormatError` if it is not a memhil log of a known version."""
    if len(data) < _HEAD_FIXED.size + _CRC.size:
        raise LogFormatError("file is too short for a timeline log header", hint="the file is empty or was cut short; it cannot be used", path=path)
    magic, version, length, width, wall, t0, index = _HEAD_FIXED.unpack_from(data, 0)
    if magic != MAGIC:
        raise LogFormatError("not a memhil timeline log (bad magic)", hint="point the reader at a directory of memlog*.bin files written by memhil", path=path)
    if version != VERSION:
        raise LogFormatError(f"timeline log format version {version} is not supported (this memhil reads version {VERSION})",
                             hint="read the log with the memhil version that wrote it", path=path)
    if length > len(data) or length < _HEAD_FIXED.size + 4 * _STR_LEN.size + _CRC.size:
        raise LogFormatError("timeline log header is truncated or has a bad length", hint="the file header is damaged; the file cannot be used", path=path)
    (crc,) = _CRC.unpack_from(data, length - _CRC.size)
    if zlib.crc32(bytes(data[: length - _CRC.size])) != crc:
        raise LogFormatError("timeline log header checksum mismatch", hint="the file header is damaged; the file cannot be used", path=path)
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


def frame(rtype: int, payload: bytes) -> bytes:
    """One framed record: sync, type, length, CRC, payload."""
    crc = zlib.crc32(payload, zlib.crc32(_TYPE_LEN.pack(rtype, len(payload))))
    return FRAME.pack(SYNC, rtype, len(payload), crc) + payload


def frame_ok(data: bytes | memoryview, pos: int, end: int) -> int:
    """Length of the valid record at ``pos`` (frame included), or 0 if there is none."""
    if pos + FRAME.size > end:
        return 0
    sync, rtype, length, crc = FRAME.unpack_from(data, pos)
    if sync != SYNC or rtype not in RECORD_TYPES or length > MAX_RECORD:
        return 0
    stop = pos + FRAME.size + length
    if stop > end:
        return 0
    if zlib.crc32(data[pos + FRAME.size: stop], zlib.crc32(data[pos + 1: pos + 6])) != crc:
        return 0
    return FRAME.size + length


class ItemCodec:
    """Encodes and decodes items (events and checkpoint blocks) for one pointer width."""

    def __init__(self, ptr_width: int = 4) -> None:
        self.width = ptr_width
        self.fixed = item_struct(ptr_width)
        self._pc = "I" if ptr_width == 4 else "Q"
        self._limit = 1 << (8 * ptr_width)

    def encode(self, seq: int, t_us: int, kind: int, flags: int, module: int, task: int, ptr: int, size: int,
               node_size: int, old_ptr: int, stack: tuple[int, ...], lrs: tuple[int, ...]) -> bytes:
        """Raises ``struct.error`` or ``ValueError`` when a value does not fit the format."""
        stack = stack[:255]
        lrs = lrs[:255]
        head = self.fixed.pack(seq, t_us, kind, flags, module, task, ptr, size, node_size, old_ptr, len(stack), len(lrs))
        if stack or lrs:
            return head + struct.pack(f"<{len(stack) + len(lrs)}{self._pc}", *stack, *lrs)
        return head

    def encode_event(self, ev: AllocEvent) -> bytes:
        return self.encode(ev.seq, ev.t_us, int(ev.kind), int(ev.flags), ev.module, ev.task, ev.ptr, ev.size,
                           ev.node_size, ev.old_ptr, tuple(ev.stack), tuple(ev.lrs))

    def encode_block(self, b: LiveBlock) -> bytes:
        return self.encode(b.seq, b.t_us, int(EventKind.ALLOC), int(b.flags), b.module, b.task, b.ptr, b.size,
                           b.node_size, 0, tuple(b.stack), tuple(b.lrs))

    def decode(self, data: bytes | memoryview, pos: int) -> tuple[tuple, tuple[int, ...], tuple[int, ...], int]:
        """Return (fixed fields, stack, lrs, next position). Raises ``struct.error`` on short data."""
        fields = self.fixed.unpack_from(data, pos)
        pos += self.fixed.size
        ns, nl = fields[10], fields[11]
        if ns or nl:
            words = struct.unpack_from(f"<{ns + nl}{self._pc}", data, pos)
            pos += (ns + nl) * self.width
            return fields, words[:ns], words[ns:], pos
        return fields, (), (), pos

    def decode_event(self, data: bytes | memoryview, pos: int) -> tuple[AllocEvent, int]:
        f, stack, lrs, pos = self.decode(data, pos)
        kind = _KINDS.get(f[2])
        if kind is None:
            raise ValueError(f"unknown event kind {f[2]}")
        return AllocEvent(f[0], f[1], kind, f[6], f[7], f[8], f[4], f[5], stack, f[9], lrs, EventFlag(f[3])), pos

    def decode_block(self, data: bytes | memoryview, pos: int) -> tuple[LiveBlock, int]:
        f, stack, lrs, pos = self.decode(data, pos)
        return LiveBlock(f[6], f[7], f[8], f[4], f[5], f[0], f[1], stack, lrs, EventFlag(f[3])), pos

    def encode_checkpoint(self, last_seq: int, t_us: int, blocks: Iterable[LiveBlock]) -> bytes:
        items = [self.encode_block(b) for b in blocks]
        return CHECKPOINT_HEAD.pack(last_seq, t_us, len(items)) + b"".join(items)

    def decode_checkpoint(self, payload: bytes | memoryview) -> tuple[int, int, list[LiveBlock]]:
        """Raises ``struct.error``/``ValueError`` if the payload does not hold what its head says."""
        last_seq, t_us, count = CHECKPOINT_HEAD.unpack_from(payload, 0)
        pos = CHECKPOINT_HEAD.size
        blocks = []
        for _ in range(count):
            block, pos = self.decode_block(payload, pos)
            blocks.append(block)
        if pos != len(payload):
            raise ValueError("checkpoint payload longer than its blocks")
        return last_seq, t_us, blocks
