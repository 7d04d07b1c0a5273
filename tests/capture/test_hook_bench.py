"""The patched hooks' benchmark function (memhil bench's hook_calls_per_s, overhead_hooks_ratio,
breakpoint_calls_per_s), on a short run: its figures come from its own runs and agree with each other."""

from __future__ import annotations

import pytest

from memhil.bench.engine_bench import hook_capture

pytestmark = pytest.mark.emulator


def test_hook_bench_figures(firmware, tmp_path):
    got = hook_capture(firmware("burst", "debug"), 0.05, tmp_path, repeats=2, breakpoint_virtual_s=0.012)
    runs = got["hook_runs"]
    assert len(runs["hooks"]) == 2 == len(runs["none_wall_s"])
    assert all(h["events"] == runs["hooks"][0]["events"] > 400 for h in runs["hooks"])  # the same calls every run
    lo, hi = got["hook_calls_per_s_spread"]
    assert lo <= got["hook_calls_per_s"] <= hi and got["hook_calls_per_s"] > 0
    assert got["overhead_hooks_ratio_spread"][0] <= got["overhead_hooks_ratio"] <= got["overhead_hooks_ratio_spread"][1]
    # one burst of 480 calls at 10 ms, caught by breakpoints
    assert runs["breakpoints"]["events"] == 480
    assert got["breakpoint_calls_per_s"] == pytest.approx(480 / runs["breakpoints"]["wall_s"])
    assert got["hook_calls_per_s"] > 10 * got["breakpoint_calls_per_s"]
