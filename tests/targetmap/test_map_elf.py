"""The static map against binutils (readelf -S, nm) on the real firmware, and a stripped ELF."""

from __future__ import annotations

from memhil.elf import Image
from memhil.targetmap import build_map, format_maps

from map_reference import nm_symbols, readelf_sections


def test_sections_match_readelf(elf, platform):
    tmap = build_map(Image.open(elf), platform)
    ref = readelf_sections(elf)
    shown = {r.name: r for r in tmap.regions if r.name.startswith(".")}
    expected = {n for n, (addr, size, flags) in ref.items() if "A" in flags and size and n not in (".heap", ".stack")}
    assert set(shown) == expected
    for name in expected:
        addr, size, flags = ref[name]
        region = shown[name]
        assert (region.start, region.size) == (addr, size), name
        assert region.perms == "r" + ("w" if "W" in flags else "-") + ("x" if "X" in flags else "-")
        assert region.memory == platform.region_at(addr).name


def test_heap_and_stack_from_linker_symbols(elf, platform):
    tmap = build_map(Image.open(elf), platform)
    syms = nm_symbols(elf)
    heap = tmap.region("[heap]")
    assert (heap.start, heap.end) == (syms["__heap_start"], syms["__heap_end"])
    stack = tmap.region("[stack:main]")
    assert (stack.start, stack.end) == (syms["_sstack"], syms["_estack"])
    assert tmap.missing == []
    assert not tmap.measured and heap.used is None and stack.used is None


def test_regions_tile_each_memory_without_overlap(elf, platform):
    tmap = build_map(Image.open(elf), platform)
    for mem in platform.regions:
        inside = sorted((r for r in tmap.regions if r.memory == mem.name), key=lambda r: r.start)
        assert inside[0].start == mem.base and inside[-1].end == mem.end
        for a, b in zip(inside, inside[1:]):
            assert a.end == b.start, (a, b)
        assert sum(r.size for r in inside) == mem.size
    load = tmap.by_kind("load")
    data = Image.open(elf).load_segments
    assert [(r.start, r.size) for r in load] == [(s.paddr, s.filesz) for s in data if s.filesz and s.paddr != s.vaddr]


def test_maps_text_one_line_per_region(elf, platform):
    tmap = build_map(Image.open(elf), platform)
    lines = [l for l in format_maps(tmap).splitlines() if not l.startswith("#")]
    assert len(lines) == len(tmap.regions)
    for line, region in zip(lines, tmap.regions):
        assert line.startswith(f"{region.start:08x}-{region.end:08x} {region.perms} ")
        assert region.name in line and str(region.size) in line.split()


def test_stripped_elf_shows_sections_and_names_what_is_missing(stripped_elf, platform):
    tmap = build_map(Image.open(stripped_elf), platform)
    ref = readelf_sections(stripped_elf)
    assert tmap.region(".text").size == ref[".text"][1]
    assert {"__heap_start", "__heap_end", "g_memhil_stacks", "g_memhil_stack_paint", "_sstack", "_estack"} <= set(tmap.missing)
    assert not tmap.by_kind("stack") or all(r.name == ".stack" for r in tmap.by_kind("stack"))
    text = format_maps(tmap)
    assert "# note: the ELF lacks" in text and "g_memhil_stacks" in text


def test_stripped_elf_measured_stack_is_none_not_zero(stripped_elf, platform):
    image = Image.open(stripped_elf)
    tmap = build_map(image, platform, lambda a, n: bytes(n))
    assert tmap.measured
    for region in tmap.by_kind("stack") + tmap.by_kind("heap"):
        assert region.used is None


def test_uninitialised_heap_is_not_measured(firmware, platform):
    """Target RAM of zeros (pool never initialised): the heap's use is unknown, not the whole pool."""
    tmap = build_map(Image.open(firmware("module_stats")), platform, lambda a, n: bytes(n))
    heap = tmap.region("[heap]")
    assert heap.used is None and "heap walk stopped: pool-header" in heap.note
    assert tmap.region("[stack:main]").used is None  # zeros are not the paint pattern
