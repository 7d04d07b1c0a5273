"""Text (``/proc/PID/maps`` style), HTML and PNG views of a :class:`TargetMap`.

The text form follows proc(5) ``/proc/[pid]/maps``: one line per region, address range first
(``start-end`` in hex, end exclusive), then permissions, then what the region is.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Iterable

from memhil.targetmap.model import TargetMap

if TYPE_CHECKING:
    from memhil.heap.walker import HeapWalk

_COLORS = {
    "vectors": "#8c564b", "text": "#d62728", "rodata": "#ff7f0e", "load": "#bcbd22", "data": "#1f77b4",
    "bss": "#17becf", "heap": "#2ca02c", "stack": "#9467bd", "section": "#7f7f7f", "free": "#eeeeee",
}


def _used_text(used: int | None, size: int) -> str:
    if used is None:
        return "-"
    pct = 100.0 * used / size if size else 0.0
    return f"{used} ({pct:.0f}%)"


def format_maps(tmap: TargetMap) -> str:
    """One line per region: ``08000188-08000dc8 r-x     3136  .text  flash`` (+ used when measured)."""
    lines = []
    for r in tmap.regions:
        line = f"{r.start:08x}-{r.end:08x} {r.perms} {r.size:>8}  {r.name:<18} {r.memory:<6}"
        if tmap.measured and r.kind in ("heap", "stack"):
            line += f"  used {_used_text(r.used, r.size)}"
        if r.note:
            line += f"  # {r.note}"
        lines.append(line.rstrip())
    for name, base, size, _kind in tmap.memories:
        taken = sum(r.size for r in tmap.regions if r.memory == name and r.kind != "free")
        lines.append(f"# {name}: {size} bytes at {base:#010x}, {taken} placed, {size - taken} free")
    for note in tmap.notes:
        lines.append(f"# note: {note}")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class FragmentationSample:
    """One point of the heap-fragmentation curve: virtual time, free bytes, largest free block."""

    t_us: int
    free_bytes: int
    largest_free: int

    @property
    def ratio(self) -> float:
        return 0.0 if not self.free_bytes else 1.0 - self.largest_free / self.free_bytes


def fragmentation_sample(walk: HeapWalk, t_us: int) -> FragmentationSample:
    """(t, free bytes, largest free block) of one heap walk, for the timeline picture."""
    frag = walk.fragmentation
    return FragmentationSample(int(t_us), frag.free_bytes, frag.largest_free)


def plot_map_png(tmap: TargetMap, path: str | Path | BinaryIO, fragmentation: Iterable[FragmentationSample] = ()) -> Path:
    """A bar per platform memory, regions coloured by kind, the used part of heap/stacks darker;
    below it, when samples are given, free bytes and the largest free block over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    samples = list(fragmentation)
    rows = len(tmap.memories) + (1 if samples else 0)
    fig, axes = plt.subplots(max(rows, 1), 1, figsize=(10, 1.6 * max(rows, 1) + 0.8), squeeze=False)
    for ax, (name, base, size, _kind) in zip(axes[:, 0], tmap.memories):
        for r in tmap.regions:
            if r.memory != name:
                continue
            ax.barh(0, r.size, left=r.start - base, color=_COLORS.get(r.kind, "#7f7f7f"), edgecolor="black", linewidth=0.3)
            if r.used is not None and r.kind in ("heap", "stack") and r.used:
                left = r.end - r.used if r.kind == "stack" else r.start  # stacks grow down from the top
                ax.barh(0, r.used, left=left - base, color="black", alpha=0.35, hatch="//")
            if r.size > size * 0.06:
                ax.text(r.start - base + r.size / 2, 0, r.name, ha="center", va="center", fontsize=7)
        ax.set_xlim(0, size)
        ax.set_yticks([])
        ax.set_title(f"{name}: {base:#010x}, {size // 1024} KiB", fontsize=9, loc="left")
        ax.set_xlabel("offset (bytes)", fontsize=8)
    if samples:
        ax = axes[-1, 0]
        t = [s.t_us / 1e6 for s in samples]
        ax.plot(t, [s.free_bytes for s in samples], label="free bytes")
        ax.plot(t, [s.largest_free for s in samples], label="largest free block")
        ax.set_xlabel("virtual time (s)", fontsize=8)
        ax.set_ylabel("bytes", fontsize=8)
        ax.legend(fontsize=7)
        ax.set_title("heap fragmentation", fontsize=9, loc="left")
    kinds = sorted({r.kind for r in tmap.regions}, key=list(_COLORS).index)
    fig.legend(handles=[Patch(color=_COLORS[k], label=k) for k in kinds], loc="lower center", ncol=len(kinds), fontsize=7)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    try:
        if hasattr(path, "write"):  # a binary file object (format_html embeds the picture)
            fig.savefig(path, format="png", dpi=100)
            return path  # type: ignore[return-value]
        path = Path(path)
        fig.savefig(path, dpi=100)
        return path
    finally:
        plt.close(fig)


def format_html(tmap: TargetMap, png: str | Path | None = None) -> str:
    """A standalone HTML page: the picture (embedded) and the map as a table."""
    rows = "".join(
        f"<tr><td><code>{r.start:08x}-{r.end:08x}</code></td><td>{r.perms}</td><td>{r.size}</td>"
        f"<td>{html.escape(r.name)}</td><td>{html.escape(r.memory)}</td><td>{_used_text(r.used, r.size) if r.kind in ('heap', 'stack') else ''}</td>"
        f"<td>{html.escape(r.note)}</td></tr>"
        for r in tmap.regions
    )
    img = ""
    if png is not None:
        data = base64.b64encode(Path(png).read_bytes()).decode()
        img = f'<img alt="memory map" src="data:image/png;base64,{data}">'
    else:
        buf = io.BytesIO()
        plot_map_png(tmap, buf)
        img = f'<img alt="memory map" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'
    notes = "".join(f"<p class=note>{html.escape(n)}</p>" for n in tmap.notes)
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>memhil map: {html.escape(Path(tmap.elf).name)}</title></head><body>"
        f"<h1>Memory map of {html.escape(Path(tmap.elf).name)} on {html.escape(tmap.platform)}</h1>{img}{notes}"
        "<table border=1 cellspacing=0 cellpadding=3><tr><th>range</th><th>perms</th><th>size</th><th>region</th>"
        f"<th>memory</th><th>used</th><th>note</th></tr>{rows}</table></body></html>"
    )
