"""Growth across snapshots: allocation sites whose live bytes or node count keep increasing.

Seed 001's rule: "after the system runs stably, if the number of used nodes keeps increasing,
there is a very large probability that memory leaks". Here a site keeps growing when, after the
first ``warmup`` snapshots, its series never decreases from one snapshot to the next and rises at
least ``min_rises`` times. The rate is the least-squares slope from the start of growth, per
virtual hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from memhil.errors import ConfigError
from memhil.heap.model import Snapshot
from memhil.analysis.sites import SiteResolver, site_report

US_PER_HOUR = 3_600_000_000


@dataclass
class GrowthRow:
    """One growing site. ``since_us`` is the time of the last snapshot before the first rise."""

    site: str
    file: str | None
    line: int | None
    function: str | None
    times_us: list[int]
    bytes: list[int]
    blocks: list[int]
    bytes_per_hour: float
    blocks_per_hour: float
    since_us: int
    growing: str  # "bytes", "blocks" or "bytes+blocks"

    @property
    def grown_bytes(self) -> int:
        return self.bytes[-1] - self.bytes[0]

    def as_dict(self) -> dict:
        return {
            "site": self.site, "file": self.file, "line": self.line, "function": self.function,
            "times_us": self.times_us, "bytes": self.bytes, "blocks": self.blocks,
            "bytes_per_hour": self.bytes_per_hour, "blocks_per_hour": self.blocks_per_hour,
            "since_us": self.since_us, "growing": self.growing,
        }


def find_growth(
    snapshots: Sequence[Snapshot], resolver: SiteResolver | None = None, *, warmup: int = 0, min_rises: int = 2
) -> list[GrowthRow]:
    """Sites that keep growing across ``snapshots`` (any order; sorted by time), fastest byte growth first."""
    snaps = sorted(snapshots, key=lambda s: s.t_us)[max(warmup, 0):]
    if len(snaps) < 2:
        raise ConfigError(
            f"growth needs at least 2 snapshots after the warm-up, got {len(snaps)} (of {len(snapshots)}, warmup={warmup})",
            hint="take more heap snapshots over time, or lower the warm-up count",
        )
    if snaps[-1].t_us <= snaps[0].t_us:
        raise ConfigError("all snapshots have the same virtual time", hint="let virtual time run between snapshots")
    need = max(1, min(min_rises, len(snaps) - 1))
    times = [s.t_us for s in snaps]
    per_snap = [{r.site: r for r in site_report(s.blocks.values(), resolver, t_us=s.t_us).rows} for s in snaps]
    sites: dict[str, tuple[str | None, int | None, str | None]] = {}
    for rows in per_snap:
        for row in rows.values():
            sites.setdefault(row.site, (row.file, row.line, row.function))
    out: list[GrowthRow] = []
    for site, (file, line, function) in sites.items():
        nbytes, nblocks = [], []
        for rows in per_snap:
            row = rows.get(site)
            nbytes.append(row.node_bytes if row else 0)
            nblocks.append(row.blocks if row else 0)
        what = [name for name, series in (("bytes", nbytes), ("blocks", nblocks)) if _keeps_growing(series, need)]
        if not what:
            continue
        first = min(_first_rise(nbytes if "bytes" in what else nblocks), _first_rise(nblocks if "blocks" in what else nbytes))
        out.append(
            GrowthRow(
                site, file, line, function, times, nbytes, nblocks,
                _slope(times[first:], nbytes[first:]) * US_PER_HOUR,
                _slope(times[first:], nblocks[first:]) * US_PER_HOUR,
                times[first],
                "+".join(what),
            )
        )
    return sorted(out, key=lambda r: (-r.bytes_per_hour, -r.blocks_per_hour, r.site))


def _keeps_growing(series: list[int], need: int) -> bool:
    rises = 0
    for a, b in zip(series, series[1:]):
        if b < a:
            return False
        rises += b > a
    return rises >= need


def _first_rise(series: list[int]) -> int:
    for i, (a, b) in enumerate(zip(series, series[1:])):
        if b > a:
            return i
    return len(series) - 1


def _slope(xs: list[int], ys: list[int]) -> float:
    """Least-squares slope of ys over xs (units per microsecond)."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx = sum(xs) / n
    my = sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var
