"""Timeline exports: valgrind massif (for ``ms_print``), CSV, a PNG plot, and a small HTML page.

The massif writer follows the ``massif.out`` text format as ``ms_print`` (valgrind 3.x) reads
it: ``desc:``/``cmd:``/``time_unit:`` lines, then ``snapshot=N`` blocks with ``time``,
``mem_heap_B``, ``mem_heap_extra_B``, ``mem_stacks_B`` and ``heap_tree`` (``empty``,
``detailed`` or ``peak``); a tree is ``nK: bytes description`` lines, children indented. Heap
bytes here are node bytes (what the pool pays), the figure the timeline tracks.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Mapping

from memhil.errors import ConfigError
from memhil.report.memreport import MemReport, SiteResolver, site_report

if TYPE_CHECKING:
    from memhil.timeline.reader import TimelineReader

PathLike = str | os.PathLike[str]


def _series_or_fail(reader: "TimelineReader") -> list[tuple[int, int]]:
    series = reader.all_time_size()
    if not series:
        raise ConfigError("the timeline is empty, nothing to export", hint="the log files held no readable records")
    return series


def _massif_text(s: str) -> str:
    return s.replace("#", "%23").replace("\n", " ")  # ms_print strips '#' comments


def to_massif(reader: "TimelineReader", path: PathLike, cmd: str = "firmware", resolver: SiteResolver | None = None,
              *, max_snapshots: int = 100) -> int:
    """Write ``path`` in massif format; returns the number of snapshots (the peak one is detailed)."""
    series = _series_or_fail(reader)
    peak_t, _ = reader.peak()
    peak_i = next(i for i, (t, _) in enumerate(series) if t == peak_t)
    if len(series) <= max_snapshots:
        chosen = list(range(len(series)))
    else:
        # the largest local maximum of each of max_snapshots equal runs of intervals (one holds the peak)
        edges = [round(j * len(series) / max_snapshots) for j in range(max_snapshots + 1)]
        chosen = sorted({max(range(a, b), key=lambda i: series[i][1]) for a, b in zip(edges, edges[1:]) if b > a} | {peak_i})
    report = reader.report_at(peak_t, resolver)
    lines = [f"desc: memhil timeline {_massif_text(reader.run_id)} build {_massif_text(reader.build_id)} "
             f"({_massif_text(reader.platform)}, {_massif_text(reader.engine)}); interval {reader.interval_ms} ms, node bytes",
             f"cmd: {_massif_text(cmd)}", "time_unit: ms"]
    for n, i in enumerate(chosen):
        t, value = series[i]
        lines += ["#-----------", f"snapshot={n}", "#-----------", f"time={t}"]
        if i == peak_i:
            heap = sum(r.node_bytes for r in report.rows)
            lines += [f"mem_heap_B={heap}", "mem_heap_extra_B=0", "mem_stacks_B=0", "heap_tree=peak"]
            lines.append(f"n{len(report.rows)}: {heap} (heap allocation functions) malloc/LOS_MemAlloc, live at the peak")
            for row in report.rows:
                pc = min(row.pcs) if row.pcs else 0
                where = f"{row.function or '???'} ({row.file}:{row.line})" if row.file else _massif_text(row.site)
                lines.append(f" n0: {row.node_bytes} 0x{pc:08X}: {_massif_text(where)}")
        else:
            lines += [f"mem_heap_B={value}", "mem_heap_extra_B=0", "mem_stacks_B=0", "heap_tree=empty"]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return len(chosen)


def to_csv(reader: "TimelineReader", path: PathLike, *, fill: bool = False, module_names: Mapping[int, str] | None = None) -> int:
    """Write ``t_ms,total,<module columns>`` (local maxima per interval); returns the number of rows."""
    mods = sorted(reader.modules())
    names = module_names or {}
    series = reader.all_time_size(fill=fill)
    columns = [reader.all_time_size(m, fill=fill) for m in mods]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["t_ms", "total"] + [names.get(m, f"module_{m}") for m in mods])
        for i, (t, total) in enumerate(series):
            w.writerow([t, total] + [col[i][1] for col in columns])
    return len(series)


@dataclass(frozen=True)
class LeakMarker:
    """Where a leak site's growth starts: the oldest block from that site still live at the end."""

    label: str
    t_ms: int
    bytes: int


