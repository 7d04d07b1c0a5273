"""The QEMU engine on the project firmware (firmware/, built by `make -C firmware`):
allocator breakpoints and memory reads cross-checked against the firmware's own shell."""

from __future__ import annotations

import re
import struct

import pytest

from memhil.engines.firmware import FirmwareInfo
from memhil.errors import MemhilError

pytestmark = pytest.mark.emulator


def test_breakpoint_on_los_memmalloc_sees_pool_size_module(qemu_engine, firmware, platform):
    elf = firmware("module_stats")
    info = FirmwareInfo.load(elf)
    engine = qemu_engine()
    engine.start(platform, elf)  # halted at main, before the app allocates
    calls = []
    engine.add_breakpoint(info.symbols["LOS_MemMalloc"], lambda ctx: calls.append((ctx.regs["r0"], ctx.regs["r1"], ctx.regs["r2"])))
    engine.wait_for_line("module 0 mem used size 0", timeout=2)
    pool = info.symbols["g_sysMemPool"]
    # the app's calls in order: test() modules 0 and 1 (0x10 bytes), three of 100 bytes for module 2, 40 for 7
    assert calls[:6] == [(pool, 0x10, 0), (pool, 0x10, 1), (pool, 100, 2), (pool, 100, 2), (pool, 100, 2), (pool, 40, 7)]


def test_pool_memory_matches_memused(qemu_engine, firmware, platform):
    elf = firmware("module_stats")
    engine = qemu_engine()
    engine.start(platform, elf)
    engine.wait_for_line("module 0 mem used size 0", timeout=2)
    engine.run_for(0.05)
    engine.console_write("memused\r")
    engine.wait_for_line(r"node\s+LR\[0\]", timeout=1)
    engine.run_for(0.2)  # the listing ends with the prompt, which has no newline
    listing = engine.console.text().rsplit("LR[0]", 1)[1]
    rows = [(int(m[1], 16), [int(v, 16) for v in m[2].split()]) for m in re.finditer(r"(0x[0-9a-f]+):((?:[ \t]+0x[0-9a-f]+)+)", listing)]
    assert len(rows) == 6
    for node, lrs in rows:
        header = engine.read_memory(node, 32)
        words = list(struct.unpack("<8I", header))
        start = words.index(lrs[0])  # the node header holds the recorded LRs, as memused printed them
        assert words[start : start + len(lrs)] == lrs


def test_time_barrier_by_write_watchpoint_is_exact(started_engine):
    """The project firmware resets the barrier before calling memhil_time_barrier: the engine stops there
    with a write watchpoint (no translation-cache flush), skips the firmware's own store and stays exact,
    also when a user breakpoint is hit during the run."""
    engine, info = started_engine("leak_demo")
    hits = []
    engine.add_breakpoint(info.symbols["LOS_MemMalloc"], lambda ctx: hits.append(ctx.pc))
    start = engine.virtual_time()
    for step_ms in (1, 7, 250, 1000, 3):
        engine.run_for(step_ms / 1000)
    assert engine._watch_ok is True  # the first run saw the firmware's reset through the watchpoint
    assert round((engine.virtual_time() - start) * 1000) == 1261
    assert hits  # leak_demo allocates every 10 ms
    barrier = struct.unpack("<Q", engine.read_memory(info.symbols["g_memhil_barrier_ms"], 8))[0]
    assert barrier == (1 << 64) - 1  # no deadline left behind
    assert engine.read_registers()["pc"] != info.symbols["memhil_time_barrier"] & ~1


def test_write_watchpoint_sees_each_store_once_and_the_store_still_happens(started_engine):
    """A write watchpoint on g_memhil_wakeups (incremented at every wake-up): QEMU stops before the store,
    the callback sees the old value, and the engine makes the store on the host when it resumes."""
    engine, info = started_engine("soak")
    address = info.symbols["g_memhil_wakeups"]

    def read() -> int:
        return struct.unpack("<I", engine.read_memory(address, 4))[0]

    seen = []
    wp = engine.add_watchpoint(address, 4, lambda ctx: seen.append(struct.unpack("<I", ctx.read_memory(address, 4))[0]))
    before = read()
    engine.run_for(2.0)
    after = read()
    assert after - before >= 8  # NET wakes the core every 250 ms
    assert seen == list(range(before, before + len(seen)))  # each store seen once, before it happens
    assert len(seen) in (after - before, after - before + 1)  # the last may be pending at the barrier stop
    engine.remove_watchpoint(wp)
    with pytest.raises(MemhilError):
        engine.remove_watchpoint(wp)
    with pytest.raises(MemhilError):
        engine.add_watchpoint(address + 1, 4, lambda ctx: None)  # unaligned
    engine.run_for(1.0)
    assert read() - after >= 4 and len(seen) <= after - before + 1  # no callbacks once removed
