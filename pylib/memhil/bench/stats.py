"""Medians of repeated runs, with their spread, as the JSON keeps them.

A figure measured ``n`` times is kept as its median under its own key, with ``<key>_min``,
``<key>_max`` and ``<key>_runs`` beside it (:func:`spread`). A ratio of two workloads (a free run
against a captured one) is taken per pair of runs made one after the other (:func:`interleave`),
so that a change in the machine's load during the bench moves both sides of a pair alike.
"""

from __future__ import annotations

import statistics
from typing import Callable, Iterable, Mapping, Sequence, TypeVar

T = TypeVar("T")
U = TypeVar("U")


def spread(key: str, values: Sequence[float | int | None]) -> dict[str, float | int | None]:
    """``{key: median, key_min, key_max, key_runs}`` of the values that were measured (None is not);
    all None (and ``_runs`` 0) when none was."""
    got = [float(v) for v in values if v is not None]
    if not got:
        return {key: None, f"{key}_min": None, f"{key}_max": None, f"{key}_runs": 0}
    return {key: statistics.median(got), f"{key}_min": min(got), f"{key}_max": max(got), f"{key}_runs": len(got)}


def spreads(per_run: Iterable[Mapping[str, float | int | None]], keys: Iterable[str]) -> dict[str, float | int | None]:
    """:func:`spread` of each of ``keys`` over the runs' dicts."""
    runs = list(per_run)
    out: dict[str, float | int | None] = {}
    for key in keys:
        out.update(spread(key, [run.get(key) for run in runs]))
    return out


def interleave(n: int, first: Callable[[int], T], second: Callable[[int], U], progress: Callable[[str], None] | None = None,
               label: str = "") -> list[tuple[T, U]]:
    """``n`` pairs: ``first(i)`` then ``second(i)``, for i in 0..n-1 (free, captured, free, captured, ...)."""
    pairs: list[tuple[T, U]] = []
    for i in range(n):
        if progress is not None and label:
            progress(f"{label}: pair {i + 1} of {n}")
        a = first(i)
        pairs.append((a, second(i)))
    return pairs


def is_spread_key(key: str) -> bool:
    """True for the ``_min``/``_max``/``_runs`` companions of a figure."""
    return key.endswith(("_min", "_max", "_runs"))
