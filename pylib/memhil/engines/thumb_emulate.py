"""Host-side execution of the instruction at a breakpoint, so the target can leave the
breakpoint without single-stepping.

In QEMU 7.2 every single-step toggle and every breakpoint insert/remove flushes the whole
translation cache, so the classic step-over (remove, step, re-insert) costs four flushes
per hit, and the code after it runs retranslated (measured: ~1.7 ms to the next stop after a
step-over against ~0.3 ms without). Function entries almost always start with a PUSH or a NOP
and returns are a POP into PC or ``bx lr``: the host performs that instruction itself (register
and memory writes pipelined with the continue) and the breakpoint stays inserted.

Implements ARMv7-M ARM (DDI 0403E): A7.7.99 PUSH T1 and T2 (``STMDB SP!``), A7.7.88 NOP T1,
A7.7.98 POP T1 and T2 (``LDMIA SP!``) and T3 (``LDR PC, [SP], #4``) when PC is loaded, and A7.7.20
BX T1 with LR. A load of PC that is an exception return (EXC_RETURN, B1.5.8) or that would clear
the Thumb bit (an INVSTATE UsageFault) is not performed: the caller steps instead, and so it does
for anything else (None).
"""

from __future__ import annotations

import dataclasses
import struct

PC, LR, SP = 15, 14, 13
#: values loaded into PC from here up are EXC_RETURN (ARMv7-M B1.5.8), never plain addresses
EXC_RETURN_MIN = 0xF0000000


@dataclasses.dataclass(frozen=True)
class HostInstruction:
    """A decoded instruction the host can execute: ``pushed``/``popped`` list register numbers
    (ascending; 15 is PC), ``branch_lr`` is ``bx lr``; ``length`` is 2 or 4 bytes."""

    length: int
    pushed: tuple[int, ...] = ()
    popped: tuple[int, ...] = ()
    branch_lr: bool = False

    @property
    def stack_bytes(self) -> int:
        """Bytes read at SP to execute it (the popped words)."""
        return 4 * len(self.popped)


@dataclasses.dataclass(frozen=True)
class Effect:
    """What executing an instruction does: registers to write, and memory to store (address, bytes)."""

    registers: dict[int, int]
    store: tuple[int, bytes] | None = None


def decode(code: bytes) -> HostInstruction | None:
    """Decode the instruction at the start of ``code`` (at least 4 bytes, little-endian halfwords)."""
    if len(code) < 4:
        return None
    hw1, hw2 = struct.unpack_from("<HH", code)
    if hw1 == 0xBF00:  # NOP T1
        return HostInstruction(2)
    if hw1 == 0x4770:  # BX LR
        return HostInstruction(2, branch_lr=True)
    if hw1 & 0xFE00 == 0xB400:  # PUSH T1: 1011 010M rrrrrrrr
        regs = [n for n in range(8) if hw1 & (1 << n)] + ([LR] if hw1 & 0x100 else [])
        return HostInstruction(2, tuple(regs)) if regs else None
    if hw1 == 0xE92D and not hw2 & 0xA000:  # PUSH T2 (STMDB SP!): no PC (bit 15), bit 13 (SP) zero
        regs = [n for n in range(13) if hw2 & (1 << n)] + ([LR] if hw2 & 0x4000 else [])
        return HostInstruction(4, tuple(regs)) if len(regs) >= 2 else None  # one register is UNPREDICTABLE
    if hw1 & 0xFF00 == 0xBD00:  # POP T1 with P (PC): 1011 110P rrrrrrrr
        return HostInstruction(2, popped=tuple(n for n in range(8) if hw1 & (1 << n)) + (PC,))
    if hw1 == 0xE8BD and hw2 & 0x8000 and not hw2 & 0x6000:  # POP T2 (LDMIA SP!) loading PC, no SP/LR+PC
        regs = tuple(n for n in range(13) if hw2 & (1 << n)) + (PC,)
        return HostInstruction(4, popped=regs) if len(regs) >= 2 else None
    if hw1 == 0xF85D and hw2 == 0xFB04:  # POP T3: LDR PC, [SP], #4
        return HostInstruction(4, popped=(PC,))
    return None


def in_it_block(xpsr: int) -> bool:
    """EPSR.IT bits (xPSR[26:25] and [15:10]) non-zero: the instruction is conditional."""
    return bool(xpsr & 0x0600FC00)


def execute(insn: HostInstruction, regs: list[int], pc: int, stack: bytes = b"") -> Effect | None:
    """The effect of ``insn`` at ``pc`` with registers ``regs`` (r0..r15) and ``stack`` (at least
    :attr:`~HostInstruction.stack_bytes` read at SP); None when the host must not perform it."""
    sp = regs[SP] & 0xFFFFFFFF
    if insn.pushed:
        new_sp = (sp - 4 * len(insn.pushed)) & 0xFFFFFFFF
        data = b"".join(struct.pack("<I", regs[n] & 0xFFFFFFFF) for n in insn.pushed)
        return Effect({SP: new_sp, PC: (pc + insn.length) & 0xFFFFFFFF}, (new_sp, data))
    if insn.popped:
        if len(stack) < insn.stack_bytes:
            return None
        values = struct.unpack_from(f"<{len(insn.popped)}I", stack)
        out = dict(zip(insn.popped, values))
        target = out[PC]
        if target >= EXC_RETURN_MIN or not target & 1:
            return None
        out[PC] = target & ~1
        out[SP] = (sp + insn.stack_bytes) & 0xFFFFFFFF
        return Effect(out)
    if insn.branch_lr:
        target = regs[LR] & 0xFFFFFFFF
        if target >= EXC_RETURN_MIN or not target & 1:
            return None
        return Effect({PC: target & ~1})
    return Effect({PC: (pc + insn.length) & 0xFFFFFFFF})  # NOP


def plain_store_length(code: bytes) -> int | None:
    """Length of the instruction at the start of ``code`` if it is a store whose only effect is the
    store itself (no base write-back), so skipping it and writing its bytes from the host is the
    same: STR/STRB/STRH immediate T1 (A7.7.158/160/167) and T2 (SP-relative STR), STR.W/STRB.W/STRH.W
    immediate T3 (12-bit offset), STRD immediate T1 with P=1, W=0. Else None."""
    if len(code) < 4:
        return None
    hw1, hw2 = struct.unpack_from("<HH", code)
    top5 = hw1 >> 11
    if top5 in (0b01100, 0b01110, 0b10000, 0b10010):  # STR/STRB/STRH (imm) T1, STR (SP) T2
        return 2
    if hw1 & 0xFF90 == 0xF880 and hw1 & 0x0060 != 0x0060:  # STRB.W/STRH.W/STR.W (imm12) T2/T3
        return 4
    if hw1 & 0xFFF0 in (0xE9C0, 0xE940) and hw1 & 0xF != 0xF:  # STRD (imm) T1, P=1 W=0 (offset form)
        return 4
    del hw2
    return None
