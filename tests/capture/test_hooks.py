"""HookCapture on a scripted fake engine: nesting, realloc-to-free, failed allocations, frees, newlib calloc."""

from __future__ import annotations

import pytest
from capture_fakes import FakeEngine, FakeImage, FakeUnwinder, bw, thumb

from memhil.capture import HookCapture, create_capture
from memhil.errors import CaptureError, ConfigError
from memhil.events import EventFlag, EventKind
from memhil.heap.ledger import Ledger

NOP = 0xBF00
USED = 0x80000000
ALIGNED = 0x40000000
CALLER = 0x08005001  # LR at entry (Thumb bit set), i.e. the allocator's caller
SP = 0x20001000
UPTIME = 0x20000000

# function addresses and their return sites (address, bytes popped)
MALLOC, MALLOC_RET = 0x08001000, 0x08001008  # push {r4, lr} ... pop {r4, pc}: 8
MFREE = 0x08001100
MALLOC_ALIGN, MALLOC_ALIGN_RET = 0x08001200, 0x08001208
MREALLOC, MREALLOC_RET = 0x08001300, 0x08001308
ALLOC, ALLOC_RET = 0x08002000, 0x0800200C  # push {r4-r6, lr} ... pop {r4-r6, pc}: 16
FREE = 0x08002100
REALLOC, REALLOC_RET = 0x08002200, 0x08002204  # pop {r3-r5, pc}: 16
ALLOC_ALIGN, ALLOC_ALIGN_RET = 0x08002300, 0x08002308  # pop.w {r3-r8, pc}: 28


def liteos_image() -> FakeImage:
    img = FakeImage()
    img.add_func("LOS_MemMalloc", MALLOC, thumb(0xB510, NOP, NOP, NOP, 0xBD10))
    img.add_func("LOS_MemMfree", MFREE, thumb(0xB510, NOP, NOP, 0xBD10))
    img.add_func("LOS_MemMallocAlign", MALLOC_ALIGN, thumb(0xB510, NOP, NOP, NOP, 0xBD10))
    img.add_func("LOS_MemMrealloc", MREALLOC, thumb(0xB510, NOP, NOP, NOP, 0xBD10))
    img.add_func("LOS_MemAlloc", ALLOC, thumb(0xB570, NOP, NOP, NOP, NOP, NOP, 0xBD70))
    img.add_func("LOS_MemFree", FREE, thumb(0xB510, NOP, 0xBD10))
    img.add_func("LOS_MemRealloc", REALLOC, thumb(0xB538, NOP, 0xBD38))
    img.add_func("LOS_MemAllocAlign", ALLOC_ALIGN, thumb(0xE92D, 0x41F8, NOP, NOP, 0xE8BD, 0x81F8))
    img.add_object("g_memhil_uptime_ms", UPTIME, 8)
    img.add_object("_estack", 0x20030000, 0)
    return img


def put_node(eng: FakeEngine, ptr: int, node_size: int, module: int = 0, task: int = 3, node: int | None = None) -> None:
    node = ptr - 16 if node is None else node
    eng.put32(node, node ^ 0xFFFFFFFF, task | module << 16, 0, USED | node_size)


@pytest.fixture
def rig():
    eng = FakeEngine()
    img = liteos_image()
    events: list = []
    unwinder = FakeUnwinder()
    cap = HookCapture(eng, img, "liteos", sinks=[events.append], unwinder=unwinder)
    cap.attach()
    eng.put32(UPTIME, 1234, 0)
    eng.put32(SP, 0x08007001)  # the caller's return address, saved on the stack
    yield eng, cap, events, unwinder
    cap.detach()
    assert not eng.bps, "detach left breakpoints behind"


def malloc_call(eng: FakeEngine, size: int, module: int, ptr: int) -> None:
    """LOS_MemMalloc -> LOS_MemAlloc (nested), both return ``ptr``."""
    eng.hit(MALLOC, r0=0x20002000, r1=size, r2=module, sp=SP, lr=CALLER)
    eng.hit(ALLOC, r0=0x20002000, r1=size, sp=SP - 8, lr=MALLOC + 5)
    eng.hit(ALLOC_RET, r0=ptr, sp=SP - 24)
    eng.hit(MALLOC_RET, r0=ptr, sp=SP - 8)


