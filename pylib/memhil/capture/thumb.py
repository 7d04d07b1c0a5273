"""Find where a Thumb function returns, so a hook can stop exactly once on its way out; and its direct calls.

Decodes the few Thumb / Thumb-2 encodings that leave a function (ARM ARMv7-M, section A5 "Thumb
instruction set encoding", A7.7 instruction details):

- ``bx lr`` (BX T1, 0x4770) and ``pop {..., pc}`` (POP T1, 0xBDxx): returns;
- ``pop.w {..., pc}`` / ``ldmia.w sp!, {..., pc}`` (LDM T2, 0xE8BD with bit 15 of the list) and
  ``ldr.w pc, [sp], #4`` (LDR immediate T4, 0xF85D 0xFB04): returns;
- ``b`` / ``b.w`` / ``b<c>.w`` (B T1-T4) whose target lies outside the function: tail calls;
- ``bx rN`` (N != lr), ``mov pc, rN``, other loads into pc: exits we cannot follow.

A return inside an IT block is conditional: a breakpoint there would also stop when the return
is not taken, so it is reported as an unknown exit and the caller falls back to a breakpoint on
the return address. The sweep is linear from the function start; literal pools may decode as
garbage, which is harmless (a breakpoint on data never triggers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from memhil.capture.relocate import _branch_32


@dataclass(frozen=True)
class ReturnSite:
    """A return instruction at ``address``; SP at the function's entry was ``sp + sp_adjust`` there."""

    address: int
    sp_adjust: int


@dataclass
class ExitScan:
    """Every way out of one function found in its code."""

    start: int
    end: int
    returns: list[ReturnSite] = field(default_factory=list)
    tail_calls: list[int] = field(default_factory=list)  # branch targets outside the function
    unknown_exits: list[int] = field(default_factory=list)  # addresses of exits we cannot follow

    @property
    def closed(self) -> bool:
        """True when the return sites alone catch every way out (no tail call, no unknown exit)."""
        return bool(self.returns) and not self.tail_calls and not self.unknown_exits


def _sign_extend(value: int, bits: int) -> int:
    sign = 1 << (bits - 1)
    return (value & (sign - 1)) - (value & sign)


def _is_32bit(hw1: int) -> bool:
    return (hw1 >> 11) in (0b11101, 0b11110, 0b11111)


def _it_length(hw: int) -> int:
    """Instructions covered by an IT instruction (0xBFxx with a nonzero mask), else 0."""
    if hw & 0xFF00 != 0xBF00 or hw & 0xF == 0:
        return 0
    mask = hw & 0xF
    trailing = (mask & -mask).bit_length() - 1
    return 4 - trailing


def scan_exits(code: bytes, start: int) -> ExitScan:
    """Scan the Thumb code ``code`` of a function linked at ``start`` (Thumb bit cleared)."""
    start &= ~1
    end = start + len(code)
    scan = ExitScan(start, end)
    i = 0
    in_it = 0
    n = len(code) - 1
    while i < n:
        addr = start + i
        hw1 = code[i] | code[i + 1] << 8
        conditional = in_it > 0
        if in_it:
            in_it -= 1
        if _is_32bit(hw1):
            if i + 3 >= len(code):
                break
            hw2 = code[i + 2] | code[i + 3] << 8
            _decode32(scan, addr, hw1, hw2, conditional)
            i += 4
            continue
        it = _it_length(hw1)
        if it:
            in_it = it
        else:
            _decode16(scan, addr, hw1, conditional)
        i += 2
    return scan


def _exit(scan: ExitScan, addr: int, sp_adjust: int, conditional: bool) -> None:
    if conditional:
        scan.unknown_exits.append(addr)
    else:
        scan.returns.append(ReturnSite(addr, sp_adjust))


def _branch(scan: ExitScan, target: int) -> None:
    if not scan.start <= target < scan.end:
        scan.tail_calls.append(target)


