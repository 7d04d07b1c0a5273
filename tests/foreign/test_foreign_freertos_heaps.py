"""FreeRTOS heap_2 and heap_5 walked from their own state, and heap_1 said to be unwalkable, on the FreeRTOS-style
scenario (tasks, a queue and a timer whose blocks are referenced only from kernel lists and other heap blocks) run
for real in QEMU with hooks on pvPortMalloc/vPortFree: each walk checked block for block against the hooks
ledger, and the leak verdicts from the walk alone checked against the scenario's truth."""

from __future__ import annotations

import pytest

from foreign_run import run_to_park
from truth import TRUTH, classified, observed

from memhil.elf import Image
from memhil.heap.freertos import HeapNotWalkableError
from memhil.heap.select import TargetHeap
from memhil.session import Session, SessionOptions

#: node size of a request as each scheme rounds it (before it decides not to split): heap_2 adds the header and a whole alignment unit less the
#: request's low bits (8 more when already aligned), heap_4/5 add the header and round up to 8
NODE_SIZE = {"heap2": lambda n: n + 8 + 8 - (n & 7), "heap5": lambda n: (n + 8 + 7) // 8 * 8}


def _run(elf, run_dir):
    session = Session(SessionOptions(capture="hooks", profile="freertos"), run_dir=run_dir)
    with session:
        run_to_park(session, elf)
        walks = session.walk_pools()
        walk = session.walk_heap()
        walked = session.take_snapshot("walked", source="walk")
        report = session.leaks("start", "end")
        check = session.check_heap()
        out = {"walk": walk, "walks": walks, "walked": walked, "report": report, "scan": session._memory["walked"],
               "ledger": session.snapshot("end"), "check": check, "kind": session._target_heap().kind}
    return out


@pytest.fixture(scope="module")
def heap_runs(foreign_elf, tmp_path_factory):
    """``heap_runs(heap) -> (elf, results)``: the scenario on ``heap`` run once per module."""
    done: dict = {}

    def get(heap: str):
        if heap not in done:
            elf = foreign_elf("rtos_style", heap=heap)
            done[heap] = (elf, _run(elf, tmp_path_factory.mktemp(heap)))
        return done[heap]

    return get


@pytest.fixture(params=["heap2", "heap5"])
def heap_run(request, heap_runs):
    return (request.param, *heap_runs(request.param))


def test_the_scheme_is_found_from_the_elf(heap_run):
    heap, _, run = heap_run
    assert run["kind"] == f"freertos-{heap}"


def test_walk_matches_the_hooks_ledger_block_for_block(heap_run):
    heap, _, run = heap_run
    walk, walked, ledger = run["walk"], run["walked"], run["ledger"]
    assert walk.ok, walk.errors
    assert sorted(walked.blocks) == sorted(ledger.blocks)  # the same user pointers
    for ptr, b in ledger.blocks.items():
        w = walked.blocks[ptr]
        # header included; a block is not split when the rest would be no larger than two headers (heapMINIMUM_BLOCK_SIZE)
        assert NODE_SIZE[heap](b.size) <= w.node_size <= NODE_SIZE[heap](b.size) + 16, (hex(ptr), b.size, w.node_size)
        assert w.size == w.node_size - 8  # the user part: the node less its 8-byte header
    assert walk.free_nodes  # the rest of the heap, and (heap_2) the freed 16-byte block's
    check = run["check"]
    assert check["ok"] and check["ledger"]["ok"], check


def test_truth_from_the_walk_alone(heap_run):
    """capture=snapshot's view: blocks from the walk (no history), reachability as memcheck takes it."""
    _, _, run = heap_run
    assert classified(run["scan"].classify(run["walked"].blocks.values()), run["ledger"]) == TRUTH["rtos_style"]
    assert observed(run["report"]) == TRUTH["rtos_style"]  # and from the ledger


def test_heap2_tiles_ucheap_and_keeps_its_free_list_by_size(heap_runs):
    elf, run = heap_runs("heap2")
    image = Image.open(elf)
    uc = image.symbol("ucHeap")
    walk = run["walk"]
    first = (uc.address + 7) & ~7
    assert walk.nodes[0].address == first
    assert walk.end_node == first + uc.size - 8  # configADJUSTED_HEAP_SIZE from the aligned start
    assert sum(n.size for n in walk.nodes) == uc.size - 8
    # no coalescing: the freed 16-byte request's 32-byte block was reused by the next request that fits (c_local, 20)
    assert any(n.size == 32 and n.used for n in walk.nodes)


def test_heap5_walks_both_regions_from_the_heapregion_table(heap_runs):
    elf, run = heap_runs("heap5")
    image = Image.open(elf)
    low, high = image.symbol("ucHeapLow"), image.symbol("ucHeapHigh")
    walks = run["walks"]
    assert [w.pool for w in walks] == [low.address, high.address]  # both 8-aligned: the regions start there
    assert [w.pool + w.pool_size for w in walks] == [low.end, high.end]  # each ends with its 8-byte end marker
    assert all(w.used_nodes for w in walks)  # the scenario's blocks spill from the small region into the large one
    assert run["walk"].end_node == high.end - 8  # pxEnd, the last region's marker
    assert len(run["walk"].nodes) == sum(len(w.nodes) for w in walks)


def test_heap5_with_its_table_a_static_local_walks(foreign_elf, tmp_path):
    """``static const HeapRegion_t xHeapRegions[]`` inside the set-up function: DWARF keeps it under the function,
    the symbol table calls it ``xHeapRegions.N``; the walk finds it and equals the ledger."""
    elf = foreign_elf("rtos_style", heap="heap5", defines=("HEAP5_STATIC_LOCAL_TABLE",))
    assert Image.open(elf).find_symbol("xHeapRegions") is None  # only the numbered local symbol
    run = _run(elf, tmp_path)
    assert run["walk"].ok, run["walk"].errors
    assert len(run["walks"]) == 2 and sorted(run["walked"].blocks) == sorted(run["ledger"].blocks)


def test_heap5_with_its_table_on_the_stack_is_a_clear_error(foreign_elf, tmp_path):
    """The region table as a local of the set-up function: memhil says it cannot know the regions (never an empty
    heap), names the ways out, and walks exactly once the regions are given."""
    elf = foreign_elf("rtos_style", heap="heap5", defines=("HEAP5_LOCAL_TABLE",))
    image = Image.open(elf)
    session = Session(SessionOptions(capture="hooks", profile="freertos"), run_dir=tmp_path)
    with session:
        run_to_park(session, elf)
        with pytest.raises(HeapNotWalkableError, match="regions are not known") as err:
            session.walk_heap()
        with pytest.raises(HeapNotWalkableError):
            session.take_snapshot("walked", source="walk")
        check = session.check_heap()
        regions = [(image.symbol(n).address, image.symbol(n).size) for n in ("ucHeapLow", "ucHeapHigh")]
        walk = TargetHeap(image, heap5_regions=regions).walk(session.engine.read_memory)
        ledger = session.snapshot("end")
    assert "regions=" in err.value.hint and "capture=hooks" in err.value.hint and "--profile freertos" in err.value.hint
    assert check["checked"] is False and "regions are not known" in check["reason"]
    assert walk.ok, walk.errors
    assert sorted(walk.to_snapshot().blocks) == sorted(ledger.blocks)


def test_heap1_has_no_blocks_to_walk_but_says_its_used_bytes(foreign_elf, tmp_path):
    elf = foreign_elf("rtos_style", heap="heap1")
    session = Session(SessionOptions(capture="hooks", profile="freertos"), run_dir=tmp_path)
    with session:
        run_to_park(session, elf)
        assert session._target_heap().kind == "freertos-heap1"
        with pytest.raises(HeapNotWalkableError, match="heap_1 keeps no block headers") as err:
            session.walk_heap()
        with pytest.raises(HeapNotWalkableError):
            session.take_snapshot("walked", source="walk")
        check = session.check_heap()
        totals = session._target_heap().totals(session.engine.read_memory)
        report = session.leaks("start", "end")
        ledger = session.snapshot("end")
        asserted = session.read_symbol_u32("g_assert_line")
    assert "capture=hooks" in err.value.hint and "--profile freertos" in err.value.hint
    assert check["checked"] is False and "heap_1" in check["reason"]
    # every byte handed out stays used: the live blocks rounded to 8, and the 16 bytes "freed" (heap_1 cannot free)
    assert totals["used"] == sum((b.size + 7) // 8 * 8 for b in ledger.blocks.values()) + 16
    assert asserted  # the firmware's own configASSERT saw that free
    assert observed(report) == TRUTH["rtos_style"]  # the verdicts come from the hooks ledger
