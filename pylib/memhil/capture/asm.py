"""A tiny Thumb-2 assembler: the few ARMv7-M encodings the patched hooks' wrappers are made of.

Encodings from the ARMv7-M Architecture Reference Manual (ARM DDI 0403E), chapter A7 "Instruction Details";
each method names its section and encoding (``T1`` ... ``T4``). Instructions go in order with
:meth:`Assembler.label` marks; :meth:`Assembler.assemble` places them at an address and resolves branches.
Every instruction's size is fixed when it is added (by the method, or for ``ldr``/``str`` by their operands,
never by an address), so one pass lays the code out and a second encodes it. A value an encoding cannot hold is
an :class:`AsmError` naming the instruction, never a silently different instruction.

tests/capture/test_asm.py checks every encoding against ``arm-none-eabi-as``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Callable

from memhil.errors import CaptureError

SP, LR, PC = 13, 14, 15
CONDITIONS = {"eq": 0, "ne": 1, "cs": 2, "hs": 2, "cc": 3, "lo": 3, "mi": 4, "pl": 5, "vs": 6, "vc": 7,
              "hi": 8, "ls": 9, "ge": 10, "lt": 11, "gt": 12, "le": 13}


class AsmError(CaptureError):
    """An instruction the assembler cannot encode as asked."""


def _hw(*halfwords: int) -> bytes:
    return struct.pack(f"<{len(halfwords)}H", *halfwords)


def thumb_expand_imm(value: int) -> int | None:
    """The 12-bit ``i:imm3:imm8`` encoding of ``value`` as a modified immediate constant (A5.3.2), or None."""
    value &= 0xFFFFFFFF
    b = value & 0xFF
    if value == b:
        return b
    if value == (b << 16 | b):
        return 0x100 | b
    if value == (b << 24 | b << 8) and b:
        return 0x200 | b
    if value == (b * 0x01010101) and b:
        return 0x300 | b
    for rot in range(8, 32):
        unrot = ((value << rot) | (value >> (32 - rot))) & 0xFFFFFFFF  # ROL by rot undoes ROR by rot
        if 0x80 <= unrot <= 0xFF:
            return (rot << 7) | (unrot & 0x7F)
    return None


@dataclass
class _Insn:
    size: int
    encode: Callable[[int, dict[str, int]], bytes]  # (address of the instruction, labels) -> bytes
    text: str


class Assembler:
    """Thumb-2 code built instruction by instruction; :meth:`assemble` returns the bytes at ``base``."""

    def __init__(self) -> None:
        self._items: list[_Insn | str] = []
        self._labels: set[str] = set()

    # -- layout ------------------------------------------------------------------------------
    def label(self, name: str) -> None:
        if name in self._labels:
            raise AsmError(f"label {name!r} defined twice", hint="use a fresh label name")
        self._labels.add(name)
        self._items.append(name)

    def _add(self, size: int, text: str, encode: Callable[[int, dict[str, int]], bytes]) -> None:
        self._items.append(_Insn(size, encode, text))

    def _fixed(self, text: str, data: bytes) -> None:
        self._add(len(data), text, lambda pc, labels: data)

    @property
    def size(self) -> int:
        """Bytes of code (the same wherever it is placed)."""
        return sum(i.size for i in self._items if isinstance(i, _Insn))

    def layout(self, base: int) -> dict[str, int]:
        labels: dict[str, int] = {}
        pc = base
        for item in self._items:
            if isinstance(item, str):
                labels[item] = pc
            else:
                pc += item.size
        return labels

    def assemble(self, base: int) -> bytes:
        """The code placed at ``base`` (halfword aligned)."""
        if base & 1:
            raise AsmError(f"code base {base:#x} is not halfword aligned", hint="pass the address without the Thumb bit")
        labels = self.layout(base)
        out = bytearray()
        pc = base
        for item in self._items:
            if isinstance(item, str):
                continue
            data = item.encode(pc, labels)
            if len(data) != item.size:  # pragma: no cover - an encoder bug
                raise AsmError(f"{item.text}: encoded {len(data)} bytes, laid out {item.size}")
            out += data
            pc += item.size
        return bytes(out)

    def raw(self, data: bytes, text: str = ".raw") -> None:
        """Bytes taken as they are (a relocated instruction)."""
        if len(data) % 2:
            raise AsmError(f"{text}: {len(data)} bytes is not whole halfwords")
        self._fixed(text, bytes(data))

    # -- checks --------------------------------------------------------------------------------
    @staticmethod
    def _low(*regs: int, text: str) -> None:
        for r in regs:
            if not 0 <= r <= 7:
                raise AsmError(f"{text}: r{r} is not a low register (r0-r7) for the 16-bit encoding", hint="use the .w form")

    @staticmethod
    def _reg(*regs: int, text: str, allow_sp: bool = False) -> None:
        for r in regs:
            if not 0 <= r <= 14 or (r == SP and not allow_sp):
                raise AsmError(f"{text}: r{r} is not allowed here")

    @staticmethod
    def _range(value: int, lo: int, hi: int, step: int, text: str) -> None:
        if not lo <= value <= hi or value % step:
            raise AsmError(f"{text}: {value} is out of range ({lo}..{hi}, multiple of {step})")

    # -- data processing --------------------------------------------------------------------------
    def mov(self, rd: int, rm: int) -> None:
        """A7.7.77 MOV (register) T1: any registers, flags unchanged."""
        text = f"mov r{rd}, r{rm}"
        self._reg(rd, rm, text=text, allow_sp=True)
        self._fixed(text, _hw(0x4600 | (rd & 8) << 4 | rm << 3 | (rd & 7)))

    def movs(self, rd: int, imm: int) -> None:
        """A7.7.76 MOV (immediate) T1: ``movs rd, #imm8``."""
        text = f"movs r{rd}, #{imm}"
        self._low(rd, text=text)
        self._range(imm, 0, 255, 1, text)
        self._fixed(text, _hw(0x2000 | rd << 8 | imm))

    def _imm16(self, hw1: int, rd: int, imm: int, text: str) -> None:
        self._reg(rd, text=text)
        self._range(imm, 0, 0xFFFF, 1, text)
        i, imm4, imm3, imm8 = (imm >> 11) & 1, imm >> 12, (imm >> 8) & 7, imm & 0xFF
        self._fixed(text, _hw(hw1 | i << 10 | imm4, imm3 << 12 | rd << 8 | imm8))

    def movw(self, rd: int, imm: int) -> None:
        """A7.7.76 MOV (immediate) T3."""
        self._imm16(0xF240, rd, imm, f"movw r{rd}, #{imm:#x}")

    def movt(self, rd: int, imm: int) -> None:
        """A7.7.79 MOVT T1."""
        self._imm16(0xF2C0, rd, imm, f"movt r{rd}, #{imm:#x}")

    def load_const(self, rd: int, value: int) -> None:
        """``movw`` then ``movt`` (no literal pool: the code never reads itself)."""
        value &= 0xFFFFFFFF
        self.movw(rd, value & 0xFFFF)
        self.movt(rd, value >> 16)

    def adds(self, rdn: int, imm: int) -> None:
        """A7.7.3 ADD (immediate) T2: ``adds rdn, #imm8``."""
        text = f"adds r{rdn}, #{imm}"
        self._low(rdn, text=text)
        self._range(imm, 0, 255, 1, text)
        self._fixed(text, _hw(0x3000 | rdn << 8 | imm))

    def subs(self, rdn: int, imm: int) -> None:
        """A7.7.175 SUB (immediate) T2: ``subs rdn, #imm8``."""
        text = f"subs r{rdn}, #{imm}"
        self._low(rdn, text=text)
        self._range(imm, 0, 255, 1, text)
        self._fixed(text, _hw(0x3800 | rdn << 8 | imm))

    def subs_reg(self, rd: int, rn: int, rm: int) -> None:
        """A7.7.176 SUB (register) T1: ``subs rd, rn, rm``."""
        text = f"subs r{rd}, r{rn}, r{rm}"
        self._low(rd, rn, rm, text=text)
        self._fixed(text, _hw(0x1A00 | rm << 6 | rn << 3 | rd))

    def adds_reg(self, rd: int, rn: int, rm: int) -> None:
        """A7.7.4 ADD (register) T1: ``adds rd, rn, rm``."""
        text = f"adds r{rd}, r{rn}, r{rm}"
        self._low(rd, rn, rm, text=text)
        self._fixed(text, _hw(0x1800 | rm << 6 | rn << 3 | rd))

    def _imm12(self, hw1: int, rd: int, rn: int, imm: int, text: str) -> None:
        self._range(imm, 0, 4095, 1, text)
        i, imm3, imm8 = imm >> 11, (imm >> 8) & 7, imm & 0xFF
        self._fixed(text, _hw(hw1 | i << 10 | rn, imm3 << 12 | rd << 8 | imm8))

    def addw(self, rd: int, rn: int, imm: int) -> None:
        """A7.7.3 ADD (immediate) T4 / A7.7.5 ADD (SP plus immediate) T4: ``addw rd, rn, #imm12``."""
        text = f"addw r{rd}, r{rn}, #{imm}"
        self._reg(rd, text=text)
        self._reg(rn, text=text, allow_sp=True)
        self._imm12(0xF200, rd, rn, imm, text)

    def subw(self, rd: int, rn: int, imm: int) -> None:
        """A7.7.174 SUB (immediate) T4: ``subw rd, rn, #imm12``."""
        text = f"subw r{rd}, r{rn}, #{imm}"
        self._reg(rd, text=text)
        self._reg(rn, text=text, allow_sp=True)
        self._imm12(0xF2A0, rd, rn, imm, text)

    def add_sp(self, imm: int) -> None:
        """A7.7.5 ADD (SP plus immediate) T2: ``add sp, #imm7*4``."""
        text = f"add sp, #{imm}"
        self._range(imm, 0, 508, 4, text)
        self._fixed(text, _hw(0xB000 | imm >> 2))

    def sub_sp(self, imm: int) -> None:
        """A7.7.173 SUB (SP minus immediate) T1: ``sub sp, #imm7*4``."""
        text = f"sub sp, #{imm}"
        self._range(imm, 0, 508, 4, text)
        self._fixed(text, _hw(0xB080 | imm >> 2))

    def add_rd_sp(self, rd: int, imm: int) -> None:
        """A7.7.5 ADD (SP plus immediate) T1: ``add rd, sp, #imm8*4``."""
        text = f"add r{rd}, sp, #{imm}"
        self._low(rd, text=text)
        self._range(imm, 0, 1020, 4, text)
        self._fixed(text, _hw(0xA800 | rd << 8 | imm >> 2))

    def lsrs(self, rd: int, rm: int, imm: int) -> None:
        """A7.7.69 LSR (immediate) T1: ``lsrs rd, rm, #imm`` (1..31)."""
        text = f"lsrs r{rd}, r{rm}, #{imm}"
        self._low(rd, rm, text=text)
        self._range(imm, 1, 31, 1, text)
        self._fixed(text, _hw(0x0000 | 1 << 11 | imm << 6 | rm << 3 | rd))

    def _modimm(self, hw1: int, rd: int, rn: int, imm: int, text: str) -> None:
        enc = thumb_expand_imm(imm)
        if enc is None:
            raise AsmError(f"{text}: {imm:#x} is not a modified immediate constant", hint="load it into a register first")
        self._fixed(text, _hw(hw1 | (enc >> 11) << 10 | rn, ((enc >> 8) & 7) << 12 | rd << 8 | (enc & 0xFF)))

    def and_imm(self, rd: int, rn: int, imm: int) -> None:
        """A7.7.8 AND (immediate) T1, S=0."""
        text = f"and r{rd}, r{rn}, #{imm:#x}"
        self._reg(rd, rn, text=text)
        self._modimm(0xF000, rd, rn, imm, text)

    def bic_imm(self, rd: int, rn: int, imm: int) -> None:
        """A7.7.15 BIC (immediate) T1, S=0."""
        text = f"bic r{rd}, r{rn}, #{imm:#x}"
        self._reg(rd, rn, text=text)
        self._modimm(0xF020, rd, rn, imm, text)

    def eor_imm(self, rd: int, rn: int, imm: int) -> None:
        """A7.7.35 EOR (immediate) T1, S=0."""
        text = f"eor r{rd}, r{rn}, #{imm:#x}"
        self._reg(rd, rn, text=text)
        self._modimm(0xF080, rd, rn, imm, text)

    def cmp_imm_w(self, rn: int, imm: int) -> None:
        """A7.7.27 CMP (immediate) T2: ``cmp.w rn, #const``."""
        text = f"cmp.w r{rn}, #{imm:#x}"
        self._reg(rn, text=text)
        self._modimm(0xF1B0, 0xF, rn, imm, text)

    def cmp_imm(self, rn: int, imm: int) -> None:
        """A7.7.27 CMP (immediate) T1: ``cmp rn, #imm8``."""
        text = f"cmp r{rn}, #{imm}"
        self._low(rn, text=text)
        self._range(imm, 0, 255, 1, text)
        self._fixed(text, _hw(0x2800 | rn << 8 | imm))

    def cmp(self, rn: int, rm: int) -> None:
        """A7.7.28 CMP (register) T1 (low registers) or T2."""
        text = f"cmp r{rn}, r{rm}"
        self._reg(rn, rm, text=text, allow_sp=True)
        if rn < 8 and rm < 8:
            self._fixed(text, _hw(0x4280 | rm << 3 | rn))
        else:
            self._fixed(text, _hw(0x4500 | (rn & 8) << 4 | rm << 3 | (rn & 7)))

    # -- loads and stores -------------------------------------------------------------------------
    def _ldst(self, load: bool, rt: int, rn: int, off: int) -> None:
        op = "ldr" if load else "str"
        text = f"{op} r{rt}, [r{rn}, #{off}]"
        self._reg(rt, text=text)
        self._reg(rn, text=text, allow_sp=True)
        if rt < 8 and rn < 8 and 0 <= off <= 124 and off % 4 == 0:  # A7.7.43 / A7.7.158 T1
            self._fixed(text, _hw((0x6800 if load else 0x6000) | (off >> 2) << 6 | rn << 3 | rt))
        elif rn == SP and rt < 8 and 0 <= off <= 1020 and off % 4 == 0:  # T2 (SP relative)
            self._fixed(text, _hw((0x9800 if load else 0x9000) | rt << 8 | off >> 2))
        elif 0 <= off <= 4095:  # T3
            self._fixed(text, _hw((0xF8D0 if load else 0xF8C0) | rn, rt << 12 | off))
        elif -255 <= off < 0:  # T4, P=1 U=0 W=0
            self._fixed(text, _hw((0xF850 if load else 0xF840) | rn, rt << 12 | 0xC00 | -off))
        else:
            raise AsmError(f"{text}: offset out of range", hint="use -255..4095")

    def ldr(self, rt: int, rn: int, off: int = 0) -> None:
        """A7.7.43 LDR (immediate): the shortest of T1, T2, T3, T4 for the operands."""
        self._ldst(True, rt, rn, off)

    def str(self, rt: int, rn: int, off: int = 0) -> None:
        """A7.7.158 STR (immediate): the shortest of T1, T2, T3, T4 for the operands."""
        self._ldst(False, rt, rn, off)

    def _post(self, load: bool, rt: int, rn: int, step: int) -> None:
        op = "ldr" if load else "str"
        text = f"{op} r{rt}, [r{rn}], #{step}"
        self._reg(rt, rn, text=text)
        self._range(step, 1, 255, 1, text)
        self._fixed(text, _hw((0xF850 if load else 0xF840) | rn, rt << 12 | 0xB00 | step))  # T4 P=0 U=1 W=1

    def ldr_post(self, rt: int, rn: int, step: int = 4) -> None:
        """A7.7.43 LDR (immediate) T4, post-indexed."""
        self._post(True, rt, rn, step)

    def str_post(self, rt: int, rn: int, step: int = 4) -> None:
        """A7.7.158 STR (immediate) T4, post-indexed."""
        self._post(False, rt, rn, step)

    def _reglist(self, regs: tuple[int, ...]) -> int:
        mask = 0
        for r in regs:
            mask |= 1 << r
        return mask

    def push(self, *regs: int) -> None:
        """A7.7.99 PUSH T1 (r0-r7, lr) or T2."""
        text = "push {" + ", ".join(f"r{r}" for r in regs) + "}"
        mask = self._reglist(regs)
        if mask & ~0x40FF == 0:
            self._fixed(text, _hw(0xB400 | (0x100 if mask & 0x4000 else 0) | (mask & 0xFF)))
        elif mask & (1 << SP | 1 << PC) or bin(mask).count("1") < 2:
            raise AsmError(f"{text}: cannot push sp or pc, or a single high register")
        else:
            self._fixed(text, _hw(0xE92D, mask))

    def pop(self, *regs: int) -> None:
        """A7.7.98 POP T1 (r0-r7, pc) or T2."""
        text = "pop {" + ", ".join(f"r{r}" for r in regs) + "}"
        mask = self._reglist(regs)
        if mask & ~0x80FF == 0:
            self._fixed(text, _hw(0xBC00 | (0x100 if mask & 0x8000 else 0) | (mask & 0xFF)))
        elif mask & (1 << SP) or (mask & 0xC000) == 0xC000 or bin(mask).count("1") < 2:
            raise AsmError(f"{text}: cannot pop sp, both lr and pc, or a single high register")
        else:
            self._fixed(text, _hw(0xE8BD, mask))

    # -- system -----------------------------------------------------------------------------------
    def _ldm_stm(self, load: bool, rn: int, regs: tuple[int, ...]) -> None:
        """A7.7.41 LDM T2 / A7.7.159 STM T2, increment after, with writeback: ``ldmia.w rn!, {regs}``."""
        name = "ldmia" if load else "stmia"
        text = f"{name}.w r{rn}!, {{" + ", ".join(f"r{r}" for r in regs) + "}"
        self._reg(rn, text=text)
        mask = self._reglist(regs)
        if mask & (1 << SP | 1 << PC | 1 << LR | 1 << rn) or bin(mask).count("1") < 2:
            raise AsmError(f"{text}: two or more of r0-r12, not the base register")
        self._fixed(text, _hw((0xE8B0 if load else 0xE8A0) | rn, mask))

    def ldmia(self, rn: int, *regs: int) -> None:
        self._ldm_stm(True, rn, regs)

    def stmia(self, rn: int, *regs: int) -> None:
        self._ldm_stm(False, rn, regs)

    def udiv(self, rd: int, rn: int, rm: int) -> None:
        """A7.7.195 UDIV T1: ``rd = rn / rm`` (unsigned)."""
        text = f"udiv r{rd}, r{rn}, r{rm}"
        self._reg(rd, rn, rm, text=text)
        self._fixed(text, _hw(0xFBB0 | rn, 0xF0F0 | rd << 8 | rm))

    def mla(self, rd: int, rn: int, rm: int, ra: int) -> None:
        """A7.7.74 MLA T1: ``rd = ra + rn * rm``."""
        text = f"mla r{rd}, r{rn}, r{rm}, r{ra}"
        self._reg(rd, rn, rm, ra, text=text)
        self._fixed(text, _hw(0xFB00 | rn, ra << 12 | rd << 8 | rm))

    def mls(self, rd: int, rn: int, rm: int, ra: int) -> None:
        """A7.7.75 MLS T1: ``rd = ra - rn * rm``."""
        text = f"mls r{rd}, r{rn}, r{rm}, r{ra}"
        self._reg(rd, rn, rm, ra, text=text)
        self._fixed(text, _hw(0xFB00 | rn, ra << 12 | rd << 8 | 0x10 | rm))

    def ldrex(self, rt: int, rn: int, off: int = 0) -> None:
        """A7.7.52 LDREX T1: load ``[rn, #off]`` and mark it for the ``strex`` that follows."""
        text = f"ldrex r{rt}, [r{rn}, #{off}]"
        self._reg(rt, rn, text=text)
        self._range(off, 0, 1020, 4, text)
        self._fixed(text, _hw(0xE850 | rn, rt << 12 | 0xF00 | off >> 2))

    def strex(self, rd: int, rt: int, rn: int, off: int = 0) -> None:
        """A7.7.167 STREX T1: store ``rt`` at ``[rn, #off]`` if nothing came between it and its ``ldrex``; ``rd`` =
        0 when it did, 1 when it did not."""
        text = f"strex r{rd}, r{rt}, [r{rn}, #{off}]"
        self._reg(rd, rt, rn, text=text)
        self._range(off, 0, 1020, 4, text)
        if rd in (rt, rn):
            raise AsmError(f"{text}: the status register must differ from the others (UNPREDICTABLE)")
        self._fixed(text, _hw(0xE840 | rn, rt << 12 | rd << 8 | off >> 2))

    def clrex(self) -> None:
        """A7.7.23 CLREX T1: forget the ``ldrex`` mark (a claim given up)."""
        self._fixed("clrex", _hw(0xF3BF, 0x8F2F))

    def nop(self) -> None:
        self._fixed("nop", _hw(0xBF00))

    def bx(self, rm: int) -> None:
        """A7.7.20 BX T1."""
        self._fixed(f"bx r{rm}", _hw(0x4700 | rm << 3))

    def blx(self, rm: int) -> None:
        """A7.7.19 BLX (register) T1: call the address in ``rm`` (its Thumb bit set)."""
        text = f"blx r{rm}"
        self._reg(rm, text=text)
        self._fixed(text, _hw(0x4780 | rm << 3))

    # -- branches ---------------------------------------------------------------------------------
    @staticmethod
    def _target(labels: dict[str, int], target: str | int, text: str) -> int:
        if isinstance(target, int):
            return target & ~1
        if target not in labels:
            raise AsmError(f"{text}: unknown label {target!r}")
        return labels[target]

    def b(self, target: str | int, cond: str | None = None) -> None:
        """A7.7.12 B, 16-bit: T1 (conditional, +-256 B) or T2 (+-2 KiB)."""
        text = f"b{cond or ''} {target}"

        def encode(pc: int, labels: dict[str, int]) -> bytes:
            off = self._target(labels, target, text) - (pc + 4)
            if cond is None:
                if not -2048 <= off <= 2046:
                    raise AsmError(f"{text}: branch of {off} bytes is out of range for b.n", hint="use b_w")
                return _hw(0xE000 | (off >> 1) & 0x7FF)
            if not -256 <= off <= 254:
                raise AsmError(f"{text}: branch of {off} bytes is out of range for b<c>.n", hint="use b_w")
            return _hw(0xD000 | CONDITIONS[cond] << 8 | (off >> 1) & 0xFF)

        self._add(2, text, encode)

    def b_w(self, target: str | int, cond: str | None = None) -> None:
        """A7.7.12 B, 32-bit: T3 (conditional, +-1 MiB) or T4 (+-16 MiB)."""
        text = f"b{cond or ''}.w {target if isinstance(target, str) else hex(target)}"
        self._add(4, text, lambda pc, labels: encode_b_w(pc, self._target(labels, target, text), cond, text))

    def cbz(self, rn: int, target: str | int, nonzero: bool = False) -> None:
        """A7.7.21 CBZ / CBNZ T1 (forward, 0..126 bytes)."""
        text = f"cb{'n' if nonzero else ''}z r{rn}, {target}"
        self._low(rn, text=text)

        def encode(pc: int, labels: dict[str, int]) -> bytes:
            off = self._target(labels, target, text) - (pc + 4)
            if not 0 <= off <= 126 or off & 1:
                raise AsmError(f"{text}: branch of {off} bytes is out of range for cbz/cbnz (0..126, forward)")
            return _hw(0xB100 | (0x800 if nonzero else 0) | (off >> 6) << 9 | ((off >> 1) & 0x1F) << 3 | rn)

        self._add(2, text, encode)

    def bl(self, target: str | int) -> None:
        """A7.7.18 BL T1."""
        text = f"bl {target if isinstance(target, str) else hex(target)}"
        self._add(4, text, lambda pc, labels: encode_bl(pc, self._target(labels, target, text), text))


