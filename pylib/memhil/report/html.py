"""One self-contained HTML page of the memory results of one run or many (a suite, a CI job).

Everything is in the one file: the style, and the pictures as ``data:`` URIs; it loads nothing from the
network and links to nothing, so it can be attached to a CI job, mailed, or opened from a Robot log.

Per run: what ran (firmware, engine, capture, virtual and wall time), the module table with a bar per
module (current and peak against the module's budget when a budget file is given, else against the
largest peak), each growing leak site with its call stacks at ``file:line`` in a collapsible block,
heap integrity, stack high-water marks, and the timeline as a picture: from the run's timeline log
(``timeline/memlog*.bin``) when it kept one, the total, each module and each leak site's own series
highlighted and named in the legend, with a small chart per module; else each leak site's live bytes
at the run's samples. Byte figures are node bytes (what the pool pays, header included), as the
firmware's module statistics count them.
"""

from __future__ import annotations

import base64
import html
import io
import logging
from pathlib import Path
from typing import Any, Iterable, Mapping

from memhil.units import format_bytes, format_duration, format_size

log = logging.getLogger("memhil.report.html")

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:1.2em 2em;color:#222;max-width:1200px}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.25em;border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em;margin:1.2em 0 .4em}
.meta{color:#555;font-size:.92em} code,.mono{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:.92em}
table{border-collapse:collapse;margin:.3em 0} th,td{border:1px solid #ddd;padding:3px 9px;text-align:right;vertical-align:middle;white-space:nowrap}
th{background:#f4f4f4} td.l,th.l{text-align:left}
.bar{position:relative;width:160px;height:14px;background:#eef1f4;border-radius:3px;overflow:hidden}
.bar .cur{position:absolute;left:0;top:0;bottom:0;background:#4c78a8}
.bar .peak{position:absolute;top:0;bottom:0;width:2px;background:#222}
.bar.over .cur{background:#d62728}
.ok{color:#2a7a2a;font-weight:600} .bad{color:#d62728;font-weight:600} .na{color:#777}
.badge{display:inline-block;padding:1px 8px;border-radius:9px;font-size:.85em;margin-right:.4em;color:#fff}
.badge.ok{background:#2a7a2a;color:#fff} .badge.bad{background:#d62728;color:#fff} .badge.na{background:#888;color:#fff}
details{margin:.3em 0 .6em;border:1px solid #e3c7c7;border-radius:4px;padding:.3em .7em;background:#fff8f8}
details summary{cursor:pointer;font-weight:600}
ol.stack{margin:.3em 0 .5em;padding-left:2.2em} ol.stack li{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:.88em}
img.plot{max-width:100%;border:1px solid #ddd}
nav ul{columns:2;font-size:.92em}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def render_report(runs: Iterable[Any], *, title: str = "memhil memory report", budgets: Any = None,
                  pictures: bool = True, subtitle: str | None = None) -> str:
    """The page for ``runs`` (:class:`memhil.results.RunResults`); ``budgets`` a :class:`memhil.gate.Budgets`."""
    runs = list(runs)
    sections = [_run_section(r, budgets=budgets, pictures=pictures, anchor=f"run{i}") for i, r in enumerate(runs)]
    leaking = sum(1 for r in runs if r.leak_sites)
    broken = sum(1 for r in runs if (r.heap or {}).get("checked") and not (r.heap or {}).get("ok"))
    overview = (f"<p>{len(runs)} run(s); "
                + (f"<span class='bad'>{leaking} with growing leak sites</span>" if leaking else "<span class='ok'>no growing leak site</span>")
                + "; " + (f"<span class='bad'>{broken} with a broken heap</span>" if broken else "heap intact where walked") + ".</p>")
    nav = ""
    if len(runs) > 1:
        nav = "<nav><ul>" + "".join(
            f"<li><a href='#run{i}'>{_e(r.name)}</a>{' <span class=bad>leak</span>' if r.leak_sites else ''}</li>" for i, r in enumerate(runs)) + "</ul></nav>"
    sub = f"<p class='meta'>{_e(subtitle)}</p>" if subtitle else ""
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{_CSS}</style></head><body>\n<h1>{_e(title)}</h1>{sub}{overview}{nav}\n" + "\n".join(sections)
            + "\n<p class='meta'>Byte figures are node bytes (what the pool pays per block, header included), "
              "as the firmware's module statistics count them; requested bytes are smaller.</p>\n</body></html>\n")


def render_fragment(run: Any, *, pictures: bool = False) -> str:
    """One run's section with its own style, for embedding in another page (a Robot log)."""
    return f"<div class='memhil'><style>{_scoped_css()}</style>{_run_section(run, budgets=None, pictures=pictures, anchor='memhil-run')}</div>"


def _scoped_css() -> str:
    """The page's style limited to ``div.memhil`` (so a Robot log keeps its own look)."""
    rules = []
    for rule in _CSS.strip().splitlines():
        for part in rule.split("}"):
            if "{" not in part:
                continue
            selectors, body = part.split("{", 1)
            if selectors.strip() == "body":
                continue
            scoped = ",".join(f"div.memhil {sel.strip()}" for sel in selectors.split(","))
            rules.append(f"{scoped}{{{body}}}")
    return "".join(rules)


def write_report(path: str | Path, runs: Iterable[Any], **kwargs: Any) -> Path:
    path = Path(path)
    path.write_text(render_report(runs, **kwargs), encoding="utf-8")
    return path


# -- one run ------------------------------------------------------------------------------------------------
def _run_section(run: Any, *, budgets: Any, pictures: bool, anchor: str) -> str:
    d = run.data
    fw = Path(str(d.get("firmware"))).name if d.get("firmware") else "?"
    virtual = d.get("virtual") or (format_duration(d["virtual_s"]) if d.get("virtual_s") is not None else "?")
    wall = d.get("wall") or (format_duration(d["wall_s"]) if d.get("wall_s") is not None else "?")
    engine = _e(d.get("engine")) + (f" {_e(d.get('engine_version'))}" if d.get("engine_version") else "")
    sites = run.leak_sites
    heap = run.heap or {}
    badges = []
    if sites is None:
        badges.append("<span class='badge na'>leaks not recorded</span>")
    elif sites:
        badges.append(f"<span class='badge bad'>{len(sites)} growing leak site(s)</span>")
    else:
        badges.append("<span class='badge ok'>no growing leak site</span>")
    if heap.get("checked") and heap.get("ok"):
        badges.append("<span class='badge ok'>heap intact</span>")
    elif heap.get("checked"):
        badges.append("<span class='badge bad'>heap corrupted</span>")
    else:
        badges.append("<span class='badge na'>heap not walked</span>")
    parts = [
        f"<section id='{anchor}'><h2>{_e(run.name)}</h2>",
        f"<p class='meta'><code>{_e(fw)}</code> (build <code>{_e(str(d.get('build_id') or '?')[:23])}</code>) on {engine}, "
        f"{_e(d.get('platform'))}, capture <b>{_e(d.get('capture'))}</b>; {_e(virtual)} of virtual time in {_e(wall)} wall.</p>",
        "<p>" + "".join(badges) + "</p>",
        "<h3>Modules</h3>", _module_table(run, budgets),
        "<h3>Leak sites</h3>", _leak_sites(run),
        "<h3>Heap integrity</h3>", _heap(heap, d),
        "<h3>Stacks</h3>", _stacks(d.get("stacks") or {}, budgets),
    ]
    if pictures:
        parts += ["<h3>Timeline</h3>", _timeline(run)]
    parts.append("</section>")
    return "\n".join(parts)


def _bar(current: int | None, peak: int | None, scale: int | None, limit: int | None) -> str:
    if not scale or current is None:
        return "<span class='na'>-</span>"
    cur = min(100.0, 100.0 * current / scale)
    over = limit is not None and ((current or 0) > limit or (peak or 0) > limit)
    peak_mark = f"<div class='peak' style='left:{min(99.5, 100.0 * peak / scale):.1f}%' title='peak'></div>" if peak else ""
    return f"<div class='bar{' over' if over else ''}' role='img' aria-label='{cur:.0f}%'><div class='cur' style='width:{cur:.1f}%'></div>{peak_mark}</div>"


def _module_budget(budgets: Any, entry: Mapping, mid: str) -> Any:
    if budgets is None:
        return None
    try:
        return budgets.for_module(str(entry.get("name") or mid))
    except Exception:  # noqa: BLE001 - a budget file without this module: no limit shown
        return None


def _module_table(run: Any, budgets: Any) -> str:
    modules = run.modules
    if not modules:
        return "<p class='na'>no module figures recorded</p>"
    peaks = [m.get("peak") or m.get("current") or 0 for m in modules.values()]
    default_scale = max(peaks + [1])
    rows = []
    for mid, m in modules.items():
        b = _module_budget(budgets, m, mid)
        limit = getattr(b, "current", None) if b is not None else None
        peak_limit = getattr(b, "peak", None) if b is not None else None
        scale = max(x for x in (limit, peak_limit, m.get("peak"), m.get("current"), 1) if x is not None) if b is not None else default_scale
        budget = " / ".join(format_size(x) for x in (limit, peak_limit) if x is not None) if b is not None else ""
        leak = m.get("leak_per_hour")
        rows.append(
            f"<tr><td class='l'>{_e(m.get('name', mid))}</td><td>{format_bytes(m.get('current'))}</td><td>{format_bytes(m.get('peak'))}</td>"
            f"<td>{format_bytes(m.get('firmware'))}</td>"
            f"<td class='{'bad' if leak else ''}'>{'-' if leak is None else format_size(leak) + '/h'}</td>"
            + (f"<td>{budget or '-'}</td>" if budgets is not None else "")
            + f"<td class='l'>{_bar(m.get('current'), m.get('peak'), scale, limit or peak_limit)}</td></tr>")
    head = ("<tr><th class='l'>module</th><th>current (node bytes)</th><th>peak</th><th>firmware's figure</th><th>leak rate</th>"
            + ("<th>budget current / peak</th>" if budgets is not None else "")
            + f"<th class='l' title=\"{'against the budget' if budgets is not None else 'against the largest peak'}\">current, | peak</th></tr>")
    return f"<table class='modules'>{head}{''.join(rows)}</table>"


def _leak_sites(run: Any) -> str:
    sites = run.leak_sites
    if sites is None:
        return f"<p class='na'>not recorded: {_e(run.data.get('leak_sites_reason', 'no capture'))}</p>"
    if not sites:
        return "<p class='ok'>no growing leak site</p>"
    out = []
    for s in sites:
        first = s.get("first_seen_s")
        head = (f"LEAK <code>{_e(s.get('site'))}</code> in <b>{_e(s.get('function') or '?')}</b>, module {_e(s.get('module_name'))}: "
                f"{format_bytes(s.get('bytes'))} (node bytes) in {s.get('blocks')} blocks, {format_size(s.get('bytes_per_hour') or 0)} per virtual hour"
                + (f", first seen at {format_duration(first)}" if first is not None else ""))
        stacks = []
        for st in s.get("stacks") or []:
            frames = "".join(f"<li>{_frame_html(f)}</li>" for f in st.get("frames") or [])
            stacks.append(f"<p>{format_bytes(st.get('bytes'))} in {st.get('blocks')} blocks allocated at:</p><ol class='stack'>{frames or '<li>(no call stack recorded)</li>'}</ol>")
        out.append(f"<details class='leak' open><summary>{head}</summary>{''.join(stacks) or '<p>(no call stack recorded)</p>'}</details>")
    return "\n".join(out)


def _frame_html(f: Mapping) -> str:
    from memhil.report.frametext import frame_text

    text = _e(frame_text(f))
    if f.get("file") and f.get("line") and f.get("pc"):
        text += f" <span class='na'>{_e(f.get('pc'))}</span>"
    return text


def _heap(heap: Mapping, d: Mapping) -> str:
    if not heap.get("checked"):
        return f"<p class='na'>not walked: {_e(heap.get('reason', 'no heap walk in this run'))}</p>"
    anomalies = d.get("anomaly_count") or 0
    note = f" {anomalies} ledger anomalies (see summary.json)." if anomalies else ""
    if heap.get("ok"):
        return (f"<p class='ok'>intact: {heap.get('nodes', '?')} nodes walked, {format_bytes(heap.get('used'))} used, "
                f"{format_bytes(heap.get('free'))} free.{_e(note)}</p>")
    errors = "".join(f"<li class='mono'>{_e(err)}</li>" for err in (heap.get("errors") or [])[:20])
    return f"<p class='bad'>corrupted:</p><ul>{errors}</ul><p>{_e(note)}</p>"


def _stacks(stacks: Mapping, budgets: Any) -> str:
    if not stacks:
        return "<p class='na'>no stack high-water marks recorded</p>"
    limits = getattr(budgets, "stacks", {}) if budgets is not None else {}
    rows = []
    for name, st in stacks.items():
        used, size = st.get("used"), st.get("size")
        limit = limits.get(name)
        if used is None:
            rows.append(f"<tr><td class='l'>{_e(name)}</td><td>-</td><td>{format_bytes(size)}</td><td>{format_bytes(limit) if limit else '-'}</td>"
                        f"<td class='l na'>not measurable: {_e(st.get('note'))}</td></tr>")
            continue
        rows.append(f"<tr><td class='l'>{_e(name)}</td><td>{format_bytes(used)}</td><td>{format_bytes(size)}</td>"
                    f"<td>{format_bytes(limit) if limit else '-'}</td><td class='l'>{_bar(used, None, size, limit)}</td></tr>")
    return ("<table class='stacks'><tr><th class='l'>stack</th><th>high-water mark</th><th>size</th><th>budget</th>"
            f"<th class='l'>used of size</th></tr>{''.join(rows)}</table>")


# -- pictures ----------------------------------------------------------------------------------------------
def _timeline(run: Any) -> str:
    log_dir = run.path.parent / "timeline"
    names = {int(k): v.get("name") for k, v in run.modules.items() if str(k).isdigit()}
    if log_dir.is_dir() and any(log_dir.glob("memlog*.bin")):
        try:
            png = timeline_png(log_dir, run.leak_sites or [], names, title=f"{run.name}: live memory over virtual time")
            return (f"<img class='plot' alt='live bytes over virtual time, from the timeline log' src='{_png_uri(png)}'>"
                    "<p class='meta'>From the run's timeline log: the total, each module, and each leak site's own bytes (red, "
                    "named in the legend); below, one chart per module on its own scale.</p>")
        except Exception as exc:  # noqa: BLE001 - a damaged log must not cost the rest of the report
            log.warning("timeline picture of %s failed: %s", run.name, exc)
            note = f"<p class='na'>the timeline log could not be drawn: {_e(exc)}</p>"
    else:
        note = ""
    png = samples_png(run)
    if png is None:
        return note + "<p class='na'>no timeline: this run kept no timeline log (Start Timeline Log, or <code>memhil soak</code>) and has no leak site to draw.</p>"
    return note + (f"<img class='plot' alt='leak sites over virtual time, from the run samples' src='{_png_uri(png)}'>"
                   "<p class='meta'>Each leak site's live bytes at the run's samples (this run kept no timeline log).</p>")


def timeline_png(log_dir: Path, leak_sites: list, module_names: Mapping[int, str], *, title: str | None = None) -> bytes:
    from memhil.timeline.export import plot_png
    from memhil.timeline.reader import TimelineReader

    reader = TimelineReader(log_dir, progress=False)
    buf = io.BytesIO()
    plot_png(reader, buf, leak_sites, module_names=module_names, title=title)
    return buf.getvalue()


def samples_png(run: Any) -> bytes | None:
    """Each leak site's live bytes at the run's samples (``summary.json`` alone), or None without a leak site."""
    sites = [s for s in (run.leak_sites or []) if s.get("series")]
    times = (run.data.get("samples") or {}).get("times_s") or []
    if not sites or len(times) < 2:
        return None
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    from memhil.timeline.export import LEAK_COLOR, _bytes_axis, _time_axis

    scale, xlabel = _time_axis(int((times[-1] - times[0]) * 1000))
    fig = Figure(figsize=(10, 3.6), dpi=100, layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    top = 1
    for i, s in enumerate(sites):
        series = s["series"][-len(times):]
        xs = [t * 1000 / scale for t in times[-len(series):]]
        color = LEAK_COLOR if i == 0 else None
        ax.plot(xs, series, drawstyle="steps-post", linewidth=2.4 if i == 0 else 1.6, color=color, marker="o", markersize=3,
                label=f"leak: {s.get('site')} ({s.get('function') or '?'}), module {s.get('module_name')}, {format_bytes(s.get('bytes'))}")
        top = max(top, max(series))
    _bytes_axis(ax, top)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("live node bytes of the site", fontsize=9)
    ax.set_title(f"{run.name}: leak sites at the run's samples", fontsize=11, loc="left")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
