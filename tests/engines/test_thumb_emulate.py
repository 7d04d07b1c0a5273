"""Host execution of entry instructions (ARMv7-M ARM A7.7.99 PUSH T1/T2, A7.7.88 NOP), checked
against encodings assembled by arm-none-eabi-as in the firmware (objdump shows the same words)."""

from __future__ import annotations

import struct

import pytest

from memhil.engines.thumb_emulate import EntryInstruction, decode, execute, in_it_block


def hw(*halfwords: int) -> bytes:
    return struct.pack(f"<{len(halfwords)}H", *halfwords) + b"\x00\x00" * (2 - len(halfwords))


@pytest.mark.parametrize(
    "code, expected",
    [
        (hw(0xBF00), EntryInstruction(2)),  # nop
        (hw(0xB570), EntryInstruction(2, (4, 5, 6, 14))),  # push {r4, r5, r6, lr}
        (hw(0xB508), EntryInstruction(2, (3, 14))),  # push {r3, lr}
        (hw(0xB401), EntryInstruction(2, (0,))),  # push {r0}
        (hw(0xE92D, 0x47F0), EntryInstruction(4, (4, 5, 6, 7, 8, 9, 10, 14))),  # stmdb sp!, {r4-r10, lr}
        (hw(0xE92D, 0x41F0), EntryInstruction(4, (4, 5, 6, 7, 8, 14))),
    ],
)
def test_decode_supported(code, expected):
    assert decode(code) == expected


@pytest.mark.parametrize(
    "code",
    [
        hw(0xB400),  # push {} : empty list
        hw(0xE92D, 0x8010),  # pushes PC: refused
        hw(0xE92D, 0x2010),  # includes SP: refused
        hw(0xE92D, 0x0010),  # one register with T2: UNPREDICTABLE
        hw(0xF1B2, 0x4F80),  # cmp.w: not emulated
        hw(0x4605),  # mov r5, r0
        b"\xb5",  # too short
    ],
)
def test_decode_refused(code):
    assert decode(code) is None


def test_execute_push_stores_ascending_below_sp():
    regs = list(range(100, 116))
    regs[13] = 0x20001000
    sp, data, pc = execute(EntryInstruction(2, (4, 5, 14)), regs, 0x08000100)
    assert sp == 0x20001000 - 12 and pc == 0x08000102
    assert struct.unpack("<3I", data) == (104, 105, 114)


def test_execute_nop_only_moves_pc():
    assert execute(EntryInstruction(2), [0] * 16, 0x08000200) == (0, b"", 0x08000202)


def test_it_block_detection():
    assert not in_it_block(0x01000000)  # Thumb bit only
    assert in_it_block(0x01000000 | (0b0100 << 10))
    assert in_it_block(0x01000000 | (1 << 25))
