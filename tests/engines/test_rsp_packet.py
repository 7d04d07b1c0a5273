"""GDB RSP framing (GDB manual E.1): checksums, escapes, run-length decoding, acks, errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memhil.engines.rsp_packet import Frame, PacketReader, checksum, decode_payload, encode_packet, escape
from memhil.errors import ProtocolError


def parse(data: bytes) -> list[Frame]:
    reader = PacketReader()
    reader.feed(data)
    return list(reader.frames())


def test_encode_known_packets():
    assert encode_packet(b"g") == b"$g#67"
    assert encode_packet(b"m8000000,4") == b"$m8000000,4#%02x" % (sum(b"m8000000,4") % 256)
    assert checksum(b"") == 0 and encode_packet(b"") == b"$#00"


@settings(max_examples=60)
@given(st.binary(min_size=0, max_size=3000))
def test_checksum_of_large_payloads_is_the_byte_sum(payload):
    # payloads of 512 bytes and more are summed by numpy (bulk memory reads): the same modulo-256 sum
    assert checksum(payload) == sum(payload) % 256
    assert checksum(b"\xff" * 70000) == (255 * 70000) % 256  # no overflow of a narrow accumulator


def test_encode_refuses_unescaped_frame_characters():
    with pytest.raises(ProtocolError, match="unescaped"):
        encode_packet(b"X0,1:$")


def test_escape_and_decode_round_trip_special_bytes():
    raw = bytes([0x24, 0x23, 0x7D, 0x2A, 0x00, 0x41])
    escaped = escape(raw)
    assert escaped == b"}\x04}\x03}]}\x0a\x00A"
    assert decode_payload(escaped) == raw


def test_run_length_decoding():
    # '0* ' : ' ' is 32, repeat count 32-29 = 3 more
    assert decode_payload(b"0* ") == b"0000"
    assert decode_payload(b"ab*\"c") == b"abbbbbbc"[:2] + b"b" * 5 + b"c"


@pytest.mark.parametrize("payload", [b"*\x25", b"0*", b"0*#", b"0*\x1f", b"abc}"])
def test_malformed_payloads_raise(payload):
    with pytest.raises(ProtocolError):
        decode_payload(payload)


def test_reader_frames_acks_noise_and_packets_incrementally():
    wire = b"+-junk$OK#9a" + b"%Stop:T05#" + b"%02x" % checksum(b"Stop:T05")
    reader = PacketReader()
    frames = []
    for i in range(len(wire)):  # one byte at a time
        reader.feed(wire[i : i + 1])
        frames += list(reader.frames())
    assert frames == [Frame("ack"), Frame("nack"), Frame("packet", b"OK"), Frame("notification", b"Stop:T05")]


def test_bad_checksum_raises_with_payload():
    with pytest.raises(ProtocolError, match="bad packet checksum") as info:
        parse(b"$OK#00")
    assert info.value.payload == b"OK"


def test_non_hex_checksum_raises():
    with pytest.raises(ProtocolError, match="not two hex digits"):
        parse(b"$OK#zz")


def test_packet_inside_packet_raises():
    with pytest.raises(ProtocolError, match="inside another"):
        parse(b"$O$K#00")


def test_incomplete_packet_waits_for_more():
    reader = PacketReader()
    reader.feed(b"$OK#9")
    assert list(reader.frames()) == []
    reader.feed(b"a")
    assert list(reader.frames()) == [Frame("packet", b"OK")]


def test_endless_packet_is_refused(monkeypatch):
    import memhil.engines.rsp_packet as rp

    monkeypatch.setattr(rp, "MAX_PACKET", 100)
    reader = PacketReader()
    reader.feed(b"$" + b"a" * 200)
    with pytest.raises(ProtocolError, match="no end of packet"):
        list(reader.frames())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_escaped_binary_survives_framing(data):
    assert parse(encode_packet(escape(data))) == [Frame("packet", data)]


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_garbage_only_raises_protocol_errors(data):
    reader = PacketReader()
    reader.feed(data)
    try:
        frames = list(reader.frames())
    except ProtocolError:
        return
    assert all(f.kind in ("ack", "nack", "packet", "notification") for f in frames)
