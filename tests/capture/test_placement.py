"""Where the patched hooks' code goes: QEMU's jump cache (memhil.capture.placement) and the layout built on it."""

from __future__ import annotations

import logging
import re
import subprocess

import pytest
from hypothesis import given, strategies as st

from memhil.capture.asm import AsmError, Assembler
from memhil.capture.patch import LOOKED_UP, PatchCapture
from memhil.capture.placement import HOT, JUMP_PAGE, JUMP_SLOTS, JumpTargets, choose_base, jump_slot, place_units, spread_size
from memhil.capture.relocate import Declined, relocate_prologue
from memhil.capture.scratch import Area
from memhil.elf import Image

from capture_fakes import FakeEngine, thumb

# QEMU's include/exec/tb-hash.h for softmmu, written out from its constants: an M-profile core has 1 KiB pages
TARGET_PAGE_BITS, TB_JMP_CACHE_BITS = 10, 12
TB_JMP_PAGE_BITS = TB_JMP_CACHE_BITS // 2
TB_JMP_ADDR_MASK = (1 << TB_JMP_PAGE_BITS) - 1
TB_JMP_PAGE_MASK = (1 << TB_JMP_CACHE_BITS) - (1 << TB_JMP_PAGE_BITS)


def qemu_hash(pc: int) -> int:
    tmp = pc ^ (pc >> (TARGET_PAGE_BITS - TB_JMP_PAGE_BITS))
    return ((tmp >> (TARGET_PAGE_BITS - TB_JMP_PAGE_BITS)) & TB_JMP_PAGE_MASK) | (tmp & TB_JMP_ADDR_MASK)


@given(st.integers(0, 0xFFFFFFFF))
def test_jump_slot_is_qemus_hash(pc):
    assert jump_slot(pc) == qemu_hash(pc) < JUMP_SLOTS


def test_the_hash_gives_a_page_64_slots_shared_with_other_pages():
    page = 0x08000400
    slots = {jump_slot(page + off) for off in range(0, JUMP_PAGE, 2)}
    assert len(slots) == 64
    # address bits 20 and up do not count: the flash page 1 MiB on, or RAM at the same offset, share them
    assert {jump_slot(page + 0x100000 + off) for off in range(0, JUMP_PAGE, 2)} == slots
    assert {jump_slot(0x20000400 + off) for off in range(0, JUMP_PAGE, 2)} == slots
    # the pair that missed at every call on burst before any patch (LOS_MemMfree's entry and its return site)
    assert jump_slot(0x08000B00) == jump_slot(0x08000B44)


