"""The hooks' node-header reader (LiteosNodes) on real compiles of the LiteOS 5.0.0 node structures under the build
options that change them (tests/heap/liteos_options/los_options.c): it reads the layout the heap walker reads, and
decodes a header written at that layout's offsets, the alignment gap and a HEAD_BACKUP build's backup copy included."""

from __future__ import annotations

import subprocess

import pytest

from memhil.capture.nodes import LiteosNodes, NodeInfo
from memhil.elf import Image
from memhil.heap.layout import Field, NodeLayout


#: option sets, and the bytes of the control node right before the user pointer (the header without a backup copy)
OPTIONS = {
    "plain": ((), 16),
    "mul_module+leakcheck": (("LOSCFG_MEM_MUL_MODULE", "LOSCFG_MEM_LEAKCHECK"), 28),
    "head_backup+leakcheck+mul_module": (("LOSCFG_MEM_HEAD_BACKUP", "LOSCFG_MEM_LEAKCHECK", "LOSCFG_MEM_MUL_MODULE"), 36),
}
USED, ALIGNED = 0x80000000, 0x40000000
LRS = (0x08000101, 0x08000201, 0x08000301)


@pytest.fixture(scope="module")
def images(los_options_elf) -> dict[str, Image]:
    return {name: Image.open(los_options_elf(defines)) for name, (defines, _) in OPTIONS.items()}


def _put(buf: bytearray, base: int, f: Field, value: int) -> None:
    start = base + f.offset
    word = int.from_bytes(buf[start : start + f.size], "little")
    if f.bit_size is not None:
        mask = ((1 << f.bit_size) - 1) << (f.bit_offset or 0)
        word = (word & ~mask) | ((value << (f.bit_offset or 0)) & mask)
    else:
        word = value
    buf[start : start + f.size] = word.to_bytes(f.size, "little")


def _header(layout: NodeLayout, size: int, module: int, task: int) -> bytearray:
    """A used node's header at ``layout``'s offsets, a HEAD_BACKUP build's backup copy filled with other values."""
    buf = bytearray(b"\xa5" * layout.head_size)  # the backup copy (when there is one) keeps this junk
    base = layout.prev.offset
    buf[base:] = bytes(layout.head_size - base)
    _put(buf, 0, layout.size_and_flag, size | USED)
    if layout.task is not None:
        _put(buf, 0, layout.task, task)
    if layout.module is not None:
        _put(buf, 0, layout.module, module)
    if layout.link_reg is not None:
        for i, lr in enumerate(LRS):
            _put(buf, i * layout.link_reg.size, layout.link_reg, lr)
    return buf


@pytest.mark.parametrize("name", list(OPTIONS))
def test_reads_the_walkers_layout(images, name):
    layout = NodeLayout.from_image(images[name])
    nodes = LiteosNodes(images[name])
    defines, head = OPTIONS[name]
    assert nodes.head == head
    assert layout.head_size == head * (2 if "LOSCFG_MEM_HEAD_BACKUP" in defines else 1)
    assert nodes.lr_count == (3 if "LOSCFG_MEM_LEAKCHECK" in defines else 0)

    ptr = 0x20001000 + layout.head_size
    raw = bytes(_header(layout, 96, module=7, task=3))
    info = nodes.decode(ptr, raw, ptr - layout.head_size)
    module = 7 if layout.module is not None else 0
    assert info == NodeInfo(96, module, 3, LRS if layout.leakcheck else ())

    # an aligned block: the word before the pointer is the gap, the node lies gap bytes lower
    gap = 24
    aligned = bytes(_header(layout, 128, module=7, task=3)) + bytes(gap - 4) + (gap | ALIGNED).to_bytes(4, "little")
    addr, size = nodes.window(ptr + gap, boundary=32)
    assert size >= nodes.head + gap
    blob = (bytes(size) + aligned)[-size:]  # the window's bytes, ending at the pointer
    assert nodes.decode(ptr + gap, blob, addr) == NodeInfo(128, module, 3, LRS if layout.leakcheck else ())

    free = bytearray(raw)
    _put(free, 0, layout.size_and_flag, 96)  # USED clear: not a used node
    assert nodes.decode(ptr, bytes(free), ptr - layout.head_size) is None


def test_without_debug_info_the_liteos_default(images, tmp_path):
    stripped = tmp_path / "stripped.elf"
    subprocess.run(["arm-none-eabi-strip", "-g", "-o", str(stripped), str(images["head_backup+leakcheck+mul_module"].path)], check=True)
    nodes = LiteosNodes(Image.open(stripped))
    assert (nodes.head, nodes.size_off, nodes.lr_count) == (16, 12, 0)