def encode_b_w(pc: int, target: int, cond: str | None = None, text: str = "b.w") -> bytes:
    """B T4 (``cond`` None) or T3 from ``pc`` to ``target``."""
    off = target - (pc + 4)
    if cond is None:
        if not -(1 << 24) <= off < (1 << 24) or off & 1:
            raise AsmError(f"{text}: branch of {off} bytes is out of range for b.w (+-16 MiB)")
        s = (off >> 24) & 1
        i1, i2 = (off >> 23) & 1, (off >> 22) & 1
        j1, j2 = (1 - i1) ^ s, (1 - i2) ^ s
        return _hw(0xF000 | s << 10 | (off >> 12) & 0x3FF, 0x9000 | j1 << 13 | j2 << 11 | (off >> 1) & 0x7FF)
    if not -(1 << 20) <= off < (1 << 20) or off & 1:
        raise AsmError(f"{text}: branch of {off} bytes is out of range for b<c>.w (+-1 MiB)")
    s, j1, j2 = (off >> 20) & 1, (off >> 18) & 1, (off >> 19) & 1
    return _hw(0xF000 | s << 10 | CONDITIONS[cond] << 6 | (off >> 12) & 0x3F, 0x8000 | j1 << 13 | j2 << 11 | (off >> 1) & 0x7FF)


def encode_bl(pc: int, target: int, text: str = "bl") -> bytes:
    """BL T1 from ``pc`` to ``target`` (a Thumb function)."""
    raw = encode_b_w(pc, target, None, text)
    hw1, hw2 = struct.unpack("<HH", raw)
    return _hw(hw1, hw2 | 0x4000)
