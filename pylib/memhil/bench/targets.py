"""The performance targets of issues 4, 5 and 7, and checking results against them."""

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
    Target("hook_calls_per_s", ">=", 2000.0, "hooked allocator calls per wall second (issue 4)"),
    Target("trace_events_per_s", ">=", 200_000.0, "trace-capture events per wall second (issue 7)"),
    Target("overhead_trace_ratio", "<=", 1.5, "trace capture wall time / free run (issue 7)"),
    Target("acceleration_factor", ">=", 1000.0, "24 h soak: virtual s per wall s, trace + timeline (issue 4/7)"),
    Target("parse_mb_per_s_1worker", ">=", 100.0, "timeline log parsed per worker, MB/s (issue 7)"),
    Target("symbolize_1m_s", "<", 5.0, "seconds to symbolize 1,000,000 addresses (issue 5)"),
    Target("run_for_overhead_ratio", "<", 1.05, "run_for in steps / one free run (issue 4)"),
)


def evaluate(results: dict[str, object]) -> dict[str, dict[str, object]]:
    """``{key: {target, op, actual, met}}`` for every target (``met`` None when not measured)."""
    out: dict[str, dict[str, object]] = {}
    for t in TARGETS:
        actual = results.get(t.key)
        value = float(actual) if isinstance(actual, (int, float)) else None
        out[t.key] = {"op": t.op, "target": t.value, "actual": value, "met": t.met(value), "what": t.text}
    return out
