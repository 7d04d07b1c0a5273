"""The patched hooks' benchmark figure (memhil bench's hook_calls_per_s, overhead_hooks_ratio,
breakpoint_calls_per_s), at the tests' scale: its figures come from its own runs and agree with each other."""

from __future__ import annotations

import pytest

from memhil.bench.engine_bench import hooks_overhead
from memhil.bench.registry import BenchContext
from memhil.bench.runner import Scale

pytestmark = pytest.mark.emulator


def test_hook_bench_figures(firmware, tmp_path):
    ctx = BenchContext(Scale.tiny(), firmware("burst", "debug").parent, tmp_path, lambda line: None)
    got = hooks_overhead(ctx)
    assert got["hook_calls_per_s_runs"] == 2 == got["breakpoint_calls_per_s_runs"]
    # burst makes 48,000 calls per virtual second (a window's edge may take one more)
    assert 48_000 * ctx.scale.hooks_virtual_s <= got["hook_calls_min"] <= got["hook_calls_max"] <= 48_000 * ctx.scale.hooks_virtual_s + 2
    assert got["hook_calls_per_s_min"] <= got["hook_calls_per_s"] <= got["hook_calls_per_s_max"]
    assert got["overhead_hooks_ratio_min"] <= got["overhead_hooks_ratio"] <= got["overhead_hooks_ratio_max"]
    # 11 ms of burst: one round of 480 calls at 10 ms, caught by breakpoints, in every run
    assert got["breakpoint_calls_min"] == got["breakpoint_calls_max"] == 480
    assert got["hook_calls_per_s"] > 10 * got["breakpoint_calls_per_s"]
    # where the hooks' wall time goes, from the capture's own counters: the ring is copied while the firmware runs
    # (a live window on QEMU's memory); the decoding is part of the hooks run
    assert got["hook_live_copies_min"] >= 1
    assert 0 <= got["hook_copy_wall_s"] < got["hook_wall_s"] and 0 < got["hook_decode_wall_s"] < got["hook_wall_s"]
    assert got["hook_free_wall_s"] < got["hook_wall_s"]
    assert 0 <= got["hook_decode_running_wall_s_min"] and got["hook_decode_running_wall_s"] <= got["hook_decode_wall_s_max"]
    # CPU time side by side: QEMU's (all its threads, from /proc) runs the same firmware plus the wrappers, but its
    # main loop's wake-ups cost it less while memhil keeps the other core busy (perf: a quarter of a free run's QEMU
    # time is the kernel waking that thread on an idle core), so a short round may show it below the free run's:
    # measured in every round, and within a factor of three of it; memhil's own per call is what its host side costs
    assert got["hook_engine_cpu_ratio_runs"] == 2 and 0.5 < got["hook_engine_cpu_ratio_min"] <= got["hook_engine_cpu_ratio_max"] < 3.0
    assert got["hook_host_cpu_us_per_call_runs"] == 2 and 0 < got["hook_host_cpu_us_per_call_min"]
    assert got["hook_host_cpu_us_per_call_max"] * got["hook_calls_max"] / 1e6 <= 2 * got["hook_wall_s_max"]  # at most 2 cores' worth
    # read at doorbell stops only, the same calls stop the firmware once per ring's worth
    assert got["hook_at_stops_drain_stops_min"] >= got["hook_calls_min"] // 4096
    assert got["hook_at_stops_drain_stops_min"] >= 1 and got["overhead_hooks_at_stops_ratio_runs"] == 2


def test_readme_example_figure(firmware, tmp_path):
    """The README's example figure runs leak_demo under patched hooks in a fresh session per run and counts what it saw."""
    from memhil.bench.engine_bench import readme_hooks

    ctx = BenchContext(Scale.tiny(), firmware("burst", "debug").parent, tmp_path, lambda line: None)
    got = readme_hooks(ctx)
    assert got["readme_hooks_wall_s_runs"] == 2
    assert 0 < got["readme_hooks_wall_s_min"] <= got["readme_hooks_wall_s"] <= got["readme_hooks_wall_s_max"]
    # the same firmware for the same virtual time makes the same calls in every run
    assert got["readme_hooks_calls_min"] == got["readme_hooks_calls_max"] > 100
