"""Folded stacks (``root;caller;leaf bytes``) for flame graphs (flamegraph.pl, speedscope, inferno)."""

from __future__ import annotations

from memhil.analysis.frames import StackSymbolizer, frame_label, resolve_stack

from ._blocks import blocks_of


def collapsed_stacks(source: object, symbolizer: StackSymbolizer | None = None, *, weight: str = "bytes") -> str:
    """One line per distinct stack, outermost frame first, weighted by ``bytes`` (node bytes),
    ``size`` (requested bytes) or ``blocks``. ``source``: a LeakReport, a Snapshot or live blocks."""
    if weight not in ("bytes", "size", "blocks"):
        from memhil.errors import ConfigError

        raise ConfigError(f"unknown weight {weight!r} for collapsed stacks", hint="use bytes, size or blocks")
    totals: dict[str, int] = {}
    cache: dict = {}
    for b in blocks_of(source):
        frames = resolve_stack(b.callers, symbolizer, cache)
        names = [frame_label(f).replace(";", ":").replace(" ", "_") for f in reversed(frames)] or ["[unknown]"]
        key = ";".join(names)
        totals[key] = totals.get(key, 0) + (b.bytes if weight == "bytes" else b.size if weight == "size" else 1)
    return "".join(f"{k} {v}\n" for k, v in sorted(totals.items()))
