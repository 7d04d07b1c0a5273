"""The performance targets, and checking results against them (medians; see :mod:`memhil.bench.stats`)."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Target:
    key: str
    op: str  # ">=", "<=", "<"
    value: float
    text: str  # what it means, for the table

    def met(self, actual: float | None) -> bool | None:
        if actual is None:
            return None
        return _OPS[self.op](actual, self.value)


_OPS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, "<": operator.lt, ">": operator.gt}

TARGETS: tuple[Target, ...] = (
    Target("hook_calls_per_s", ">=", 50_000.0, "patched-hook allocator calls per wall second (burst)"),
    Target("overhead_hooks_ratio", "<=", 1.5, "patched hooks wall time / free run (burst)"),
    Target("readme_hooks_wall_s", "<=", 10.0, "the README's Robot example with capture=hooks: Run For 10 min, wall s"),
    Target("trace_events_per_s", ">=", 200_000.0, "trace-capture events per wall second (burst)"),
    Target("overhead_trace_ratio", "<=", 1.5, "trace capture wall time / free run (burst)"),
    Target("acceleration_factor", ">=", 1000.0, "24 h soak: virtual s per wall s, trace + timeline log"),
    Target("parse_mb_per_s_1worker", ">=", 100.0, "recorded soak log parsed per worker, MB/s"),
    Target("symbolize_addrs_per_s", ">=", 200_000.0, "distinct addresses symbolized per second, cold cache"),
    Target("run_for_ms_per_call", "<=", 0.5, "what one run_for call adds, ms"),
)


def evaluate(results: dict[str, object]) -> dict[str, dict[str, object]]:
    """``{key: {target, op, actual, met}}`` for every target (``met`` None when not measured)."""
    out: dict[str, dict[str, object]] = {}
    for t in TARGETS:
        actual = results.get(t.key)
        value = float(actual) if isinstance(actual, (int, float)) else None
        out[t.key] = {"op": t.op, "target": t.value, "actual": value, "met": t.met(value), "what": t.text}
    return out