def _objdump(elf, function: str) -> list[tuple[int, str]]:
    out = subprocess.run(["arm-none-eabi-objdump", "-d", f"--disassemble={function}", str(elf)],
                         capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+((?:[0-9a-f]{4} ?){1,2})\s+(\S+)\s*(.*)", line)
        if m:
            rows.append((int(m.group(1), 16), len(m.group(2).split()) * 2, m.group(3), m.group(4)))
    return rows


def test_targets_weigh_the_allocators_own_sites_most(firmware):
    """Against arm-none-eabi-objdump: each return site in LOS_MemMfree and the instruction after each of its
    PRIMASK writes weighs as hot code; so does its entry."""
    elf = firmware("burst", "release")
    image = Image.open(elf)
    mfree, free = image.symbol("LOS_MemMfree"), image.symbol("LOS_MemFree")
    jumps = JumpTargets(image, [mfree.address])
    sites = [addr + size for addr, size, op, _ in _objdump(elf, "LOS_MemMfree") if op in ("bl", "cpsid", "msr")]
    assert len(sites) >= 4
    for pc in sites + [mfree.address, free.address]:  # LOS_MemFree is called by it: hot too
        assert jumps.weights[jump_slot(pc)] >= HOT, hex(pc)
    assert sum(jumps.weights) >= HOT * len(sites) + len(image.symbols()) // 2
    # a firmware that hooks nothing weighs everything once
    cold = JumpTargets(image, [])
    assert max(cold.weights) < HOT


def _units():
    return [(600, [0, 0x1E4, 0x1F0, 0x240]), (500, [0, 0x100, 0x10A]), (900, [0, 0x300])]


def test_units_stay_in_their_page_and_their_lookups_apart():
    image_free = JumpTargets.__new__(JumpTargets)
    image_free.weights = [0] * JUMP_SLOTS
    image_free.weights[jump_slot(0x08040400)] = 5 * HOT  # a hot firmware address in the first unit's row
    before = list(image_free.weights)
    cost, offsets = place_units(image_free, 0x08040000, _units())
    assert image_free.weights == before  # the caller's weights stay as they were
    assert cost == 0
    seen = set()
    for (size, looked_up), off in zip(_units(), offsets):
        start = 0x08040000 + off
        assert start // JUMP_PAGE == (start + size - 1) // JUMP_PAGE  # one page
        for t in looked_up:
            assert jump_slot(start + t) not in seen and jump_slot(start + t) != jump_slot(0x08040400)
            seen.add(jump_slot(start + t))
    assert offsets[0] >= JUMP_PAGE and spread_size(_units()) == 4 * JUMP_PAGE


def test_choose_base_fits_the_gaps_or_says_none():
    jumps = JumpTargets.__new__(JumpTargets)
    jumps.weights = [0] * JUMP_SLOTS
    need = spread_size(_units())
    base, offsets = choose_base(jumps, [(0x08001000, 0x08001000 + need + 0x300)], _units())
    assert base % JUMP_PAGE == 0 and 0x08001000 <= base and base + need <= 0x08001000 + need + 0x300
    assert choose_base(jumps, [(0x08001000, 0x08001000 + need - 2)], _units()) is None
    # every candidate row taken by hot code but one: that one wins
    jumps.weights = [HOT] * JUMP_SLOTS
    free_row_page = 0x08000000 + 5 * JUMP_PAGE
    for off in range(0, JUMP_PAGE, 2):
        for page in range(4):  # the four pages from the free row's base on
            jumps.weights[jump_slot(free_row_page + page * JUMP_PAGE + off)] = 0
    base, _ = choose_base(jumps, [(0x08000000, 0x08000000 + 64 * JUMP_PAGE)], _units(), most=64)
    assert base == free_row_page


def test_pad_to_only_goes_forward():
    a = Assembler()
    a.movs(0, 0)
    a.pad_to(8)
    assert a.size == 8 and a.assemble(0x08000000)[2:] == b"\x00\xbf" * 3
    with pytest.raises(AsmError, match="cannot pad from 8 to 4"):
        a.pad_to(4)
    with pytest.raises(AsmError, match="cannot pad from 8 to 9"):
        a.pad_to(9)


def test_relocation_moves_at_least_what_is_asked():
    code = thumb(0xB580, 0xAF00, 0x2000, 0x4601, 0xBD80)  # push; add r7, sp; movs; mov; pop
    assert relocate_prologue(code, 0x08000100).length == 4
    assert relocate_prologue(code, 0x08000100, 6).length == 6
    declined = relocate_prologue(thumb(0xB580, 0xAF00, 0x4478, 0xBD80), 0x08000100, 6)  # add r0, pc
    assert isinstance(declined, Declined) and declined.offset == 4


def _capture(elf, platform, **kw) -> PatchCapture:
    eng = FakeEngine()
    eng.platform = platform
    cap = PatchCapture(eng, Image.open(elf), platform=platform, ram=(0x20020000, 0x8000), **kw)
    cap.plan()
    return cap


def test_the_layout_on_burst_keeps_every_looked_up_address_apart(firmware, platform):
    """Each wrapper with its body in one page (the RAM regions' checks for SRAM and CCM, 32 stack words: the
    largest wrappers the defaults make on QEMU 10); the addresses QEMU looks up at a hooked call (each wrapper's, and
    where each function goes on) share no jump-cache index with each other nor with hot firmware code."""
    elf = firmware("burst", "release")
    cap = _capture(elf, platform)
    cap._place()
    lay, labels = cap.layout, cap._labels
    assert "a page per wrapper" in lay.code.what and lay.code.base % JUMP_PAGE == 0
    ours = []
    for f in cap.patched:
        start, end = labels[f"wrap_{f.fid}"], labels[f"end_{f.fid}"]
        assert end - start <= JUMP_PAGE and start // JUMP_PAGE == (end - 1) // JUMP_PAGE, f.spec.name
        assert lay.code.base <= start and end <= lay.code.end
        ours += [labels[f"{n}_{f.fid}"] for n in LOOKED_UP] + [f.address + f.relocation.length]
    slots = [jump_slot(pc) for pc in ours]
    assert len(set(slots)) == len(slots)
    firmware_only = JumpTargets(cap.image, [f.address for f in cap.patched])
    assert all(firmware_only.weights[s] < HOT for s in slots)
    assert len(cap.code) <= lay.code.size


def test_no_room_for_a_page_each_packs_the_code(firmware, platform, caplog):
    elf = firmware("burst", "release")
    cap = _capture(elf, platform)
    header_words = cap.nodes.head // 4
    # flash taken but for 5 KiB at its top: room for the packed code (4.5 KiB), not for a page per wrapper (6 KiB)
    taken = [Area(0x08000000 + len(cap.image.read(0x08000000, 4)), 0x08100000 - 5 * 1024 - 0x08000004, "test")]
    with caplog.at_level(logging.INFO, logger="memhil.capture"):
        area, starts = cap._place_code(platform, header_words, taken)
    assert starts is None and area.end <= 0x08100000 and area.base >= 0x08100000 - 5 * 1024
    assert "no room in flash for a page per wrapper" in caplog.text
