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


@dataclasses.dataclass(frozen=True)
class Access:
    """A load or store without base write-back: ``size`` bytes at ``rn + offset``, to or from ``rt`` (a store of
    a pair also from ``rt2``); ``length`` is the instruction's, 2 or 4 bytes."""

    length: int
    rt: int
    rn: int
    offset: int
    size: int = 4
    rt2: int | None = None


#: what a decoded store or load is (the same fields: the names say which way the data goes)
Store = Load = Access

#: 16-bit immediate forms T1 by bits 15..12, with their access size (the offset is imm5 * size); bit 11 is L
#: (A7.7.158/160/167 STR/STRB/STRH, A7.7.43/46/57 LDR/LDRB/LDRH)
_T1_SIZES = {0b0110: 4, 0b0111: 1, 0b1000: 2}
#: 32-bit forms with a 12-bit offset by hw1 & 0xFFE0 (bit 4 is L): STR.W/LDR.W, STRH.W/LDRH.W, STRB.W/LDRB.W
_IMM12_SIZES = {0xF8C0: 4, 0xF8A0: 2, 0xF880: 1}


def _immediate(hw1: int, hw2: int, load: bool) -> Access | None:
    """The immediate-offset forms loads and stores share (T1 and the 12-bit .W forms), or None."""
    size = _T1_SIZES.get(hw1 >> 12)
    if size is not None and (hw1 >> 11) & 1 == load:
        return Access(2, hw1 & 7, (hw1 >> 3) & 7, ((hw1 >> 6) & 0x1F) * size, size)
    rt, rn = hw2 >> 12, hw1 & 0xF
    size = _IMM12_SIZES.get(hw1 & 0xFFE0)
    if size is not None and (hw1 >> 4) & 1 == load and rn != 0xF and rt != PC and not (load and rt == SP):
        return Access(4, rt, rn, hw2 & 0xFFF, size)
    return None


def decode_store(code: bytes) -> Store | None:
    """Decode a store the host can perform (QEMU stops on a write watchpoint *before* the store, so
    leaving the stop means doing it): STR/STRH/STRB immediate T1 (A7.7.158/167/160), STR SP-relative T2,
    their .W immediate forms with a 12-bit offset (T3/T2), STRD immediate T1 in offset form (A7.7.163,
    P=1 W=0). Else None (write-back, register offsets, exclusives: the caller steps)."""
    if len(code) < 4:
        return None
    hw1, hw2 = struct.unpack_from("<HH", code)
    found = _immediate(hw1, hw2, load=False)
    if found is not None:
        return found
    if hw1 >> 11 == 0b10010:  # STR (SP plus imm) T2
        return Store(2, (hw1 >> 8) & 7, SP, (hw1 & 0xFF) * 4)
    if hw1 & 0xFF70 == 0xE940 and hw1 & 0xF != 0xF:  # STRD (imm) T1, P=1 W=0; U is bit 7
        rt, rt2, imm = hw2 >> 12, (hw2 >> 8) & 0xF, (hw2 & 0xFF) * 4
        if rt in (SP, PC) or rt2 in (SP, PC):
            return None
        return Store(4, rt, hw1 & 0xF, imm if hw1 & 0x80 else -imm, 4, rt2)
    return None


def perform_store(store: Store, regs: list[int], pc: int) -> Effect:
    """The effect of ``store`` at ``pc``: its bytes at the address, and PC past it."""
    address = (regs[store.rn] + store.offset) & 0xFFFFFFFF
    data = (regs[store.rt] & ((1 << 8 * store.size) - 1)).to_bytes(store.size, "little")
    if store.rt2 is not None:
        data += (regs[store.rt2] & 0xFFFFFFFF).to_bytes(4, "little")
    return Effect({PC: (pc + store.length) & 0xFFFFFFFF}, (address, data))


def decode_load(code: bytes) -> Load | None:
    """Decode a load the host can perform at a read watchpoint (QEMU stops *before* the access; a device
    register read has side effects, so the host reads the register itself and leaves the stop past the load):
    LDR/LDRH/LDRB immediate T1 (A7.7.43/57/46), their .W forms with a 12-bit offset (T3/T2) and with a negative
    8-bit offset (T4 with P=1 U=0 W=0). Loads into SP or PC, sign-extending and register-offset loads and
    write-back are None (the caller steps)."""
    if len(code) < 4:
        return None
    hw1, hw2 = struct.unpack_from("<HH", code)
    found = _immediate(hw1, hw2, load=True)
    if found is not None:
        return found
    rt, rn = hw2 >> 12, hw1 & 0xF
    narrow = {0xF850: 4, 0xF830: 2, 0xF810: 1}  # LDR / LDRH / LDRB (imm8) T4: 1 P U W imm8
    if hw1 & 0xFFF0 in narrow and hw2 & 0x0F00 == 0x0C00 and rn != 0xF and rt not in (SP, PC):  # P=1 U=0 W=0
        return Load(4, rt, rn, -(hw2 & 0xFF), narrow[hw1 & 0xFFF0])
    return None


def perform_load(load: Load, regs: list[int], pc: int, data: bytes) -> Effect:
    """The effect of ``load`` at ``pc`` given the ``data`` read at its address: ``rt`` set, PC past it."""
    value = int.from_bytes(data[: load.size], "little")
    return Effect({load.rt: value, PC: (pc + load.length) & 0xFFFFFFFF})


def load_address(load: Load, regs: list[int]) -> int:
    return (regs[load.rn] + load.offset) & 0xFFFFFFFF
