"""Patched hooks (capture=hooks) on QEMU: call for call the same events as the breakpoint hooks and the
firmware's own counters; newlib's entry points; a prologue that cannot move; an interrupt handler that
allocates; a reset mid-run."""

from __future__ import annotations

from collections import Counter

import pytest

from memhil.capture import PatchCapture, create_capture, load_profile
from memhil.capture.profiles import AllocatorProfile, FunctionSpec
from memhil.elf import Image
from memhil.engines.qemu import QemuEngine
from memhil.events import EventKind
from memhil.session import Session, SessionOptions

pytestmark = pytest.mark.emulator

KIND_INDEX = {EventKind.ALLOC: 1, EventKind.FREE: 2, EventKind.REALLOC: 3, EventKind.ALIGNED_ALLOC: 4}


def _run(elf, mode: str, seconds: float, tmp_path):
    events: list = []

    def keep(event) -> None:
        events.append(event)

    keep.host_only = True  # type: ignore[attr-defined]
    with Session(SessionOptions(capture=mode), run_dir=tmp_path / mode) as session:
        session.start(elf)
        session.extra_sinks.append(keep)
        before = [session.read_symbol_u32("g_burst_ops", i) for i in range(5)] if session.image.find_symbol("g_burst_ops") else None
        session.run_for(seconds)
        session.drain()
        after = [session.read_symbol_u32("g_burst_ops", i) for i in range(5)] if before else None
        check = session.crosscheck(1, 2, 3, 4)
        cap = session.capture
        info = {"gaps": list(getattr(cap, "gaps", [])), "anomalies": list(session.ledger.anomalies), "crosscheck": check.ok,
                "calls": dict(getattr(cap, "calls_by_function", {})),
                "ops": [b - a for a, b in zip(before, after)] if before else None,
                "declined": [f.spec.name for f in getattr(cap, "declined", [])]}
    return events, info


@pytest.mark.parametrize("app,seconds", [("leak_demo", 2.0), ("burst", 0.025)])
def test_patched_events_equal_breakpoints_and_firmware_counters(firmware, tmp_path, app, seconds):
    """burst runs 25 ms (its bursts come every 10 ms: the run ends between two), leak_demo 2 s. The wrappers'
    own instructions take virtual time, so a call may be stamped one millisecond later than under breakpoints;
    everything else, the stack included, is the same call for call."""
    elf = firmware(app, "debug")
    patched, p = _run(elf, "hooks", seconds, tmp_path)
    stopped, b = _run(elf, "breakpoints", seconds, tmp_path)
    assert p["declined"] == [] and p["gaps"] == [] and p["anomalies"] == [] == b["anomalies"]
    assert p["crosscheck"] and b["crosscheck"]
    assert len(patched) == len(stopped) > 20
    stale = 0
    for x, y in zip(patched, stopped):
        assert (x.seq, x.kind, x.ptr, x.size, x.node_size, x.module, x.task, x.old_ptr, x.flags) == \
               (y.seq, y.kind, y.ptr, y.size, y.node_size, y.module, y.task, y.old_ptr, y.flags)
        assert x.stack[0] == y.stack[0]  # the patched stack's first frame, taken from the record before any unwinding
        assert x.stack == y.stack and len(x.stack) > 2
        assert 0 <= x.t_us - y.t_us <= 1000
        # ``lrs`` is what the firmware's own leak-check stack scan found in the node: it takes any word that
        # looks like a return address, stale ones included, so it depends on the stack's depth, which the
        # wrapper's frame changes. Where the two runs differ, one of them holds the true call chain.
        if x.lrs != y.lrs:
            stale += 1
            assert x.lrs == tuple(x.stack[: len(x.lrs)]) or y.lrs == tuple(y.stack[: len(y.lrs)])
    assert stale <= len(patched) // 4
    if p["ops"] is not None:
        counted = Counter(KIND_INDEX[e.kind] for e in patched)
        assert [counted.get(k, 0) for k in range(5)] == p["ops"] == b["ops"]
        assert p["ops"][3] > 0  # reallocs happened (in place and moved: see the newlib test)


