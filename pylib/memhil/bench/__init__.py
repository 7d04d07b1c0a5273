"""Benchmarks behind ``memhil bench`` (DESIGN.md, Performance): medians of repeated runs with their
spread, ratios from interleaved pairs, on workloads users run (recorded soak and burst logs).

``run_bench(Scale.full() | Scale.quick(), out=sys.stdout) -> dict`` runs every figure registered
in :mod:`.registry` (:mod:`.engine_bench` on the emulator, :mod:`.offline` without one);
:mod:`.report` sets runs side by side (``--compare``) and makes the README's table (``--table``).
"""

from memhil.bench.runner import Scale, run_bench, write_json
from memhil.bench.targets import TARGETS, Target, evaluate

__all__ = ["Scale", "TARGETS", "Target", "evaluate", "run_bench", "write_json"]

#: keys every result holds (None when its figure failed); each figure also has _min, _max and _runs
REQUIRED_KEYS = (
    "hook_calls_per_s", "breakpoint_calls_per_s", "overhead_hooks_ratio", "readme_hooks_wall_s", "trace_events_per_s", "overhead_trace_ratio",
    "soak_virtual_s", "soak_wall_s", "acceleration_factor", "run_for_ms_per_call", "run_for_overhead_ratio",
    "symbolize_addrs_per_s", "symbolize_cached_addrs_per_s", "symbolize_distinct", "elf_load_s",
    "host_trace_us_per_event", "host_decode_us_per_event", "host_ledger_us_per_event",
    "parse_mb_per_s_1worker", "parse_mb_per_s_2workers", "parse_speedup_2workers", "reader_peak_rss_mb", "parse_log_kind",
    "machine", "versions", "targets",
)