def leak_markers(reader: "TimelineReader", leak_sites: Iterable[str | int], resolver: SiteResolver | None = None) -> list[LeakMarker]:
    """One marker per leak site (``"file:line"``, a site string from a report, or a caller PC) with blocks live at the end."""
    sites = list(leak_sites)
    if not sites:
        return []
    end_t = reader.t_range_ms[1]
    blocks = reader.live_at(end_t)
    report = site_report(blocks, resolver)
    markers = []
    for site in sites:
        if isinstance(site, int):
            pcs, label = {site}, next((r.site for r in report.rows if site in r.pcs), f"{site:#010x}")
        else:
            row = next((r for r in report.rows if r.site == site or (r.file and site.endswith(f"{os.path.basename(r.file)}:{r.line}"))), None)
            if row is None:
                continue
            pcs, label = row.pcs, row.site
        mine = [b for b in blocks if b.callers and b.callers[0] in pcs]
        if mine:
            markers.append(LeakMarker(label, min(b.t_us for b in mine) // 1000, sum(b.bytes for b in mine)))
    return markers


def _time_axis(span_ms: int) -> tuple[float, str]:
    if span_ms >= 2 * 3600_000:
        return 3600_000.0, "virtual time (h)"
    if span_ms >= 2 * 60_000:
        return 60_000.0, "virtual time (min)"
    return 1000.0, "virtual time (s)"


def plot_png(reader: "TimelineReader", path: PathLike | io.BytesIO, leak_sites: Iterable[str | int] = (), *,
             resolver: SiteResolver | None = None, module_names: Mapping[int, str] | None = None, title: str | None = None) -> list[LeakMarker]:
    """Bytes over virtual time, total and one line per module, leak sites marked; returns the markers drawn."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    series = _series_or_fail(reader)
    lo, hi = series[0][0], series[-1][0]
    scale, xlabel = _time_axis(hi - lo)
    names = module_names or {}
    fig = Figure(figsize=(10, 4.5), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    xs = [t / scale for t, _ in series]
    ax.plot(xs, [v for _, v in series], drawstyle="steps-post", label="total", color="black", linewidth=1.2)
    for m in sorted(reader.modules()):
        ax.plot(xs, [v for _, v in reader.all_time_size(m)], drawstyle="steps-post", linewidth=0.9, label=names.get(m, f"module {m}"))
    markers = leak_markers(reader, leak_sites, resolver)
    for mk in markers:
        ax.axvline(mk.t_ms / scale, color="red", linestyle="--", linewidth=0.8)
        ax.annotate(f"leak: {mk.label}", (mk.t_ms / scale, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                    va="top", ha="right", fontsize=7, color="red")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("live bytes (local max per %d ms)" % reader.interval_ms)
    ax.set_title(title or f"memory timeline, build {reader.build_id} ({reader.platform}, {reader.engine})")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return markers


def to_html(reader: "TimelineReader", path: PathLike, *, leak_sites: Iterable[str | int] = (), resolver: SiteResolver | None = None,
            top: int = 20, module_names: Mapping[int, str] | None = None) -> MemReport:
    """A self-contained page: the plot (embedded PNG) and the top sites at the peak; returns that report."""
    buf = io.BytesIO()
    plot_png(reader, buf, leak_sites, resolver=resolver, module_names=module_names)
    peak_t, peak_b = reader.peak()
    report = reader.report_at(peak_t, resolver)
    e = html.escape
    rows = "\n".join(f"<tr><td>{e(r.site)}</td><td>{e(r.function or '')}</td><td>{r.size}</td><td>{r.blocks}</td><td>{r.node_bytes}</td></tr>"
                     for r in report.rows[:top])
    st = reader.stats
    notes = []
    if st.bad_records or st.undecodable:
        notes.append(f"{st.bad_records} damaged stretches and {st.undecodable} undecodable records were skipped")
    if reader.gaps:
        notes.append("missing log files: " + ", ".join(str(list(g.missing)) for g in reader.gaps))
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>memhil timeline {e(reader.run_id)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child,td:nth-child(2){{text-align:left}}</style>
</head><body>
<h1>Memory timeline</h1>
<p>build <code>{e(reader.build_id)}</code>, {e(reader.platform)} on {e(reader.engine)}, run {e(reader.run_id)};
{st.files} files, {st.events} events, {reader.duration_ms} ms of virtual time.</p>
{''.join(f'<p class="warn">{e(n)}</p>' for n in notes)}
<img alt="live bytes over virtual time" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode('ascii')}">
<h2>Top sites at the peak ({peak_b} bytes at {peak_t} ms)</h2>
<table><tr><th>site</th><th>function</th><th>bytes</th><th>blocks</th><th>node bytes</th></tr>
{rows}
</table>
</body></html>
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return report