def test_bad_input_failed_and_refused_calls(firmware, tmp_path):
    """bad_input's calls that fail or that the allocator refuses (foreign, interior and double frees, a bad module
    id, reallocs of what is no block) make no event with patched hooks: the ledger ends as the firmware's own
    statistics do. The breakpoint hooks decide a free at its entry, from the node header alone, and so report
    the one free the allocator refuses for its module id (LOS_MemMfree(p, 33)); the rest is the same."""
    elf = firmware("bad_input", "debug")
    patched, p = _run(elf, "hooks", 0.3, tmp_path)
    stopped, b = _run(elf, "breakpoints", 0.3, tmp_path)
    assert p["anomalies"] == [] and p["crosscheck"] and p["declined"] == []
    assert [a.kind for a in b["anomalies"]] == ["unknown-free"]

    def same(ev):
        return (ev.kind, ev.ptr, ev.size, ev.node_size, ev.module, ev.old_ptr, ev.stack)

    extra = [y for y in stopped if same(y) not in {same(x) for x in patched}]
    assert len(extra) == 1 and extra[0].kind is EventKind.FREE
    assert [same(y) for y in stopped if y is not extra[0]] == [same(x) for x in patched]


def test_every_liteos_entry_point_is_patched_and_called(firmware, tmp_path):
    """Across the apps, each function of the liteos profile is patched (none falls back) and makes records."""
    calls: Counter = Counter()
    for app, seconds in (("module_stats", 0.5), ("bad_input", 0.3), ("burst", 0.015)):
        _, info = _run(firmware(app, "debug"), "hooks", seconds, tmp_path / app)
        assert info["declined"] == []
        calls.update(info["calls"])
    assert set(calls) == set(load_profile("liteos").functions) and min(calls.values()) > 0


def _newlib_profile(image) -> AllocatorProfile:
    base = load_profile("newlib")
    specs = dict(base.functions)
    specs["odd_malloc"] = FunctionSpec("odd_malloc", EventKind.ALLOC, size=(0,), calls=("malloc", "_malloc_r"))
    return AllocatorProfile("newlib+odd", specs, nodes="none")


@pytest.fixture
def engine(platform, tmp_path):
    eng = QemuEngine()
    yield eng
    eng.stop()


def _ops(engine, image) -> list[int]:
    raw = engine.read_memory(image.symbol("g_ops").address, 20)
    return [int.from_bytes(raw[i : i + 4], "little") for i in range(0, 20, 4)]


def _bl_target(image, ret: int) -> int | None:
    """The target of the BL (A7.7.18 T1) that returns to ``ret``, None if the instruction before is no BL."""
    hw1, hw2 = (int.from_bytes(image.read(ret - 4 + k, 2), "little") for k in (0, 2))
    if hw1 & 0xF800 != 0xF000 or hw2 & 0xD000 != 0xD000:
        return None
    s, j1, j2 = (hw1 >> 10) & 1, (hw2 >> 13) & 1, (hw2 >> 11) & 1
    imm = s << 24 | (1 - (j1 ^ s)) << 23 | (1 - (j2 ^ s)) << 22 | (hw1 & 0x3FF) << 12 | (hw2 & 0x7FF) << 1
    return ret + (imm - (1 << 25) if s else imm)


def _u32(engine, image, name: str) -> int:
    return int.from_bytes(engine.read_memory(image.symbol(name).address, 4), "little")


