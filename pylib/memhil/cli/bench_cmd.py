"""Run the benchmarks, compare two runs, or make the README's performance table.

`memhil bench` runs every figure (medians of interleaved runs with their spread), prints a table as
it goes with progress lines, and with --json writes every figure, the machine, the QEMU and tool
versions and which targets are met. --quick scales each workload down (a 1 h soak instead of 24 h,
shorter runs) and takes under three minutes; the full run (five 24 h soaks) under twelve on a 2-core machine. Exit
status 0 even when a target is missed (the figures say so); 2 when a figure could not be measured.

`memhil bench --compare A.json B.json` prints two runs side by side (before and after a change).
`memhil bench --table R1.json [R2.json ...] [--readme README.md]` makes the performance table from
result files (one per QEMU), naming the machine and QEMU of each column; with --readme it replaces
the table between the README's bench-table markers.
"""

from __future__ import annotations

import sys
from pathlib import Path

from memhil.bench import REQUIRED_KEYS, Scale, run_bench, write_json
from memhil.bench.registry import FIGURES
from memhil.bench.runner import DEFAULT_FIRMWARE_DIR

NAME = "bench"
HELP = "benchmarks: capture overhead, acceleration, symbolizing, log parsing (JSON with --json, --compare, --table)"


def add_arguments(p) -> None:
    p.add_argument("--quick", action="store_true", help="scaled-down run (1 h soaks, shorter runs), under three minutes")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    p.add_argument("--firmware-dir", default=str(DEFAULT_FIRMWARE_DIR), help="where leak_demo.elf, soak.elf and burst.elf are (debug build)")
    p.add_argument("--only", metavar="FIGURE", nargs="+", help=f"run only these figures (of {', '.join(FIGURES)})")
    p.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="print two results side by side; runs nothing")
    p.add_argument("--table", nargs="+", metavar="RESULT.json", help="print the performance table made from these results; runs nothing")
    p.add_argument("--readme", metavar="FILE", help="with --table: put the table between FILE's bench-table markers")


def run(args) -> int:
    from memhil.bench import report
    from memhil.cli.outputs import check_file
    from memhil.errors import ConfigError

    if args.readme and not args.table:
        raise ConfigError("--readme needs --table", hint="e.g. memhil bench --table bench/qemu-7.2.json --readme README.md")
    if args.compare:
        a, b = (report.load(p) for p in args.compare)
        sys.stdout.write(report.compare(a, b))
        return 0
    if args.table:
        generated = report.table([report.load(p) for p in args.table])
        if args.readme:
            report.replace_in(args.readme, generated)
            print(f"memhil bench: table written into {args.readme}")
        else:
            sys.stdout.write(generated)
        return 0
    json_path = check_file(args.json, "the results file")  # before minutes of measuring, not after
    scale = Scale.quick() if args.quick else Scale.full()
    results = run_bench(scale, firmware_dir=Path(args.firmware_dir), out=sys.stdout, only=tuple(args.only) if args.only else None)
    if not args.only:
        for key in REQUIRED_KEYS:
            results.setdefault(key, None)
    if json_path is not None:
        write_json(results, json_path)
        print(f"memhil bench: results in {args.json}")
    return 2 if results.get("errors") else 0
