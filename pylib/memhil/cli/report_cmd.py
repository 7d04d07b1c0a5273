"""Print the results of runs: per module current and peak bytes (and the firmware's own figure), growing
leak sites with their call stacks, heap integrity, stack high-water marks; as text, JSON or an HTML page.
RUN_DIR is one run directory (holding summary.json) or a tree of them (e.g. out/robot/memhil)."""

from __future__ import annotations

import html
import json
from pathlib import Path

NAME = "report"
HELP = "print or render the memory results of runs"


def add_arguments(p) -> None:
    p.add_argument("rundir", help="a run directory or a tree of them")
    p.add_argument("--format", choices=("text", "json", "html"), default="text", help="output format (default text)")
    p.add_argument("--output", "-o", default=None, help="write to this file instead of standard output")


def run(args) -> int:
    from memhil.cli.outputs import check_file
    from memhil.results import find_runs

    output = check_file(args.output, "the report")
    runs = find_runs(args.rundir)
    if args.format == "json":
        text = json.dumps({r.name: r.data for r in runs}, indent=2)
    elif args.format == "html":
        text = _html(runs)
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
    lines.append(f"  {'module':<8}{'current':>10}{'peak':>10}{'firmware':>10}{'leak/h':>10}")
    for entry in run.modules.values():
        lines.append(f"  {entry.get('name', '?'):<8}{_n(entry.get('current')):>10}{_n(entry.get('peak')):>10}"
                     f"{_n(entry.get('firmware')):>10}{_n(entry.get('leak_per_hour')):>10}")
    sites = run.leak_sites
    if sites is None:
        lines.append(f"  leaks: not recorded ({d.get('leak_sites_reason', 'no capture')})")
    elif not sites:
        lines.append("  leaks: no growing leak site")
    for site in sites or ():
        lines.append(f"  LEAK {site['site']} ({site.get('function')}) module {site.get('module_name')}: {site['bytes']} B in "
                     f"{site['blocks']} blocks, {site['bytes_per_hour']:.0f} B/h")
        for stack in (site.get("stacks") or [])[:1]:
            lines += [f"      at {f.get('function')} ({f.get('file')}:{f.get('line')})" for f in stack.get("frames", [])[:8]]
    heap = run.heap or {}
    lines.append("  heap: " + ("intact" if heap.get("ok") else "; ".join(heap.get("errors") or [heap.get("reason", "not walked")])))
    for name, st in (d.get("stacks") or {}).items():
        used = st.get("used")
        lines.append(f"  stack {name}: " + (f"high-water {used} of {st.get('size')} B" if used is not None else f"not measurable ({st.get('note')})"))
    return "\n".join(lines)


def _n(value) -> str:
    return "-" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))


def _html(runs) -> str:
    body = "".join(f"<h2>{html.escape(r.name)}</h2><pre>{html.escape(_text(r))}</pre>" for r in runs)
    return f"<!doctype html><html><head><meta charset='utf-8'><title>memhil report</title></head><body><h1>memhil report</h1>{body}</body></html>"
