"""The GDB RSP client against a fake stub: handshake, memory, registers, breakpoints,
running, stop replies, interrupts, and every failure path."""

from __future__ import annotations

import struct

import pytest

from memhil.engines.gdb_rsp import GdbClient, StopReply, TargetError, parse_stop_reply
from memhil.errors import EngineError, EngineTimeout, ProtocolError

from .fake_stub import FakeStub

MEMORY_BASE = 0x20000000


class Target:
    """A tiny memory-backed target for the fake stub."""

    def __init__(self) -> None:
        self.mem = bytearray(range(256)) * 64  # 16 KiB
        self.regs = list(range(0x100, 0x110))
        self.breakpoints: set[int] = set()

    def handle(self, payload: bytes) -> bytes | None:
        cmd = payload[:1]
        if cmd == b"m":
            addr, size = (int(x, 16) for x in payload[1:].split(b","))
            off = addr - MEMORY_BASE
            if off < 0 or off + size > len(self.mem):
                return b"E14"
            return self.mem[off : off + size].hex().encode()
        if cmd == b"M":
            head, data = payload[1:].split(b":")
            addr, size = (int(x, 16) for x in head.split(b","))
            self.mem[addr - MEMORY_BASE : addr - MEMORY_BASE + size] = bytes.fromhex(data.decode())
            return b"OK"
        if cmd == b"X":
            return b""  # like QEMU 7.2: binary writes not supported
        if cmd == b"g":
            return struct.pack("<16I", *self.regs).hex().encode() + b"00" * 104
        if cmd == b"p":
            return struct.pack("<I", self.regs[int(payload[1:], 16)]).hex().encode()
        if payload.startswith(b"Z0,"):
            self.breakpoints.add(int(payload.split(b",")[1], 16))
            return b"OK"
        if payload.startswith(b"z0,"):
            self.breakpoints.discard(int(payload.split(b",")[1], 16))
            return b"OK"
        if cmd in (b"c", b"s"):
            return b"T05thread:01;0f:94000008;0d:f0ff0220;"
        if cmd == b"?":
            return b"S05"
        return b""


@pytest.fixture
def target():
    return Target()


@pytest.fixture
def make_client(target):
    stubs: list[FakeStub] = []
    clients: list[GdbClient] = []

    def make(handler=None, **options) -> tuple[GdbClient, FakeStub]:
        stub = FakeStub(handler or target.handle, **options)
        stubs.append(stub)
        client = GdbClient(stub.client_sock, timeout=2.0)
        clients.append(client)
        client.handshake()
        return client, stub

    yield make
    for c in clients:
        c.close()
    for s in stubs:
        s.close()


def test_handshake_learns_packet_size_and_no_ack(make_client):
    client, stub = make_client(packet_size=0x200)
    assert client.packet_size == 0x200
    assert client.ack_mode is False and stub.ack_mode is False
    assert stub.packets[:2] == [b"qSupported:multiprocess-;swbreak+;hwbreak+;vContSupported+", b"QStartNoAckMode"]


def test_ack_mode_when_stub_lacks_no_ack(make_client):
    client, stub = make_client(no_ack=False)
    assert client.ack_mode is True
    assert client.read_memory(MEMORY_BASE, 4) == bytes([0, 1, 2, 3])
    stub.wait_for(lambda: stub.acks >= len(stub.packets))  # every reply acknowledged


def test_memory_read_split_by_packet_size_and_pipelined(make_client, target):
    client, stub = make_client(packet_size=0x44)  # (0x44-4)//2 = 32 bytes per m
    data = client.read_memory(MEMORY_BASE + 10, 100)
    assert data == bytes(target.mem[10:110])
    reads = [p for p in stub.packets if p.startswith(b"m")]
    assert reads == [b"m2000000a,20", b"m2000002a,20", b"m2000004a,20", b"m2000006a,4"]
    assert [c.count(b"$m") for c in stub.chunks if b"$m" in c] == [4]  # all four requests in one write


def test_memory_read_error_is_target_error(make_client):
    client, _ = make_client()
    with pytest.raises(TargetError, match="E14"):
        client.read_memory(0x10000000, 4)


