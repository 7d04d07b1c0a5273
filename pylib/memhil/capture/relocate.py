"""Move a function's first instructions elsewhere, or say why they cannot be moved.

A patched hook overwrites a function's first 4 bytes with ``b.w wrapper``; the instructions that lived there
run from a body stub instead (``<moved instructions>; b.w F+n``). That is only the same program when each
moved instruction does the same thing at its new address: no branch, no IT block (its condition would cover the
stub's own branch), nothing that writes PC or reads it, and no branch elsewhere in the function into the bytes
overwritten. This module accepts a short list of encodings known to be position-independent (ARMv7-M ARM, A5.2
"16-bit Thumb instruction encoding" and A5.3 "32-bit Thumb instruction encoding") and declines anything else
with the reason: the same rule as Frida's ThumbRelocator and Linux kprobes' instruction decoder, kept conservative.

Some PC-relative forms are rewritten rather than declined, as Frida's relocator does, because what they do
does not depend on where they run once their target is computed here: a word load from a literal
(A7.7.44 LDR (literal) T1/T2) becomes ``movw/movt rt, #address; ldr rt, [rt]``, an address (A7.7.7 ADR T1-T3)
``movw/movt rd, #address`` (neither sets flags, as the originals do not), and a direct branch to a target
outside the moved bytes (A7.7.12 B T1-T4, A7.7.18 BL, A7.7.21 CBZ/CBNZ) the same branch to the same address
from the stub (``b<c>.w``, ``bl``, or ``cbnz/cbz`` over a ``b.w``). newlib's ``malloc`` begins with a literal
load of ``_impure_ptr``, LiteOS's ``LOS_MemAllocAlign`` with ``cbz``. An IT block is still declined: its
condition would cover instructions that are no longer the same.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: bytes the entry patch overwrites (one ``b.w``)
PATCH_BYTES = 4


@dataclass(frozen=True)
class Branch:
    """A direct branch moved into the stub: ``kind`` "b" (``cond`` None or a condition), "bl", "cbz" or "cbnz"
    (register ``reg``), to the absolute ``target``."""

    kind: str
    target: int
    cond: str | None = None
    reg: int = 0


@dataclass(frozen=True)
class Relocation:
    """The first ``length`` bytes of the function at ``address`` (``original``), and what does the same from
    anywhere: ``pieces`` in order, bytes kept or rewritten (position-independent) and :class:`Branch` es that the
    stub's assembler places (their encoding depends on where the stub is)."""

    address: int
    length: int
    pieces: tuple[bytes | Branch, ...]
    original: bytes = b""
    rewritten: tuple[str, ...] = ()

    @property
    def code(self) -> bytes:
        """The moved bytes when no branch moved (what a caller may compare or write as it is)."""
        if any(isinstance(p, Branch) for p in self.pieces):
            raise ValueError("a relocation with branches has no fixed code: assemble its pieces")
        return b"".join(self.pieces)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Declined:
    """Why the function at ``address`` cannot be patched; ``offset`` is the instruction concerned."""

    address: int
    offset: int
    reason: str

    def __str__(self) -> str:
        return f"{self.reason} (at +{self.offset})"


def _is_32bit(hw1: int) -> bool:
    return (hw1 >> 11) in (0b11101, 0b11110, 0b11111)


def _why_16(hw: int) -> str | None:
    """None when the 16-bit instruction ``hw`` is position-independent and does not branch."""
    top6 = hw >> 10
    if hw >> 14 == 0b00:  # shift (imm), add/sub, mov/cmp/add/sub imm8: registers only
        return None
    if top6 == 0b010000:  # data processing (register)
        return None
    if top6 == 0b010001:  # special data processing, BX/BLX
        if (hw >> 8) & 3 == 3:
            return "a branch (bx/blx)"
        rdn, rm = (hw & 7) | (hw >> 4) & 8, (hw >> 3) & 0xF
        return "an instruction that reads or writes pc" if 15 in (rdn, rm) else None
    if hw >> 11 == 0b01001:
        return "a pc-relative load (ldr literal)"
    if hw >> 12 == 0b0101 or hw >> 13 in (0b011, 0b100):  # load/store single (register and immediate, SP-relative)
        return None
    if hw >> 11 == 0b10100:
        return "a pc-relative address (adr)"
    if hw >> 11 == 0b10101:  # add rd, sp, #imm
        return None
    if hw >> 12 == 0b1011:  # miscellaneous 16-bit (A5.2.5)
        if hw & 0xFF00 == 0xBF00:
            return None if hw & 0xF == 0 else "an IT block"  # hints (nop, wfi...) have mask 0
        if hw & 0xF500 == 0xB100:
            return "a branch (cbz/cbnz)"
        if hw & 0xFE00 in (0xB400,):  # push
            return None
        if hw & 0xFF00 == 0xB000:  # add/sub sp, #imm
            return None
        if hw & 0xFF00 == 0xB200:  # sxth, sxtb, uxth, uxtb
            return None
        if hw & 0xFF00 == 0xBA00 and hw & 0xC0 != 0x80:  # rev, rev16, revsh
            return None
        if hw & 0xFFEF == 0xB662:  # cpsie/cpsid i
            return None
        if hw & 0xFE00 == 0xBC00:
            return "a pop (it may load pc)" if hw & 0x100 else None
        return "a miscellaneous instruction not known to be position-independent"
    if hw >> 11 in (0b11000, 0b11001):  # stm/ldm (no pc in 16-bit forms)
        return None
    if hw >> 12 == 0b1101:
        return "a branch (b<c>) or svc"
    if hw >> 11 == 0b11100:
        return "a branch (b)"
    return "an instruction not known to be position-independent"


