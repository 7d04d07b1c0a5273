"""The bestfit walker on every LiteOS 5.0.0 build option: the layout read from the DWARF of a real compile of the
5.0.0 structures under each option (liteos_options/los_options.c), pools built to that layout, walked."""

from __future__ import annotations


import pytest

from heap_synth import PoolBuilder, reader

from memhil.elf import Image
from memhil.errors import ConfigError, HeapCorruptionError
from memhil.heap.layout import NodeLayout
from memhil.heap.walker import HeapLayoutError, HeapWalker


#: option sets and the header size the reference measured on Cortex-M4 (../shared/reference/liteos-bestfit.md)
OPTIONS = {
    "plain": ((), 16),
    "mul_module": (("LOSCFG_MEM_MUL_MODULE", "LOSCFG_MEM_TASK_STAT"), 16),
    "mul_module+leakcheck": (("LOSCFG_MEM_MUL_MODULE", "LOSCFG_MEM_LEAKCHECK", "LOSCFG_MEM_TASK_STAT"), 28),
    "head_backup": (("LOSCFG_MEM_HEAD_BACKUP",), 48),
    "head_backup+leakcheck+mul_module": (("LOSCFG_MEM_HEAD_BACKUP", "LOSCFG_MEM_LEAKCHECK", "LOSCFG_MEM_MUL_MODULE"), 72),
    "mul_pool": (("LOSCFG_MEM_MUL_MODULE", "LOSCFG_MEM_MUL_POOL"), 16),
}


@pytest.fixture(scope="module")
def layouts(los_options_elf) -> dict[str, NodeLayout]:
    return {name: NodeLayout.from_image(Image.open(los_options_elf(defines))) for name, (defines, _) in OPTIONS.items()}


def _pool(layout: NodeLayout, *, magic: bool, pool: int = 0x20001000) -> PoolBuilder:
    b = PoolBuilder(layout, pool=pool, size=4096, magic=magic)
    b.alloc(40, module=3, task=1, lrs=(0x08000101, 0x08000201, 0x08000301))
    b.free(layout.head_size + 64)
    b.alloc(100, module=5, task=2)
    b.alloc(8, module=3, task=2)
    return b


@pytest.mark.parametrize("name", list(OPTIONS))
def test_header_layout_from_dwarf(layouts, name):
    L = layouts[name]
    defines, head = OPTIONS[name]
    assert L.head_size == head
    assert L.has_modules == ("LOSCFG_MEM_MUL_MODULE" in defines)
    assert L.backup == ("LOSCFG_MEM_HEAD_BACKUP" in defines)
    assert L.leakcheck == ("LOSCFG_MEM_LEAKCHECK" in defines)
    assert L.size_and_flag.end == head  # sizeAndFlag is the header's last word, right before the user pointer
    assert (L.stat_used is not None) == ("LOSCFG_MEM_TASK_STAT" in defines)
    assert (L.next_pool is not None) == ("LOSCFG_MEM_MUL_POOL" in defines)


@pytest.mark.parametrize("debug", [True, False], ids=["debug", "release"])
@pytest.mark.parametrize("name", list(OPTIONS))
def test_every_option_walks(layouts, name, debug):
    L = layouts[name]
    b = _pool(L, magic=debug)
    buf = b.build()
    walk = HeapWalker(L).walk(reader(buf, b.pool), b.pool)
    assert walk.ok, walk.errors
    assert walk.magic_checked is debug  # the magic is checked only where the build sets it
    used = [n for n in b.all_nodes if n.used]
    assert [(n.address, n.size) for n in walk.used_nodes] == [(n.address, n.size) for n in used]
    assert [n.ptr for n in walk.used_nodes] == [n.address + L.head_size for n in used]
    if L.leakcheck:
        assert walk.used_nodes[0].lrs == (0x08000101, 0x08000201, 0x08000301)
    if L.has_modules:
        assert walk.modules == {3: used[0].size + used[2].size, 5: used[1].size}
        assert walk.to_snapshot().module_used(5) == used[1].size
    else:
        with pytest.raises(HeapLayoutError, match="LOSCFG_MEM_MUL_MODULE"):
            walk.modules
        with pytest.raises(ConfigError, match="no module ids"):
            walk.to_snapshot("s").module_used(3)
    if L.task is not None:
        assert [n.task for n in walk.used_nodes] == [1, 2, 2]


