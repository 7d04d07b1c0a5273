"""Host-side execution of the first instruction at a breakpoint, so the target can leave
the breakpoint without single-stepping.

In QEMU 7.2 every single-step toggle and every breakpoint insert/remove flushes the whole
translation cache, so the classic step-over (remove, step, re-insert) costs four flushes
per hit. Function entries almost always start with a PUSH or a NOP; the host performs
that instruction itself (one memory write and two register writes, pipelined with the
continue) and the breakpoint stays inserted.

Implements ARMv7-M ARM (DDI 0403E) A7.7.99 PUSH encodings T1 (16-bit) and T2
(``STMDB SP!``, 32-bit), and A7.7.88 NOP T1. Anything else returns None: the caller
falls back to a real step.
"""

from __future__ import annotations

import dataclasses
import struct


@dataclasses.dataclass(frozen=True)
class EntryInstruction:
    """A decoded instruction the host can execute: ``pushed`` lists register numbers
    stored (ascending), ``length`` is 2 or 4 bytes."""

    length: int
    pushed: tuple[int, ...] = ()


def decode(code: bytes) -> EntryInstruction | None:
    """Decode the instruction at the start of ``code`` (at least 4 bytes, little-endian halfwords)."""
    if len(code) < 4:
        return None
    hw1, hw2 = struct.unpack_from("<HH", code)
    if hw1 == 0xBF00:  # NOP T1
        return EntryInstruction(2)
    if hw1 & 0xFE00 == 0xB400:  # PUSH T1: 1011 010M rrrrrrrr
        regs = [n for n in range(8) if hw1 & (1 << n)] + ([14] if hw1 & 0x100 else [])
        return EntryInstruction(2, tuple(regs)) if regs else None
    if hw1 == 0xE92D and not hw2 & 0xA000:  # PUSH T2 (STMDB SP!): no PC (bit 15), bit 13 (SP) zero
        regs = [n for n in range(13) if hw2 & (1 << n)] + ([14] if hw2 & 0x4000 else [])
        return EntryInstruction(4, tuple(regs)) if len(regs) >= 2 else None  # one register is UNPREDICTABLE
    return None


def in_it_block(xpsr: int) -> bool:
    """EPSR.IT bits (xPSR[26:25] and [15:10]) non-zero: the instruction is conditional."""
    return bool(xpsr & 0x0600FC00)


def execute(insn: EntryInstruction, regs: list[int], pc: int) -> tuple[int, bytes, int]:
    """Return ``(new_sp, bytes stored at new_sp, new_pc)`` for ``insn`` with registers ``regs`` (r0..r15)."""
    sp = regs[13] - 4 * len(insn.pushed)
    data = b"".join(struct.pack("<I", regs[n] & 0xFFFFFFFF) for n in insn.pushed)
    return sp & 0xFFFFFFFF, data, (pc + insn.length) & 0xFFFFFFFF
