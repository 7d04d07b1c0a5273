import struct

from fakesym import blk
from memhil.analysis.reachability import LeakKind, Region, classify

HEAP = 0x20002000


def image():
    """.data points at A; A points at B (start) and into C? no: C only from lost D; E only by interior pointer; F from nowhere."""
    heap = bytearray(0x200)
    blocks = {name: blk(HEAP + off, 32) for name, off in zip("ABCDEF", range(0, 0x180, 0x40))}

    def put(addr, value):
        struct.pack_into("<I", heap, addr - HEAP, value)

    put(blocks["A"].ptr + 4, blocks["B"].ptr)  # A -> B: still reachable through A
    put(blocks["D"].ptr + 8, blocks["C"].ptr)  # D (lost) -> C: indirectly lost
    put(blocks["F"].ptr, 0x12345678)
    data = bytearray(64)
    struct.pack_into("<I", data, 8, blocks["A"].ptr)
    struct.pack_into("<I", data, 12, blocks["E"].ptr + 12)  # interior pointer only
    struct.pack_into("<I", data, 21, blocks["F"].ptr)  # unaligned word: not a pointer
    return blocks, [Region(".data", 0x20000000, bytes(data))], [Region("heap", HEAP, bytes(heap))]


def test_memcheck_classes():
    blocks, roots, heap = image()
    r = classify(blocks.values(), roots, heap)
    kinds = {name: r.kind(b.ptr) for name, b in blocks.items()}
    assert kinds == {
        "A": LeakKind.REACHABLE,
        "B": LeakKind.REACHABLE,
        "C": LeakKind.INDIRECT,
        "D": LeakKind.DEFINITE,
        "E": LeakKind.POSSIBLE,
        "F": LeakKind.DEFINITE,
    }
    assert r.leader[blocks["C"].ptr] == blocks["D"].ptr
    assert r.indirect_bytes[blocks["D"].ptr] == 32 and r.indirect_bytes[blocks["F"].ptr] == 0


def test_heap_inside_roots_is_not_a_root_and_cycles_terminate():
    blocks, roots, heap = image()
    # pass the heap as a root too: words inside live blocks must not count as roots
    r = classify(blocks.values(), roots + heap, heap)
    assert r.kind(blocks["D"].ptr) is LeakKind.DEFINITE
    # a lost cycle D <-> C: one leader, one indirect
    raw = bytearray(heap[0].data)
    struct.pack_into("<I", raw, blocks["C"].ptr - HEAP, blocks["D"].ptr)
    r = classify(blocks.values(), roots, [Region("heap", HEAP, bytes(raw))])
    assert sorted([r.kind(blocks["C"].ptr), r.kind(blocks["D"].ptr)]) == sorted([LeakKind.DEFINITE, LeakKind.INDIRECT])


def test_later_leader_absorbs_earlier_clique():
    blocks, roots, heap = image()
    raw = bytearray(heap[0].data)
    # F (after D in address order) points at D: D's clique joins F's, F is the only definite one
    struct.pack_into("<I", raw, blocks["F"].ptr - HEAP, blocks["D"].ptr)
    r = classify(blocks.values(), roots, [Region("heap", HEAP, bytes(raw))])
    assert r.kind(blocks["D"].ptr) is LeakKind.INDIRECT and r.kind(blocks["C"].ptr) is LeakKind.INDIRECT
    assert r.kind(blocks["F"].ptr) is LeakKind.DEFINITE and r.indirect_bytes[blocks["F"].ptr] == 64


def test_no_blocks_and_unreadable_contents():
    assert classify([], [Region("d", 0, b"\0" * 8)]).kinds == {}
    b = blk(0x30000000, 8)
    assert classify([b], []).kind(b.ptr) is LeakKind.DEFINITE


def test_a_block_with_a_start_pointer_is_not_put_down_to_the_heuristic():
    """memcheck: the heuristic is asked only for a block not yet reachable, and a start pointer clears it."""
    blocks, _, heap = image()
    asked = []

    def accept_interior(block, value, read_word):
        asked.append(block.ptr)
        return "test-heuristic"

    e = blocks["E"]
    for order in ((e.ptr + 12, e.ptr), (e.ptr, e.ptr + 12)):  # interior pointer first, then start pointer; and reversed
        asked.clear()
        data = struct.pack("<2I", *order)
        r = classify([e], [Region(".data", 0x20000000, data)], heap, heuristic=accept_interior)
        assert r.kind(e.ptr) is LeakKind.REACHABLE
        assert r.heuristic == {}
        assert asked == ([e.ptr] if order[0] != e.ptr else [])
    r = classify([e], [Region(".data", 0x20000000, struct.pack("<I", e.ptr + 12))], heap, heuristic=accept_interior)
    assert r.kind(e.ptr) is LeakKind.REACHABLE and r.heuristic == {e.ptr: "test-heuristic"}


def test_heuristic_reads_see_block_contents_past_a_root_nested_in_their_span():
    """Coalesced block contents may span a small root region (a variable between two heap_5 regions): a heuristic
    reading a word of a block past that root still sees the block's bytes, not nothing."""
    blocks, _, heap = image()
    e = blocks["E"]
    seen = []

    def read_twelve_in(block, value, read_word):
        seen.append(read_word(value))
        return "test-heuristic"

    inner = Region(".bss", HEAP + 0x8, b"\0" * 8)  # a root inside the heap span, before E
    contents = bytearray(heap[0].data)
    struct.pack_into("<I", contents, e.ptr + 12 - HEAP, 0xA5A5A5A5)
    r = classify([e], [Region(".data", 0x20000000, struct.pack("<I", e.ptr + 12)), inner], [Region("heap", HEAP, bytes(contents))],
                 heuristic=read_twelve_in)
    assert seen == [0xA5A5A5A5]
    assert r.kind(e.ptr) is LeakKind.REACHABLE and r.heuristic == {e.ptr: "test-heuristic"}
