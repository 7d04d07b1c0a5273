import struct

import pytest

from heap_synth import PoolBuilder, reader
from memhil.errors import DebugInfoMissingError, HeapCorruptionError
from memhil.heap.layout import NodeLayout
from memhil.heap.walker import HeapWalker

POOL = 0x20001000


def build(leakcheck=True, size=2048):
    b = PoolBuilder(NodeLayout.liteos_default(leakcheck), POOL, size)
    a = b.alloc(16, module=1, task=3, lrs=(0x08001235, 0x08002001, 0x08003001))
    b.free(64)
    c = b.alloc(100, module=2, task=4, lrs=(0x08004001, 0, 0x08005001))
    d = b.alloc(32, module=2, task=4, lrs=(1, 2, 3), gap=12)  # LOS_MemAllocAlign: aligned pointer 12 bytes in
    return b, b.build(), (a, c, d)


def test_walk_reads_every_node_in_one_bulk_read():
    b, buf, (a, c, d) = build()
    read = reader(buf, POOL)
    walk = HeapWalker(b.layout).walk(read, POOL)
    assert walk.ok, walk.errors
    assert [n.address for n in walk.nodes] == [n.address for n in b.all_nodes]
    assert [n.used for n in walk.nodes] == [True, False, True, True, False]
    first = walk.nodes[0]
    assert (first.size, first.module, first.task, first.lrs) == (44, 1, 3, (0x08001235, 0x08002001, 0x08003001))
    assert first.ptr == a.address + 28
    assert walk.nodes[3].aligned and walk.nodes[3].ptr == d.address + 28 + 12
    assert walk.end_node == POOL + 2048 - 28
    assert read.calls == [(POOL, 16), (POOL, 2048)]


def test_totals_modules_and_fragmentation():
    b, buf, (a, c, d) = build()
    walk = HeapWalker(b.layout).walk(reader(buf, POOL), POOL)
    assert walk.used == a.size + c.size + d.size
    last_free = b.all_nodes[-1].size
    assert walk.free == 64 + last_free
    assert walk.modules == {1: a.size, 2: c.size + d.size}
    frag = walk.fragmentation
    assert frag.free_blocks == 2 and frag.largest_free == last_free and frag.free_bytes == 64 + last_free
    assert frag.histogram[6] == 1 and frag.histogram[last_free.bit_length() - 1] == 1
    assert walk.stat_used == walk.used + 28 and walk.peak == walk.stat_used


def test_snapshot_from_walk_uses_node_size_minus_header():
    b, buf, (a, c, d) = build(leakcheck=False)
    snap = HeapWalker(b.layout).walk(reader(buf, POOL), POOL).to_snapshot("s", 5)
    assert snap.source == "walk" and snap.t_us == 5
    blk = snap.blocks[a.address + 16]
    assert (blk.size, blk.node_size, blk.module, blk.task, blk.lrs) == (16, 32, 1, 3, ())
    assert snap.module_used(2) == c.size + d.size


def test_memused_text_matches_shell_format():
    b, buf, (a, c, d) = build()
    text = HeapWalker(b.layout).walk(reader(buf, POOL), POOL).memused_text()
    lines = text.split("\n")
    assert lines[0] == "node            LR[0]       LR[1]       LR[2]   "
    assert lines[1] == f"0x{a.address:08x}:  0x08001235  0x08002001  0x08003001 "
    assert lines[2] == f"0x{c.address:08x}:  0x08004001  0x00000000  0x08005001 "
    assert len(lines) == 5 and lines[-1] == ""


def test_release_layout_memused_has_no_lr_columns():
    b, buf, (a, c, d) = build(leakcheck=False)
    text = HeapWalker(b.layout).walk(reader(buf, POOL), POOL).memused_text()
    assert text.split("\n")[:2] == ["node        ", f"0x{a.address:08x}: "]


def _corrupt(buf, addr, field_off, value):
    struct.pack_into("<I", buf, addr - POOL + field_off, value)


def test_corrupted_magic_stops_at_the_broken_node_and_keeps_the_rest():
    b, buf, (a, c, d) = build()
    _corrupt(buf, c.address, 0, 0xDEADBEEF)
    walk = HeapWalker(b.layout).walk(reader(buf, POOL), POOL)
    assert len(walk.nodes) == 2 and not walk.ok
    err = walk.errors[0]
    assert (err.address, err.kind, err.prev, err.next) == (c.address, "magic", b.all_nodes[1].address, d.address)
    assert "0xdeadbeef" in err.detail and len(err.dump) == 64
    with pytest.raises(HeapCorruptionError, match="broken node head"):
        walk.raise_for_errors()


