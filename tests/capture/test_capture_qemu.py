"""Hooks and trace capture on the real firmware in QEMU, checked against the firmware's own statistics."""

from __future__ import annotations

import re

import pytest

from memhil.capture import create_capture
from memhil.elf import Image
from memhil.engines.qemu import QemuEngine
from memhil.events import EventKind
from memhil.heap.ledger import Ledger

pytestmark = pytest.mark.emulator

_USED = re.compile(r"^module (\d+) mem used size (\d+)\r?$", re.M)


@pytest.fixture
def qemu(platform, tmp_path):
    engines: list[QemuEngine] = []

    def start(elf):
        engine = QemuEngine()
        engines.append(engine)
        engine.start(platform, elf, workdir=tmp_path)
        return engine

    yield start
    for engine in engines:
        engine.stop()


def _module_table(engine, image) -> list[int]:
    sym = image.symbol("g_moduleMemUsedSize")
    raw = engine.read_memory(sym.address, sym.size)
    return [int.from_bytes(raw[i : i + 4], "little") for i in range(0, len(raw), 4)]


@pytest.mark.parametrize("mode", ["hooks", "breakpoints"])
def test_module_stats_hooks_match_the_firmware(firmware, qemu, mode):
    elf = firmware("module_stats", "debug")
    image = Image.open(elf)
    engine = qemu(elf)
    ledger = Ledger()
    events: list = []
    cap = create_capture(mode, engine, image, sinks=[ledger.apply, events.append])
    cap.attach()
    # each time the firmware asks LOS_MemMusedGet(m) (and then prints it), note what the ledger says (patched
    # hooks hold the calls in their ring until drained: the stop takes them in first)
    seen: list[tuple[int, int]] = []

    def musedget(ctx) -> None:
        if mode == "hooks":
            cap.drain(ctx)
        seen.append((ctx.regs["r0"], ledger.module_used(ctx.regs["r0"], tracked_only=True)))

    bp = engine.add_breakpoint(image.symbol("LOS_MemMusedGet").address, musedget)
    # run_for, not wait_for_line: the engine's console wait can end on a hook's stop without calling it
    engine.run_for(0.5)
    engine.remove_breakpoint(bp)
    cap.detach()
    # the firmware wrote its lines before the run ended: the engine took them in at the halt
    printed = [(int(m), int(x)) for m, x in _USED.findall(engine.console.text())]
    table = _module_table(engine, image)

    assert len(printed) == 6 and seen == printed
    assert {m: ledger.module_used(m, tracked_only=True) for m in range(len(table))} == dict(enumerate(table))
    assert table[2] == 3 * ((100 + 28 + 3) & ~3)
    kinds = [(e.kind, e.module) for e in events]
    expected = [(EventKind.ALLOC, 0), (EventKind.ALLOC, 1), (EventKind.FREE, 0), (EventKind.FREE, 1)] + [(EventKind.ALLOC, 2)] * 3 + [
        (EventKind.ALIGNED_ALLOC, 5), (EventKind.ALLOC, 7), (EventKind.REALLOC, 7), (EventKind.ALLOC, 0)]
    start = kinds.index((EventKind.ALLOC, 0))
    assert kinds[start : start + len(expected)] == expected
    assert ledger.anomalies == []
    plain = events[start + len(expected) - 1]
    assert plain.flags and ledger.module_used(0) == plain.node_size  # counted by the ledger, not by the firmware
    # every event's stack starts in the code that called the allocator, with the firmware's LRs alongside
    for ev in events:
        assert ev.stack and not image.symbol_at(ev.stack[0]).name.startswith("LOS_Mem")
    allocs = [ev for ev in events if ev.kind is not EventKind.FREE]
    assert allocs and all(ev.lrs for ev in allocs)
    # the host's CFI unwind agrees with the LRs the firmware's stack scan recorded in the node
    assert all(ev.stack[: len(ev.lrs)] == ev.lrs for ev in allocs)
    if mode == "breakpoints":
        assert cap.stats["stale_frames"] == 0
    else:
        assert cap.stats["records"] == len(events) and not cap.declined and cap.gaps == []


def test_leak_demo_trace_matches_memstat_and_hooks(firmware, qemu):
    elf = firmware("leak_demo", "debug")
    image = Image.open(elf)
    engine = qemu(elf)
    ledger = Ledger()
    traced: list = []
    hooked: list = []
    trace = create_capture("trace", engine, image, sinks=[ledger.apply, traced.append])
    hooks = create_capture("hooks", engine, image, sinks=[hooked.append])
    trace.attach()
    hooks.attach()
    engine.run_for(3.0)
    trace.drain()
    # at each LOS_MemMusedGet of `memstat`, drain the ring at that instant and note the ledger's figure
    seen: dict[int, int] = {}

    def on_mused(ctx) -> None:
        trace.drain(ctx)
        seen[ctx.regs["r0"]] = ledger.module_used(ctx.regs["r0"], tracked_only=True)

    bp = engine.add_breakpoint(image.symbol("LOS_MemMusedGet").address, on_mused)
    start = len(engine.console.text())
    engine.console_write("memstat\r")
    engine.run_for(0.5)
    # everything the firmware wrote before the halt is in the console log: no wait
    assert re.search(r"^total used \d+", engine.console.text()[start:], re.M)
    engine.remove_breakpoint(bp)
    hooks.detach()
    trace.detach()
    printed = {int(m): int(x) for m, x in _USED.findall(engine.console.text()[start:])}

    assert len(traced) > 100 and trace.gaps == []
    assert printed and all(seen[m] == x for m, x in printed.items())
    assert all(v == 0 for m, v in seen.items() if m not in printed)
    assert ledger.anomalies == []

    def same(ev):
        return (ev.seq, ev.kind, ev.ptr, ev.old_ptr, ev.size, ev.node_size, ev.module, ev.task, ev.lrs if ev.kind is not EventKind.FREE else ())

    assert [same(e) for e in hooked] == [same(e) for e in traced]
