"""FreeRTOS heap_1, heap_2 and heap_5 states in synthetic memory at a real foreign ELF's addresses (layouts from its
DWARF): good heaps walked exactly, broken ones (bad sizes, broken lists, overwritten markers and list ends) stopped
at the first bad header with a clear error, and heaps memhil cannot look at said to be so."""

from __future__ import annotations

import pytest

from freertos_synth import ALLOC, HEAD, Memory, lay_heap2, lay_heap5

from memhil.elf import Image
from memhil.errors import HeapCorruptionError
from memhil.heap.freertos import FreeRtosHeap1, FreeRtosHeap2Walker, FreeRtosHeap5Walker, HeapNotWalkableError
from memhil.heap.select import TargetHeap

U, F = True, False


@pytest.fixture(scope="module")
def heap5_image(foreign_elf):
    return Image.open(foreign_elf("rtos_style", heap="heap5"))


@pytest.fixture(scope="module")
def heap2_image(foreign_elf):
    return Image.open(foreign_elf("rtos_style", heap="heap2"))


def _nodes(walk):
    return [(n.address, n.size, n.used) for n in walk.nodes]


# -- heap_5 ------------------------------------------------------------------------------------------------------
def test_heap5_regions_come_from_the_table_even_when_the_free_list_forgot_one(heap5_image):
    """Region 0's last block was freed into its end marker (the marker left the list) and then handed out again:
    nothing on the free list points into region 0 any more, yet its blocks are walked from the HeapRegion_t table."""
    mem = Memory(heap5_image)
    blocks, markers = lay_heap5(mem, heap5_image, [[(64, U), (None, U)], [(128, U), (64, F), (256, U), (None, F)]],
                                markers_listed=(False,))
    walker = FreeRtosHeap5Walker(heap5_image)
    walk = walker.walk(mem)
    assert walk.ok, walk.errors
    assert _nodes(walk) == blocks
    assert walk.end_node == markers[-1]
    per_region = walker.walk_regions(mem)
    assert [len(w.nodes) for w in per_region] == [2, 4]
    assert [w.end_node for w in per_region] == markers
    assert walk.pools == tuple((w.pool, w.pool_size) for w in per_region)  # the regions, the gap between them not heap
    assert (walk.pool, walk.pool + walk.pool_size) == (per_region[0].pool, per_region[-1].pool + per_region[-1].pool_size)
    snap = walk.to_snapshot()
    assert sorted(snap.blocks) == [a + HEAD for a, _, used in blocks if used]
    assert TargetHeap(heap5_image).totals(mem) == {"used": sum(s for _, s, u in blocks if u), "free": sum(s for _, s, u in blocks if not u),
                                                   "blocks": 4}


def test_heap5_with_a_marker_still_on_the_list(heap5_image):
    mem = Memory(heap5_image)
    blocks, _ = lay_heap5(mem, heap5_image, [[(64, U), (None, F)], [(None, F)]], markers_listed=(True,))
    walk = FreeRtosHeap5Walker(heap5_image).walk(mem)
    assert walk.ok, walk.errors
    assert _nodes(walk) == blocks


def test_heap5_before_vportdefineheapregions_is_empty_not_an_error(heap5_image):
    walk = FreeRtosHeap5Walker(heap5_image).walk(Memory(heap5_image))
    assert walk.ok and walk.nodes == []


@pytest.mark.parametrize("raw, detail", [(0x10000 | ALLOC, "runs past"), (0x44 | ALLOC, "not a multiple of 8"), (4, "below the 8-byte header")])
def test_heap5_bad_block_size_stops_the_walk_there(heap5_image, raw, detail):
    mem = Memory(heap5_image)
    blocks, _ = lay_heap5(mem, heap5_image, [[(64, U), (None, F)], [(128, U), (64, U), (None, F)]])
    victim = blocks[3][0]
    mem.put(victim + 4, raw)
    walk = FreeRtosHeap5Walker(heap5_image).walk(mem)
    assert [e.kind for e in walk.errors] == ["size"] and walk.errors[0].address == victim
    assert detail in walk.errors[0].detail
    assert _nodes(walk) == blocks[:3]  # what was read before the broken header is kept
    with pytest.raises(HeapCorruptionError, match=f"broken node head {victim:#010x}") as err:
        walk.to_snapshot()
    assert "overwrote" in err.value.hint