def test_broken_free_link_is_reported():
    b, buf, (a, c, d) = build()
    free = b.all_nodes[1]
    _corrupt(buf, free.address, 4, 0x30000000)
    walk = HeapWalker(b.layout).walk(reader(buf, POOL), POOL)
    assert walk.errors[0].kind == "free-link" and walk.errors[0].address == free.address
    assert "pstNext" in walk.errors[0].detail
    assert [n.address for n in walk.nodes] == [a.address]


def test_bad_size_and_pre_node_are_reported():
    b, buf, (a, c, d) = build()
    broken = bytearray(buf)
    _corrupt(broken, c.address, 24, 0x80000000 | 3000)
    walk = HeapWalker(b.layout).walk(reader(broken, POOL), POOL)
    assert walk.errors[0].kind == "size" and walk.errors[0].next is None
    _corrupt(buf, d.address, 8, a.address)
    walk = HeapWalker(b.layout).walk(reader(buf, POOL), POOL)
    assert walk.errors[0].kind == "pre-node" and len(walk.nodes) == 3


def test_end_node_is_checked():
    b, buf, _ = build()
    _corrupt(buf, b.end, 24, 0x1234)
    walk = HeapWalker(b.layout).walk(reader(buf, POOL), POOL)
    assert walk.errors[0].kind == "end-node" and len(walk.nodes) == 5


def test_truncated_read_keeps_what_was_read():
    b, buf, (a, c, d) = build()
    walk = HeapWalker(b.layout).walk(reader(buf, POOL, limit=c.address - POOL + 10), POOL)
    assert walk.errors[0].kind == "truncated" and walk.errors[0].address == c.address
    assert len(walk.nodes) == 2


def test_uninitialised_or_wrong_pool_address():
    b, buf, _ = build()
    walk = HeapWalker(b.layout).walk(reader(bytes(2048), POOL), POOL)
    assert walk.errors[0].kind == "pool-header" and walk.nodes == []
    short = HeapWalker(b.layout).walk(reader(buf, POOL, limit=8), POOL)
    assert short.errors[0].kind == "truncated"


def test_stripped_image_asks_for_debug_info():
    class Stripped:
        has_dwarf = False
        path = "x.elf"

    with pytest.raises(DebugInfoMissingError, match="debug info"):
        NodeLayout.from_image(Stripped())


def test_layout_from_dwarf_members():
    from memhil.elf.types import Member, StructLayout
    from memhil.errors import ElfError

    node = StructLayout("LosMemCtlNode", 28, {
        "freeNodeInfo": Member("freeNodeInfo", 0, 8, "LOS_DL_LIST"),
        "freeNodeInfo.pstPrev": Member("freeNodeInfo.pstPrev", 0, 4, "struct LOS_DL_LIST *"),
        "freeNodeInfo.pstNext": Member("freeNodeInfo.pstNext", 4, 4, "struct LOS_DL_LIST *"),
        "magic": Member("magic", 0, 4, "UINT32"),
        "taskId": Member("taskId", 4, 4, "UINT32", 0, 16),
        "moduleId": Member("moduleId", 4, 4, "UINT32", 16, 16),
        "preNode": Member("preNode", 8, 4, "struct tagLosMemDynNode *"),
        "linkReg": Member("linkReg", 12, 12, "UINTPTR[3]", count=3),
        "sizeAndFlag": Member("sizeAndFlag", 24, 4, "UINT32"),
    })
    pool = StructLayout("LosMemPoolInfo", 16, {
        "pool": Member("pool", 0, 4, "VOID *"), "poolSize": Member("poolSize", 4, 4, "UINT32"),
        "stat": Member("stat", 8, 8, "LosMemStat"),
        "stat.memTotalUsed": Member("stat.memTotalUsed", 8, 4, "UINT32"),
        "stat.memTotalPeak": Member("stat.memTotalPeak", 12, 4, "UINT32"),
    })
    heads = StructLayout("LosMultipleDlinkHead", 208, {})

    class FakeImage:
        has_dwarf = True
        path = "fw.elf"

        def struct_layout(self, name):
            known = {"LosMemCtlNode": node, "LosMemPoolInfo": pool, "LosMultipleDlinkHead": heads}
            if name not in known:
                raise ElfError(f"no type {name}", hint="")
            return known[name]

    assert NodeLayout.from_image(FakeImage()) == NodeLayout.liteos_default(True)
    del node.members["preNode"]

    with pytest.raises(ElfError, match="preNode"):
        NodeLayout.from_image(FakeImage())
