"""Run the benchmarks side by side and check them against the targets.

Prints a table as it goes (each figure against its target) and, with --json, writes every figure,
the machine, the tool versions and which targets are met. --quick scales every workload down (a
1 h soak instead of 24 h, a smaller log, fewer addresses) and finishes in under two minutes; the
scale used is in the JSON. Exit status 0 even when a target is missed (the figures say so); 2 when a
benchmark could not run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from memhil.bench import REQUIRED_KEYS, Scale, run_bench, write_json
from memhil.bench.runner import DEFAULT_FIRMWARE_DIR

NAME = "bench"
HELP = "benchmarks: capture overhead, acceleration, symbolizing, log parsing (JSON with --json)"


def add_arguments(p) -> None:
    p.add_argument("--quick", action="store_true", help="scaled-down run, under two minutes")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    p.add_argument("--firmware-dir", default=str(DEFAULT_FIRMWARE_DIR), help="where leak_demo.elf and soak.elf are (debug build)")


def run(args) -> int:
    scale = Scale.quick() if args.quick else Scale.full()
    results = run_bench(scale, firmware_dir=Path(args.firmware_dir), out=sys.stdout)
    for key in REQUIRED_KEYS:
        results.setdefault(key, None)
    if args.json:
        write_json(results, Path(args.json))
        print(f"memhil bench: results in {args.json}")
    return 2 if results.get("errors") else 0