def test_heap5_free_list_loop_and_mismatch(heap5_image):
    mem = Memory(heap5_image)
    blocks, _ = lay_heap5(mem, heap5_image, [[(64, F), (64, U), (None, F)], [(None, F)]])
    first_free = blocks[0][0]
    mem.put(first_free, first_free)  # points at itself
    walk = FreeRtosHeap5Walker(heap5_image).walk(mem)
    assert [e.kind for e in walk.errors] == ["free-link"] and "loops back" in walk.errors[0].detail

    mem = Memory(heap5_image)
    blocks, _ = lay_heap5(mem, heap5_image, [[(64, F), (64, U), (None, F)], [(None, F)]])
    mem.put(heap5_image.symbol("xStart").address, blocks[2][0])  # the list skips the first free block
    walk = FreeRtosHeap5Walker(heap5_image).walk(mem)
    assert [e.kind for e in walk.errors] == ["free-link"] and walk.errors[0].address == blocks[0][0]
    assert "does not match the free blocks" in walk.errors[0].detail

    mem = Memory(heap5_image)
    blocks, _ = lay_heap5(mem, heap5_image, [[(64, F), (64, U), (None, F)], [(None, F)]])
    mem.put(blocks[0][0], 0)  # the list ends in NULL before pxEnd
    walk = FreeRtosHeap5Walker(heap5_image).walk(mem)
    assert [e.kind for e in walk.errors] == ["free-link"] and "ends in NULL" in walk.errors[0].detail


def test_heap5_allocated_block_with_a_next_link(heap5_image):
    mem = Memory(heap5_image)
    blocks, _ = lay_heap5(mem, heap5_image, [[(64, U), (None, F)], [(None, F)]])
    mem.put(blocks[0][0], 0x20001000)
    walk = FreeRtosHeap5Walker(heap5_image).walk(mem)
    assert [e.kind for e in walk.errors] == ["free-link"] and "sets NULL" in walk.errors[0].detail


def test_heap5_overwritten_end_marker_and_pxend(heap5_image):
    mem = Memory(heap5_image)
    blocks, markers = lay_heap5(mem, heap5_image, [[(64, U), (None, U)], [(None, F)]])
    mem.put(markers[0] + 4, 0x40)
    walk = FreeRtosHeap5Walker(heap5_image).walk(mem)
    assert [e.kind for e in walk.errors] == ["end-node"] and walk.errors[0].address == markers[0]

    mem = Memory(heap5_image)
    lay_heap5(mem, heap5_image, [[(64, U), (None, U)], [(None, F)]])
    mem.put(heap5_image.symbol("pxEnd").address, markers[0])
    walk = FreeRtosHeap5Walker(heap5_image).walk(mem)
    assert [e.kind for e in walk.errors] == ["pool-header"] and "not the end marker of the last region of the regions of xHeapRegions" in walk.errors[0].detail


def test_heap5_regions_given_by_hand_must_fit(heap5_image):
    mem = Memory(heap5_image)
    blocks, _ = lay_heap5(mem, heap5_image, [[(None, U)], [(None, F)]])
    low, high = heap5_image.symbol("ucHeapLow"), heap5_image.symbol("ucHeapHigh")
    walk = FreeRtosHeap5Walker(heap5_image, regions=[(low.address, low.size), (high.address, high.size)]).walk(mem)
    assert walk.ok and _nodes(walk) == blocks
    wrong = FreeRtosHeap5Walker(heap5_image, regions=[(low.address, low.size), (high.address, high.size - 64)]).walk(mem)
    assert [e.kind for e in wrong.errors] == ["pool-header"] and "regions given" in wrong.errors[0].detail
    backwards = FreeRtosHeap5Walker(heap5_image, regions=[(high.address, high.size), (low.address, low.size)]).walk(mem)
    assert [e.kind for e in backwards.errors] == ["pool-header"] and "previous region" in backwards.errors[0].detail


def test_heap5_without_a_table_in_static_storage(foreign_elf):
    image = Image.open(foreign_elf("rtos_style", heap="heap5", defines=("HEAP5_LOCAL_TABLE",)))
    heap = TargetHeap(image)
    assert heap.kind == "freertos-heap5"
    with pytest.raises(HeapNotWalkableError, match="no HeapRegion_t array in static storage") as err:
        heap.walk(Memory(image))
    assert "xHeapRegions" in err.value.hint and "capture=hooks" in err.value.hint
    with pytest.raises(HeapNotWalkableError):
        heap.totals(Memory(image))


# -- heap_2 ------------------------------------------------------------------------------------------------------
def test_heap2_walks_by_the_allocated_bit_and_the_size_ordered_list(heap2_image):
    mem = Memory(heap2_image)
    blocks = lay_heap2(mem, heap2_image, [(32, U), (48, F), (520, U), (32, F), (72, U), (None, F)])
    walk = FreeRtosHeap2Walker(heap2_image).walk(mem)
    assert walk.ok, walk.errors
    assert _nodes(walk) == blocks
    assert TargetHeap(heap2_image).kind == "freertos-heap2"


def test_heap2_before_10_5_has_no_allocated_bit(heap2_image):
    """Older heap_2 never marks a block allocated (nor clears its link): allocated is "not on the free list"."""
    mem = Memory(heap2_image)
    blocks = lay_heap2(mem, heap2_image, [(32, U), (48, F), (None, U)], allocated_bit=False)
    walk = FreeRtosHeap2Walker(heap2_image).walk(mem)
    assert walk.ok, walk.errors
    assert _nodes(walk) == blocks


