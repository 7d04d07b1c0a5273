"""Trace capture and patched hooks on the Renode engine: their RAM rings drained at RunFor slice ends, the slices
sized against the rings, against the fake Renode (tests/engines/fake_renode.py) in process (pyrenode3's monitor).

The fake runs no Thumb code: its firmware model writes the ring records the firmware's trace writer and memhil's
patched wrappers would write, at the scenario's times, and waits (spins to the slice end) on a full ring as they
do. What these tests verify: the engine's slice-end work and slice sizing, the captures' registration and
draining through Renode's monitor commands (``sysbus ReadBytes``, ``WriteDoubleWord``/``WriteByte``), the patch
written into flash through the monitor and taken out again. What they cannot: that the wrapper code runs on
Renode's CPU as it does on QEMU (tests/capture/test_patch_qemu.py runs it there)."""

from __future__ import annotations

import json
import os
import struct

import pytest

from memhil.capture import PatchCapture, TraceCapture
from memhil.capture.asm import encode_b_w
from memhil.capture.relocate import PATCH_BYTES
from memhil.contract import DRAIN_AT_SYMBOL, HALF_FULL_FUNCTION, RING_SYMBOL
from memhil.elf import Image
from memhil.engines.base import Capability
from memhil.engines.renode import MIN_SLICE_US, RenodeEngine
from memhil.engines.renode_monitor import is_error, parse_time
from memhil.errors import EngineError
from memhil.events import EventKind
from memhil.heap.ledger import Ledger

from .fake_renode import FakeRenode
from .test_renode import VERSIONS, _pyrenode3_module, fake_program

TRACE_CAPACITY = 1024  # MEMHIL_TRACE_CAPACITY of the debug firmware
BOOT = 0.001  # seconds each test runs before it attaches


def trace_rec(kind: int, ptr: int, size: int = 24, module: int = 3, task: int = 1, old: int = 0, *,
              node_size: int | None = None, lrs: tuple[int, ...] = (0x08001235,)) -> str:
    """A ``memhil_trace_rec`` as the firmware writes it, before it fills in seq and t_ms (``node_size``: the
    size with a 16-byte node header unless given; ``lrs``: up to three return addresses)."""
    node_size = size + 16 if node_size is None else node_size
    return struct.pack("<IIBBHIIII3I", 0, 0, kind, module, task, ptr, old, size, node_size, *(tuple(lrs) + (0, 0, 0))[:3]).hex()


