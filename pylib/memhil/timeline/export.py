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


@dataclass(frozen=True)
class LeakSeries:
    """A leak site's own curve: node bytes of its blocks still live at the end, summed by the time each was
    allocated (what the site leaked up to that time). ``module`` is the module the blocks were charged to."""

    label: str
    function: str | None
    module: int | None
    points: tuple[tuple[int, int], ...]  # (t_ms, bytes leaked so far), rising

    @property
    def marker(self) -> LeakMarker:
        return LeakMarker(self.label, self.points[0][0], self.points[-1][1])

    @property
    def legend(self) -> str:
        return f"leak: {self.label}" + (f" ({self.function})" if self.function and self.function not in self.label else "")



def leak_series(reader: "TimelineReader", leak_sites: Iterable[str | int | Mapping], resolver: SiteResolver | None = None) -> list[LeakSeries]:
    """One series per leak site with blocks live at the end of the log. A site is ``"file:line"`` (a site string
    of a report, matched by its end), a caller PC, or a leak-site entry of ``summary.json`` (``site``,
    ``function``, ``pcs`` as hex strings: matched by its PCs, so no ELF is needed)."""
    sites = list(leak_sites)
    if not sites:
        return []
    end_t = reader.t_range_ms[1] + reader.interval_ms
    blocks = _live_at_end(reader)
    report = None
    out = []
    for site in sites:
        function = None
        if isinstance(site, Mapping):
            pcs = {int(p, 16) if isinstance(p, str) else int(p) for p in site.get("pcs") or () if p is not None}
            label, function = str(site.get("site")), site.get("function")
        elif isinstance(site, int):
            if report is None:
                report = site_report(blocks, resolver)
            row = next((r for r in report.rows if site in r.pcs), None)
            pcs, label, function = {site}, row.site if row else f"{site:#010x}", row.function if row else None
        else:
            if report is None:
                report = site_report(blocks, resolver)
            row = next((r for r in report.rows if r.site == site or (r.file and site.endswith(f"{os.path.basename(r.file)}:{r.line}"))), None)
            if row is None:
                continue
            pcs, label, function = row.pcs, row.site, row.function
        mine = sorted((b for b in blocks if b.callers and b.callers[0] in pcs), key=lambda b: b.t_us)
        if not mine:
            continue
        points, total = [], 0
        for b in mine:
            total += b.bytes
            t = b.t_us // 1000
            if points and points[-1][0] == t:
                points[-1] = (t, total)
            else:
                points.append((t, total))
        points.append((end_t, total))
        modules = {b.module for b in mine}
        out.append(LeakSeries(label, function, modules.pop() if len(modules) == 1 else None, tuple(points)))
    return out


def _live_at_end(reader: "TimelineReader") -> list:
    """Blocks live after the log's last event (``live_at`` stands for the last interval's local maximum,
    which may come before that interval's last allocations)."""
    from memhil.timeline.scan import live_blocks

    return live_blocks(reader.files[reader.end_file[-1]], reader.end_pos[-1])


def leak_markers(reader: "TimelineReader", leak_sites: Iterable[str | int | Mapping], resolver: SiteResolver | None = None) -> list[LeakMarker]:
    """One marker per leak site (``"file:line"``, a site string from a report, or a caller PC) with blocks live at the end."""
    return [s.marker for s in leak_series(reader, leak_sites, resolver)]


def _time_axis(span_ms: int) -> tuple[float, str]:
    if span_ms >= 2 * 3600_000:
        return 3600_000.0, "virtual time (h)"
    if span_ms >= 2 * 60_000:
        return 60_000.0, "virtual time (min)"
    return 1000.0, "virtual time (s)"


LEAK_COLOR = "#d62728"
#: modules drawn (each with its own small chart), the lowest ids first
MAX_MODULES = 8


