"""Struct layouts from DWARF 2, 3, 4 and 5, checked against the values the compiler placed in .data."""

from __future__ import annotations

import pytest

from memhil.elf import Image, StructLayout
from memhil.errors import ElfError


@pytest.fixture(scope="module", params=[2, 3, 4, 5], ids=lambda v: f"dwarf{v}")
def image(request, built):
    return Image.open(built.dwarf[request.param])


def _raw(image: Image, var: str, layout: StructLayout) -> bytes:
    return image.read(image.symbol(var).address, layout.size)


def test_node_header_layout_like_liteos(image):
    node = image.struct_layout("LosMemCtlNode")
    assert node.size == 28
    m = node.members
    assert (m["magic"].offset, m["magic"].size, m["magic"].bit_size) == (0, 4, None)
    assert (m["taskId"].offset, m["taskId"].size, m["taskId"].bit_offset, m["taskId"].bit_size) == (4, 4, 0, 16)
    assert (m["moduleId"].offset, m["moduleId"].bit_offset, m["moduleId"].bit_size) == (4, 16, 16)
    assert (m["preNode"].offset, m["preNode"].size) == (8, 4)
    assert (m["linkReg"].offset, m["linkReg"].size, m["linkReg"].count) == (12, 12, 3)
    assert m["sizeAndFlag"].offset == 24
    assert m["freeNodeInfo"].offset == 0 and m["freeNodeInfo"].size == 8
    assert m["freeNodeInfo.pstNext"].offset == 4


def test_node_header_fields_decode_the_initialised_variable(image):
    node = image.struct_layout("LosMemCtlNode")
    raw = _raw(image, "g_node", node)
    values = {name: node.member(name).extract(raw) for name in ("magic", "taskId", "moduleId", "preNode", "sizeAndFlag")}
    assert values == {"magic": 0xABCD1234, "taskId": 0x12, "moduleId": 0x34, "preNode": 0x20000100, "sizeAndFlag": 0x80000040}
    lr = node.member("linkReg")
    step = lr.size // lr.count
    words = [int.from_bytes(raw[lr.offset + i * step : lr.offset + (i + 1) * step], "little") for i in range(lr.count)]
    assert words == [0x08000101, 0x08000203, 0x08000305]


def test_mixed_struct_bitfields_nested_struct_and_arrays(image):
    mixed = image.struct_layout("Mixed")
    raw = _raw(image, "g_mixed", mixed)
    assert mixed.member("kind").extract(raw) == 5
    assert mixed.member("level").extract(raw) == 17
    assert mixed.member("code").extract(raw) == 0xBEEF
    assert mixed.member("pos").type_name == "struct point"
    assert mixed.member("pos.x").extract(raw) == 0xFFFD  # -3 as int16_t
    assert mixed.member("pos.y").extract(raw) == 7
    name = mixed.member("name")
    assert name.count == 6 and raw[name.offset : name.offset + 4] == b"abc\x00"
    grid = mixed.member("grid")
    assert (grid.count, grid.size, grid.type_name) == (6, 24, "uint32_t[2][3]")
    assert mixed.member("wide").extract(raw) == 0xABCDE
    assert mixed.member("narrow").extract(raw) == 0x123
    assert mixed.member("wide").bit_size == 20 and mixed.member("narrow").bit_size == 12


def test_lookup_by_tag_and_by_typedef(image):
    assert image.struct_layout("struct point").size == 4
    assert image.struct_layout("point").members["y"].offset == 2
    assert image.struct_layout("LOS_DL_LIST").members["pstNext"].type_name == "struct LOS_DL_LIST *"
    assert image.struct_layout("struct LOS_DL_LIST").size == 8


def test_unknown_struct_lists_near_names(image):
    with pytest.raises(ElfError, match="LosMemCtlNode") as err:
        image.struct_layout("LosMemCtlNod")
    assert err.value.hint


def test_non_struct_type_is_refused(image):
    with pytest.raises(ElfError, match="not a struct"):
        image.struct_layout("uint32_t")


def test_unknown_member_lists_members(image):
    node = image.struct_layout("LosMemCtlNode")
    with pytest.raises(ElfError, match="moduleId") as err:
        node.member("moduleID")
    assert "sizeAndFlag" in err.value.hint
