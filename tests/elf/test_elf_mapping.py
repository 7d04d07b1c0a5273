"""Mapping symbols ($t/$d, "ELF for the Arm Architecture" 5.5.5) tell code from literal pools: Image.data_ranges, and
the direct calls the patched hooks rewrite (memhil.capture.thumb.direct_branches), which must not take a constant
in a pool for a call."""

from __future__ import annotations

import struct

import pytest

from elf_reference import SRC, run
from memhil.capture.thumb import direct_branches
from memhil.elf import Image


@pytest.fixture(scope="module")
def pools(tmp_path_factory) -> tuple[Image, Image]:
    out = tmp_path_factory.mktemp("pools")
    elf = out / "pools.elf"
    run("arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-nostdlib", "-T", str(SRC / "link.ld"), str(SRC / "pools.s"), "-o", str(elf))
    bare = out / "bare.elf"
    run("arm-none-eabi-strip", "-o", str(bare), str(elf))
    return Image.open(elf), Image.open(bare)


def test_data_ranges_are_the_literal_pools(pools):
    image, _ = pools
    caller, after = image.symbol("caller"), image.symbol("after")
    ranges = image.data_ranges(caller.address, after.address)
    assert len(ranges) == 1
    lo, hi = ranges[0]
    assert caller.address < lo and hi == after.address  # the pool ends the function, up to the next code
    assert struct.unpack("<I", image.read(hi - 4, 4))[0] == 0xF800F000
    assert 0x12345678 in struct.unpack(f"<{(hi - lo) // 4}I", image.read(lo, hi - lo))
    assert image.data_ranges(after.address, after.address + after.size) == []
    assert image.data_ranges(lo + 4, hi) == [(lo + 4, hi)]  # starting inside a pool


def test_without_mapping_symbols_nothing_can_be_told_apart(pools):
    _, bare = pools
    assert bare.data_ranges(0x08000000, 0x08001000) is None


def test_direct_branches_step_over_the_pools(pools):
    image, _ = pools
    caller, callee = image.symbol("caller"), image.symbol("callee")
    code = image.read(caller.address, caller.size)
    found = direct_branches(code, caller.address, image.data_ranges(caller.address, caller.end))
    assert [(b.target, b.link) for b in found] == [(callee.address, True), (callee.address, False)]  # bl, then the tail call
    disasm = run("arm-none-eabi-objdump", "-d", "--start-address", hex(caller.address), "--stop-address", hex(caller.end), str(image.path))
    for b in found:
        assert f"{b.address:x}:" in disasm and f"{callee.address:x} <callee>" in disasm
    # read as code, the pool's last word is a BL: only the mapping symbols keep it out
    blind = direct_branches(code, caller.address, [])
    assert len(blind) == len(found) + 1 and blind[-1].address == caller.end - 4 and blind[-1].link
