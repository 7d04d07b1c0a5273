"""The tickless timer on QEMU: SysTick on the reference clock (HCLK/8) where the SoC has one, one wake-up per
soak NET period (250 ms; FS and APP share NET's wake-ups), and g_memhil_uptime_ms exact against the engine's virtual clock (firmware/arch/cortex-m/tickless.c)."""

from __future__ import annotations

import pytest

from memhil.session import Session, SessionOptions


@pytest.fixture
def free_soak(firmware, tmp_path):
    session = Session(SessionOptions(capture="none"), run_dir=tmp_path / "run")
    try:
        session.start(firmware("soak"))
        yield session
    finally:
        session.stop()


def _u64(session, name):
    sym = session.image.symbol(name)
    return int.from_bytes(session.engine.read_memory(sym.address, 8), "little")


def test_systick_counts_on_the_reference_clock_qemu_provides(free_soak, platform):
    assert platform.systick_ref_hz == platform.systick_hz // 8 == 21_000_000
    free_soak.run_for(0.5)
    assert free_soak.read_symbol_u32("g_memhil_tick_hz") == platform.systick_ref_hz


def test_one_wakeup_per_net_period_and_uptime_exact(free_soak):
    """30 s of soak: 120 NET periods, and no extra wake-up for FS, whose deadlines are NET's."""
    free_soak.run_for(1.0)
    w0, v0 = free_soak.read_symbol_u32("g_memhil_wakeups"), _u64(free_soak, "g_memhil_uptime_ms")
    free_soak.engine.run_for(30.0)  # one barrier, no sampling chunks
    wakes = free_soak.read_symbol_u32("g_memhil_wakeups") - w0
    # NET every 250 ms; FS (1 s) and APP (10 min) fall on NET's deadlines; the host's barrier adds at most one
    assert 120 <= wakes <= 122
    uptime = _u64(free_soak, "g_memhil_uptime_ms")
    assert uptime - v0 == 30_000
    assert abs(free_soak.virtual_time() * 1000 - uptime) < 1.0


def test_long_sleeps_keep_uptime_exact(firmware, tmp_path):
    """leak_demo and module_stats idle longer than 99 ms between deadlines: the 21 MHz counter spans them in one
    period, and the millisecond count stays equal to virtual time over many such sleeps."""
    session = Session(SessionOptions(capture="none"), run_dir=tmp_path / "run")
    try:
        session.start(firmware("module_stats"))
        session.run_for(0.2)
        w0 = session.read_symbol_u32("g_memhil_wakeups")
        session.engine.run_for(20.0)
        wakes = session.read_symbol_u32("g_memhil_wakeups") - w0
        uptime = _u64(session, "g_memhil_uptime_ms")
        assert uptime == round(session.virtual_time() * 1000)
        assert 20.0 / 0.799 <= wakes <= 20.0 / 0.798 + 2  # no sleep was cut at 99 ms
    finally:
        session.stop()