def test_heap2_before_the_first_allocation_is_empty(heap2_image):
    walk = FreeRtosHeap2Walker(heap2_image).walk(Memory(heap2_image))
    assert walk.ok and walk.nodes == []


def test_heap2_broken_states(heap2_image):
    def walk_of(change):
        mem = Memory(heap2_image)
        blocks = lay_heap2(mem, heap2_image, [(32, U), (48, F), (520, U), (32, F), (None, F)])
        change(mem, blocks)
        return FreeRtosHeap2Walker(heap2_image).walk(mem), blocks

    start, end = heap2_image.symbol("xStart").address, heap2_image.symbol("xEnd").address
    # a bad size
    walk, blocks = walk_of(lambda m, b: m.put(b[2][0] + 4, 0x9000 | ALLOC))
    assert [e.kind for e in walk.errors] == ["size"] and walk.errors[0].address == blocks[2][0] and len(walk.nodes) == 2
    # the list out of size order: the 48-byte block first
    walk, blocks = walk_of(lambda m, b: (m.put(start, b[1][0]), m.put(b[1][0], b[3][0]), m.put(b[3][0], b[4][0])))
    assert [e.kind for e in walk.errors] == ["free-link"] and "not ordered by size" in walk.errors[0].detail
    # a free block neither marked allocated nor listed (the 32-byte free block dropped from the list)
    walk, blocks = walk_of(lambda m, b: m.put(start, b[1][0]))
    assert [e.kind for e in walk.errors] == ["free-link"] and walk.errors[0].address == blocks[3][0]
    assert "neither allocated" in walk.errors[0].detail
    # a listed block marked allocated
    walk, blocks = walk_of(lambda m, b: m.put(b[3][0] + 4, 32 | ALLOC))
    assert [e.kind for e in walk.errors] == ["free-link"] and "marked allocated" in walk.errors[0].detail
    # a list entry that is no block
    walk, blocks = walk_of(lambda m, b: (m.put(b[3][0], b[2][0] + 64), m.put(b[2][0] + 64, b[4][0], 40)))  # inside the 520-byte block
    assert [e.kind for e in walk.errors] == ["free-link"] and "not a block of the heap" in walk.errors[0].detail
    # the list's end overwritten
    walk, blocks = walk_of(lambda m, b: m.put(end + 4, 0x7FFFFFF0))
    assert [e.kind for e in walk.errors] == ["pool-header"] and "xEnd" in walk.errors[0].detail
    # a loop
    walk, blocks = walk_of(lambda m, b: m.put(b[1][0], b[3][0]) or m.put(b[4][0], b[3][0]))
    assert [e.kind for e in walk.errors] == ["free-link"] and f"loops back to {blocks[3][0]:#010x}" in walk.errors[0].detail
    with pytest.raises(HeapCorruptionError):
        walk.to_snapshot()


# -- heap_1 ------------------------------------------------------------------------------------------------------
def test_heap1_gives_used_bytes_and_refuses_a_walk(foreign_elf):
    image = Image.open(foreign_elf("rtos_style", heap="heap1"))
    mem = Memory(image)
    heap = TargetHeap(image)
    assert heap.kind == "freertos-heap1"
    uc = image.symbol("ucHeap")
    mem.put(image.symbol("xNextFreeByte").address, 1232)
    assert heap.totals(mem) == {"used": 1232, "free": uc.size - 8 - 1232}
    with pytest.raises(HeapNotWalkableError, match="heap_1 keeps no block headers") as err:
        heap.walk(mem)
    assert "--profile freertos" in err.value.hint
    with pytest.raises(HeapNotWalkableError):
        heap.walk_all(mem)
    mem.put(image.symbol("xNextFreeByte").address, uc.size)
    with pytest.raises(HeapCorruptionError, match="xNextFreeByte"):
        FreeRtosHeap1(image).totals(mem)


def test_a_long_free_list_is_followed_without_a_read_per_block(heap5_image, heap2_image):
    """Each region is read once; the free list is followed in what was read (one gdbstub round trip per free
    block would make a fragmented heap slow to walk)."""
    mem = Memory(heap5_image)
    blocks, _ = lay_heap5(mem, heap5_image, [[(32, U), (32, F)] * 20 + [(None, U)], [(64, F), (64, U)] * 30 + [(None, F)]])
    walk = FreeRtosHeap5Walker(heap5_image).walk(mem)
    assert walk.ok and _nodes(walk) == blocks and len(walk.free_nodes) == 51
    assert len(mem.reads) == 5  # pxEnd, the table, the two regions (markers included), xStart

    mem = Memory(heap2_image)
    blocks = lay_heap2(mem, heap2_image, [(32, U), (48, F)] * 40 + [(None, F)])
    walk = FreeRtosHeap2Walker(heap2_image).walk(mem)
    assert walk.ok and _nodes(walk) == blocks
    assert len(mem.reads) == 3  # xStart, xEnd, the heap
