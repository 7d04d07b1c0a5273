"""FreeRTOS heap_4 walked from its own state (ucHeap, xStart, pxEnd, BlockLink_t): the FreeRTOS-style scenario on a
heap_4-style heap, its walk checked block for block against the hooks ledger and its leak truth from the walk."""

from __future__ import annotations

import pytest

from foreign_run import run_to_park
from truth import TRUTH, classified, observed

from memhil.elf import Image
from memhil.heap.freertos import FreeRtosHeapWalker
from memhil.session import Session, SessionOptions


@pytest.fixture(scope="module")
def heap4_run(foreign_elf, tmp_path_factory):
    elf = foreign_elf("rtos_style", heap="heap4")
    session = Session(SessionOptions(capture="hooks", profile="freertos"), run_dir=tmp_path_factory.mktemp("heap4"))
    with session:
        run_to_park(session, elf)
        walk = session.walk_heap()
        walked = session.take_snapshot("walked", source="walk")
        report = session.leaks("start", "end")
        scan = session._memory["walked"]
        ledger = session.snapshot("end")
    return elf, walk, walked, report, scan, ledger


def test_walk_matches_the_hooks_ledger_block_for_block(heap4_run):
    elf, walk, walked, _, _, ledger = heap4_run
    assert walk.ok, walk.errors
    assert sorted(walked.blocks) == sorted(ledger.blocks)  # the same user pointers
    for ptr, b in ledger.blocks.items():
        w = walked.blocks[ptr]
        assert b.size <= w.size < b.size + 8  # the request rounded up to portBYTE_ALIGNMENT
        assert w.node_size == (b.size + 8 + 7) // 8 * 8  # header included
    assert walk.free_nodes  # the freed 16-byte block went back on the list (coalesced)
    image = Image.open(elf)
    assert walk.pool == image.symbol("ucHeap").address and walk.head_size == 8


def test_truth_from_the_walk_alone(heap4_run):
    """capture=snapshot's view: blocks from the walk (no history), reachability as memcheck takes it."""
    _, _, walked, report, scan, ledger = heap4_run
    assert classified(scan.classify(walked.blocks.values()), ledger) == TRUTH["rtos_style"]
    assert observed(report) == TRUTH["rtos_style"]  # and from the ledger, as on newlib


def test_a_firmware_without_a_known_heap_is_a_clear_error(tmp_path):
    import subprocess

    from memhil.errors import ConfigError
    from memhil.heap.select import TargetHeap

    src = tmp_path / "bare.c"
    src.write_text("static unsigned char pool[256]; void *get(unsigned n) { return pool + n; }\nvoid reset(void) { for (;;) {} }\n")
    elf = tmp_path / "bare.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-g", "-nostdlib", "-Wl,-e,reset", "-Wl,-Ttext=0x08000000",
                    "-Wl,-Tbss=0x20000000", str(src), "-o", str(elf)], check=True, capture_output=True)
    with pytest.raises(ConfigError, match="cannot walk this firmware's heap") as err:
        TargetHeap(Image.open(elf))
    assert "capture=hooks" in err.value.hint


def test_corrupted_block_size_is_reported_not_walked_past(heap4_run):
    elf, walk, _, _, _, _ = heap4_run
    image = Image.open(elf)
    heap, xstart, pxend = (image.symbol(n) for n in ("ucHeap", "xStart", "pxEnd"))
    session = Session(SessionOptions(capture="none"), run_dir=elf.parent / "corrupt")
    with session:
        run_to_park(session, elf)  # its "start" snapshot walks the heap before heap_4 set it up: empty, not an error
        assert session.snapshot("start").blocks == {}
        saved = {s.address: bytearray(session.engine.read_memory(s.address, s.size)) for s in (heap, xstart, pxend)}
    victim = walk.used_nodes[2]
    off = victim.address - heap.address + 4
    saved[heap.address][off : off + 4] = (0x80000000 | 0x10000).to_bytes(4, "little")  # runs past pxEnd

    def read(addr, size):
        for base, data in saved.items():
            if base <= addr < base + len(data):
                return bytes(data[addr - base : addr - base + size])
        raise AssertionError(f"the walker read outside its heap state: {addr:#x}")

    broken = FreeRtosHeapWalker(image).walk(read)
    assert [e.kind for e in broken.errors] == ["size"] and broken.errors[0].address == victim.address
    assert [n.address for n in broken.nodes] == [n.address for n in walk.nodes[: walk.nodes.index(victim)]]


def test_heap_check_compares_the_walk_with_the_ledger(foreign_elf, tmp_path):
    session = Session(SessionOptions(capture="hooks", profile="freertos"), run_dir=tmp_path)
    with session:
        run_to_park(session, foreign_elf("rtos_style", heap="heap4"))
        check = session.check_heap()
        assert check["ok"] and check["ledger"]["ok"], check
        forgotten = next(iter(session.ledger.live))
        del session.ledger.live[forgotten]  # as if the capture had missed this allocation
        check = session.check_heap()
    assert check["ledger"]["only_walk"] == [f"{forgotten:#010x}"] and check["ledger"]["only_ledger"] == []


def test_an_elf_without_debug_info_is_a_clear_error(foreign_elf, tmp_path):
    """heap_4's BlockLink_t and FreeRTOS's TCB_t come from DWARF: without it memhil says so and what to do."""
    import subprocess

    from memhil.analysis.roots import collect_roots
    from memhil.errors import DebugInfoMissingError, ElfError
    from memhil.heap.select import TargetHeap

    stripped = tmp_path / "no_debug.elf"
    subprocess.run(["arm-none-eabi-objcopy", "--strip-debug", str(foreign_elf("rtos_style", heap="heap4")), str(stripped)], check=True)
    image = Image.open(stripped)
    with pytest.raises(DebugInfoMissingError) as err:
        TargetHeap(image)
    assert "-g" in err.value.hint
    with pytest.raises(ElfError, match="TCB_t") as err:
        collect_roots(image, lambda a, n: bytes(n), {"sp": 0x20001000}, [])
    assert "debug info" in err.value.hint
