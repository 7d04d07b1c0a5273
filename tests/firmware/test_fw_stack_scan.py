"""The leak-check stack scan (firmware/arch/cortex-m/los_backtrace.c) on QEMU, against a reference scan written
here from the rules at the top of that file: at each entry of OsMemRecordLR the test reads the caller's stack and
computes the LRs it must record (ctx->lr[] zeroed first, then: odd word, value-1 in .text, a BL (ARM ARMv7-M A6.7.18) or BLX Rm (A6.7.19) ending
there, not inside the allocator's own code, first LOS_RECORD_LR_CNT); at the return to the allocator it reads what
the firmware recorded. Also checks the LiteOS contract that LR[0] is the call site of a LOS_Mem* API."""

from __future__ import annotations

import struct

import pytest

from memhil.elf.image import Image
from memhil.engines.qemu import QemuEngine

pytestmark = pytest.mark.emulator

LR_COUNT = 3
MAX_SCAN_WORDS = 512
WANT_CALLS = 150


class ReferenceScan:
    """The scan rules, from the ELF: .text bytes, the .text and allocator ranges and the stack top."""

    def __init__(self, image: Image) -> None:
        self.text_lo = image.symbol("__text_start").address
        self.text_hi = image.symbol("__text_end").address
        self.mem_lo = image.symbol("__los_mem_text_start").address
        self.mem_hi = image.symbol("__los_mem_text_end").address
        self.stack_top = image.symbol("_estack").address
        self.text = image.read(self.text_lo, self.text_hi - self.text_lo)

    def halfword(self, address: int) -> int:
        return struct.unpack_from("<H", self.text, address - self.text_lo)[0]

    def call_before(self, ret: int) -> str | None:
        """'bl' or 'blx' if the instruction ending at ret is BL <label> (T1) or BLX Rm, else None."""
        hw1, hw2 = self.halfword(ret - 4), self.halfword(ret - 2)
        if hw1 >> 11 == 0b11110 and hw2 >> 14 == 0b11 and (hw2 >> 12) & 1:
            return "bl"
        if hw2 >> 7 == 0b010001111:
            return "blx"
        return None

    def bl_target(self, ret: int) -> int:
        """Target of the BL T1 ending at ret (A6.7.18: imm32 = SignExtend(S:I1:I2:imm10:imm11:'0'))."""
        hw1, hw2 = self.halfword(ret - 4), self.halfword(ret - 2)
        s = (hw1 >> 10) & 1
        i1 = 1 - (((hw2 >> 13) & 1) ^ s)
        i2 = 1 - (((hw2 >> 11) & 1) ^ s)
        imm = (s << 24) | (i1 << 23) | (i2 << 22) | ((hw1 & 0x3FF) << 12) | ((hw2 & 0x7FF) << 1)
        if s:
            imm -= 1 << 25
        return ret + imm

    def lrs(self, words: list[int]) -> list[int]:
        found = []
        for value in words:
            ret = value - 1
            if value & 1 and self.text_lo + 4 <= ret <= self.text_hi and not self.mem_lo <= ret < self.mem_hi:
                if self.call_before(ret):
                    found.append(ret)
                    if len(found) == LR_COUNT:
                        break
        return found + [0] * (LR_COUNT - len(found))


def _call_sites(image: Image, ref: ReferenceScan, target: int) -> list[int]:
    """Return addresses of every BL to target in the allocator's code."""
    return [a + 4 for a in range(ref.mem_lo, ref.mem_hi - 2, 2)
            if ref.call_before(a + 4) == "bl" and ref.bl_target(a + 4) == target]


@pytest.fixture
def engine():
    eng = QemuEngine()
    try:
        yield eng
    finally:
        eng.stop()


def test_recorded_lrs_equal_a_reference_scan_of_the_callers_stack(engine, firmware, platform):
    elf = firmware("burst")
    image = Image.open(elf)
    ref = ReferenceScan(image)
    entry = image.symbol("OsMemRecordLR").address & ~1
    returns = _call_sites(image, ref, entry)
    assert returns, "the allocator calls OsMemRecordLR"

    engine.start(platform, elf)
    pending: list[tuple[int, list[int]]] = []
    seen: list[tuple[list[int], list[int]]] = []

    def on_entry(ctx) -> None:
        regs = ctx.read_registers()
        sp = regs["sp"]
        count = min((ref.stack_top - sp) // 4, MAX_SCAN_WORDS)
        words = list(struct.unpack(f"<{count}I", ctx.read_memory(sp, 4 * count)))
        out = regs["r0"]  # the caller's OsMemCallCtx, usually inside the scanned frames: zeroed before the scan
        for i in range(LR_COUNT):
            if 0 <= (out - sp) // 4 + i < count:
                words[(out - sp) // 4 + i] = 0
        pending.append((out, ref.lrs(words)))

    def on_return(ctx) -> None:
        out, expected = pending.pop()
        seen.append((list(struct.unpack("<3I", ctx.read_memory(out, 12))), expected))

    bps = [engine.add_breakpoint(entry, on_entry)] + [engine.add_breakpoint(r, on_return) for r in returns]
    while len(seen) < WANT_CALLS:
        engine.run_for(0.002)
    for bp in bps:
        engine.remove_breakpoint(bp)

    assert not pending or len(pending) == 1  # at most the call the last stop interrupted
    mismatches = [(got, want) for got, want in seen if got != want]
    assert not mismatches, f"{len(mismatches)} of {len(seen)} calls differ, first (firmware, reference): {mismatches[0]}"

    api_calls = set()
    for got, _ in seen:
        assert got[0] != 0 and not ref.mem_lo <= got[0] < ref.mem_hi
        assert ref.call_before(got[0]) == "bl"
        callee = image.symbol_at(ref.bl_target(got[0]))
        assert callee is not None and callee.name.startswith("LOS_Mem"), f"LR[0] {got[0]:#x} calls {callee}"
        api_calls.add(callee.name)
        caller = image.symbol_at(got[0])
        assert caller is not None and caller.name in ("burst_op", "burst_remember")
    assert {"LOS_MemMalloc", "LOS_MemMfree", "LOS_MemMrealloc"} <= api_calls


def test_reference_scan_rejects_what_the_rules_reject(firmware):
    """The reference itself: even words, words outside .text, allocator return addresses and words not after a
    call are skipped; the list is padded with zeros."""
    image = Image.open(firmware("burst"))
    ref = ReferenceScan(image)
    entry = image.symbol("OsMemRecordLR").address & ~1
    inside_allocator = _call_sites(image, ref, entry)[0]
    op = image.symbol("burst_op").address & ~1
    app_call = next(a + 4 for a in range(op, op + image.symbol("burst_op").size - 4, 2)
                    if ref.call_before(a + 4) == "bl" and image.symbol_at(ref.bl_target(a + 4)).name == "LOS_MemMalloc")
    not_after_call = next(a for a in range(op + 4, op + 64, 2) if ref.call_before(a) is None)
    words = [app_call, 0x20000001, inside_allocator + 1, not_after_call + 1, ref.text_hi + 3, 7]
    assert ref.lrs(words) == [0, 0, 0]
    assert ref.lrs(words + [app_call + 1]) == [app_call, 0, 0]
    assert ref.lrs([app_call + 1] * 5) == [app_call] * 3