def alloc_free_stream(count: int, start_us: int, every_us: int) -> list[dict]:
    """``count`` trace events, one every ``every_us``: allocations of distinct blocks, every third one freed."""
    events = []
    t = start_us
    for i in range(count):
        ptr = 0x20004000 + 32 * (i // 2)
        events.append({"t_us": t, "trace": trace_rec(1, ptr) if i % 2 == 0 or i % 6 == 3 else trace_rec(2, ptr)})
        t += every_us
    return events


@pytest.fixture
def renode(platform, tmp_path, monkeypatch):
    """``start(elf, version=..., **engine options) -> (engine, fake)``: a Renode engine on an in-process fake."""
    made: list[tuple[RenodeEngine, FakeRenode]] = []

    def start(elf, *, version: str = "1.16.1", **options) -> tuple[RenodeEngine, FakeRenode]:
        fake = FakeRenode(version=version)

        class Monitor:  # pyrenode3 wrappers/monitor.py:52-69: (output, error)
            def execute(self, cmd):
                out = fake.handle(cmd)
                return ("", out) if is_error(out) else (out, "")

        _pyrenode3_module(monkeypatch, Monitor)
        monkeypatch.setenv("PATH", str(tmp_path))  # no renode program: pyrenode3 or nothing
        eng = RenodeEngine(backend="pyrenode3", timeout=5, **options)
        made.append((eng, fake))
        eng.start(platform, elf, workdir=tmp_path / f"run{len(made)}")
        eng.run_for(BOOT)  # past the firmware's start-up: its rings are initialised
        return eng, fake

    yield start
    for eng, fake in made:
        eng.stop()
        if fake.pty_master is not None:
            os.close(fake.pty_master)


def run_fors_us(fake: FakeRenode, since: int = 0) -> list[int]:
    """The RunFor periods the fake was given (microseconds), from command ``since`` on."""
    out = []
    for cmd in fake.commands[since:]:
        if cmd.startswith("emulation RunFor"):
            out.append(round(parse_time(cmd.split('"')[1]) * 1_000_000))
    return out


@pytest.mark.parametrize("version", VERSIONS)
def test_trace_ring_drained_at_slice_ends_through_several_rings(firmware, renode, version):
    """3,200 events at 25 per ms through a 1,024-record ring: the first slices fill it (the firmware waits), the
    slices halve until a slice no longer fills it, every event arrives in order, and the run is as long as asked."""
    elf = firmware("leak_demo", "debug")
    image = Image.open(elf)
    eng, fake = renode(elf, version=version, max_slice=0.1)
    assert Capability.SLICE_END in eng.capabilities and Capability.WATCHPOINTS not in eng.capabilities
    fake.trace_ring = image.symbol(RING_SYMBOL).address
    count = 3 * TRACE_CAPACITY + 128
    fake.load_scenario(alloc_free_stream(count, 10_000, 40))
    events: list = []
    cap = TraceCapture(eng, image, sinks=[events.append])
    before = len(fake.commands)
    cap.attach()
    assert cap.capacity == TRACE_CAPACITY and eng._slice_end == [cap._drain_at_slice_end]
    half_full = image.symbol(HALF_FULL_FUNCTION).address
    assert not any(c.startswith("cpu AddHook") for c in fake.commands[before:]), "no doorbell hook: it cannot stop RunFor"
    assert eng.read_memory(image.symbol(DRAIN_AT_SYMBOL).address, 4) == (TRACE_CAPACITY // 2).to_bytes(4, "little")
    assert half_full not in fake.hooks

    start = len(fake.commands)
    eng.run_for(0.5)
    slices = run_fors_us(fake, start)
    assert sum(slices) == 500_000 and eng._machine_time() == BOOT + 0.5  # Run For is exact whatever the slices
    # 0.1 s (the ring fills at 51 ms: the firmware waits 50 ms), 50 ms (full again), 25 ms (61 %: halved), then
    # 12.5 ms slices that take ~312 records each
    assert slices[:4] == [100_000, 50_000, 25_000, 12_500]
    assert fake.ring_waits == 2 and cap.stats["found_full"] == 2
    assert eng.slice_stats["shrunk"] == 3 and eng.slice_stats["shortest_us"] == 12_500
    assert [e.seq for e in events] == list(range(count)) and cap.gaps == [] and cap.lost_seen == 0
    assert [e.kind for e in events[:6]] == [EventKind.ALLOC, EventKind.FREE, EventKind.ALLOC, EventKind.ALLOC, EventKind.ALLOC, EventKind.FREE]
    # the firmware's times: the waits delayed it by what the fake counts, nothing later was delayed
    last_ms = events[-1].t_us // 1000
    assert last_ms == (10_000 + 40 * (count - 1) + fake.stalled_us) // 1000
    assert fake.stalled_us == (101_000 - (10_000 + 40 * TRACE_CAPACITY)) + (151_000 - (101_000 + 40 * TRACE_CAPACITY))

    # quiet: the slices grow back to max_slice, a doubling per full-length quiet slice
    eng.run_for(0.5)
    assert eng.slice_us == 100_000 and eng.slice_stats["grown"] == 3
    assert eng._machine_time() == BOOT + 1.0
    cap.detach()
    assert eng._slice_end == []


def test_capture_stop_removes_the_slice_end_work(firmware, renode):
    elf = firmware("leak_demo", "debug")
    image = Image.open(elf)
    eng, fake = renode(elf, max_slice=0.05)
    ring = image.symbol(RING_SYMBOL).address
    fake.trace_ring = ring
    fake.load_scenario(alloc_free_stream(40, 10_000, 1000) + alloc_free_stream(40, 300_000, 1000))
    events: list = []
    cap = TraceCapture(eng, image, sinks=[events.append])
    cap.attach()
    eng.run_for(0.2)
    assert len(events) == 40 and cap.stats["slice_drains"] == 5  # once before the run, then at 4 slice ends
    cap.detach()
    assert eng._slice_end == [] and eng.read_memory(ring + 12, 4) == b"\0\0\0\0"  # disabled
    reads = len([c for c in fake.commands if c.startswith(f"sysbus ReadBytes {ring:#x}")])
    eng.run_for(0.2)
    assert len([c for c in fake.commands if c.startswith(f"sysbus ReadBytes {ring:#x}")]) == reads  # no drain
    assert len(events) == 40 and cap.stats["slice_drains"] == 5
    head, tail = struct.unpack("<II", eng.read_memory(ring + 16, 8))
    assert head == tail == 40  # the firmware wrote nothing while disabled
    cap.detach()  # twice is harmless
    with pytest.raises(EngineError, match="not added"):
        eng.remove_slice_end(cap._drain_at_slice_end)


@pytest.mark.parametrize("version", VERSIONS)
def test_patched_hooks_written_through_the_monitor_and_drained_at_slice_ends(firmware, renode, version):
    """The patch goes into flash with sysbus WriteDoubleWord/WriteByte while paused; calls of the patched function
    (the fake's model of the wrapper) fill a 32-record ring three times over and all arrive; detach puts the
    original code back and the calls record nothing more."""
    elf = firmware("leak_demo", "debug")
    image = Image.open(elf)
    eng, fake = renode(elf, version=version, max_slice=0.1)
    events: list = []
    cap = PatchCapture(eng, image, capacity=32, stack_words=4, sinks=[events.append])
    cap.attach()
    lay = cap.layout
    assert lay is not None and lay.capacity == 32 and eng._slice_end == [cap._drain_at_slice_end]
    assert cap._bell is None and not cap._watching  # no doorbell hook
    # what the monitor wrote is what the host assembled: the code, and a b.w at each patched entry
    assert fake.read(lay.code.base, len(cap.code)) == cap.code
    for f in cap.patched:
        assert fake.read(f.address, PATCH_BYTES) == encode_b_w(f.address, f.wrapper)
    assert any(c.startswith("sysbus WriteDoubleWord") for c in fake.commands)
    assert fake._hook_ring() == lay.ring

    alloc = next(f for f in cap.patched if f.spec.name == "LOS_MemAlloc")
    count = 3 * 32 + 8
    fake.load_scenario([{"t_us": 5_000 + 200 * i, "call": alloc.address, "fid": alloc.fid, "result": 0x20005000 + 16 * i,
                         "regs": {"0": 0x20001000, "1": 8 + i, "13": 0x2001F000, "14": 0x08000201}} for i in range(count)])
    start = len(fake.commands)
    eng.run_for(0.3)  # 5 calls a ms against 32 slots: 100, 50 and 25 ms slices fill it, the firmware waits each time
    assert sum(run_fors_us(fake, start)) == 300_000 and eng._machine_time() == BOOT + 0.3
    assert run_fors_us(fake, start)[:4] == [100_000, 50_000, 25_000, 12_500]
    assert fake.ring_waits == 3 and cap.stats["found_full"] == 3 and eng.slice_stats["shrunk"] >= 3
    assert [e.seq for e in events] == list(range(count)) and cap.gaps == [] and cap.stats["records"] == count
    assert [(e.kind, e.ptr, e.size) for e in events] == [(EventKind.ALLOC, 0x20005000 + 16 * i, 8 + i) for i in range(count)]
    assert events[0].t_us == 5_000

    cap.detach()
    assert eng._slice_end == []
    for f in cap.patched:
        assert fake.read(f.address, PATCH_BYTES) == image.read(f.address, PATCH_BYTES)
    fake.load_scenario([{"t_us": 350_000, "call": alloc.address, "fid": alloc.fid, "result": 0x20006000}])
    eng.run_for(0.1)
    assert fake.unpatched_calls == 1 and len(events) == count


def test_a_reset_is_announced_to_the_patched_hooks(firmware, renode):
    """``reset`` runs the engine's reset hooks: the patched-hook capture patches the flash ``sysbus LoadELF``
    reloaded at once, as an announced reset (no gap, no warning), and the calls after it are recorded."""
    elf = firmware("leak_demo", "debug")
    image = Image.open(elf)
    eng, fake = renode(elf, max_slice=0.1)
    events: list = []
    cap = PatchCapture(eng, image, capacity=32, stack_words=4, sinks=[events.append])
    cap.attach()
    alloc = next(f for f in cap.patched if f.spec.name == "LOS_MemAlloc")

    def calls(start_us: int, results: range) -> list[dict]:
        return [{"t_us": start_us + 100 * i, "call": alloc.address, "fid": alloc.fid, "result": r,
                 "regs": {"0": 0x20001000, "1": 8}} for i, r in enumerate(results)]

    fake.load_scenario(calls(5_000, range(0x20005000, 0x20005040, 16)))
    eng.run_for(0.05)
    assert [e.ptr for e in events] == list(range(0x20005000, 0x20005040, 16))
    eng.reset()
    assert fake.read(alloc.address, PATCH_BYTES) == encode_b_w(alloc.address, alloc.wrapper)  # patched again already
    assert cap.resets == 1
    fake.load_scenario(calls(fake.time_us + 5_000, range(0x20006000, 0x20006030, 16)))
    eng.run_for(0.05)
    assert [e.ptr for e in events[4:]] == list(range(0x20006000, 0x20006030, 16))
    assert cap.gaps == [] and cap.resets == 1 and fake.unpatched_calls == 0
    cap.detach()


def test_min_slice_and_fit_rule(firmware, renode):
    """The rule alone: above half full halves (not below MIN_SLICE_US), under a quarter after a full-length slice
    doubles (not above max_slice), in between keeps; a short slice (a run's tail) never grows it."""
    eng, _ = renode(firmware("leak_demo", "debug"), max_slice=0.001)
    assert eng.slice_us == 1000
    eng._fit_slice(1000, 0.6)
    assert eng.slice_us == 500
    eng._fit_slice(500, 0.3)
    assert eng.slice_us == 500
    eng._fit_slice(100, 0.0)  # a short tail: no evidence about a full slice
    assert eng.slice_us == 500
    eng._fit_slice(500, 0.1)
    assert eng.slice_us == 1000
    eng._fit_slice(1000, 0.0)
    assert eng.slice_us == 1000  # max_slice
    for _ in range(10):
        eng._fit_slice(eng.slice_us, 1.0)
    assert eng.slice_us == MIN_SLICE_US
    eng._fit_slice(eng.slice_us, None)  # no ring reported
    assert eng.slice_us == MIN_SLICE_US


def qemu_trace(elf, image, platform, tmp_path, seconds: float) -> tuple[list, Ledger]:
    from memhil.engines.qemu import QemuEngine

    eng = QemuEngine()
    try:
        eng.start(platform, elf, workdir=tmp_path / "qemu")
        ledger = Ledger()
        events: list = []
        cap = TraceCapture(eng, image, sinks=[ledger.apply, events.append])
        cap.attach()
        eng.run_for(seconds)
        cap.detach()
        assert cap.gaps == []
    finally:
        eng.stop()
    return events, ledger


def ledger_state(ledger: Ledger) -> tuple:
    blocks = {p: (b.size, b.node_size, b.module, b.task, b.seq, b.t_us, b.lrs, b.flags) for p, b in ledger.live.items()}
    modules = {m: (s.current, s.peak, s.allocs) for m, s in ledger.modules.items()}
    tasks = {t: (s.current, s.peak, s.allocs) for t, s in ledger.tasks.items()}
    return blocks, modules, tasks, ledger.anomalies, ledger.events, ledger.last_seq


@pytest.mark.emulator
def test_trace_on_renode_gives_the_ledger_qemu_gives(firmware, renode, platform, tmp_path):
    """A recorded event stream (leak_demo's trace on QEMU) played by the fake Renode's firmware model at the times
    QEMU saw, through a small slice so that several drains take it: the same events and the same ledger."""
    elf = firmware("leak_demo", "debug")
    image = Image.open(elf)
    recorded, qemu_ledger = qemu_trace(elf, image, platform, tmp_path, 3.0)
    assert len(recorded) > 100 and qemu_ledger.anomalies == []
    eng, fake = renode(elf, max_slice=0.02)
    fake.trace_ring = image.symbol(RING_SYMBOL).address
    module = {ev.seq: (0xFF if ev.flags else ev.module) for ev in recorded}  # the record's module byte
    fake.load_scenario([{"t_us": ev.t_us, "trace": trace_rec(int(ev.kind), ev.ptr, ev.size, module[ev.seq], ev.task, ev.old_ptr,
                                                             node_size=ev.node_size, lrs=tuple(ev.lrs))} for ev in recorded])
    ledger = Ledger()
    events: list = []
    cap = TraceCapture(eng, image, sinks=[ledger.apply, events.append])
    cap.attach()
    eng.run_for(3.0)
    cap.detach()
    assert fake.ring_waits == 0 and cap.stats["found_full"] == 0 and cap.gaps == []
    assert cap.stats["slice_drains"] == 151 and cap.drains > 1
    assert events == recorded
    assert ledger_state(ledger) == ledger_state(qemu_ledger) and ledger.live  # leak_demo leaves blocks behind


@pytest.mark.parametrize("version", VERSIONS)
def test_trace_over_the_console_pipe(firmware, platform, tmp_path, monkeypatch, version):
    """The same draining with Renode as a program on pipes (``--console --plain``), the engine's default backend:
    2.5 rings' worth of events, all in order, the ring found full once, Run For exact."""
    elf = firmware("leak_demo", "debug")
    image = Image.open(elf)
    count = 5 * TRACE_CAPACITY // 2
    scenario = tmp_path / "scenario.json"
    scenario.write_text(json.dumps({"trace_ring": image.symbol(RING_SYMBOL).address,
                                    "events": alloc_free_stream(count, 10_000, 20)}))
    monkeypatch.setenv("FAKE_RENODE_SCENARIO", str(scenario))
    monkeypatch.setenv("FAKE_RENODE_VERSION", version)
    eng = RenodeEngine(renode_binary=str(fake_program(tmp_path)), backend="binary", timeout=10, max_slice=0.05)
    try:
        eng.start(platform, elf, workdir=tmp_path / "run")
        eng.run_for(BOOT)
        events: list = []
        cap = TraceCapture(eng, image, sinks=[events.append])
        cap.attach()
        eng.run_for(0.2)
        cap.detach()
        assert eng.monitor.name == "console pipe" and eng._machine_time() == BOOT + 0.2
        # 50 per ms: the first 50 ms slice fills the ring at 30 ms and the firmware waits; the 25 ms slice after it
        # would take 1,250 (full again); the 12.5 ms one takes the last 512 (half: kept)
        assert cap.stats["found_full"] == 2 and eng.slice_stats["shortest_us"] == 12_500
        assert [e.seq for e in events] == list(range(count)) and cap.gaps == []
    finally:
        eng.stop()