@pytest.mark.parametrize("name", list(OPTIONS))
def test_overwritten_magic_is_corruption_only_where_the_build_sets_it(layouts, name):
    L = layouts[name]
    for debug in (True, False):
        b = _pool(L, magic=debug)
        buf = b.build()
        victim = [n for n in b.all_nodes if n.used][0]  # the first used node: the others still carry the magic
        off = victim.address - b.pool + L.magic.offset
        buf[off : off + 4] = (0x20001234).to_bytes(4, "little")
        walk = HeapWalker(L).walk(reader(buf, b.pool), b.pool)
        if debug:
            assert [(e.kind, e.address) for e in walk.errors] == [("magic", victim.address)]
            assert walk.nodes == []  # the walk stops at the broken node
            with pytest.raises(HeapCorruptionError):
                walk.to_snapshot("broken")
            with pytest.raises(HeapCorruptionError):
                walk.modules  # never a module figure from a broken walk
        else:
            assert walk.ok and not walk.magic_checked


def test_magic_forced_always_and_never(layouts):
    L = layouts["mul_module"]
    b = _pool(L, magic=False)
    buf = b.build()
    assert HeapWalker(L, magic="always").walk(reader(buf, b.pool), b.pool).errors[0].kind == "magic"
    assert HeapWalker(L, magic="never").walk(reader(buf, b.pool), b.pool).ok
    with pytest.raises(ConfigError, match="magic"):
        HeapWalker(L, magic="sometimes")


def test_every_pool_through_next_pool(layouts):
    L = layouts["mul_pool"]
    first, second = _pool(L, magic=True, pool=0x20001000), _pool(L, magic=True, pool=0x20003000)
    mem = bytearray(0x3000)
    a, b = first.build(), second.build()
    mem[0x0000 : 0x1000] = a
    mem[0x2000 : 0x3000] = b
    mem[L.next_pool.offset : L.next_pool.offset + 4] = (0x20003000).to_bytes(4, "little")
    walks = HeapWalker(L).walk_pools(reader(mem, 0x20001000), 0x20001000)
    assert [w.pool for w in walks] == [0x20001000, 0x20003000]
    assert all(w.ok and len(w.used_nodes) == 3 for w in walks)
    # the chain alone reads only the pool headers; a nextPool that points back ends it
    read = reader(mem, 0x20001000)
    assert HeapWalker(L).pool_chain(read, 0x20001000) == [0x20001000, 0x20003000]
    assert {size for _, size in read.calls} == {L.pool_info_size}
    second_next = 0x2000 + L.next_pool.offset
    mem[second_next : second_next + 4] = (0x20001000).to_bytes(4, "little")
    assert HeapWalker(L).pool_chain(reader(mem, 0x20001000), 0x20001000) == [0x20001000, 0x20003000]


def test_module_used_from_a_walk_that_failed_is_an_error_not_zero(layouts):
    """``Get Module Used    NET    source=walk`` goes through Session.module_used: a broken heap or a build without
    module ids raises, it never answers 0."""
    from memhil.session import Session, SessionOptions

    session = Session(SessionOptions(capture="snapshot"))
    L = layouts["mul_module"]
    b = _pool(L, magic=True)
    buf = b.build()
    off = [n for n in b.all_nodes if n.used][1].address - b.pool + L.magic.offset
    buf[off : off + 4] = b"\0\0\0\0"
    session.walk_heap = lambda: HeapWalker(L).walk(reader(buf, b.pool), b.pool)
    with pytest.raises(HeapCorruptionError):
        session.module_used("5", source="walk")
    plain = layouts["plain"]
    good = _pool(plain, magic=False).build()
    session.walk_heap = lambda: HeapWalker(plain).walk(reader(good, 0x20001000), 0x20001000)
    with pytest.raises(ConfigError, match="LOSCFG_MEM_MUL_MODULE"):
        session.module_used("5", source="walk")