def test_module_alloc_nesting_reports_only_the_outer_call(rig):
    eng, cap, events, unwinder = rig
    put_node(eng, 0x20004010, 48, module=5, task=7)
    malloc_call(eng, 24, 5, 0x20004010)
    assert len(events) == 1
    ev = events[0]
    assert (ev.kind, ev.ptr, ev.size, ev.node_size, ev.module, ev.task) == (EventKind.ALLOC, 0x20004010, 24, 48, 5, 7)
    assert ev.flags == EventFlag.NONE
    assert ev.t_us == 1_234_000
    assert ev.stack == (CALLER & ~1, 0x08007000)  # starts at the caller, then the frame above it
    assert cap.stats["nested"] == 1 and cap.stats["foreign_returns"] == 1


def test_one_read_per_stop(rig):
    eng, cap, events, _ = rig
    put_node(eng, 0x20004010, 48, module=5)
    before = eng.round_trips
    malloc_call(eng, 24, 5, 0x20004010)
    assert eng.round_trips - before == 1  # header + stack + uptime in one pipelined request
    before = eng.round_trips
    eng.hit(MFREE, r0=0x20002000, r1=0x20004010, r2=5, sp=SP, lr=CALLER)
    eng.hit(FREE, r0=0x20002000, r1=0x20004010, sp=SP - 8, lr=MFREE + 5)
    assert eng.round_trips - before == 1
    assert [e.kind for e in events] == [EventKind.ALLOC, EventKind.FREE]


def test_plain_alloc_is_untracked_and_failed_alloc_is_no_event(rig):
    eng, cap, events, _ = rig
    eng.hit(ALLOC, r0=0x20002000, r1=1 << 20, sp=SP, lr=CALLER)
    eng.hit(ALLOC_RET, r0=0, sp=SP - 16)
    assert events == []
    put_node(eng, 0x20004100, 32)
    eng.hit(ALLOC, r0=0x20002000, r1=16, sp=SP, lr=CALLER)
    eng.hit(ALLOC_RET, r0=0x20004100, sp=SP - 16)
    assert len(events) == 1 and events[0].flags & EventFlag.UNTRACKED and events[0].node_size == 32
    assert events[0].seq == 0


def test_free_handled_at_entry_with_the_node_header(rig):
    eng, cap, events, _ = rig
    put_node(eng, 0x20004200, 64, module=2, task=4)
    eng.hit(MFREE, r0=0x20002000, r1=0x20004200, r2=2, sp=SP, lr=CALLER)
    eng.hit(FREE, r0=0x20002000, r1=0x20004200, sp=SP - 8, lr=MFREE + 5)  # nested
    eng.hit(FREE, r0=0x20002000, r1=0, sp=SP, lr=CALLER)  # free(NULL): nothing
    assert len(events) == 1
    ev = events[0]
    assert (ev.kind, ev.ptr, ev.node_size, ev.module, ev.task) == (EventKind.FREE, 0x20004200, 64, 2, 4)


def test_realloc_to_size_zero_is_a_free(rig):
    eng, cap, events, _ = rig
    put_node(eng, 0x20004300, 40, module=1)
    eng.hit(REALLOC, r0=0x20002000, r1=0x20004300, r2=0, sp=SP, lr=CALLER)
    put_node(eng, 0x20004300, 0x999)  # the allocator has freed and merged it by the time it returns
    eng.hit(FREE, r0=0x20002000, r1=0x20004300, sp=SP - 16, lr=REALLOC + 3)  # nested
    eng.hit(REALLOC_RET, r0=0, sp=SP - 16)
    assert len(events) == 1
    ev = events[0]
    assert (ev.kind, ev.ptr, ev.node_size, ev.module) == (EventKind.FREE, 0x20004300, 40, 1)


def test_realloc_failure_is_no_event_and_success_moves_the_block(rig):
    eng, cap, events, _ = rig
    eng.hit(REALLOC, r0=0x20002000, r1=0x20004300, r2=4096, sp=SP, lr=CALLER)
    eng.hit(REALLOC_RET, r0=0, sp=SP - 16)
    assert events == []
    put_node(eng, 0x20004400, 112)
    eng.hit(REALLOC, r0=0x20002000, r1=0x20004300, r2=96, sp=SP, lr=CALLER)
    eng.hit(ALLOC, r0=0x20002000, r1=96, sp=SP - 16, lr=REALLOC + 3)
    eng.hit(ALLOC_RET, r0=0x20004400, sp=SP - 32)
    eng.hit(REALLOC_RET, r0=0x20004400, sp=SP - 16)
    assert len(events) == 1
    ev = events[0]
    assert (ev.kind, ev.ptr, ev.old_ptr, ev.size, ev.node_size) == (EventKind.REALLOC, 0x20004400, 0x20004300, 96, 112)


