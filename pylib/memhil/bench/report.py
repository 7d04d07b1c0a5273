"""Bench results side by side: two runs compared (``memhil bench --compare A.json B.json``) and the
README's performance table made from one or more result files (``memhil bench --table``, one file per
QEMU), never typed by hand. Every cell is a median with its spread, and each column names the QEMU,
the machine and the scale its figures came from.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from memhil.bench.stats import is_spread_key
from memhil.bench.targets import TARGETS
from memhil.errors import ConfigError

#: the README table's markers; ``--table --readme FILE`` replaces what lies between them
BEGIN, END = "<!-- bench-table begin -->", "<!-- bench-table end -->"


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    unit: str = ""  # appended to the value ("x", " ms", ...)


#: the figures the table shows, in order (a result without one shows "not measured")
ROWS: tuple[Row, ...] = (
    Row("trace_events_per_s", "trace capture on burst (48,000 events per virtual s), events/s"),
    Row("overhead_trace_ratio", "trace capture wall / free run (burst)", "x"),
    Row("hook_calls_per_s", "patched-hook allocator calls/s (burst)"),
    Row("overhead_hooks_ratio", "patched hooks wall / free run (burst)", "x"),
    Row("hook_free_wall_s", "burst free run, wall (the hooks run's virtual time)", " s"),
    Row("hook_wall_s", "burst with patched hooks, wall", " s"),
    Row("hook_drain_stops", "patched hooks: drain stops per run (the firmware found the ring full)"),
    Row("hook_live_copies", "patched hooks: ring copies while the firmware ran (live window)"),
    Row("hook_copy_wall_s", "patched hooks: wall with the target halted copying the ring", " s"),
    Row("hook_decode_wall_s", "patched hooks: wall decoding records and feeding the ledger", " s"),
    Row("hook_decode_running_wall_s", "patched hooks: of which while the target ran (the rest with it halted)", " s"),
    Row("hook_engine_cpu_ratio", "patched hooks: QEMU's CPU time / the free run's", "x"),
    Row("hook_host_cpu_us_per_call", "patched hooks: memhil's CPU time per call", " µs"),
    Row("overhead_hooks_at_stops_ratio", "patched hooks read at doorbell stops only (live_memory off), wall / free run", "x"),
    Row("hook_at_stops_drain_stops", "patched hooks read at doorbell stops only: drain stops per run"),
    Row("breakpoint_calls_per_s", "allocator calls/s with capture=breakpoints (burst)"),
    Row("readme_hooks_wall_s", "the README's example: leak_demo, capture=hooks, Run For 10 min, wall", " s"),
    Row("readme_hooks_calls", "the README's example: allocator calls in its 10 min"),
    Row("acceleration_factor", "soak app with trace + timeline log (24 h virtual in a full run), virtual / wall", "x"),
    Row("soak_wall_s", "soak app (24 h virtual in a full run), wall", " s"),
    Row("run_for_ms_per_call", "what one run_for call adds", " ms"),
    Row("run_for_overhead_ratio", "run_for in 1 s steps / one call (information)", "x"),
    Row("symbolize_addrs_per_s", "distinct addresses symbolized/s, cold cache"),
    Row("symbolize_distinct", "distinct addresses (halfwords of .text)"),
    Row("symbolize_cached_addrs_per_s", "addresses symbolized/s, warm cache"),
    Row("host_trace_us_per_event", "host per event: trace drain to ledger", " µs"),
    Row("host_decode_us_per_event", "host per event: decode", " µs"),
    Row("host_ledger_us_per_event", "host per event: ledger", " µs"),
    Row("host_soak_us_per_event", "host per event: decode + timeline log + ledger", " µs"),
    Row("parse_mb_per_s_1worker", "recorded soak log parsed, 1 worker, MB/s"),
    Row("parse_mb_per_s_2workers", "recorded soak log parsed, 2 workers, MB/s"),
    Row("parse_speedup_2workers", "parse speed-up with 2 workers", "x"),
    Row("reader_peak_rss_mb", "reader peak RSS", " MB"),
    Row("burst_parse_mb_per_s_1worker", "recorded burst log parsed, 1 worker, MB/s"),
    Row("burst_parse_mb_per_s_2workers", "recorded burst log parsed, 2 workers, MB/s"),
    Row("elf_load_s", "ELF open", " s"),
    Row("elf_lines_s", "ELF line index", " s"),
)
_TARGETS = {t.key: t for t in TARGETS}


def load(path: str | Path) -> dict:
    """A ``memhil bench --json`` result; a clear error for a missing, unreadable or foreign file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"bench result {path} does not exist", hint="write one with: memhil bench --json FILE") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"bench result {path} is not readable JSON: {exc}", hint="give a file written by memhil bench --json") from None
    if not isinstance(data, dict) or "machine" not in data or "versions" not in data:
        raise ConfigError(f"{path} is not a memhil bench result (no machine or versions)", hint="give a file written by memhil bench --json")
    data["_path"] = str(path)
    return data


