"""Several LiteOS pools as one walk (:func:`memhil.heap.walker.combine_walks`) and the pool-header check, on pools
built byte for byte (heap_synth)."""

from __future__ import annotations

from heap_synth import PoolBuilder, reader

from memhil.heap.layout import NodeLayout
from memhil.heap.walker import HeapWalker, combine_walks

L = NodeLayout.liteos_default(True)


def _memory():
    first = PoolBuilder(L, pool=0x20001000, size=2048)
    first.alloc(40, module=3, lrs=(0x08000101, 0x08000201, 0x08000301))
    first.alloc(16, module=1)
    second = PoolBuilder(L, pool=0x20002000, size=1024)
    second.alloc(24, module=1)
    mem = bytearray(0x2000)
    mem[0:2048] = first.build()
    mem[0x1000:0x1400] = second.build()
    return reader(mem, 0x20001000)


def test_two_pools_as_one_walk():
    read = _memory()
    walker = HeapWalker(L)
    walks = [walker.walk(read, 0x20001000), walker.walk(read, 0x20002000)]
    both = combine_walks(walks)
    assert both.ok and both.pools == ((0x20001000, 2048), (0x20002000, 1024))
    assert [n.ptr for n in both.used_nodes] == [n.ptr for w in walks for n in w.used_nodes]
    assert both.used == walks[0].used + walks[1].used and both.free == walks[0].free + walks[1].free
    assert both.stat_used == walks[0].stat_used + walks[1].stat_used
    assert both.modules == {1: walks[0].modules[1] + walks[1].modules[1], 3: walks[0].modules[3]}
    snap = both.to_snapshot("s")
    assert sorted(b.size for b in snap.blocks.values()) == [16, 24, 40]
    assert combine_walks(walks[:1]) is walks[0]


def test_a_broken_pool_breaks_the_whole_walk():
    read = _memory()
    walker = HeapWalker(L)
    bad = walker.walk(read, 0x20001800)  # inside the first pool: no header there
    both = combine_walks([walker.walk(read, 0x20001000), bad])
    assert not both.ok and both.errors[0].kind == "pool-header"


def test_pool_header_check():
    read = _memory()
    walker = HeapWalker(L)
    assert walker.pool_header(read, 0x20002000) == (1024, None)
    size, problem = walker.pool_header(read, 0x20001800)
    assert problem is not None and "expected pool=0x20001800" in problem
