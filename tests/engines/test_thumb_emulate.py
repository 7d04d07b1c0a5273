"""Host execution of entry and return instructions (ARMv7-M ARM A7.7.99 PUSH T1/T2, A7.7.88 NOP,
A7.7.98 POP T1/T2/T3 into PC, A7.7.20 BX LR), checked against encodings assembled by arm-none-eabi-as
in the firmware (objdump shows the same words)."""

from __future__ import annotations

import struct

import pytest

from memhil.engines.thumb_emulate import (Effect, HostInstruction, Load, Store, decode, decode_load, decode_store, execute, in_it_block,
                                         load_address, perform_load, perform_store)


def hw(*halfwords: int) -> bytes:
    return struct.pack(f"<{len(halfwords)}H", *halfwords) + b"\x00\x00" * (2 - len(halfwords))


@pytest.mark.parametrize(
    "code, expected",
    [
        (hw(0xBF00), HostInstruction(2)),  # nop
        (hw(0xB570), HostInstruction(2, (4, 5, 6, 14))),  # push {r4, r5, r6, lr}
        (hw(0xB508), HostInstruction(2, (3, 14))),  # push {r3, lr}
        (hw(0xB401), HostInstruction(2, (0,))),  # push {r0}
        (hw(0xE92D, 0x47F0), HostInstruction(4, (4, 5, 6, 7, 8, 9, 10, 14))),  # stmdb sp!, {r4-r10, lr}
        (hw(0xE92D, 0x41F0), HostInstruction(4, (4, 5, 6, 7, 8, 14))),
        (hw(0x4770), HostInstruction(2, branch_lr=True)),  # bx lr
        (hw(0xBD70), HostInstruction(2, popped=(4, 5, 6, 15))),  # pop {r4, r5, r6, pc}
        (hw(0xBD00), HostInstruction(2, popped=(15,))),  # pop {pc}
        (hw(0xE8BD, 0x81F0), HostInstruction(4, popped=(4, 5, 6, 7, 8, 15))),  # pop.w {r4-r8, pc}
        (hw(0xF85D, 0xFB04), HostInstruction(4, popped=(15,))),  # ldr.w pc, [sp], #4
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
        hw(0xBC70),  # pop {r4-r6} without pc: not a return
        hw(0xE8BD, 0xC010),  # pop.w {r4, lr, pc}: UNPREDICTABLE
        hw(0xE8BD, 0x8000),  # pop.w {pc}: a single register takes T3, not T2
        hw(0x4708),  # bx r1: not lr
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
    effect = execute(HostInstruction(2, (4, 5, 14)), regs, 0x08000100)
    assert effect.registers == {13: 0x20001000 - 12, 15: 0x08000102}
    address, data = effect.store
    assert address == 0x20001000 - 12 and struct.unpack("<3I", data) == (104, 105, 114)


def test_execute_nop_only_moves_pc():
    assert execute(HostInstruction(2), [0] * 16, 0x08000200) == Effect({15: 0x08000202})


def test_execute_pop_loads_registers_and_returns_to_thumb_address():
    regs = [0] * 16
    regs[13] = 0x20000FF0
    stack = struct.pack("<4I", 0x44, 0x55, 0x66, 0x08000ABD)
    effect = execute(decode(hw(0xBD70)), regs, 0x08000CB8, stack)
    assert effect.store is None
    assert effect.registers == {4: 0x44, 5: 0x55, 6: 0x66, 13: 0x20001000, 15: 0x08000ABC}


@pytest.mark.parametrize("target", [0xFFFFFFF9, 0x08000ABC], ids=["exc-return", "arm-state"])
def test_execute_refuses_exception_return_and_cleared_thumb_bit(target):
    regs = [0] * 16
    regs[13], regs[14] = 0x20000FF0, target
    assert execute(decode(hw(0xBD00)), regs, 0x08000100, struct.pack("<I", target)) is None
    assert execute(decode(hw(0x4770)), regs, 0x08000100) is None


def test_execute_pop_needs_the_stack_words():
    assert execute(decode(hw(0xBD70)), [0] * 16, 0x08000100, b"\x00" * 12) is None


def test_execute_bx_lr_branches_to_lr():
    regs = [0] * 16
    regs[14] = 0x08000321
    assert execute(decode(hw(0x4770)), regs, 0x08000100) == Effect({15: 0x08000320})


def test_it_block_detection():
    assert not in_it_block(0x01000000)  # Thumb bit only
    assert in_it_block(0x01000000 | (0b0100 << 10))
    assert in_it_block(0x01000000 | (1 << 25))


@pytest.mark.parametrize(
    "code, expected",
    [
        (hw(0x60C1), Store(2, 1, 0, 12)),  # str r1, [r0, #12]
        (hw(0x8091), Store(2, 1, 2, 4, 2)),  # strh r1, [r2, #4]
        (hw(0x7058), Store(2, 0, 3, 1, 1)),  # strb r0, [r3, #1]
        (hw(0x9301), Store(2, 3, 13, 4)),  # str r3, [sp, #4]
        (hw(0xF8C0, 0x14B0), Store(4, 1, 0, 1200)),  # str.w r1, [r0, #1200]
        (hw(0xF883, 0x13E8), Store(4, 1, 3, 1000, 1)),  # strb.w r1, [r3, #1000]
        (hw(0xE9C3, 0x0100), Store(4, 0, 3, 0, 4, 1)),  # strd r0, r1, [r3]
        (hw(0xE943, 0x0102), Store(4, 0, 3, -8, 4, 1)),  # strd r0, r1, [r3, #-8]
    ],
)
def test_decode_store(code, expected):
    assert decode_store(code) == expected


@pytest.mark.parametrize(
    "code",
    [
        hw(0xE9E3, 0x0102),  # strd r0, r1, [r3, #8]! : write-back
        hw(0xE9D3, 0x0100),  # ldrd: a load
        hw(0xF843, 0x0F04),  # str r0, [r3, #4]! : write-back (T4)
        hw(0x5098),  # str r0, [r3, r2] : register offset
        hw(0x6818),  # ldr r0, [r3]
    ],
)
def test_decode_store_refused(code):
    assert decode_store(code) is None


def test_perform_strd_writes_both_words_and_moves_pc():
    regs = [0] * 16
    regs[0], regs[1], regs[3] = 0xFFFFFFFF, 0x12345678, 0x2000A400
    effect = perform_store(decode_store(hw(0xE9C3, 0x0100)), regs, 0x0800154E)
    assert effect.store == (0x2000A400, struct.pack("<II", 0xFFFFFFFF, 0x12345678))
    assert effect.registers == {15: 0x08001552}


def test_perform_strb_keeps_the_low_byte():
    regs = [0] * 16
    regs[0], regs[3] = 0x1FF, 0x20000000
    assert perform_store(decode_store(hw(0x7058)), regs, 0x08000100).store == (0x20000001, b"\xff")


def _assemble(lines: list[str], tmp_path) -> list[bytes]:
    """Each instruction's bytes, as arm-none-eabi-as encodes it (Thumb-2, Cortex-M4)."""
    import subprocess

    src = tmp_path / "l.s"
    src.write_text(".syntax unified\n.thumb\n" + "".join(f"{line}\n" for line in lines))
    obj = tmp_path / "l.o"
    subprocess.run(["arm-none-eabi-as", "-mcpu=cortex-m4", "-mthumb", str(src), "-o", str(obj)], check=True, capture_output=True)
    dump = subprocess.run(["arm-none-eabi-objdump", "-d", str(obj)], check=True, capture_output=True, text=True).stdout
    out = []
    for row in dump.splitlines():
        parts = row.split("\t")
        if len(parts) >= 3 and parts[0].strip().endswith(":") and parts[1].strip():
            out.append(b"".join(int(h, 16).to_bytes(len(h) // 2, "little") for h in parts[1].split()))
    assert len(out) == len(lines)
    return [code + b"\0\0" if len(code) == 2 else code for code in out]


LOADS = [
    ("ldr r2, [r3, #4]", Load(2, 2, 3, 4)),
    ("ldrb r1, [r0, #5]", Load(2, 1, 0, 5, 1)),
    ("ldrh r7, [r6, #62]", Load(2, 7, 6, 62, 2)),
    ("ldr.w r9, [r2, #4]", Load(4, 9, 2, 4)),
    ("ldrb.w r12, [r8, #4095]", Load(4, 12, 8, 4095, 1)),
    ("ldrh.w r3, [r10, #6]", Load(4, 3, 10, 6, 2)),
    ("ldr r4, [r5, #-4]", Load(4, 4, 5, -4)),
    ("ldrb r4, [r11, #-255]", Load(4, 4, 11, -255, 1)),
]
REFUSED_LOADS = ["ldr r0, [r3, #4]!", "ldr r0, [r3], #4", "ldr r0, [r3, r2]", "ldrsb.w r0, [r3, #4]", "ldr.w pc, [r3, #4]",
                 "ldr r0, [pc, #8]", "ldrd r0, r1, [r3]", "str r0, [r3, #4]", "ldr r0, [sp, #4]", "ldrt r0, [r3, #4]", "ldr.w sp, [r3, #4]"]


def test_decode_load_matches_the_assembler(tmp_path):
    codes = _assemble([text for text, _ in LOADS], tmp_path)
    assert [decode_load(code) for code in codes] == [load for _, load in LOADS]


def test_decode_load_refuses_what_the_host_cannot_do(tmp_path):
    codes = _assemble(REFUSED_LOADS, tmp_path)
    assert {text: decode_load(code) for text, code in zip(REFUSED_LOADS, codes)} == dict.fromkeys(REFUSED_LOADS)


def test_perform_load_sets_the_register_and_moves_pc():
    regs = [0] * 16
    regs[3] = 0x40011000
    load = decode_load(hw(0x685A))  # ldr r2, [r3, #4]
    assert load_address(load, regs) == 0x40011004
    assert perform_load(load, regs, 0x0800123C, b"\x6d\x00\x00\x00") == Effect({2: 0x6D, 15: 0x0800123E})
    byte = Load(4, 4, 5, -1, 1)
    assert perform_load(byte, regs, 0x08000100, b"\xff\xee") == Effect({4: 0xFF, 15: 0x08000104})