def test_memory_read_outside_address_space_refused(make_client):
    client, _ = make_client()
    with pytest.raises(EngineError, match="32-bit"):
        client.read_memory(0xFFFFFFF0, 0x20)


def test_memory_write_falls_back_to_hex_m(make_client, target):
    client, stub = make_client(packet_size=0x60)
    payload = bytes(range(100))
    client.write_memory(MEMORY_BASE + 0x100, payload)
    assert bytes(target.mem[0x100:0x164]) == payload
    assert any(p.startswith(b"X") for p in stub.packets)  # probed once
    assert len([p for p in stub.packets if p.startswith(b"M")]) >= 2  # split by packet size


def test_binary_write_used_when_supported(make_client, target):
    written = {}

    def handler(payload: bytes):
        if payload.startswith(b"X"):
            head, _, data = payload.partition(b":")
            written[head] = data
            return b"OK"
        return target.handle(payload)

    client, _ = make_client(handler)
    client.write_memory(MEMORY_BASE, b"$#}*")
    assert written[b"X20000000,4"] == b"$#}*"  # the stub saw the decoded bytes


def test_registers_g_and_p(make_client, target):
    client, _ = make_client()
    raw = client.read_registers_raw()
    assert struct.unpack_from("<16I", raw) == tuple(target.regs)
    assert client.read_register(15) == 0x10F


def test_breakpoints_insert_and_remove(make_client, target):
    client, stub = make_client()
    client.insert_breakpoint(0x8000094)
    assert target.breakpoints == {0x8000094}
    client.remove_breakpoint(0x8000094)
    assert target.breakpoints == set()
    assert b"Z0,8000094,2" in stub.packets


def test_breakpoint_refused_raises(make_client):
    client, _ = make_client(lambda p: b"E01" if p.startswith(b"Z0") else b"")
    with pytest.raises(TargetError):
        client.insert_breakpoint(0x1000)


def test_continue_and_stop_reply_with_expedited_registers(make_client):
    client, _ = make_client()
    client.resume()
    stop = client.wait_stop()
    assert stop == StopReply("T", 5, {15: 0x08000094, 13: 0x2002FFF0}, {"thread": "01"})
    assert client.running is False


def test_console_output_packets_are_skipped_while_waiting(make_client):
    client, stub = make_client(lambda p: None if p == b"c" else b"")
    client.resume()
    stub.send_packet(b"O" + b"hello".hex().encode())
    stub.send_packet(b"S05")
    assert client.wait_stop().signal == 5


def test_interrupt_stops_the_target(make_client):
    client, stub = make_client(lambda p: None if p == b"c" else b"")
    stub.on_interrupt = lambda: b"T02thread:01;"
    client.resume()
    client.interrupt()
    stop = client.wait_stop()
    assert stop.signal == 2 and stub.interrupts == 1


def test_interrupt_is_not_sent_while_halted(make_client):
    client, stub = make_client()
    client.interrupt()
    client.read_memory(MEMORY_BASE, 1)
    assert stub.interrupts == 0


def test_request_while_running_refused(make_client):
    client, _ = make_client(lambda p: None if p == b"c" else b"")
    client.resume()
    with pytest.raises(ProtocolError, match="while the target runs"):
        client.read_memory(MEMORY_BASE, 4)


def test_resume_with_prefix_pipelined_in_no_ack_mode(make_client, target):
    client, stub = make_client()
    client.resume(prefix=[b"Z0,8000094,2"])
    client.wait_stop()
    assert target.breakpoints == {0x8000094}
    with_z0 = [c for c in stub.chunks if b"$Z0,8000094,2#" in c]
    assert len(with_z0) == 1 and b"$c#" in with_z0[0]


def test_resume_with_prefix_not_pipelined_in_ack_mode(make_client, target):
    client, stub = make_client(no_ack=False)
    client.resume(prefix=[b"Z0,8000094,2"])
    client.wait_stop()
    with_z0 = [c for c in stub.chunks if b"$Z0,8000094,2#" in c]
    assert len(with_z0) == 1 and b"$c#" not in with_z0[0]  # 'c' only after the prefix was answered and acked
    assert b"$c#" in b"".join(stub.chunks[stub.chunks.index(with_z0[0]):])


