"""Growth: allocation sites whose live memory keeps rising. The one place memhil decides "this site grows".

LiteOS's memory leak check guide says "after the system runs stably, if the number of used nodes keeps
increasing, there is a very large probability that memory leaks". memhil makes it a test it can trust:

- **What is measured**, per site (:mod:`memhil.analysis.sites`) and module: the live *requested* bytes and the
  live block count at each sample. Not node bytes: a bestfit allocator hands a site larger leftover nodes over
  time, so node bytes creep while nothing leaks.
- **Warm-up**: the first ``warmup_fraction`` of the samples (20 %, at least one) is start-up, not steady state;
  it only sets the level the site must exceed.
- **Trend test**: the Mann-Kendall test (Mann 1945, Kendall 1975; S statistic with the tie-corrected variance
  and the normal approximation with continuity correction) on the samples after the warm-up, one-sided for an
  increase, at significance ``alpha`` = 0.01, over at least ``min_samples`` = 6 samples (a strictly rising
  series of 6 gives p = 0.004).
- **Bounded is not growing**: the last value must also exceed the highest value seen during the warm-up.

A site grows when its block count or its requested bytes pass all of this. The rate is the least-squares slope
after the warm-up, per virtual hour. :func:`memhil.results.leak_sites` adds reachability: a growing site whose
live blocks are all still reachable is reported apart, not as a leak.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Hashable, Mapping, Sequence, TypeVar

from memhil.errors import ConfigError
from memhil.heap.model import Snapshot

from .sites import Site, SiteNamer, SiteResolver

US_PER_HOUR = 3_600_000_000


@dataclass(frozen=True)
class GrowthPolicy:
    """The growth test's thresholds (see the module docstring)."""

    warmup_fraction: float = 0.2
    min_samples: int = 6
    alpha: float = 0.01

    def warmup(self, n: int) -> int:
        """Samples of ``n`` that are warm-up: ``ceil(warmup_fraction * n)``, at least 1 (0 when ``n`` < 2)."""
        if n < 2:
            return 0
        return min(n - 1, max(1, math.ceil(self.warmup_fraction * n)))

    def enough(self, n: int) -> bool:
        return n - self.warmup(n) >= self.min_samples

    def as_dict(self) -> dict:
        return {"warmup_fraction": self.warmup_fraction, "min_samples": self.min_samples, "alpha": self.alpha,
                "test": "Mann-Kendall, one-sided, after the warm-up; last value above the warm-up's highest"}


DEFAULT_POLICY = GrowthPolicy()


def mann_kendall(values: Sequence[float]) -> tuple[int, float, float]:
    """``(S, z, p)`` of the Mann-Kendall trend test; ``p`` is one-sided for an increasing trend.

    S = sum over i<j of sign(x_j - x_i); Var(S) = [n(n-1)(2n+5) - sum_t t(t-1)(2t+5)] / 18 over groups of t tied
    values; z = (S - 1)/sqrt(Var) for S > 0, (S + 1)/sqrt(Var) for S < 0, else 0; p = 1 - Phi(z)."""
    n = len(values)
    s = 0
    for i in range(n - 1):
        xi = values[i]
        for j in range(i + 1, n):
            d = values[j] - xi
            s += (d > 0) - (d < 0)
    counts: dict[float, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    var = (n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in counts.values())) / 18.0
    if var <= 0:
        return s, 0.0, 0.5 if s == 0 else (0.0 if s > 0 else 1.0)
    z = (s - 1) / math.sqrt(var) if s > 0 else (s + 1) / math.sqrt(var) if s < 0 else 0.0
    p = 0.5 * math.erfc(z / math.sqrt(2.0))
    return s, z, p


def slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs``."""
    n = len(xs)
    if n < 2:
        return 0.0
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if not var:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var


@dataclass(frozen=True)
class Trend:
    """One series after the warm-up: Mann-Kendall ``s``/``z``/``p``, rises, least-squares slope per hour, and
    whether it ends above the warm-up's highest value (``new_high``)."""

    s: int
    z: float
    p: float
    rises: int
    per_hour: float
    new_high: bool
    growing: bool

    def as_dict(self) -> dict:
        return {"s": self.s, "z": round(self.z, 3), "p": round(self.p, 6), "rises": self.rises,
                "per_hour": round(self.per_hour, 3), "new_high": self.new_high, "growing": self.growing}


def series_trend(times_us: Sequence[int], values: Sequence[float], policy: GrowthPolicy = DEFAULT_POLICY) -> Trend:
    n = len(values)
    w = policy.warmup(n)
    after, t_after = list(values[w:]), list(times_us[w:])
    s, z, p = mann_kendall(after) if len(after) >= 2 else (0, 0.0, 1.0)
    rises = sum(1 for a, b in zip(after, after[1:]) if b > a)
    new_high = bool(after) and after[-1] > max(values[:w], default=values[0] if values else 0)
    growing = policy.enough(n) and s > 0 and p < policy.alpha and new_high
    return Trend(s, z, p, rises, slope(t_after, after) * US_PER_HOUR, new_high, growing)


