"""Leak sites: one leaking line is one site, however many loss records (kinds, call stacks) it makes."""

from __future__ import annotations

from fakesym import FakeSymbolizer, blk, snap

from memhil.analysis.leaks import find_leaks
from memhil.analysis.reachability import LeakKind, Region, classify
from memhil.analysis.sites import UNKNOWN_SITE, name_site, site_report


def _mem(blocks, words):
    """Heap contents: ``words`` maps a block's ptr to the pointer stored in its first word."""
    regions = []
    for b in blocks:
        data = bytearray(b.size)
        if b.ptr in words:
            data[0:4] = words[b.ptr].to_bytes(4, "little")
        regions.append(Region("heap", b.ptr, bytes(data)))
    return regions


def test_one_leaking_line_is_one_site_across_kinds_and_stacks():
    # leaky_worker (app/leak.c:42) leaks a head holding a child (definite + indirect), and is reached by two
    # different call stacks (task_main, net_rx): memcheck makes 3 loss records, there is 1 leak site
    head = blk(0x20000100, stack=(0x08001001, 0x08001101))
    child = blk(0x20000200, stack=(0x08001001, 0x08003001))
    other = blk(0x20000300, stack=(0x08001001, 0x08003001))
    blocks = [head, child, other]
    reach = classify(blocks, [Region(".bss", 0x20010000, b"\0" * 16)], _mem(blocks, {head.ptr: child.ptr}))
    assert reach.kind(child.ptr) is LeakKind.INDIRECT
    report = find_leaks(snap("a", 0, []), snap("b", 1, blocks), FakeSymbolizer(), reachability=reach)
    assert len(report.records) == 3
    assert report.leak_sites == ["app/leak.c:42"]
    assert {r.site.name for r in report.records} == {"app/leak.c:42"}


def test_indirect_blocks_count_their_own_site_when_their_holder_is_not_reported():
    holder = blk(0x20000100, stack=(0x08002001,))  # allocated before the first snapshot
    child = blk(0x20000200, stack=(0x08001001,))
    blocks = [holder, child]
    reach = classify(blocks, [], _mem(blocks, {holder.ptr: child.ptr}))
    report = find_leaks(snap("a", 0, [holder]), snap("b", 1, blocks), FakeSymbolizer(), reachability=reach)
    assert [r.kind for r in report.records] == [LeakKind.INDIRECT]
    assert report.leak_sites == ["app/leak.c:42"]
    both = find_leaks(snap("a", 0, []), snap("b", 1, blocks), FakeSymbolizer(), reachability=reach)
    assert both.leak_sites == ["shell/history.c:77"]  # the child is charged to its holder's site


def test_site_names_are_one_rule():
    sym = FakeSymbolizer()
    assert name_site(0x08001001, sym).name == "app/leak.c:42"
    assert name_site(0x08009001, sym).name == "0x08009001"
    assert name_site(None, sym).name == UNKNOWN_SITE
    assert name_site(-1).name == UNKNOWN_SITE

    class Rooted(FakeSymbolizer):
        def frame(self, pc, *, is_return_address=False):
            from memhil.elf.lines import Frame

            return Frame(pc, "leaky_worker", "/src/fw/app/leak.c", 42)

        def relative(self, file):
            return file.removeprefix("/src/fw/")

    assert name_site(0x08001001, Rooted()).name == "app/leak.c:42"
    rows = site_report([blk(0x20000100)], Rooted()).rows
    assert [r.site for r in rows] == ["app/leak.c:42"]  # reports and leak sites name a pc the same way


def test_site_without_debug_info_is_function_plus_offset(tmp_path, firmware):
    """A stripped ELF (no DWARF): the site is the function and the return address's offset into it, never the
    absolute address written as an offset."""
    import subprocess

    from memhil.analysis.sites import name_site
    from memhil.elf import Image, Symbolizer

    stripped = tmp_path / "leak_demo.elf"
    subprocess.run(["arm-none-eabi-strip", "--strip-debug", "-o", str(stripped), str(firmware("leak_demo", "debug"))], check=True)
    image = Image.open(stripped)
    start = image.symbol("app_build_response").address
    site = name_site(start + 0x11, Symbolizer(image))  # a Thumb return address 0x10 bytes in
    assert site.name == "app_build_response+0x10" and site.function == "app_build_response" and site.file is None