def _why_32(hw1: int, hw2: int) -> str | None:
    """None when the 32-bit instruction is position-independent and does not branch."""
    op1 = (hw1 >> 11) & 3
    rn = hw1 & 0xF
    if op1 == 0b01:
        if hw1 & 0xFE40 == 0xE800:  # load/store multiple
            if hw2 & 0x8000 and hw1 & 0x10:
                return "a load of pc (ldm)"
            return None if rn != 15 else "a pc-relative load/store multiple"
        if hw1 & 0xFE40 == 0xE840:  # load/store dual, exclusive, table branch
            if hw1 & 0xFFF0 == 0xE8D0 and hw2 & 0xFFE0 == 0xF000:
                return "a table branch (tbb/tbh)"
            return "a pc-relative load (ldrd literal)" if rn == 15 else None
        if hw1 & 0xFE00 == 0xEA00:  # data processing (shifted register)
            rd, rm, setflags = (hw2 >> 8) & 0xF, hw2 & 0xF, hw1 & 0x10
            return "an instruction that reads or writes pc" if rm == 15 or (rd == 15 and not setflags) else None
        return "a coprocessor instruction not known to be position-independent"
    if op1 == 0b10:
        if hw2 & 0x8000:
            return "a branch or miscellaneous control instruction"
        rd = (hw2 >> 8) & 0xF
        if hw1 & 0xFA00 == 0xF200:  # plain binary immediate: addw/subw/movw/movt/bitfield/saturate
            if rn == 15 and hw1 & 0xFBF0 in (0xF200, 0xF2A0):
                return "a pc-relative address (adr.w)"
            return "an instruction that writes pc" if rd == 15 else None
        # modified immediate (A5.3.1): rd 15 means a compare or test, fine
        return None
    # op1 == 0b11
    if hw1 & 0xFE00 == 0xF800 and hw1 & 0xFF10 != 0xF910:  # load/store single (no simd)
        if rn == 15:
            return "a pc-relative load (ldr literal)"
        if hw1 & 0x10 and hw2 >> 12 == 15 and hw1 & 0x60 == 0x40:  # ldr into pc (word loads only; 15 elsewhere is a hint)
            return "a load of pc"
        return None
    if hw1 & 0xFF00 in (0xFA00, 0xFB00):  # data processing (register), multiply, long multiply, divide
        return None
    return "an instruction not known to be position-independent"


def _branch_targets(code: bytes, start: int) -> list[int]:
    """Targets of the direct branches a linear sweep finds in the function (B T1-T4, BL, CBZ/CBNZ)."""
    out: list[int] = []
    i = 0
    while i + 1 < len(code):
        hw1 = code[i] | code[i + 1] << 8
        if _is_32bit(hw1):
            if i + 3 >= len(code):
                break
            branch = _branch_32(hw1, code[i + 2] | code[i + 3] << 8, start + i)
            i += 4
        else:
            branch = _branch_16(hw1, start + i)
            i += 2
        if branch is not None:
            out.append(branch.target)
    return out


def relocate_prologue(code: bytes, address: int) -> Relocation | Declined:
    """Decide whether the function whose code (all of it, from the ELF) is ``code`` at ``address`` can have
    its first :data:`PATCH_BYTES` overwritten, and which instructions move."""
    address &= ~1
    if len(code) < PATCH_BYTES:
        return Declined(address, 0, f"the function is {len(code)} bytes long, shorter than the {PATCH_BYTES}-byte branch")
    i = 0
    out: list[bytes | Branch] = []
    rewritten: list[str] = []
    while i < PATCH_BYTES:
        if i + 1 >= len(code):
            return Declined(address, i, "the function ends inside the bytes to patch")
        hw1 = struct.unpack_from("<H", code, i)[0]
        if _is_32bit(hw1):
            if i + 3 >= len(code):
                return Declined(address, i, "the function ends inside an instruction")
            hw2 = struct.unpack_from("<H", code, i + 2)[0]
            text = f"{hw1:04x} {hw2:04x}"
            size = 4
            new = _rewrite_32(hw1, hw2, address + i) or _branch_32(hw1, hw2, address + i)
            why = None if new is not None else _why_32(hw1, hw2)
        else:
            text = f"{hw1:04x}"
            size = 2
            new = _rewrite_16(hw1, address + i) or _branch_16(hw1, address + i)
            why = None if new is not None else _why_16(hw1)
        if why is not None:
            return Declined(address, i, f"its first instructions hold {why} ({text})")
        if new is not None:
            out.append(new)
            rewritten.append(f"+{i}: {text}")
        else:
            out.append(bytes(code[i : i + size]))
        i += size
    length = i
    for target in _branch_targets(code, address):
        if address < target < address + length:
            return Declined(address, target - address, f"a branch in the function lands inside the first {length} bytes")
    for piece in out:
        if isinstance(piece, Branch) and address <= piece.target < address + length:
            return Declined(address, 0, f"a branch in its first {length} bytes lands inside them")
    return Relocation(address, length, tuple(out), bytes(code[:length]), tuple(rewritten))


