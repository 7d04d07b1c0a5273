"""Host work while the target runs (Engine.add_background) on QEMU with the project firmware."""

from __future__ import annotations

import pytest

from memhil.engines.base import Capability
from memhil.errors import EngineError

pytestmark = pytest.mark.emulator


def test_background_work_runs_after_each_resume_while_the_target_runs(started_engine):
    engine, info = started_engine("leak_demo")
    assert Capability.BACKGROUND in engine.capabilities
    hits: list[int] = []
    statuses: list[str] = []
    engine.add_breakpoint(info.symbols["LOS_MemMalloc"], lambda ctx: hits.append(ctx.pc))

    def work() -> None:
        statuses.append(engine.qmp.cmd("query-status")["status"])

    engine.add_background(work)
    engine.run_for(2.0)
    assert len(hits) >= 3
    # one call per continue: each breakpoint hit and the barrier's stop resume once, plus the first resume
    assert len(statuses) == len(hits) + 1
    assert "running" in statuses  # QMP is a second channel: it sees the firmware run while the host works
    engine.remove_background(work)
    called = len(statuses)
    engine.run_for(0.5)
    assert len(statuses) == called and len(hits) > called - 1  # removed: no more calls, the target still ran
    with pytest.raises(EngineError, match="not added"):
        engine.remove_background(work)


def test_background_work_that_touches_the_target_fails_at_the_next_stop_and_the_engine_carries_on(started_engine):
    engine, info = started_engine("leak_demo")
    uptime = info.symbols["g_memhil_uptime_ms"]

    def work() -> None:
        engine.read_memory(uptime, 4)

    engine.add_background(work)
    with pytest.raises(EngineError, match="the target is running"):
        engine.run_for(0.5)
    engine.remove_background(work)
    before = engine.virtual_time()
    engine.run_for(0.25)  # the connection is still in step: exact runs go on
    assert engine.virtual_time() == pytest.approx(before + 0.25, abs=0.0011)
    assert len(engine.read_memory(uptime, 4)) == 4


def test_polled_work_runs_while_the_run_waits_until_it_says_it_has_nothing_to_look_for(qemu_engine, firmware, platform):
    """burst keeps the core busy for milliseconds of wall time per 0.2 s: a polled work runs all through that wait,
    many times per resume; one that returns None runs once after each resume and once in each wait, no more."""
    engine = qemu_engine()
    engine.start(platform, firmware("burst"))
    calls = {"resume": 0, "busy": 0, "idle": 0}

    def per_resume() -> None:
        calls["resume"] += 1

    def busy() -> int:
        calls["busy"] += 1
        return 0  # looked, found nothing: look again after poll_s

    def idle() -> None:
        calls["idle"] += 1  # nothing to look for: the wait stops polling

    engine.add_background(per_resume)
    engine.add_background(busy, poll=True)
    engine.run_for(0.2)
    engine.remove_background(busy)
    assert calls["busy"] > 2 * calls["resume"] >= 2
    calls["resume"] = 0
    engine.add_background(idle, poll=True)
    engine.run_for(0.2)
    engine.remove_background(idle)
    assert calls["resume"] <= calls["idle"] <= 2 * calls["resume"]
