"""The Thumb-2 assembler of the patched hooks, byte for byte against arm-none-eabi-as."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from memhil.capture.asm import Assembler, AsmError, thumb_expand_imm

BASE = 0x08010000

#: (what the assembler is asked, the same in GNU syntax)
CASES = [
    (lambda a: a.mov(0, 8), "mov r0, r8"),
    (lambda a: a.mov(12, 3), "mov r12, r3"),
    (lambda a: a.movs(3, 255), "movs r3, #255"),
    (lambda a: a.movw(6, 0x1234), "movw r6, #0x1234"),
    (lambda a: a.movt(6, 0xFEDC), "movt r6, #0xfedc"),
    (lambda a: a.movw(12, 0xF00F), "movw r12, #0xf00f"),
    (lambda a: a.adds(4, 1), "adds r4, #1"),
    (lambda a: a.subs(3, 1), "subs r3, #1"),
    (lambda a: a.subs_reg(5, 4, 5), "subs r5, r4, r5"),
    (lambda a: a.adds_reg(1, 2, 3), "adds r1, r2, r3"),
    (lambda a: a.addw(5, 5, 372), "addw r5, r5, #372"),
    (lambda a: a.addw(3, 13, 2049), "addw r3, sp, #2049"),
    (lambda a: a.subw(1, 1, 28), "subw r1, r1, #28"),
    (lambda a: a.add_sp(48), "add sp, #48"),
    (lambda a: a.sub_sp(40), "sub sp, #40"),
    (lambda a: a.add_rd_sp(3, 80), "add r3, sp, #80"),
    (lambda a: a.lsrs(3, 3, 2), "lsrs r3, r3, #2"),
    (lambda a: a.and_imm(12, 3, 0xC0000000), "and r12, r3, #0xc0000000"),
    (lambda a: a.bic_imm(3, 3, 0xC0000000), "bic r3, r3, #0xc0000000"),
    (lambda a: a.and_imm(1, 2, 0xFF), "and r1, r2, #0xff"),
    (lambda a: a.and_imm(1, 2, 0x00AB00AB), "and r1, r2, #0x00ab00ab"),
    (lambda a: a.cmp_imm_w(12, 0x40000000), "cmp.w r12, #0x40000000"),
    (lambda a: a.eor_imm(3, 3, 0xFFFFFFFF), "eor r3, r3, #0xffffffff"),
    (lambda a: a.cmp_imm(1, 0), "cmp r1, #0"),
    (lambda a: a.cmp(5, 3), "cmp r5, r3"),
    (lambda a: a.cmp(3, 12), "cmp r3, r12"),
    (lambda a: a.ldr(4, 6, 0), "ldr r4, [r6, #0]"),
    (lambda a: a.ldr(3, 13, 36), "ldr r3, [sp, #36]"),
    (lambda a: a.ldr(12, 1, 8), "ldr.w r12, [r1, #8]"),
    (lambda a: a.ldr(3, 6, 200), "ldr.w r3, [r6, #200]"),
    (lambda a: a.ldr(3, 1, -4), "ldr r3, [r1, #-4]"),
    (lambda a: a.str(4, 5, 124), "str r4, [r5, #124]"),
    (lambda a: a.str(3, 5, 128), "str.w r3, [r5, #128]"),
    (lambda a: a.str(2, 13, 4), "str r2, [sp, #4]"),
    (lambda a: a.ldr_post(12, 1, 4), "ldr r12, [r1], #4"),
    (lambda a: a.str_post(12, 2, 4), "str r12, [r2], #4"),
    (lambda a: a.push(0, 1, 2, 3, 14), "push {r0-r3, lr}"),
    (lambda a: a.push(0, 1, 2, 3, 4, 5, 6, 7, 8, 14), "push {r0-r8, lr}"),
    (lambda a: a.pop(1, 2, 3, 4, 5, 6, 7, 8, 15), "pop {r1-r8, pc}"),
    (lambda a: a.pop(4, 15), "pop {r4, pc}"),
    (lambda a: a.ldmia(0, 1, 3, 12), "ldmia.w r0!, {r1, r3, r12}"),
    (lambda a: a.stmia(2, 1, 3, 12), "stmia.w r2!, {r1, r3, r12}"),
    (lambda a: a.ldmia(6, 0, 1), "ldmia.w r6!, {r0, r1}"),
    (lambda a: a.udiv(1, 0, 3), "udiv r1, r0, r3"),
    (lambda a: a.mla(1, 1, 3, 12), "mla r1, r1, r3, r12"),
    (lambda a: a.mls(1, 1, 3, 0), "mls r1, r1, r3, r0"),
    (lambda a: a.ldrex(0, 2, 24), "ldrex r0, [r2, #24]"),
    (lambda a: a.ldrex(12, 2), "ldrex r12, [r2]"),
    (lambda a: a.strex(3, 1, 2, 24), "strex r3, r1, [r2, #24]"),
    (lambda a: a.clrex(), "clrex"),
    (lambda a: a.nop(), "nop"),
    (lambda a: a.bx(14), "bx lr"),
    (lambda a: a.blx(4), "blx r4"),
    (lambda a: a.blx(12), "blx ip"),
]


def _gnu(lines: list[str], tmp_path) -> bytes:
    src = tmp_path / "t.s"
    src.write_text(".syntax unified\n.thumb\n.cpu cortex-m4\n" + "\n".join(lines) + "\n")
    obj = tmp_path / "t.o"
    subprocess.run(["arm-none-eabi-as", "-o", str(obj), str(src)], check=True)
    binary = tmp_path / "t.bin"
    subprocess.run(["arm-none-eabi-objcopy", "-O", "binary", "-j", ".text", str(obj), str(binary)], check=True)
    return binary.read_bytes()


@pytest.fixture(autouse=True)
def _toolchain():
    assert shutil.which("arm-none-eabi-as"), "arm-none-eabi-as is installed by scripts/setup.sh"


@pytest.mark.parametrize("build,gnu", CASES, ids=[c[1] for c in CASES])
def test_encoding_matches_gnu_as(build, gnu, tmp_path):
    a = Assembler()
    build(a)
    assert a.assemble(BASE).hex() == _gnu([gnu], tmp_path).hex()




def test_branch_forms_and_ranges(tmp_path):
    a = Assembler()
    a.label("top")
    a.b("fwd", "lo")
    a.b("top")
    a.b_w("far", "eq")
    a.b_w("top")
    a.bl("far")
    for _ in range(100):
        a.nop()
    a.label("fwd")
    a.b_w("top", "ne")
    for _ in range(1000):
        a.nop()
    a.label("far")
    a.b_w("top", "hs")
    gnu = ["top:", "blo.n fwd", "b.n top", "beq.w far", "b.w top", "bl far"] + ["nop"] * 100 + ["fwd:", "bne.w top"] + ["nop"] * 1000 + ["far:", "bhs.w top"]
    assert a.assemble(BASE).hex() == _gnu(gnu, tmp_path).hex()


def test_branch_out_of_range_is_refused():
    a = Assembler()
    a.label("top")
    for _ in range(200):
        a.nop()
    a.b("top", "ne")
    with pytest.raises(AsmError, match="out of range"):
        a.assemble(BASE)


def test_b_w_to_an_absolute_address(tmp_path):
    a = Assembler()
    a.b_w(BASE + 0x1000 | 1)  # a Thumb function address: the bit is dropped
    assert a.assemble(BASE).hex() == _gnu([".org 0", "b.w . + 0x1000"], tmp_path).hex()


def test_values_an_encoding_cannot_hold_are_errors():
    a = Assembler()
    with pytest.raises(AsmError, match="not a modified immediate"):
        a.and_imm(0, 1, 0x12345678)
    with pytest.raises(AsmError, match="low register"):
        a.movs(8, 1)
    with pytest.raises(AsmError, match="out of range"):
        a.add_sp(510)
    with pytest.raises(AsmError, match="not the base register"):
        a.ldmia(0, 0, 1)  # writeback into a loaded register is UNPREDICTABLE
    with pytest.raises(AsmError, match="not the base register"):
        a.stmia(2, 1, 14)
    with pytest.raises(AsmError, match="status register must differ"):
        a.strex(1, 1, 2)  # UNPREDICTABLE: the status over the value stored
    with pytest.raises(AsmError, match="out of range"):
        a.ldrex(0, 2, 6)  # a word offset
    assert thumb_expand_imm(0xC0000000) is not None and thumb_expand_imm(0x101) is None