def _decode16(scan: ExitScan, addr: int, hw: int, conditional: bool) -> None:
    if hw == 0x4770:  # BX lr
        _exit(scan, addr, 0, conditional)
    elif hw & 0xFF87 == 0x4700:  # BX rM, M != lr
        scan.unknown_exits.append(addr)
    elif hw & 0xFF00 == 0xBD00:  # POP {reglist, pc}
        _exit(scan, addr, 4 * (bin(hw & 0xFF).count("1") + 1), conditional)
    elif hw & 0xFF87 == 0x4687:  # MOV pc, rM (MOV T1 with Rd = 15)
        scan.unknown_exits.append(addr)
    elif hw & 0xF800 == 0xE000:  # B T2
        _branch(scan, addr + 4 + _sign_extend((hw & 0x7FF) << 1, 12))
    elif hw & 0xF000 == 0xD000 and (hw >> 8) & 0xF < 0xE:  # B<c> T1
        _branch(scan, addr + 4 + _sign_extend((hw & 0xFF) << 1, 9))


def _decode32(scan: ExitScan, addr: int, hw1: int, hw2: int, conditional: bool) -> None:
    if hw1 == 0xE8BD:  # LDMIA.W sp!, {list} (POP.W)
        if hw2 & 0x8000:
            _exit(scan, addr, 4 * bin(hw2).count("1"), conditional)
        return
    if hw1 == 0xF85D and hw2 == 0xFB04:  # LDR.W pc, [sp], #4 (POP.W with one register)
        _exit(scan, addr, 4, conditional)
        return
    if hw1 & 0xFFD0 == 0xE890 or hw1 & 0xFFD0 == 0xE910:  # other LDM/LDMDB
        if hw2 & 0x8000:
            scan.unknown_exits.append(addr)
        return
    if hw1 & 0xFF70 == 0xF850 and hw2 >> 12 == 0xF:  # LDR(.W) pc, [...]: jump through memory
        scan.unknown_exits.append(addr)
        return
    if hw1 & 0xF800 == 0xF000 and hw2 & 0x8000:
        s = (hw1 >> 10) & 1
        j1 = (hw2 >> 13) & 1
        j2 = (hw2 >> 11) & 1
        if hw2 & 0xD000 == 0x9000:  # B.W T4
            i1 = 1 - (j1 ^ s)
            i2 = 1 - (j2 ^ s)
            imm = (s << 24) | (i1 << 23) | (i2 << 22) | ((hw1 & 0x3FF) << 12) | ((hw2 & 0x7FF) << 1)
            _branch(scan, addr + 4 + _sign_extend(imm, 25))
        elif hw2 & 0xD000 == 0x8000 and (hw1 >> 6) & 0xE != 0xE:  # B<c>.W T3
            imm = (s << 20) | (j2 << 19) | (j1 << 18) | ((hw1 & 0x3F) << 12) | ((hw2 & 0x7FF) << 1)
            _branch(scan, addr + 4 + _sign_extend(imm, 21))


@dataclass(frozen=True)
class DirectBranch:
    """A ``bl`` (``link``) or unconditional ``b.w`` at ``address`` to ``target``: both BL T1 / B T4 encodings, whose
    target any other in +-16 MiB may replace (:func:`memhil.capture.asm.encode_bl`, ``encode_b_w``)."""

    address: int
    target: int
    link: bool


def direct_branches(code: bytes, start: int, data: list[tuple[int, int]]) -> list[DirectBranch]:
    """The BL T1 and B T4 instructions of the Thumb code ``code`` linked at ``start``, decoded in order from its
    start, the ``data`` ranges (literal pools, from the mapping symbols) stepped over: decoding a pool as code could
    find a branch in a constant, and rewriting it would change the constant."""
    out: list[DirectBranch] = []
    start &= ~1
    i, n = 0, len(code)
    while i + 1 < n:
        addr = start + i
        skip = next((end for lo, end in data if lo <= addr < end), None)
        if skip is not None:
            i = skip - start + (skip - start) % 2
            continue
        hw1 = code[i] | code[i + 1] << 8
        if not _is_32bit(hw1):
            i += 2
            continue
        if i + 3 >= n:
            break
        branch = _branch_32(hw1, code[i + 2] | code[i + 3] << 8, addr)
        if branch is not None and branch.cond is None:  # BL T1, B T4 (B T3 is conditional)
            out.append(DirectBranch(addr, branch.target, branch.kind == "bl"))
        i += 4
    return out
