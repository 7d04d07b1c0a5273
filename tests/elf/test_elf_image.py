"""memhil.elf.Image against binutils (nm, readelf) and on bad input."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from elf_reference import nm_symbols, readelf_build_id, readelf_loads
from memhil.elf import Image
from memhil.errors import DebugInfoMissingError, ElfError, SymbolNotFoundError


@pytest.fixture(scope="module")
def image(built):
    return Image.open(built.app)


def test_function_and_object_symbols_match_nm(image, built):
    ref = nm_symbols(built.app)
    checked = 0
    for name, (addr, size, letter) in ref.items():
        if letter.upper() not in "TDBR":
            continue
        sym = image.symbol(name)
        assert (sym.address, sym.size) == (addr & ~1, size), name
        assert sym.kind == ("func" if letter.upper() == "T" else "object"), name
        checked += 1
    assert checked >= 10
    assert image.symbol("leaf").thumb and not image.symbol("g_node").thumb


def test_symbol_at_covers_every_byte_of_functions_and_ignores_thumb_bit(image, built):
    for name, (addr, size, letter) in nm_symbols(built.app).items():
        if letter.upper() != "T":
            continue
        for a in (addr, addr + size // 2, addr + size - 1):
            assert image.symbol_at(a).name == name
        assert image.symbol_at(addr | 1).name == name
    node = image.symbol("g_node")
    assert image.symbol_at(node.address + 5).name == "g_node"
    assert image.symbol_at(0x10000000) is None


def test_missing_symbol_lists_near_matches(image):
    assert image.find_symbol("midle") is None
    with pytest.raises(SymbolNotFoundError) as err:
        image.symbol("midle")
    assert "middle" in str(err.value) and "Hint:" in str(err.value)


def test_build_id_matches_readelf_note(image, built):
    expected = readelf_build_id(built.app)
    assert expected and image.build_id == expected


def test_build_id_falls_back_to_hash_of_load_segments(built):
    assert readelf_build_id(built.nobuildid) is None
    data = built.nobuildid.read_bytes()
    digest = hashlib.sha256()
    for offset, _vaddr, _paddr, filesz, _memsz in readelf_loads(built.nobuildid):
        digest.update(data[offset : offset + filesz])
    assert Image.open(built.nobuildid).build_id == "sha256:" + digest.hexdigest()


def test_load_segments_match_readelf_and_fit_the_platform(image, built, platform):
    got = [(s.offset, s.vaddr, s.paddr, s.filesz, s.memsz) for s in image.load_segments]
    assert got == readelf_loads(built.app)
    platform.check_segments(image.load_segments)
    names = {s.name for s in image.sections}
    assert {".isr_vector", ".text", ".data", ".bss", ".debug_info", ".debug_frame"} <= names


def test_read_initialised_data_at_run_and_load_address(image):
    node = image.symbol("g_node")
    raw = image.read(node.address, 4)
    assert int.from_bytes(raw, "little") == 0xABCD1234
    data_seg = next(s for s in image.load_segments if s.vaddr != s.paddr)
    rel = node.address - data_seg.vaddr
    assert image.read(data_seg.paddr + rel, 4) == raw
    assert image.read(image.symbol("g_sink").address, 4) == bytes(4)  # .bss reads as zeros
    vectors = image.read(0x08000000, 8)
    assert int.from_bytes(vectors[4:], "little") == image.symbol("Reset_Handler").address | 1
    with pytest.raises(ElfError, match="not inside one loadable segment"):
        image.read(0x30000000, 4)


def test_variable_has_dwarf_type_name(image):
    var = image.variable("g_node")
    assert var.type_name == "LosMemCtlNode" and var.kind == "object"
    assert image.variable("g_sink").type_name == "volatile uint32_t"
    with pytest.raises(SymbolNotFoundError, match="not a variable"):
        image.variable("leaf")
    with pytest.raises(SymbolNotFoundError, match="g_node"):
        image.variable("g_nod")


def test_not_an_elf(tmp_path):
    path = tmp_path / "firmware.bin"
    path.write_bytes(b"\x00\x10\x02\x20" * 64)
    with pytest.raises(ElfError, match="not an ELF") as err:
        Image.open(path)
    assert err.value.hint and str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ElfError, match="cannot read"):
        Image.open(tmp_path / "nope.elf")


def test_host_elf_is_refused_as_not_arm():
    with pytest.raises(ElfError, match="not ARM") as err:
        Image.open(shutil.which("ls") or "/bin/ls")
    assert "arm-none-eabi-gcc" in err.value.hint


@pytest.mark.parametrize("keep", [20, 60, 0.5, 0.95])
def test_truncated_elf(built, tmp_path, keep):
    data = built.app.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    path = tmp_path / "cut.elf"
    path.write_bytes(data[:n])
    with pytest.raises(ElfError, match="truncated|corrupt"):
        Image.open(path)


def test_stripped_elf_keeps_symbols_and_refuses_dwarf_features(built):
    image = Image.open(built.stripped)
    assert not image.has_dwarf
    assert image.symbol("leaf").address == nm_symbols(built.app)["leaf"][0]
    assert image.symbol_at(image.symbol("middle").address + 4).name == "middle"
    assert image.variable("g_node").type_name is None
    with pytest.raises(DebugInfoMissingError, match="no DWARF") as err:
        image.struct_layout("LosMemCtlNode")
    assert "-g" in err.value.hint


def test_fully_stripped_elf_has_no_symbols_but_opens(built):
    image = Image.open(built.bare)
    assert image.symbols() == [] and image.symbol_at(0x08000070) is None
    with pytest.raises(SymbolNotFoundError):
        image.symbol("main")
    assert image.build_id == readelf_build_id(built.app)  # the note survives strip
    assert isinstance(image.path, Path)