def test_newlib_every_entry_point_isr_and_declined_prologue(hookfw, engine, platform, tmp_path):
    image = Image.open(hookfw)
    engine.start(platform, hookfw, workdir=tmp_path)
    events: list = []
    cap = create_capture("hooks", engine, image, profile=_newlib_profile(image), sinks=[events.append], capacity=64)
    cap.attach()
    names = {f.spec.name for f in cap.patched}
    declined = {f.spec.name: str(f.declined) for f in cap.declined}
    # every function of the newlib profile is in this ELF and patched; odd_malloc's IT block is declined
    assert set(load_profile("newlib").functions) <= names
    assert set(declined) == {"odd_malloc"} and "IT block" in declined["odd_malloc"]
    assert cap.fallback is not None
    rewritten = {f.spec.name: f.relocation.rewritten for f in cap.patched}
    assert rewritten["malloc"] and rewritten["_free_r"]  # a literal load of _impure_ptr; a beq.n, moved
    # every breakpoint stop lets QEMU's icount clock skip to its next timer deadline (sleep=off), so the
    # firmware's progress per virtual second depends on the stops: run until it says it is done
    for _ in range(100):
        engine.run_for(0.05)
        if _u32(engine, image, "g_done"):
            break
    assert _u32(engine, image, "g_done") == 1
    cap.drain()
    ops = _ops(engine, image)
    counted = Counter(KIND_INDEX[e.kind] for e in events)
    assert [counted.get(k, 0) for k in range(5)] == ops
    assert cap.gaps == [] and [e.seq for e in events] == list(range(len(events)))
    # calls from the interrupt handler are events of their own (their return address is the handler's)
    isr = image.symbol("SysTick_Handler")
    from_isr = [e for e in events if e.kind is EventKind.ALLOC and isr.contains(e.stack[0])]
    assert len(from_isr) == _u32(engine, image, "g_isr_allocs") > 0 and {e.size for e in from_isr} == {24}
    # the declined function's calls came through the breakpoints, the patched ones through the ring, each once
    odd = image.symbol("odd_malloc")
    # odd_malloc's calls (twice per round) go through the breakpoints, each once
    assert cap.fallback.stats["entries"] == 60 * 2 and cap.stats["records"] > 60 * 10
    assert not any(odd.contains(e.stack[0]) for e in events)  # malloc inside odd_malloc is nested, no event
    assert _u32(engine, image, "g_failed") == 2 * 60  # failed calls: counted by the firmware, no event
    assert _u32(engine, image, "g_in_place") > 0 and _u32(engine, image, "g_moved") > 0
    reallocs = [e for e in events if e.kind is EventKind.REALLOC]
    assert any(e.ptr == e.old_ptr for e in reallocs) and any(e.ptr != e.old_ptr for e in reallocs)
    assert all(e.size for e in events if e.kind is not EventKind.FREE)
    calloc = image.symbol("calloc").address
    calloc_sizes = {e.size for e in events if _bl_target(image, e.stack[0]) == calloc}
    assert calloc_sizes == {4 * (8 + k) for k in range(8)}  # calloc(4, 8 + i % 8): the size is the product
    cap.detach()
    # detached: the entries hold the ELF's code again
    for f in cap.patched:
        assert engine.read_memory(f.address, 4) == image.read(f.address, 4)


def test_reset_mid_run_patches_again(firmware, engine, platform, tmp_path):
    elf = firmware("burst", "debug")
    image = Image.open(elf)
    engine.start(platform, elf, workdir=tmp_path)
    events: list = []
    cap = create_capture("hooks", engine, image, sinks=[events.append])
    assert isinstance(cap, PatchCapture)
    cap.attach()
    engine.run_for(0.015)
    ops_before = [int.from_bytes(engine.read_memory(image.symbol("g_burst_ops").address + 4 * i, 4), "little") for i in range(5)]
    engine.reset()
    first = len(events)
    assert first == sum(ops_before) > 0 and cap.resets == 1  # taken in before the reset
    engine.run_for(0.025)
    cap.drain()
    ops_after = [int.from_bytes(engine.read_memory(image.symbol("g_burst_ops").address + 4 * i, 4), "little") for i in range(5)]
    after = Counter(KIND_INDEX[e.kind] for e in events[first:])
    assert [after.get(k, 0) for k in range(5)] == ops_after and sum(ops_after) > 0
    assert cap.gaps == []
    f = cap.patched[0]
    assert engine.read_memory(f.address, 4) != image.read(f.address, 4)  # patched again
    cap.detach()