@dataclass(frozen=True)
class SiteGrowth:
    """The verdict on one site's two series (live requested bytes, live blocks)."""

    bytes: Trend
    blocks: Trend

    @property
    def growing(self) -> bool:
        return self.bytes.growing or self.blocks.growing

    @property
    def what(self) -> str:
        return "+".join(name for name, t in (("bytes", self.bytes), ("blocks", self.blocks)) if t.growing)


def judge(times_us: Sequence[int], nbytes: Sequence[int], nblocks: Sequence[int], policy: GrowthPolicy = DEFAULT_POLICY) -> SiteGrowth:
    return SiteGrowth(series_trend(times_us, nbytes, policy), series_trend(times_us, nblocks, policy))


K = TypeVar("K", bound=Hashable)


def growing_series(times_us: Sequence[int], per_sample: Sequence[Mapping[K, tuple[int, int]]],
                   policy: GrowthPolicy = DEFAULT_POLICY) -> dict[K, tuple[list[int], list[int], SiteGrowth]]:
    """The keys that grow: ``per_sample`` holds, for each sample at ``times_us``, the live requested bytes and
    blocks per key (a site, or a site and module); a key a sample lacks has none live then. Returns key ->
    (bytes series, blocks series, :func:`judge`'s verdict) for the growing keys, in the order first seen."""
    out: dict[K, tuple[list[int], list[int], SiteGrowth]] = {}
    for key in dict.fromkeys(k for rows in per_sample for k in rows):
        nbytes = [rows.get(key, (0, 0))[0] for rows in per_sample]
        nblocks = [rows.get(key, (0, 0))[1] for rows in per_sample]
        verdict = judge(times_us, nbytes, nblocks, policy)
        if verdict.growing:
            out[key] = (nbytes, nblocks, verdict)
    return out


@dataclass
class GrowthRow:
    """One growing site over snapshots: requested ``bytes`` and ``blocks`` per snapshot."""

    site: str
    file: str | None
    line: int | None
    function: str | None
    times_us: list[int]
    bytes: list[int]
    blocks: list[int]
    bytes_per_hour: float
    blocks_per_hour: float
    since_us: int  # the end of the warm-up
    growing: str  # "bytes", "blocks" or "bytes+blocks"
    trend: SiteGrowth | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        return {
            "site": self.site, "file": self.file, "line": self.line, "function": self.function,
            "times_us": self.times_us, "bytes": self.bytes, "blocks": self.blocks,
            "bytes_per_hour": self.bytes_per_hour, "blocks_per_hour": self.blocks_per_hour,
            "since_us": self.since_us, "growing": self.growing,
        }


def find_growth(snapshots: Sequence[Snapshot], resolver: SiteResolver | None = None, *,
                policy: GrowthPolicy = DEFAULT_POLICY) -> list[GrowthRow]:
    """Sites that grow across ``snapshots`` (any order; sorted by time), fastest byte growth first."""
    snaps = sorted(snapshots, key=lambda s: s.t_us)
    if not policy.enough(len(snaps)):
        raise ConfigError(
            f"growth needs at least {policy.min_samples} snapshots after the warm-up, got {len(snaps) - policy.warmup(len(snaps))} "
            f"of {len(snaps)} (the first {policy.warmup_fraction:.0%} are warm-up)",
            hint="take more heap snapshots over time",
        )
    if snaps[-1].t_us <= snaps[0].t_us:
        raise ConfigError("all snapshots have the same virtual time", hint="let virtual time run between snapshots")
    times = [s.t_us for s in snaps]
    namer = SiteNamer(resolver)
    per_snap: list[dict[str, tuple[int, int]]] = []
    sites: dict[str, Site] = {}
    for s in snaps:
        rows: dict[str, tuple[int, int]] = {}
        for b in s.blocks.values():
            site = namer.of(b)
            sites.setdefault(site.name, site)
            nbytes, nblocks = rows.get(site.name, (0, 0))
            rows[site.name] = (nbytes + b.size, nblocks + 1)
        per_snap.append(rows)
    w = policy.warmup(len(snaps))
    out = [GrowthRow(name, sites[name].file, sites[name].line, sites[name].function, times, nbytes, nblocks,
                     verdict.bytes.per_hour, verdict.blocks.per_hour, times[w], verdict.what, verdict)
           for name, (nbytes, nblocks, verdict) in growing_series(times, per_snap, policy).items()]
    return sorted(out, key=lambda r: (-r.bytes_per_hour, -r.blocks_per_hour, r.site))