def test_aligned_alloc_finds_the_node_behind_the_gap(rig):
    eng, cap, events, _ = rig
    ptr, gap = 0x20004540, 0x28
    put_node(eng, ptr, 200, module=9, node=ptr - gap - 16)
    eng.put32(ptr - 4, ALIGNED | gap)
    eng.hit(MALLOC_ALIGN, r0=0x20002000, r1=100, r2=64, r3=9, sp=SP, lr=CALLER)
    eng.hit(ALLOC_ALIGN, r0=0x20002000, r1=100, r2=64, sp=SP - 8, lr=MALLOC_ALIGN + 5)
    eng.hit(ALLOC_ALIGN_RET, r0=ptr, sp=SP - 8 - 28)
    eng.hit(MALLOC_ALIGN_RET, r0=ptr, sp=SP - 8)
    assert len(events) == 1
    ev = events[0]
    assert (ev.kind, ev.ptr, ev.node_size, ev.module) == (EventKind.ALIGNED_ALLOC, ptr, 200, 9)
    assert cap.stats["extra_reads"] == 0  # the gap fitted in the window read with the header


def test_calls_on_two_task_stacks_interleave(rig):
    eng, cap, events, _ = rig
    other = 0x20008000
    eng.put32(other, 0x08009001)
    put_node(eng, 0x20004600, 32, module=1)
    put_node(eng, 0x20004700, 48, module=2)
    eng.hit(MALLOC, r1=16, r2=1, sp=SP, lr=CALLER)
    eng.hit(MALLOC, r1=24, r2=2, sp=other, lr=0x08006001)  # a task switch inside the first call
    eng.hit(MALLOC_RET, r0=0x20004700, sp=other - 8)
    eng.hit(MALLOC_RET, r0=0x20004600, sp=SP - 8)
    assert [(e.ptr, e.size, e.module, e.stack[0]) for e in events] == [
        (0x20004700, 24, 2, 0x08006000),
        (0x20004600, 16, 1, 0x08005000),
    ]


def test_events_feed_a_ledger(rig):
    eng, cap, events, _ = rig
    ledger = Ledger()
    cap.add_sink(ledger.apply)
    put_node(eng, 0x20004010, 48, module=5)
    malloc_call(eng, 24, 5, 0x20004010)
    put_node(eng, 0x20004110, 32, module=5)
    malloc_call(eng, 10, 5, 0x20004110)
    eng.hit(MFREE, r1=0x20004010, r2=5, sp=SP, lr=CALLER)
    assert ledger.module_used(5) == 32 and ledger.anomalies == []


def test_tail_call_out_falls_back_to_a_return_address_breakpoint():
    eng = FakeEngine()
    img = FakeImage()
    helper = 0x08003000
    img.add_func("pvPortMalloc", 0x08001000, thumb(NOP, *bw(0x08001002, helper)))
    img.add_func("vPortFree", 0x08001100, thumb(0xB510, NOP, 0xBD10))
    events: list = []
    cap = HookCapture(eng, img, "freertos", sinks=[events.append], unwind_depth=1)
    cap.attach()
    assert not cap.plans["pvPortMalloc"].reliable and cap.plans["pvPortMalloc"].scan.tail_calls == [helper]
    for ptr in (0x20004000, 0x20004100):
        eng.hit(0x08001000, r0=40, sp=SP, lr=CALLER)
        eng.hit(CALLER & ~1, r0=0x12345, sp=SP - 64)  # another call's return through here: not ours
        eng.hit(CALLER & ~1, r0=ptr, sp=SP)
    assert [(e.ptr, e.size, e.node_size, e.stack) for e in events] == [(0x20004000, 40, 0, (CALLER & ~1,)), (0x20004100, 40, 0, (CALLER & ~1,))]
    assert eng.added.count(CALLER & ~1) == 1  # the return-address breakpoint is installed once and kept
    assert events[0].t_us == 0  # no uptime symbol: the engine's virtual time
    cap.detach()
    assert not eng.bps


