"""Benchmarks behind ``memhil bench`` (DESIGN.md, Performance): ratios and rates taken side by
side in one run on one machine, checked against the targets of issues 4, 5 and 7.

``run_bench(Scale.full() | Scale.quick(), out=sys.stdout) -> dict`` runs them all;
:mod:`.engine_bench` (emulator), :mod:`.offline` (ELF, symbolizer, timeline), :mod:`.targets`.
"""

from memhil.bench.runner import Scale, run_bench, write_json
from memhil.bench.targets import TARGETS, Target, evaluate

__all__ = ["Scale", "TARGETS", "Target", "evaluate", "run_bench", "write_json"]

#: keys every result holds (None when its step failed)
REQUIRED_KEYS = (
    "hook_calls_per_s", "trace_events_per_s", "overhead_hooks_ratio", "overhead_trace_ratio", "soak_virtual_s", "soak_wall_s",
    "acceleration_factor", "run_for_overhead_ratio", "symbolize_addrs_per_s", "elf_load_s", "parse_mb_per_s_1worker",
    "parse_mb_per_s_2workers", "reader_peak_rss_mb", "machine", "versions", "targets",
)
