"""Line table, inlined frames and the symbolizer, compared with ``addr2line -f -i``."""

from __future__ import annotations

import logging

import pytest

from elf_reference import SRC, addr2line, nm_symbols, source_line

from memhil.elf import Frame, Image, Symbolizer


@pytest.fixture(scope="module")
def image(built):
    return Image.open(built.app)


@pytest.fixture(scope="module")
def sym(image):
    return Symbolizer(image, source_root=SRC)


def _text_addresses(elf) -> list[int]:
    addrs = []
    for _name, (addr, size, letter) in nm_symbols(elf).items():
        if letter.upper() == "T":
            addrs.extend(range(addr, addr + size, 2))
    return sorted(addrs)


@pytest.mark.parametrize("version", [4, 5])
def test_every_code_address_matches_addr2line(built, version):
    elf = built.dwarf[version]
    symbolizer = Symbolizer(Image.open(elf))
    addrs = _text_addresses(elf)
    ref = addr2line(elf, addrs)
    assert len(ref) == len(addrs) > 100
    for addr in addrs:
        got = [(f.function, f.file, f.line) for f in symbolizer.frames(addr)]
        assert got == ref[addr], hex(addr)


def test_inlined_function_gives_two_frames(image, sym):
    leaf = image.symbol("leaf")
    chains = [sym.frames(a) for a in range(leaf.address, leaf.end, 2)]
    inlined = [c for c in chains if len(c) == 2]
    assert inlined, "square() should be inlined into leaf()"
    inner, outer = inlined[0]
    assert (inner.function, inner.inlined, outer.function, outer.inlined) == ("square", True, "leaf", False)
    assert inner.line == source_line("return x * x + g_sink;")
    assert outer.line == source_line("g_sink = square(x) + 1u;")
    assert sym.frame(inlined[0][0].address).function == "square"
    assert sym.function(inlined[0][0].address) == "leaf"


def test_return_address_is_attributed_to_the_call_line(image, sym, built):
    from elf_reference import call_sites

    bl = call_sites(built.app)[("middle", "leaf")][0]
    ret = (bl + 4) | 1  # what the CPU puts in LR
    frame = sym.frame(ret, is_return_address=True)
    assert frame.function == "middle" and frame.line == source_line("uint32_t r = leaf(x + 1u);")
    assert frame.address == bl + 4
    assert sym.site(ret, is_return_address=True) == f"app.c:{frame.line}"


def test_site_is_relative_to_source_root_and_str_forms(image, sym, built):
    main = image.symbol("main").address
    _func, file, line = addr2line(built.app, [main])[main][0]
    assert file == f"{SRC}/app.c"
    assert sym.site(main) == f"app.c:{line}"
    assert str(sym.frame(main)) == f"main ({SRC}/app.c:{line})"
    default = Symbolizer(image)  # root = the compilation directory
    assert not default.site(main).startswith("/")
    assert default.site(main).endswith(f"app.c:{line}")


def test_relative_paths_follow_the_source_root(image):
    """Paths are made relative once per file, and again when the root changes; a file outside it stays absolute."""
    s = Symbolizer(image, source_root="/src/fw")
    assert s.relative("/src/fw/a/b.c") == "a/b.c" == s.relative("/src/fw/a/b.c")
    assert s.relative("/src/fwx/c.c") == "/src/fwx/c.c" and s.relative("rel/d.c") == "rel/d.c"
    s.source_root = "/src"
    assert s.relative("/src/fw/a/b.c") == "fw/a/b.c"
    s.source_root = None
    assert s.relative("/src/fw/a/b.c") == "/src/fw/a/b.c"


def test_unknown_address_is_shown_raw(sym):
    frame = sym.frame(0x10000000)
    assert frame == Frame(0x10000000, None, None, None)
    assert str(frame) == "0x10000000" and sym.site(0x10000000) == "0x10000000"


def test_frames_are_cached(sym, image):
    pc = image.symbol("outer").address + 4
    assert sym.frames(pc) == sym.frames(pc)
    assert sym.frame(pc) is sym.frame(pc)


def test_stripped_elf_gives_function_plus_offset_and_warns_once(built, caplog):
    image = Image.open(built.stripped)
    s = Symbolizer(image)
    middle = image.symbol("middle").address
    with caplog.at_level(logging.WARNING, logger="memhil.elf"):
        first = s.frame(middle + 6)
        s.frame(middle + 8)
        s.frame(middle + 10)
    assert (first.function, first.file, first.line, first.offset) == ("middle", None, None, 6)
    assert str(first) == "middle+0x6" and s.site(middle + 6) == "middle+0x6"
    warnings = [r for r in caplog.records if "no DWARF" in r.getMessage()]
    assert len(warnings) == 1 and "file:line" in warnings[0].getMessage()
    assert not s.has_lines


def test_fully_stripped_elf_gives_raw_addresses(built):
    s = Symbolizer(Image.open(built.bare))
    assert str(s.frame(0x08000070)) == "0x08000070"


def test_line_table_is_indexed_once(image):
    table = image.lines
    assert image.lines is table and len(table) > 20
    assert any(f.endswith("app.c") for f in table.files)
