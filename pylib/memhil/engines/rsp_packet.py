"""GDB remote serial protocol framing (GDB manual, Appendix E "Remote Protocol", E.1 Overview).

Wire format only, no commands: ``$payload#cs`` packets with a modulo-256 checksum
written as two hex digits, ``}`` (0x7d) escapes (the next byte XOR 0x20), run-length
encoding ``X*n`` (repeat X ``ord(n) - 29`` more times), ``+``/``-`` acknowledgements
and the out-of-band interrupt byte 0x03. Commands live in :mod:`memhil.engines.gdb_rsp`.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

from memhil.errors import ProtocolError

ESCAPE = 0x7D
INTERRUPT = b"\x03"
ACK = b"+"
NACK = b"-"
_MUST_ESCAPE = frozenset(b"$#}*")
#: a packet longer than this without its '#' means the stream is garbage, not a slow peer
MAX_PACKET = 1 << 20


#: payloads from this size are summed by numpy: a bulk memory read is ~8 KiB of hex per packet, and
#: ``sum()`` over it took half the time of a trace drain
_NUMPY_SUM_FROM = 512
_numpy = None


def load_bulk_checksum() -> None:
    """Import numpy for the checksums of large packets now (a connection does, at start) rather than in
    the middle of the first bulk read: the import takes ~80 ms."""
    global _numpy
    if _numpy is None:
        import numpy  # a dependency of memhil (the timeline reader); not needed for small packets

        _numpy = numpy


def checksum(data: bytes) -> int:
    """The packet checksum: the sum of the payload bytes as sent, modulo 256 (E.1)."""
    if len(data) < _NUMPY_SUM_FROM:
        return sum(data) & 0xFF
    if _numpy is None:
        load_bulk_checksum()
    return int(_numpy.frombuffer(data, dtype=_numpy.uint8).sum(dtype=_numpy.uint64)) & 0xFF  # type: ignore[union-attr]


def escape(data: bytes) -> bytes:
    """Escape ``$ # } *`` for binary data (E.1, "binary data"; used by ``X`` packets)."""
    if not any(b in _MUST_ESCAPE for b in data):
        return bytes(data)
    out = bytearray()
    for b in data:
        if b in _MUST_ESCAPE:
            out += bytes((ESCAPE, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def decode_payload(raw: bytes) -> bytes:
    """Undo escapes and run-length encoding of a received payload (E.1).

    Both are applied in one pass, as GDB's ``read_frame`` does: ``*`` repeats the last
    *decoded* byte; ``}`` makes the next byte literal (XOR 0x20).
    """
    if ESCAPE not in raw and 0x2A not in raw:
        return bytes(raw)
    out = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b == ESCAPE:
            if i + 1 >= n:
                raise ProtocolError("packet ends inside an escape (0x7d)", hint="the stub sent a truncated packet; restart the emulator", payload=raw[:80])
            out.append(raw[i + 1] ^ 0x20)
            i += 2
        elif b == 0x2A:  # '*'
            if not out or i + 1 >= n:
                raise ProtocolError("run-length marker '*' without a byte to repeat or a count", hint="the stub sent a malformed packet", payload=raw[:80])
            count = raw[i + 1] - 29
            if count < 3 or raw[i + 1] in (0x23, 0x24):  # counts below 3 and the chars '#', '$' are never sent
                raise ProtocolError(f"invalid run-length count {raw[i + 1]!r}", hint="the stub sent a malformed packet", payload=raw[:80])
            out += bytes((out[-1],)) * count
            i += 2
        else:
            out.append(b)
            i += 1
    return bytes(out)


def encode_packet(payload: bytes) -> bytes:
    """Frame ``payload`` (already escaped where it holds binary data) as ``$payload#cs``."""
    for b in (0x24, 0x23):
        if b in payload:
            raise ProtocolError(f"unescaped {chr(b)!r} in a packet payload", hint="escape binary data with rsp_packet.escape()", payload=payload[:80])
    return b"$" + payload + b"#%02x" % checksum(payload)


@dataclasses.dataclass(frozen=True)
class Frame:
    """One thing read off the wire: ``kind`` is ``"ack"``, ``"nack"``, ``"packet"`` or ``"notification"``."""

    kind: str
    payload: bytes = b""


class PacketReader:
    """Incremental parser: :meth:`feed` raw bytes, then iterate :meth:`frames`.

    Bytes outside packets other than acks are ignored (stubs may print noise before
    the first packet); a bad checksum or non-hex checksum raises :class:`ProtocolError`.
    """

    def __init__(self, *, verify_checksums: bool = True) -> None:
        self._buf = bytearray()
        self.verify_checksums = verify_checksums

    def feed(self, data: bytes) -> None:
        self._buf += data

    @property
    def pending(self) -> int:
        return len(self._buf)

    def frames(self) -> Iterator[Frame]:
        while True:
            frame = self._next()
            if frame is None:
                return
            yield frame

    def _next(self) -> Frame | None:
        buf = self._buf
        while buf:
            head = buf[0]
            if head == 0x2B:
                del buf[0]
                return Frame("ack")
            if head == 0x2D:
                del buf[0]
                return Frame("nack")
            if head in (0x24, 0x25):  # '$' packet, '%' notification
                end = buf.find(b"#", 1)
                if end < 0:
                    if len(buf) > MAX_PACKET:
                        del buf[:]
                        raise ProtocolError(f"no end of packet after {MAX_PACKET} bytes", hint="the stream is corrupt; restart the emulator")
                    return None
                if len(buf) < end + 3:
                    return None
                raw = bytes(buf[1:end])
                cs_text = bytes(buf[end + 1 : end + 3])
                del buf[: end + 3]
                if b"$" in raw:
                    raise ProtocolError("a packet started inside another ('$' before '#')", hint="the stub dropped part of a packet", payload=raw[:80])
                try:
                    want = int(cs_text, 16)
                except ValueError:
                    raise ProtocolError(f"checksum {cs_text!r} is not two hex digits", hint="the stub sent a malformed packet", payload=raw[:80]) from None
                if self.verify_checksums and checksum(raw) != want:
                    raise ProtocolError(
                        f"bad packet checksum: got {want:#04x}, computed {checksum(raw):#04x}",
                        hint="the connection corrupted data; restart the emulator",
                        payload=raw[:80],
                    )
                return Frame("packet" if head == 0x24 else "notification", decode_payload(raw))
            del buf[0]  # noise between packets
        return None