def number(value: object, unit: str = "") -> str:
    """A figure as every bench output shows it (the live table, ``--table``, ``--compare``): thousands
    separated, three significant digits below 10."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    v = float(value)
    if isinstance(value, int) or abs(v) >= 100:
        text = f"{v:,.0f}"
    elif abs(v) >= 10:
        text = f"{v:,.1f}"
    else:
        text = f"{v:.3g}"
    return text + unit


def cell(result: dict, key: str, unit: str = "") -> str:
    """``median [min–max]`` (spread when more than one run), or "not measured"."""
    value = result.get(key)
    if value is None:
        return "not measured"
    text = number(value, unit)
    lo, hi, runs = result.get(f"{key}_min"), result.get(f"{key}_max"), result.get(f"{key}_runs")
    if isinstance(runs, int) and runs > 1 and lo is not None and hi is not None:
        text += f" [{number(lo)}–{number(hi)}]"
    return text


def qemu_version(result: dict) -> str:
    """The QEMU the figures came from: the engine's own answer (QMP), else ``qemu-system-arm --version``."""
    v = result.get("versions") or {}
    if v.get("qemu_engine"):
        return "QEMU " + str(v["qemu_engine"]).split(" (")[0]
    m = re.search(r"version (\S+)", str(v.get("qemu") or ""))
    return f"QEMU {m.group(1)}" if m else "QEMU ?"


def machine(result: dict) -> str:
    m = result.get("machine") or {}
    mem = f", {round(m['memory_mb'] / 1024)} GiB" if m.get("memory_mb") else ""
    return f"{m.get('cpu_model', '?')}, {m.get('cores', '?')} cores{mem}, Linux {m.get('kernel', '?')}"


def runs_of(result: dict) -> str:
    scale = result.get("scale") or {}
    return f"{scale.get('name', '?')} scale, {scale.get('runs', '?')} runs per figure"


