"""The real firmware's allocator node header, read from DWARF.

``LosMemCtlNode`` comes from firmware/kernel/mem/los_memory.h. It is checked twice: in a small
translation unit built here from that header with the firmware's debug defines (so the test does not
depend on the rest of the firmware compiling), and in the built scenario ``debug/module_stats.elf``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from elf_reference import run
from memhil.elf import Image

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
DEBUG_DEFINES = ["-DLOSCFG_MEM_DEBUG", "-DLOSCFG_MEM_MUL_MODULE", "-DLOSCFG_MEM_LEAKCHECK", "-DLOSCFG_MEM_TRACE"]


def check_node_layout(image: Image) -> None:
    node = image.struct_layout("LosMemCtlNode")
    m = node.members
    assert (m["magic"].offset, m["magic"].size) == (0, 4)
    assert (m["taskId"].offset, m["taskId"].size, m["taskId"].bit_offset, m["taskId"].bit_size) == (4, 4, 0, 16)
    assert (m["moduleId"].offset, m["moduleId"].size, m["moduleId"].bit_offset, m["moduleId"].bit_size) == (4, 4, 16, 16)
    assert m["preNode"].offset == 8
    assert (m["linkReg"].offset, m["linkReg"].count) == (12, 3)
    assert m["sizeAndFlag"].offset == 24 and node.size == 28
    assert m["freeNodeInfo.pstPrev"].offset == 0 and m["freeNodeInfo.pstNext"].offset == 4


@pytest.fixture(scope="module")
def header_elf(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fwhdr")
    src = out / "node.c"
    src.write_text('#include "los_memory.h"\nLosMemCtlNode g_probe;\nLosMemDynNode g_dyn;\n')
    obj = out / "node.o"
    run("arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-g", "-Og", "-std=gnu11", *DEBUG_DEFINES,
        f"-I{FIRMWARE / 'kernel/include'}", f"-I{FIRMWARE / 'kernel/mem'}", "-c", str(src), "-o", str(obj))
    return obj


def test_node_header_layout_from_the_firmware_header(header_elf):
    image = Image.open(header_elf)
    check_node_layout(image)
    assert image.variable("g_probe").type_name == "LosMemCtlNode"


def test_node_header_layout_in_module_stats_elf(firmware):
    check_node_layout(Image.open(firmware("module_stats", "debug")))
