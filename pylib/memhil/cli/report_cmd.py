"""Print the results of runs: per module current and peak bytes (and the firmware's own figure), growing
leak sites with their call stacks, heap integrity, stack high-water marks; as text, JSON or an HTML page.
RUN_DIR is one run directory (holding summary.json) or a tree of them (e.g. out/robot/memhil).

--format html writes one self-contained page (pictures inlined, nothing loaded from the network): the
module table with bars (against --budgets when given), leak sites with collapsible call stacks, heap
integrity, stack high-water marks and the timeline picture of each run. Byte figures are node bytes."""

from __future__ import annotations

import json
from pathlib import Path

from memhil.report.frametext import leak_site_lines
from memhil.units import format_bytes

NAME = "report"
HELP = "print or render the memory results of runs"


def add_arguments(p) -> None:
    p.add_argument("rundir", help="a run directory or a tree of them")
    p.add_argument("--format", choices=("text", "json", "html"), default="text", help="output format (default text)")
    p.add_argument("--output", "-o", default=None, help="write to this file instead of standard output")
    p.add_argument("--budgets", default=None, help="budget file (ci/budgets.toml format): the HTML bars show each module against it")
    p.add_argument("--title", default=None, help="title of the HTML page (default: memhil memory report: RUN_DIR)")


def run(args) -> int:
    from memhil.cli.outputs import check_file
    from memhil.results import find_runs

    output = check_file(args.output, "the report")
    runs = find_runs(args.rundir)
    budgets = None
    if args.budgets:
        from memhil.gate import Budgets

        budgets = Budgets.load(args.budgets)
    if args.format == "json":
        text = json.dumps({r.name: r.data for r in runs}, indent=2)
    elif args.format == "html":
        from memhil.report.html import render_report

        text = render_report(runs, title=args.title or f"memhil memory report: {args.rundir}", budgets=budgets)
    else:
        text = "\n\n".join(_text(r) for r in runs)
    if args.output:
        output.write_text(text, encoding="utf-8")
        print(f"memhil report: wrote {args.output} ({len(runs)} run(s))")
    else:
        print(text)
    return 0


def _text(run) -> str:
    d = run.data
    lines = [f"== {run.name}: {Path(str(d.get('firmware'))).name} on {d.get('engine')}, capture {d.get('capture')}, "
             f"{d.get('virtual') or d.get('virtual_s')} virtual in {d.get('wall') or d.get('wall_s')} wall"]
    lines.append(f"  {'module':<8}{'current':>12}{'peak':>12}{'firmware':>12}{'leak/h':>12}   (node bytes)")
    for entry in run.modules.values():
        lines.append(f"  {entry.get('name', '?'):<8}{_n(entry.get('current')):>12}{_n(entry.get('peak')):>12}"
                     f"{_n(entry.get('firmware')):>12}{_n(entry.get('leak_per_hour')):>12}")
    sites = run.leak_sites
    if sites is None:
        lines.append(f"  leaks: not recorded ({d.get('leak_sites_reason', 'no capture')})")
    elif not sites:
        lines.append("  leaks: no growing leak site")
    for site in sites or ():
        lines += leak_site_lines(site)
    heap = run.heap or {}
    lines.append("  heap: " + ("intact" if heap.get("ok") else "; ".join(heap.get("errors") or [heap.get("reason", "not walked")])))
    for name, st in (d.get("stacks") or {}).items():
        used = st.get("used")
        lines.append(f"  stack {name}: " + (f"high-water {format_bytes(used)} of {format_bytes(st.get('size'))}" if used is not None else f"not measurable ({st.get('note')})"))
    return "\n".join(lines)


def _n(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}"
    return f"{value:,}"
