"""A small, fast GDB remote serial protocol client (GDB manual, Appendix E).

Framing lives in :mod:`memhil.engines.rsp_packet`; this module is the command layer:
``qSupported`` (E.4, PacketSize), ``QStartNoAckMode`` (E.11), memory ``m``/``M``/``X``
(E.2), registers ``g``/``p`` (E.2), breakpoints ``Z0``/``z0`` (E.2), ``c``/``s``/``vCont``
(E.2), stop replies ``S``/``T``/``W``/``X``/``O`` (E.3), and the interrupt byte 0x03
(E.8). Every wait has a wall-clock timeout. Requests can be pipelined: several are
written at once and the replies read in order (:meth:`GdbClient.transact_many`).

Trace: ``logging.getLogger("memhil.trace.rsp")`` at DEBUG shows every packet; off by default.
"""

from __future__ import annotations

import dataclasses
import logging
import select
import socket
import struct
import threading
import time
from typing import Iterable, Sequence

from memhil.engines.rsp_packet import ACK, INTERRUPT, NACK, Frame, PacketReader, encode_packet, escape, load_bulk_checksum
from memhil.errors import EngineError, EngineTimeout, ProtocolError, TargetError  # noqa: F401 - TargetError is part of this API

trace = logging.getLogger("memhil.trace.rsp")
trace.propagate = True

#: GDB signal numbers seen in stop replies
SIGINT = 2
SIGTRAP = 5


@dataclasses.dataclass(frozen=True)
class StopReply:
    """A parsed stop reply (E.3). ``kind`` is ``S``/``T`` (stopped), ``W`` (exited) or ``X`` (killed)."""

    kind: str
    signal: int = 0
    registers: dict[int, int] = dataclasses.field(default_factory=dict)  # expedited, by GDB register number
    info: dict[str, str] = dataclasses.field(default_factory=dict)  # other n:r pairs (thread, watch, ...)
    exit_status: int | None = None

    @property
    def exited(self) -> bool:
        return self.kind in ("W", "X")


def parse_stop_reply(payload: bytes) -> StopReply:
    """Parse ``S AA``, ``T AA n1:r1;n2:r2;...``, ``W AA[;process:pid]``, ``X AA[;...]`` (E.3).

    Expedited register values are target byte order (little-endian on ARM) hex.
    """
    text = payload.decode("ascii", "replace")
    if len(text) < 3 or text[0] not in "STWX":
        raise ProtocolError(f"not a stop reply: {text[:60]!r}", hint="the stub answered out of order; restart the emulator", payload=payload[:80])
    kind = text[0]
    try:
        code = int(text[1:3], 16)
    except ValueError:
        raise ProtocolError(f"stop reply {text[:60]!r} has no hex signal number", hint="the stub sent a malformed stop reply", payload=payload[:80]) from None
    if kind in ("W", "X"):
        return StopReply(kind, signal=code if kind == "X" else 0, exit_status=code if kind == "W" else None)
    regs: dict[int, int] = {}
    info: dict[str, str] = {}
    if kind == "T":
        for field in text[3:].split(";"):
            if not field:
                continue
            name, sep, value = field.partition(":")
            if not sep:
                raise ProtocolError(f"stop reply field {field!r} lacks ':'", hint="the stub sent a malformed stop reply", payload=payload[:80])
            try:
                regno = int(name, 16)
            except ValueError:
                info[name] = value
                continue
            regs[regno] = decode_le_hex(value)
    return StopReply(kind, signal=code, registers=regs, info=info)


def decode_le_hex(text: str) -> int:
    """A little-endian register value sent as hex bytes (``xx`` for unavailable bytes reads as 0)."""
    try:
        return int.from_bytes(bytes.fromhex(text.replace("xx", "00")), "little")
    except ValueError:
        raise ProtocolError(f"register value {text[:40]!r} is not hex", hint="the stub sent a malformed register value") from None