def test_a_reset_that_reloads_the_flash_is_seen_and_reported(firmware, engine, platform, tmp_path):
    """QEMU keeps the patched flash across its reset; an emulator (or a reset path) that reloads it, without the
    engine saying so, leaves the entry without its branch: the next drain sees that, reports a gap and patches
    again. The reload is made here by writing the ELF's bytes back."""
    elf = firmware("burst", "debug")
    image = Image.open(elf)
    engine.start(platform, elf, workdir=tmp_path)
    events: list = []
    cap = create_capture("hooks", engine, image, sinks=[events.append])
    cap.attach()
    engine.run_for(0.015)
    cap.drain()
    seen = len(events)
    for f in cap.patched:
        engine.write_memory(f.address, image.read(f.address, 4))
    engine.run_for(0.01)  # one burst of calls the hooks cannot see
    cap.drain()
    assert cap.resets == 1 and [g.reason for g in cap.gaps] == ["reset"] and len(events) == seen
    assert engine.read_memory(cap.patched[0].address, 4) != image.read(cap.patched[0].address, 4)
    engine.run_for(0.02)
    cap.drain()
    assert cap.stats["records"] == len(events) > seen
    cap.detach()


def _leak_report(elf, mode: str, tmp_path):
    import json

    with Session(SessionOptions(capture=mode), run_dir=tmp_path / f"leaks-{mode}") as session:
        session.start(elf)
        session.start_timeline(tmp_path / f"timeline-{mode}")  # the writer takes each event's stack too
        session.take_snapshot("before")
        session.run_for(2.0)
        session.take_snapshot("after")
        report = session.leaks("before", "after")
        session.stop_timeline()
        return json.loads(json.dumps(report.as_dict()))


def test_leak_stacks_are_the_same_as_with_breakpoints(firmware, tmp_path):
    elf = firmware("leak_demo", "debug")
    patched = _leak_report(elf, "hooks", tmp_path)
    stopped = _leak_report(elf, "breakpoints", tmp_path)
    assert patched["records"] and patched["records"] == stopped["records"]
    assert any(len(r["frames"]) > 3 for r in patched["records"])


def test_freertos_entry_points(hookfw, engine, platform, tmp_path):
    image = Image.open(hookfw)
    engine.start(platform, hookfw, workdir=tmp_path)
    events: list = []
    cap = create_capture("hooks", engine, image, profile="freertos", sinks=[events.append])
    cap.attach()
    assert {f.spec.name for f in cap.functions} == {"pvPortMalloc", "vPortFree"}
    # this build's pvPortMalloc begins with a literal load, vPortFree with cbz: both moved, rewritten
    assert sorted(f.spec.name for f in cap.patched) == ["pvPortMalloc", "vPortFree"] and not cap.declined
    assert all(f.relocation.rewritten for f in cap.patched)
    for _ in range(100):
        engine.run_for(0.05)
        if _u32(engine, image, "g_done"):
            break
    cap.drain()
    raw = engine.read_memory(image.symbol("g_rtos_ops").address, 12)
    ops = [int.from_bytes(raw[i : i + 4], "little") for i in range(0, 12, 4)]
    counted = Counter(KIND_INDEX[e.kind] for e in events)
    assert [0, counted[1], counted[2]] == ops and ops[1] == 60
    assert _u32(engine, image, "g_rtos_failed") == 60  # the failed calls are no events
    assert {e.size for e in events if e.kind is EventKind.ALLOC} == {32 + k for k in range(16)}
    frees = {e.ptr for e in events if e.kind is EventKind.FREE}
    assert frees == {e.ptr for e in events if e.kind is EventKind.ALLOC}
    cap.detach()