def _bytes_axis(ax, top: float) -> None:
    """Ticks on round binary sizes (256 B, 1 KiB, 4 KiB...), labelled in B/KiB/MiB."""
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    from memhil.units import format_size

    step = 1
    while top / step > 6:
        step *= 2
    ax.set_ylim(bottom=0, top=max(top * 1.08, step))
    ax.yaxis.set_major_locator(MultipleLocator(step))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_size(int(v), precision=2) if v >= 0 else ""))


def plot_png(reader: "TimelineReader", path: PathLike | io.BytesIO, leak_sites: Iterable[str | int | Mapping] = (), *,
             resolver: SiteResolver | None = None, module_names: Mapping[int, str] | None = None, title: str | None = None,
             max_modules: int = MAX_MODULES) -> list[LeakMarker]:
    """Live node bytes over virtual time: on top the total, each module, and each leak site's own series (thick,
    red, named in the legend); below, a small chart per module on its own scale, so a small module's growth
    is not hidden under a large one. Returns the leak markers (where each site's growth starts)."""
    return _draw(reader, path, leak_series(reader, leak_sites, resolver), module_names=module_names, title=title,
                 max_modules=max_modules)


def _draw(reader: "TimelineReader", path: PathLike | io.BytesIO, leaks: list[LeakSeries], *,
          module_names: Mapping[int, str] | None, title: str | None, max_modules: int) -> list[LeakMarker]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    series = _series_or_fail(reader)
    lo, hi = series[0][0], series[-1][0]
    scale, xlabel = _time_axis(hi - lo)
    names = module_names or {}
    mods = sorted(reader.modules())[:max_modules]
    ncols = min(max(len(mods), 1), 4)
    nrows = -(-len(mods) // ncols) if mods else 0
    fig = Figure(figsize=(10, 4.4 + 1.9 * nrows), dpi=100, layout="constrained")
    grid = fig.add_gridspec(1 + nrows, ncols, height_ratios=[3.0] + [1.4] * nrows)
    ax = fig.add_subplot(grid[0, :])
    xs = [t / scale for t, _ in series]
    ax.plot(xs, [v for _, v in series], drawstyle="steps-post", label="total", color="black", linewidth=1.2)
    colors = matplotlib.colormaps["tab10"].colors
    palette = [c for c in colors if c != matplotlib.colors.to_rgb(LEAK_COLOR)]
    module_series = {m: reader.all_time_size(m) for m in mods}
    for i, m in enumerate(mods):
        ax.plot(xs, [v for _, v in module_series[m]], drawstyle="steps-post", linewidth=0.8, alpha=0.8,
                color=palette[i % len(palette)], label=names.get(m, f"module {m}"))
    for lk in leaks:
        ax.plot([t / scale for t, _ in lk.points], [b for _, b in lk.points], drawstyle="steps-post", color=LEAK_COLOR,
                linewidth=2.6, label=f"{lk.legend}, {lk.points[-1][1]:,} B")
        ax.axvline(lk.points[0][0] / scale, color=LEAK_COLOR, linestyle="--", linewidth=0.8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"live node bytes (max per {reader.interval_ms} ms)", fontsize=9)
    _bytes_axis(ax, max(v for _, v in series))
    import textwrap

    heading = title or f"memory timeline: {reader.platform} on {reader.engine}, build {reader.build_id[:16]}"
    ax.set_title(textwrap.fill(heading, 95), fontsize=11, loc="left")  # wrapped, never cut at the figure's edge
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8, ncols=2 if len(mods) + len(leaks) > 5 else 1, framealpha=0.85)
    for i, m in enumerate(mods):
        sub = fig.add_subplot(grid[1 + i // ncols, i % ncols])
        sub.plot(xs, [v for _, v in module_series[m]], drawstyle="steps-post", linewidth=0.9, color=palette[i % len(palette)])
        mine = [lk for lk in leaks if lk.module == m]
        for lk in mine:
            sub.plot([t / scale for t, _ in lk.points], [b for _, b in lk.points], drawstyle="steps-post", color=LEAK_COLOR, linewidth=2.0)
        name = names.get(m, f"module {m}")
        sub.set_title(f"{name}" + (" — leaking" if mine else ""), fontsize=9, color=LEAK_COLOR if mine else "black", loc="left")
        sub.tick_params(labelsize=7)
        _bytes_axis(sub, max([v for _, v in module_series[m]] + [lk.points[-1][1] for lk in mine] + [1]))
        sub.grid(True, alpha=0.3)
    fig.savefig(path, format="png")
    return [lk.marker for lk in leaks]


def to_html(reader: "TimelineReader", path: PathLike, *, leak_sites: Iterable[str | int | Mapping] = (), resolver: SiteResolver | None = None,
            top: int = 20, module_names: Mapping[int, str] | None = None, title: str | None = None,
            picture: bytes | None = None) -> MemReport:
    """A self-contained page: the plot (embedded PNG), the leak sites with what each leaked and since when,
    and the top sites at the peak; returns the report at the peak. ``picture`` is the plot when the caller
    has drawn it already (:func:`plot_png` of the same arguments); else it is drawn here."""
    from memhil.units import format_bytes, format_duration

    leaks = leak_series(reader, leak_sites, resolver)
    if picture is None:
        buf = io.BytesIO()
        _draw(reader, buf, leaks, module_names=module_names, title=title, max_modules=MAX_MODULES)
        picture = buf.getvalue()
    peak_t, peak_b = reader.peak()
    report = reader.report_at(peak_t, resolver)
    e = html.escape
    names = module_names or {}
    rows = "\n".join(f"<tr><td>{e(r.site)}</td><td>{e(r.function or '')}</td><td>{format_bytes(r.size)}</td><td>{format_bytes(r.node_bytes)}</td><td>{r.blocks}</td></tr>"
                     for r in report.rows[:top])
    leak_rows = "\n".join(
        f"<tr class='leak'><td>{e(lk.label)}</td><td>{e(lk.function or '')}</td><td>{e(str(names.get(lk.module, f'module {lk.module}')) if lk.module is not None else '?')}</td>"
        f"<td>{format_bytes(lk.points[-1][1])}</td><td>{format_duration(lk.points[0][0] / 1000)}</td></tr>" for lk in leaks)
    leak_table = (f"<h2>Leak sites</h2><table><tr><th>site</th><th>function</th><th>module</th><th>node bytes leaked</th><th>since</th></tr>{leak_rows}</table>"
                  if leaks else "<h2>Leak sites</h2><p>none given, or none with blocks live at the end of the log</p>")
    st = reader.stats
    notes = []
    if st.bad_records or st.undecodable:
        notes.append(f"{st.bad_records} damaged stretches and {st.undecodable} undecodable records were skipped")
    if reader.gaps:
        notes.append("missing log files: " + ", ".join(str(list(g.missing)) for g in reader.gaps))
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>memhil timeline {e(reader.run_id)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child,td:nth-child(2){{text-align:left}}tr.leak td{{color:{LEAK_COLOR};font-weight:600}}img{{max-width:100%}}</style>
</head><body>
<h1>Memory timeline</h1>
<p>build <code>{e(reader.build_id)}</code>, {e(reader.platform)} on {e(reader.engine)}, run {e(reader.run_id)};
{st.files} files, {st.events:,} events, {format_duration(reader.duration_ms / 1000)} of virtual time.</p>
{''.join(f'<p class="warn">{e(n)}</p>' for n in notes)}
<img alt="live bytes over virtual time" src="data:image/png;base64,{base64.b64encode(picture).decode('ascii')}">
{leak_table}
<h2>Top sites at the peak ({format_bytes(peak_b)} of node bytes at {format_duration(peak_t / 1000)})</h2>
<table><tr><th>site</th><th>function</th><th>requested bytes</th><th>node bytes</th><th>blocks</th></tr>
{rows}
</table>
</body></html>
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return report