_CONDS = ("eq", "ne", "cs", "cc", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le")


def _branch_16(hw: int, pc: int) -> Branch | None:
    """B T1/T2 and CBZ/CBNZ at ``pc`` as a :class:`Branch`, else None."""
    if hw & 0xF000 == 0xD000 and (hw >> 8) & 0xF < 0xE:  # B<c> T1
        imm = (hw & 0xFF) << 1
        return Branch("b", pc + 4 + (imm - 512 if imm & 0x100 else imm), _CONDS[(hw >> 8) & 0xF])
    if hw & 0xF800 == 0xE000:  # B T2
        imm = (hw & 0x7FF) << 1
        return Branch("b", pc + 4 + (imm - 4096 if imm & 0x800 else imm))
    if hw & 0xF500 == 0xB100:  # CBZ/CBNZ
        off = ((hw >> 9) & 1) << 6 | ((hw >> 3) & 0x1F) << 1
        return Branch("cbnz" if hw & 0x800 else "cbz", pc + 4 + off, reg=hw & 7)
    return None


def _branch_32(hw1: int, hw2: int, pc: int) -> Branch | None:
    """B T3/T4 and BL at ``pc`` as a :class:`Branch`, else None."""
    if hw1 & 0xF800 != 0xF000 or not hw2 & 0x8000:
        return None
    s, j1, j2 = (hw1 >> 10) & 1, (hw2 >> 13) & 1, (hw2 >> 11) & 1
    if hw2 & 0x5000 in (0x1000, 0x5000):  # B T4 (0x9000 mask 0xD000) or BL (0xD000)
        i1, i2 = 1 - (j1 ^ s), 1 - (j2 ^ s)
        imm = s << 24 | i1 << 23 | i2 << 22 | (hw1 & 0x3FF) << 12 | (hw2 & 0x7FF) << 1
        target = pc + 4 + (imm - (1 << 25) if s else imm)
        return Branch("bl" if hw2 & 0x4000 else "b", target)
    if hw2 & 0xD000 == 0x8000 and (hw1 >> 6) & 0xE != 0xE:  # B<c> T3
        imm = s << 20 | j2 << 19 | j1 << 18 | (hw1 & 0x3F) << 12 | (hw2 & 0x7FF) << 1
        return Branch("b", pc + 4 + (imm - (1 << 21) if s else imm), _CONDS[(hw1 >> 6) & 0xF])
    return None


def _literal(rt: int, address: int, load: bool) -> bytes:
    from memhil.capture.asm import Assembler

    a = Assembler()
    a.load_const(rt, address)
    if load:
        a.ldr(rt, rt, 0)
    return a.assemble(0)


def _rewrite_16(hw: int, pc: int) -> bytes | None:
    """LDR (literal) T1 and ADR T1 at ``pc`` as position-independent code, else None."""
    base = (pc + 4) & ~3
    if hw >> 11 == 0b01001:  # LDR rt, [pc, #imm8*4]
        return _literal((hw >> 8) & 7, base + (hw & 0xFF) * 4, True)
    if hw >> 11 == 0b10100:  # ADR rd, #imm8*4
        return _literal((hw >> 8) & 7, base + (hw & 0xFF) * 4, False)
    return None


def _rewrite_32(hw1: int, hw2: int, pc: int) -> bytes | None:
    """LDR.W (literal) T2 and ADR.W T2/T3 at ``pc`` as position-independent code, else None."""
    base = (pc + 4) & ~3
    if hw1 & 0xFF7F == 0xF85F:  # LDR.W rt, [pc, #+-imm12]
        rt = hw2 >> 12
        if rt in (13, 15):
            return None
        imm = hw2 & 0xFFF
        return _literal(rt, base + imm if hw1 & 0x80 else base - imm, True)
    if hw1 & 0xFBFF in (0xF20F, 0xF2AF) and not hw2 & 0x8000:  # ADDW/SUBW rd, pc, #imm12 (ADR T3/T2)
        rd = (hw2 >> 8) & 0xF
        if rd in (13, 15):
            return None
        imm = (hw1 >> 10 & 1) << 11 | (hw2 >> 12 & 7) << 8 | hw2 & 0xFF
        return _literal(rd, base + imm if hw1 & 0xFBFF == 0xF20F else base - imm, False)
    return None