class GdbClient:
    """Client side of one GDB remote connection (unix or TCP socket).

    Not thread-safe except :meth:`interrupt`, which may be called from any thread
    while another waits in :meth:`wait_stop`.
    """

    def __init__(self, sock: socket.socket, *, timeout: float = 10.0, name: str = "gdbstub") -> None:
        self.sock = sock
        self.timeout = timeout
        self.name = name
        self.packet_size = 4096
        self.features: dict[str, str] = {}
        self.ack_mode = True
        self._reader = PacketReader()
        self._send_lock = threading.Lock()
        self._x_supported: bool | None = None
        self._vcont: set[str] = set()
        #: defer our '+' acks to the front of the next write (never while the target runs).
        #: Only for stubs that do not wait for acks: QEMU's system-mode gdbstub (which,
        #: in 7.2, lacks QStartNoAckMode and stops a running VM on any byte it reads).
        self.lazy_acks = False
        self._pending_acks = 0
        self.running = False
        self.closed = False
        self.target_xml = b""
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # -- connecting ------------------------------------------------------------------
    @classmethod
    def connect_unix(cls, path: str, *, timeout: float = 10.0) -> "GdbClient":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        return cls._connect(sock, path, timeout)

    @classmethod
    def connect_tcp(cls, host: str, port: int, *, timeout: float = 10.0) -> "GdbClient":
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise EngineError(f"refusing to connect a gdbstub on {host}", hint="memhil uses loopback or unix sockets only")
        sock = socket.socket(socket.AF_INET6 if host == "::1" else socket.AF_INET, socket.SOCK_STREAM)
        return cls._connect(sock, (host, port), timeout)

    @classmethod
    def _connect(cls, sock: socket.socket, address, timeout: float) -> "GdbClient":
        load_bulk_checksum()
        sock.settimeout(timeout)
        try:
            sock.connect(address)
        except OSError as exc:
            sock.close()
            raise EngineError(f"cannot connect to the gdbstub at {address}: {exc}", hint="the emulator may have failed to start; see its stderr") from exc
        client = cls(sock, timeout=timeout)
        client.handshake()
        return client

    def handshake(self) -> None:
        """``qSupported`` (learn PacketSize, vCont, no-ack support) then ``QStartNoAckMode`` if offered."""
        reply = self.transact(b"qSupported:multiprocess-;swbreak+;hwbreak+;vContSupported+")
        for item in reply.decode("ascii", "replace").split(";"):
            if "=" in item:
                key, value = item.split("=", 1)
                self.features[key] = value
            elif item.endswith(("+", "-", "?")):
                self.features[item[:-1]] = item[-1]
        if "PacketSize" in self.features:
            try:
                self.packet_size = max(int(self.features["PacketSize"], 16), 64)
            except ValueError:
                raise ProtocolError(f"PacketSize {self.features['PacketSize']!r} is not hex", hint="the stub sent a malformed qSupported reply") from None
        # QEMU 7.2 accepts QStartNoAckMode without advertising it: try unless refused
        if self.features.get("QStartNoAckMode") != "-":
            if self.transact(b"QStartNoAckMode") == b"OK":
                self.ack_mode = False
        if self.features.get("qXfer:features:read") == "+":
            # reading the target description is what GDB does; QEMU only accepts 'P'
            # register writes from a client that has read it (and drops the legacy FPA
            # registers from 'g' replies then)
            self.target_xml = self.read_xfer(b"features", b"target.xml")
        vcont = self.transact(b"vCont?")
        if vcont.startswith(b"vCont"):
            self._vcont = {a for a in vcont[5:].decode("ascii", "replace").split(";") if a}

    def read_xfer(self, obj: bytes, annex: bytes) -> bytes:
        """``qXfer:<obj>:read:<annex>:offset,length`` until the last chunk (E.4)."""
        out = bytearray()
        while True:
            reply = self.transact(b"qXfer:%s:read:%s:%x,%x" % (obj, annex, len(out), self.packet_size - 8))
            if not reply or reply[:1] not in (b"m", b"l"):
                self._check_error(reply, f"reading {obj.decode()}:{annex.decode()}")
                return bytes(out)
            out += reply[1:]
            if reply[:1] == b"l" or len(out) > 1 << 20:
                return bytes(out)

    def write_register(self, number: int, value: int) -> None:
        self._check_ok(self.transact(b"P%x=" % number + struct.pack("<I", value & 0xFFFFFFFF).hex().encode()), f"writing register {number}")

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    # -- raw I/O -------------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._pending_acks:
            data = ACK * self._pending_acks + data
            self._pending_acks = 0
        self._write_raw(data)

    def _write_raw(self, data: bytes) -> None:
        if self.closed:
            raise ProtocolError(f"the {self.name} connection is closed", hint="the engine was stopped; start it again")
        try:
            with self._send_lock:
                self.sock.sendall(data)
        except OSError as exc:
            raise ProtocolError(f"the {self.name} connection dropped while sending: {exc}", hint="the emulator probably exited; see its stderr") from exc

    def _fill(self, deadline: float) -> None:
        """Read what the socket has, waiting until ``deadline``; a deadline already past still takes what has
        arrived (a look without waiting: ``wait_stop(0)``)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0 and not select.select([self.sock], [], [], 0)[0]:
            raise EngineTimeout(f"no answer from the {self.name} within {self.timeout:g} s", hint="the emulator hangs or is overloaded; raise the engine's timeout or check its stderr")
        self.sock.settimeout(max(remaining, 0.001))
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise EngineTimeout(f"no answer from the {self.name} within the wait", hint="the emulator hangs or is overloaded; raise the engine's timeout or check its stderr") from None
        except OSError as exc:
            raise ProtocolError(f"the {self.name} connection dropped: {exc}", hint="the emulator probably exited; see its stderr") from exc
        if not data:
            raise ProtocolError(f"the {self.name} closed the connection", hint="the emulator probably exited; see its stderr")
        self._reader.feed(data)

    def _next_frame(self, deadline: float) -> Frame:
        while True:
            for frame in self._reader.frames():
                return frame
            self._fill(deadline)

    def send_packet(self, payload: bytes) -> None:
        trace.debug("-> %r", payload[:200])
        self._write(encode_packet(payload))

    def recv_packet(self, timeout: float | None = None) -> bytes:
        """The next packet's payload; acks it in ack mode; skips acks and notifications."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            frame = self._next_frame(deadline)
            if frame.kind == "nack":
                raise ProtocolError(f"the {self.name} rejected a packet (NACK)", hint="the connection corrupts data; restart the emulator")
            if frame.kind != "packet":
                continue
            if self.ack_mode:
                if self.lazy_acks:
                    self._pending_acks += 1
                else:
                    self._write(ACK)
            trace.debug("<- %r", frame.payload[:200])
            return frame.payload

    # -- requests --------------------------------------------------------------------------
    def transact(self, payload: bytes, *, timeout: float | None = None) -> bytes:
        """Send one request, return its reply payload."""
        return self.transact_many([payload], timeout=timeout)[0]

    def transact_many(self, payloads: Sequence[bytes], *, timeout: float | None = None) -> list[bytes]:
        """Pipelined requests: one write for all, replies read in order."""
        if self.running:
            raise ProtocolError("request sent while the target runs", hint="interrupt or wait for the stop first")
        wire = b"".join(encode_packet(p) for p in payloads)
        for p in payloads:
            trace.debug("-> %r", p[:200])
        self._write(wire)
        return [self.recv_packet(timeout) for _ in payloads]

    def transact_ok(self, payloads: Sequence[bytes], what: str | None = None) -> None:
        """Pipelined requests that must each answer ``OK`` (writes, ``P``, ``Z``/``z``)."""
        for p, reply in zip(payloads, self.transact_many(payloads)):
            self._check_ok(reply, what or p[:40].decode("ascii", "replace"))

    @staticmethod
    def _check_ok(reply: bytes, what: str) -> None:
        if reply != b"OK":
            GdbClient._check_error(reply, what)
            raise ProtocolError(f"{what}: expected OK, got {reply[:60]!r}", hint="the stub does not support this request")

    @staticmethod
    def _check_error(reply: bytes, what: str) -> None:
        if reply.startswith(b"E") and len(reply) in (3, 4) or reply.startswith(b"E."):
            raise TargetError(f"{what} failed: the stub answered {reply.decode('ascii', 'replace')}", hint="check the address is mapped on this platform")

    # -- memory (E.2 'm', 'M', 'X') ------------------------------------------------------
    @property
    def max_read(self) -> int:
        """Bytes per ``m`` reply: PacketSize minus framing, two hex chars a byte."""
        return max((self.packet_size - 4) // 2, 16)

    def read_memory(self, address: int, size: int) -> bytes:
        return self.read_memory_many([(address, size)])[0]

    def read_memory_many(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Read several ranges in ONE pipelined write: every range split by PacketSize into ``m``
        requests, all sent together, the replies read in order (E.2 'm')."""
        requests: list[bytes] = []
        spans: list[tuple[int, int, int]] = []  # (address, size, number of requests) per range
        for address, size in ranges:
            if size <= 0:
                spans.append((address, 0, 0))
                continue
            _check_range(address, size)
            step = self.max_read
            parts = [b"m%x,%x" % (a, min(step, address + size - a)) for a in range(address, address + size, step)]
            requests += parts
            spans.append((address, size, len(parts)))
        replies = iter(self.transact_many(requests) if requests else [])
        chunks = iter(requests)
        out: list[bytes] = []
        for address, size, count in spans:
            data = bytearray()
            for _ in range(count):
                request, reply = next(chunks), next(replies)
                self._check_error(reply, f"reading memory ({request.decode()})")
                try:
                    chunk = bytes.fromhex(reply.decode("ascii"))
                except ValueError:
                    raise ProtocolError(f"memory read reply is not hex: {reply[:60]!r}", hint="the stub sent a malformed reply") from None
                if not chunk:
                    raise TargetError(f"reading memory ({request.decode()}) returned nothing", hint="check the address is mapped on this platform")
                data += chunk
            if len(data) != size:
                raise ProtocolError(f"memory read returned {len(data)} bytes, asked for {size}", hint="the stub truncated a reply", address=address)
            out.append(bytes(data))
        return out

    def write_memory(self, address: int, data: bytes) -> None:
        if not data:
            return
        _check_range(address, len(data))
        if self._x_supported is None:
            self._x_supported = self.transact(b"X%x,0:" % address) == b"OK"
        requests = []
        if self._x_supported:
            step = max((self.packet_size - 32) // 2, 16)  # worst case every byte escaped
            for off in range(0, len(data), step):
                chunk = data[off : off + step]
                requests.append(b"X%x,%x:" % (address + off, len(chunk)) + escape(chunk))
        else:
            step = max((self.packet_size - 32) // 2, 16)
            for off in range(0, len(data), step):
                chunk = data[off : off + step]
                requests.append(b"M%x,%x:" % (address + off, len(chunk)) + chunk.hex().encode())
        self.transact_ok(requests, f"writing memory at {address:#x}")

    # -- registers (E.2 'g', 'p') ----------------------------------------------------------
    def read_registers_raw(self) -> bytes:
        reply = self.transact(b"g")
        self._check_error(reply, "reading registers")
        try:
            return bytes.fromhex(reply.decode("ascii").replace("xx", "00"))
        except ValueError:
            raise ProtocolError(f"register reply is not hex: {reply[:60]!r}", hint="the stub sent a malformed reply") from None

    def read_register(self, number: int) -> int:
        reply = self.transact(b"p%x" % number)
        self._check_error(reply, f"reading register {number}")
        return decode_le_hex(reply.decode("ascii", "replace"))

    # -- breakpoints (E.2 'Z0'/'z0') -------------------------------------------------------
    def insert_breakpoint(self, address: int, kind: int = 2) -> None:
        self._check_ok(self.transact(b"Z0,%x,%x" % (address, kind)), f"inserting a breakpoint at {address:#x}")

    def remove_breakpoint(self, address: int, kind: int = 2) -> None:
        self._check_ok(self.transact(b"z0,%x,%x" % (address, kind)), f"removing the breakpoint at {address:#x}")

    # -- running (E.2 'c', 's', 'vCont'; E.8 interrupt) -------------------------------------
    def resume(self, *, step: bool = False, prefix: Iterable[bytes] = ()) -> None:
        """Continue (or single-step) without waiting; ``prefix`` requests are pipelined before it
        and must each answer ``OK`` (e.g. ``Z0`` re-inserting a breakpoint)."""
        prefix = list(prefix)
        if step:
            cmd = b"vCont;s" if "s" in self._vcont else b"s"
        else:
            cmd = b"vCont;c" if "c" in self._vcont else b"c"
        if self.ack_mode and prefix and not self.lazy_acks:
            # in ack mode our '+' for a prefix reply would reach the stub after the
            # continue, and a byte received while running stops the target (QEMU
            # 7.2 gdbstub): finish the prefix before continuing
            self.transact_ok(prefix)
            prefix = []
        for p in prefix + [cmd]:
            trace.debug("-> %r", p)
        self._write(b"".join(encode_packet(p) for p in prefix + [cmd]))
        self.running = True  # even if a prefix reply is bad below: the continue was sent
        for p in prefix:
            self._check_ok(self.recv_packet(), p.decode("ascii", "replace"))
        self.running = True

    def wait_stop(self, timeout: float | None = None) -> StopReply:
        """Wait for the stop reply after :meth:`resume`; console ``O`` packets are skipped."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            payload = self.recv_packet(max(deadline - time.monotonic(), 0.0))
            if payload[:1] == b"O":  # console output from the stub (E.3 'O XX...')
                continue
            self.running = False
            return parse_stop_reply(payload)

    def interrupt(self) -> None:
        """Send the out-of-band 0x03 (E.8); the stub stops the target and sends a stop reply."""
        if self.running and not self.closed:
            trace.debug("-> ^C")
            self._write_raw(INTERRUPT)

    def step_over_breakpoint(self, address: int, kind: int = 2, timeout: float | None = None) -> None:
        """Leave a breakpoint the target is halted on: remove it and single-step (one write),
        then re-insert it and continue (a second write). Returns with the target running."""
        self.resume(step=True, prefix=[b"z0,%x,%x" % (address, kind)])
        self.wait_stop(timeout)
        self.resume(prefix=[b"Z0,%x,%x" % (address, kind)])

    def step(self, timeout: float | None = None) -> StopReply:
        self.resume(step=True)
        return self.wait_stop(timeout)

    def halt_reason(self) -> StopReply:
        return parse_stop_reply(self.transact(b"?"))


def _check_range(address: int, size: int) -> None:
    if address < 0 or size < 0 or address + size > 1 << 32:
        raise EngineError(f"address range {address:#x}+{size} is outside the 32-bit address space", hint="check the address and size")


__all__ = ["GdbClient", "StopReply", "TargetError", "parse_stop_reply", "decode_le_hex", "SIGINT", "SIGTRAP", "NACK"]