def table(results: Sequence[dict]) -> str:
    """The README's performance table (markdown), one value column per result, with the source lines."""
    if not results:
        raise ConfigError("no bench results given", hint="e.g. memhil bench --table bench/qemu-7.2.json bench/qemu-10.0.json")
    heads = []
    for i, r in enumerate(results):
        scale = (r.get("scale") or {}).get("name")
        head = qemu_version(r) + (f", {scale} run" if scale != "full" else "")
        heads.append(f"{head} ({i + 1})" if len(results) > 1 else head)
    lines = [f"<!-- generated by `memhil bench --table {' '.join(Path(r['_path']).name if '_path' in r else '?' for r in results)}`;"
             " do not edit by hand -->", ""]
    lines.append("| figure | target | " + " | ".join(heads) + " |")
    lines.append("|---|---|" + "---|" * len(results))
    for row in ROWS:
        if all(r.get(row.key) is None for r in results):
            continue
        t = _TARGETS.get(row.key)
        target = f"{t.op} {number(t.value)}" if t else ""
        cells = []
        for r in results:
            text = cell(r, row.key, row.unit)
            if t is not None and r.get(row.key) is not None:
                text += " (met)" if t.met(float(r[row.key])) else " (not met)"
            cells.append(text)
        lines.append(f"| {row.label} | {target} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Medians with [min–max] of the runs; ratios from interleaved pairs (free, captured, free, …).")
    for head, r in zip(heads, results):
        src = f"`{Path(r['_path']).as_posix()}`" if "_path" in r else "this run"
        binary = (r.get("versions") or {}).get("qemu_binary")
        lines.append(f"- {head}: {src}, {r.get('date', '?')}, {runs_of(r)}; {machine(r)}; "
                     f"{(r.get('versions') or {}).get('qemu') or 'QEMU ?'}" + (f" (`{binary}`)" if binary else "")
                     + f"; Python {(r.get('versions') or {}).get('python', '?')}.")
    kinds = {r.get("parse_log_kind") for r in results if r.get("parse_log_kind")}
    for kind in sorted(kinds):  # type: ignore[type-var]
        lines.append(f"- Parsed soak log: {kind}.")
    errors = [(h, name) for h, r in zip(heads, results) for name in (r.get("errors") or {})]
    if errors:
        lines.append("- Failed (not measured): " + ", ".join(f"{name} ({h})" for h, name in errors) + ".")
    return "\n".join(lines) + "\n"


def replace_in(readme: str | Path, generated: str) -> None:
    """Put ``generated`` between the table markers of ``readme``; a clear error when the markers are not there once."""
    path = Path(readme)
    text = path.read_text()
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ConfigError(f"{path} needs exactly one {BEGIN} line followed by one {END} line",
                          hint="add the two markers where the performance table goes")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{generated}{END}{tail}")


def compare(a: dict, b: dict) -> str:
    """Two runs side by side (before, after): every figure with its spread, the change, and whether the two
    spreads overlap ("~": within the runs' spread)."""
    out = []
    for name, r in (("A", a), ("B", b)):
        out.append(f"{name}: {r.get('_path', '?')}  {r.get('date', '?')}  {qemu_version(r)}  {machine(r)}  ({runs_of(r)})")
    keys = [row.key for row in ROWS]
    extra = sorted(k for k in set(a) | set(b) if k not in keys and not k.startswith("_") and not is_spread_key(k)
                   and all(isinstance(r.get(k), (int, float, type(None))) and not isinstance(r.get(k), bool) for r in (a, b))
                   and (a.get(k) is not None or b.get(k) is not None) and k != "total_wall_s")
    width = max(len(k) for k in keys + extra)
    out.append(f"{'figure':<{width}}  {'A':>28}  {'B':>28}  {'B/A':>8}")
    for key in [k for k in keys if a.get(k) is not None or b.get(k) is not None] + extra:
        va, vb = a.get(key), b.get(key)
        change = ""
        if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and va:
            change = f"{(vb / va - 1) * 100:+.1f}%"
            if _overlap(a, b, key):
                change += " ~"
        t = _TARGETS.get(key)
        verdict = ""
        if t is not None:
            marks = ["met" if isinstance(v, (int, float)) and t.met(float(v)) else "-" if v is None else "not met" for v in (va, vb)]
            verdict = f"  target {t.op} {number(t.value)}: {marks[0]} -> {marks[1]}"
        out.append(f"{key:<{width}}  {cell(a, key):>28}  {cell(b, key):>28}  {change:>8}{verdict}")
    out.append("~: the two runs' [min–max] overlap, so the change is within their spread")
    return "\n".join(out) + "\n"


def _overlap(a: dict, b: dict, key: str) -> bool:
    lo_a, hi_a, lo_b, hi_b = a.get(f"{key}_min"), a.get(f"{key}_max"), b.get(f"{key}_min"), b.get(f"{key}_max")
    if None in (lo_a, hi_a, lo_b, hi_b):
        return False
    return not (hi_a < lo_b or hi_b < lo_a)  # type: ignore[operator]
