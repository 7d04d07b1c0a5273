"""One frame of a stored call stack (``summary.json``: ``pc``, ``function``, ``file``, ``line`` and, for
images without line information, ``offset``) as people read it, the way gdb and addr2line print it; and
a stored leak site as the text commands print it (``memhil report``, ``memhil soak``)."""

from __future__ import annotations

from typing import Mapping

from memhil.units import format_bytes, format_duration, format_size


def _hex(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, int):
        return f"{value:#010x}"
    return str(value)


def frame_text(f: Mapping) -> str:
    """``function (file:line)``; without line information ``function+0x3c (0x08001c3c)`` when the offset
    into the function is known, else ``function (0x08001c3c)``; ``?? (0x08001c3c)`` without a symbol.
    Never ``None:None``, never an absolute address written as an offset."""
    fn = f.get("function") or "??"
    if f.get("file") and f.get("line"):
        return f"{fn} ({f['file']}:{f['line']})"
    pc = _hex(f.get("pc") if f.get("pc") is not None else f.get("address"))
    offset = f.get("offset")
    name = f"{fn}+{offset:#x}" if isinstance(offset, int) and f.get("function") else fn
    return f"{name} ({pc})" if pc else name


def leak_site_lines(site: Mapping, *, frames: int = 8) -> list[str]:
    """A growing leak site of ``summary.json``: its headline (bytes, blocks, rate, when first seen if known)
    and the first ``frames`` frames of its largest call stack, indented for a text report."""
    first = site.get("first_seen_s")
    lines = [f"  LEAK {site['site']} ({site.get('function') or '??'}) module {site.get('module_name')}: {format_bytes(site['bytes'])} "
             f"(node bytes) in {site['blocks']} blocks, {format_size(site['bytes_per_hour'])} per virtual hour"
             + (f", first seen at {format_duration(first)}" if first is not None else "")]
    for stack in (site.get("stacks") or [])[:1]:
        lines += [f"      at {frame_text(f)}" for f in stack.get("frames", [])[:frames]]
    return lines