def test_timeout_raises_engine_timeout(make_client):
    client, _ = make_client(lambda p: None)  # never answers
    with pytest.raises(EngineTimeout):
        client.transact(b"m0,4", timeout=0.2)


def test_dropped_connection_raises_protocol_error(make_client):
    client, stub = make_client()
    stub.close()
    with pytest.raises(ProtocolError, match="closed|dropped"):
        client.read_memory(MEMORY_BASE, 4)


def test_bad_checksum_from_stub_raises(make_client):
    client, stub = make_client(lambda p: None)
    client.send_packet(b"?")
    stub.send_raw(b"$S05#00")
    with pytest.raises(ProtocolError, match="checksum"):
        client.recv_packet(timeout=1)


def test_nack_raises(make_client):
    client, stub = make_client(lambda p: None)
    stub.send_raw(b"-")
    with pytest.raises(ProtocolError, match="NACK"):
        client.recv_packet(timeout=1)


def test_malformed_packet_size_raises():
    stub = FakeStub(lambda p: b"")
    stub.packet_size = 0
    client = GdbClient(stub.client_sock, timeout=1)
    stub._reply_default = lambda p: b"PacketSize=zz" if p.startswith(b"qSupported") else b""  # type: ignore[method-assign]
    try:
        with pytest.raises(ProtocolError, match="PacketSize"):
            client.handshake()
    finally:
        client.close()
        stub.close()


def test_non_loopback_tcp_refused():
    with pytest.raises(EngineError, match="loopback"):
        GdbClient.connect_tcp("0.0.0.0", 1234)


def test_connect_to_missing_socket_raises(tmp_path):
    with pytest.raises(EngineError, match="cannot connect"):
        GdbClient.connect_unix(str(tmp_path / "nothing.sock"), timeout=0.5)


@pytest.mark.parametrize(
    "payload, expected",
    [
        (b"S05", StopReply("S", 5)),
        (b"W00", StopReply("W", 0, exit_status=0)),
        (b"X09", StopReply("X", 9)),
        (b"T0b0f:xxxxxxxx;swbreak:;", StopReply("T", 11, {15: 0}, {"swbreak": ""})),
    ],
)
def test_parse_stop_replies(payload, expected):
    assert parse_stop_reply(payload) == expected


@pytest.mark.parametrize("payload", [b"", b"OK", b"Tzz", b"T05thread", b"T050f:zz;"])
def test_parse_bad_stop_replies(payload):
    with pytest.raises(ProtocolError):
        parse_stop_reply(payload)


def test_lazy_acks_never_send_a_byte_while_running(make_client, target):
    """QEMU 7.2 mode: ack mode, but acks ride on the next write so nothing reaches a running target."""
    client, stub = make_client(no_ack=False)
    client.lazy_acks = True
    stub.wait_for(lambda: stub.acks >= len(stub.packets))  # the handshake's acks are in: count from here
    first = len(stub.chunks)
    client.resume(prefix=[b"Z0,8000094,2"])  # pipelined with 'c' despite ack mode
    client.wait_stop()  # the stub answered 'c', so it has recorded every byte sent before it
    sent = b"".join(stub.chunks[first:])
    assert b"$Z0,8000094,2#" in sent and b"$c#" in sent
    assert sent[-3:-2] == b"#"  # the last bytes written are the 'c' packet: no ack reached the running target
    mark = len(stub.chunks)
    assert client.read_memory(MEMORY_BASE, 2) == b"\x00\x01"
    assert b"".join(stub.chunks[mark:]).startswith(b"++$m")  # the OK and the stop reply, acked late


def test_several_ranges_read_in_one_write(make_client, target):
    """read_memory_many: every range (each split by PacketSize) goes out in a single pipelined write."""
    client, stub = make_client(packet_size=0x44)
    header, empty, stack = client.read_memory_many([(MEMORY_BASE + 4, 8), (MEMORY_BASE, 0), (MEMORY_BASE + 40, 70)])
    assert header == bytes(target.mem[4:12]) and empty == b"" and stack == bytes(target.mem[40:110])
    # 1 for the header, 3 for the 70-byte stack (32 bytes per m), all in one write
    assert [c.count(b"$m") for c in stub.chunks if b"$m" in c] == [4]