def newlib_image() -> FakeImage:
    img = FakeImage()
    # calloc and malloc tail-call their _r variants (b.w), as newlib's do
    img.add_func("calloc", 0x08001000, thumb(0x460A, 0x4601, NOP, *bw(0x08001006, 0x08001200)))
    img.add_func("malloc", 0x08001100, thumb(0x4601, NOP, *bw(0x08001104, 0x08001300)))
    img.add_func("free", 0x08001180, thumb(0x4601, NOP, *bw(0x08001184, 0x08001400)))
    img.add_func("_calloc_r", 0x08001200, thumb(0xB510, NOP, NOP, NOP, 0xBD10))  # ret +8, pops 8
    img.add_func("_malloc_r", 0x08001300, thumb(0xB5F0, NOP, 0xBDF0))  # ret +4, pops 20
    img.add_func("_free_r", 0x08001400, thumb(0xB510, NOP, 0xBD10))
    return img


def test_newlib_calloc_multiplies_and_nests_through_tail_calls():
    eng = FakeEngine()
    img = newlib_image()
    events: list = []
    cap = create_capture("breakpoints", eng, img, profile="newlib", sinks=[events.append], unwinder=FakeUnwinder())
    cap.attach()
    assert cap.plans["calloc"].reliable and cap.plans["malloc"].reliable
    eng.hit(0x08001000, r0=3, r1=10, sp=SP, lr=CALLER)  # calloc(3, 10)
    eng.hit(0x08001200, r0=0x20000100, r1=3, r2=10, sp=SP, lr=CALLER)  # tail-called _calloc_r
    eng.hit(0x08001300, r0=0x20000100, r1=30, sp=SP - 8, lr=0x08001205)  # _malloc_r from _calloc_r
    eng.hit(0x08001304, r0=0x20004000, sp=SP - 28)
    eng.hit(0x08001208, r0=0x20004000, sp=SP - 8)
    eng.hit(0x08001100, r0=30, sp=SP, lr=CALLER)  # malloc(30)
    eng.hit(0x08001300, r0=0x20000100, r1=30, sp=SP, lr=CALLER)
    eng.hit(0x08001304, r0=0x20004100, sp=SP - 20)
    eng.hit(0x08001180, r0=0x20004000, sp=SP, lr=CALLER)  # free
    eng.hit(0x08001400, r0=0x20000100, r1=0x20004000, sp=SP, lr=CALLER)
    assert [(e.kind, e.ptr, e.size, e.node_size) for e in events] == [
        (EventKind.ALLOC, 0x20004000, 30, 0),
        (EventKind.ALLOC, 0x20004100, 30, 0),
        (EventKind.FREE, 0x20004000, 0, 0),
    ]
    assert [e.seq for e in events] == [0, 1, 2]
    cap.detach()


def test_missing_symbols_name_the_matching_profiles():
    eng = FakeEngine()
    with pytest.raises(CaptureError) as err:
        HookCapture(eng, newlib_image(), "liteos").attach()
    text = str(err.value)
    assert "LOS_MemAlloc" in text and "newlib" in text
    assert err.value.matching == ["newlib"]
    assert not eng.bps


def test_bad_settings_and_modes():
    with pytest.raises(CaptureError):
        HookCapture(FakeEngine(), liteos_image(), "liteos", stack_bytes=3)
    with pytest.raises(ConfigError, match="unknown capture mode"):
        create_capture("snoop", FakeEngine(), liteos_image())
    none = create_capture("none", FakeEngine(), liteos_image())
    none.attach()
    assert none.drain() == 0


def test_free_of_a_block_that_is_not_used_is_rejected_like_the_allocator_does(rig):
    eng, cap, events, _ = rig
    eng.put32(0x20004800 - 4, 64)  # USED clear: already freed
    eng.hit(FREE, r0=0x20002000, r1=0x20004800, sp=SP, lr=CALLER)
    assert events == [] and cap.stats["rejected_frees"] == 1


def test_realloc_of_null_is_an_alloc(rig):
    eng, cap, events, _ = rig
    put_node(eng, 0x20004900, 48)
    eng.hit(REALLOC, r0=0x20002000, r1=0, r2=20, sp=SP, lr=CALLER)
    eng.hit(ALLOC, r0=0x20002000, r1=20, sp=SP - 16, lr=REALLOC + 3)
    eng.hit(ALLOC_RET, r0=0x20004900, sp=SP - 32)
    eng.hit(REALLOC_RET, r0=0x20004900, sp=SP - 16)
    assert [(e.kind, e.ptr, e.old_ptr, e.size) for e in events] == [(EventKind.ALLOC, 0x20004900, 0, 20)]
