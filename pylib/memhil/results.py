"""End-of-run results: the ``summary.json`` every run directory holds, and what the CI gate reads.

Schema (``version`` 2; everything a person looks at is spelled out, addresses as hex strings)::

    version, firmware, build_id, engine, platform, capture
    virtual_s, wall_s, virtual / wall        seconds, and the same in words ("10.000 s")
    modules: {"1": {name, current, peak, firmware, growth_per_hour, leak_per_hour}}
    total: {current, peak, allocs, frees}
    samples: {count, times_s}                the instants per-site live bytes were sampled
    leak_sites: [ {site, file, line, function, module, module_name, bytes, blocks, grown_bytes,
                   first_seen_s, rises, bytes_per_hour, blocks_per_hour, series, blocks_series, trend,
                   reachable_blocks, lost_blocks, pcs, stacks: [{bytes, blocks, frames}]} ]
                 or null when the capture mode sees no allocations (then "leak_sites_reason")
    growing_reachable: [same rows], growth: {warmup_fraction, min_samples, alpha, test, samples_used}
    heap: {checked, ok, errors, nodes, used, free} (or {checked: false, reason})
    anomalies: [{kind, seq, ptr, detail}], anomaly_count
    snapshots: [names]

A *leak site* is an allocation site (innermost caller pc, named by :mod:`memhil.analysis.sites` only at the
end of the run) whose live requested bytes or live block count grow by the test of
:mod:`memhil.analysis.growth` (warm-up, Mann-Kendall trend at alpha 0.01 over at least 6 samples, last value
above the warm-up's highest; ``growth`` in the summary gives the thresholds), and whose live blocks are not all
still reachable when the run's end could be scanned (``reachable_blocks``/``lost_blocks``). A site that grows
while every block stays reachable is listed in ``growing_reachable``, not in ``leak_sites``: the gate's leak
verdict is growth and loss together. ``rises`` counts increases after the warm-up; ``bytes_per_hour`` and
``blocks_per_hour`` are least-squares slopes after the warm-up, per virtual hour.

:class:`SiteSampler` keeps the per-sample figures (live bytes and blocks keyed by module and
allocation pc, module current bytes); :func:`build_results` turns a session's state into the
schema; :func:`load_run` and :func:`find_runs` read it back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from memhil.analysis.frames import resolve_stack
from memhil.analysis.growth import DEFAULT_POLICY, GrowthPolicy, growing_series, slope
from memhil.analysis.reachability import LeakKind
from memhil.analysis.sites import Site, SiteNamer
from memhil.errors import ConfigError
from memhil.heap.model import LiveBlock

log = logging.getLogger("memhil.results")

RESULTS_VERSION = 2
SUMMARY_NAME = "summary.json"
US_PER_HOUR = 3_600_000_000
#: samples kept per run; beyond this every other one is dropped (first and last always kept)
MAX_SAMPLES = 256
#: a run_for is split into this many chunks (each followed by a sample) when long enough
SAMPLE_CHUNKS = 8
#: the shortest chunk worth a sample, seconds of virtual time
MIN_CHUNK_S = 0.1
#: fragmentation samples kept in a summary (the newest)
MAX_FRAGMENTATION_SAMPLES = 1000
#: stacks stored per leak site
MAX_STACKS = 4

SiteKey = tuple[int, int]  # (module, allocation pc or -1)

#: the capture modes whose ledger sees every allocator call: only their runs have peaks and the ledger's live blocks
EVENT_MODES = ("hooks", "breakpoints", "trace")


def sees_every_call(capture: str | None) -> bool:
    """Whether a run with ``capture`` saw every allocator call (:data:`EVENT_MODES`)."""
    return capture in EVENT_MODES


@dataclass
class Sample:
    """Live requested bytes and blocks per (module, allocation pc) and module current bytes (whole nodes), at ``t_us``."""

    t_us: int
    sites: dict[SiteKey, tuple[int, int]]
    modules: dict[int, int]
    modules_known: bool = True


@dataclass
class SiteSampler:
    """Samples a session's live blocks over virtual time, cheaply (no symbolizing until the end)."""

    samples: list[Sample] = field(default_factory=list)
    max_samples: int = MAX_SAMPLES

    def take(self, t_us: int, blocks: Iterable[LiveBlock], *, modules_known: bool = True) -> Sample:
        """Record ``blocks`` at ``t_us``; ``modules_known=False`` (a heap walk of a build whose nodes carry no
        module id) records no module figures rather than charging everything to module 0."""
        sites: dict[SiteKey, tuple[int, int]] = {}
        modules: dict[int, int] = {}
        for b in blocks:
            key = (b.module, b.callers[0] if b.callers else -1)
            nbytes, nblocks = sites.get(key, (0, 0))
            sites[key] = (nbytes + b.size, nblocks + 1)
            modules[b.module] = modules.get(b.module, 0) + b.bytes
        sample = Sample(t_us, sites, modules if modules_known else {}, modules_known)
        if self.samples and self.samples[-1].t_us == t_us:
            self.samples[-1] = sample  # same instant: the newer view wins
        else:
            self.samples.append(sample)
        if len(self.samples) > self.max_samples:
            last = self.samples[-1]
            self.samples = self.samples[:-1:2] + [last]
        return sample

    def clear(self) -> None:
        self.samples.clear()


def split_duration(seconds: float, *, chunks: int = SAMPLE_CHUNKS, min_chunk: float = MIN_CHUNK_S) -> list[float]:
    """Split ``seconds`` into up to ``chunks`` parts on whole milliseconds (a firmware tick), summing exactly."""
    if seconds <= 0:
        return [seconds]
    n = max(1, min(chunks, int(seconds / min_chunk + 1e-9)))
    bounds = [round(seconds * i / n, 3) for i in range(n)] + [seconds]
    parts = [b - a for a, b in zip(bounds, bounds[1:]) if b > a]
    return parts or [seconds]


# -- building ---------------------------------------------------------------------------------------
def _hex(pc: int) -> str:
    return f"{pc:#010x}"


def _frame_dict(frame, symbolizer) -> dict:
    file = getattr(frame, "file", None)
    if file and symbolizer is not None and hasattr(symbolizer, "relative"):
        file = symbolizer.relative(file)
    return {"pc": _hex(frame.address), "function": frame.function, "file": file, "line": frame.line}


def symbolize_stack(pcs: Iterable[int], symbolizer) -> list[dict]:
    """Frames of a call stack (return addresses, innermost first); inlined frames expanded
    (:func:`memhil.analysis.frames.resolve_stack`)."""
    return [_frame_dict(f, symbolizer) for f in resolve_stack(list(pcs), symbolizer)]


def leak_sites(samples: list[Sample], live: Iterable[LiveBlock], symbolizer, modules_name, *,
               policy: GrowthPolicy = DEFAULT_POLICY, reachability=None) -> list[dict]:
    """Growing sites (see the module docstring), fastest first; with ``reachability`` (of ``live``) only those
    with lost blocks. :func:`growth_rows` gives both lists."""
    return growth_rows(samples, live, symbolizer, modules_name, policy=policy, reachability=reachability)[0]


def growth_rows(samples: list[Sample], live: Iterable[LiveBlock], symbolizer, modules_name, *,
                policy: GrowthPolicy = DEFAULT_POLICY, reachability=None) -> tuple[list[dict], list[dict]]:
    """``(leak_sites, growing_reachable)``: rows of growing sites, split by whether any live block is lost."""
    if not policy.enough(len(samples)):
        return [], []
    times = [s.t_us for s in samples]
    namer = SiteNamer(symbolizer)
    sites: dict[tuple[str, int], tuple[Site, set[int]]] = {}  # (site name, module) -> (site, its pcs)
    per_sample: list[dict[tuple[str, int], tuple[int, int]]] = []
    for s in samples:
        rows: dict[tuple[str, int], tuple[int, int]] = {}
        for (module, pc), (nbytes, nblocks) in s.sites.items():
            site = namer(pc if pc >= 0 else None)
            key = (site.name, module)
            sites.setdefault(key, (site, set()))[1].add(pc)
            b, n = rows.get(key, (0, 0))
            rows[key] = (b + nbytes, n + nblocks)
        per_sample.append(rows)
    growing = growing_series(times, per_sample, policy)
    if not growing:
        return [], []
    by_key: dict[tuple[str, int], list[LiveBlock]] = {k: [] for k in growing}
    for b in live:
        key = (namer.of(b).name, b.module)
        if key in by_key:
            by_key[key].append(b)
    w = policy.warmup(len(samples))
    leaks, kept = [], []
    for (name, module), (nbytes, nblocks, verdict) in growing.items():
        site, pcs = sites[(name, module)]
        blocks = by_key[(name, module)]
        stacks: dict[tuple[int, ...], list[int]] = {}
        for b in blocks:
            agg = stacks.setdefault(tuple(b.callers), [0, 0])
            agg[0] += b.size
            agg[1] += 1
        seen = [b.t_us / 1e6 for b in blocks if b.seq >= 0]
        lost = None if reachability is None else sum(1 for b in blocks if reachability.kind(b.ptr) is not LeakKind.REACHABLE)
        row = {
            "site": name, "file": site.file, "line": site.line, "function": site.function, "module": module,
            "module_name": modules_name(module), "bytes": sum(b.size for b in blocks), "blocks": len(blocks),
            "grown_bytes": nbytes[-1] - nbytes[w], "first_seen_s": min(seen) if seen else None,
            "rises": max(verdict.bytes.rises, verdict.blocks.rises),
            "bytes_per_hour": round(verdict.bytes.per_hour, 3), "blocks_per_hour": round(verdict.blocks.per_hour, 3),
            "growing": verdict.what, "series": nbytes, "blocks_series": nblocks,
            "trend": {"bytes": verdict.bytes.as_dict(), "blocks": verdict.blocks.as_dict()},
            "reachable_blocks": None if lost is None else len(blocks) - lost, "lost_blocks": lost,
            "pcs": [_hex(pc) if pc >= 0 else None for pc in sorted(pcs)],
            "stacks": [{"bytes": v[0], "blocks": v[1], "frames": symbolize_stack(k, symbolizer)}
                       for k, v in sorted(stacks.items(), key=lambda kv: (-kv[1][0], kv[0]))[:MAX_STACKS]],
        }
        (kept if lost == 0 and blocks else leaks).append(row)
    order = lambda r: (-r["bytes_per_hour"], -r["grown_bytes"], r["site"])  # noqa: E731
    return sorted(leaks, key=order), sorted(kept, key=order)


def module_growth(samples: list[Sample]) -> dict[int, float]:
    """Slope of each module's current bytes across the samples, bytes per virtual hour."""
    if len(samples) < 2:
        return {}
    times = [s.t_us for s in samples]
    mids = set().union(*(s.modules for s in samples))
    return {m: round(slope(times, [s.modules.get(m, 0) for s in samples]) * US_PER_HOUR, 3) for m in sorted(mids)}


# -- reading -------------------------------------------------------------------------------------------
@dataclass
class RunResults:
    """One run directory's ``summary.json``: ``name`` is its path relative to the directory searched."""

    path: Path
    name: str
    data: dict[str, Any]

    @property
    def modules(self) -> dict[str, dict]:
        return self.data.get("modules") or {}

    @property
    def leak_sites(self) -> list[dict] | None:
        return self.data.get("leak_sites")

    @property
    def heap(self) -> dict | None:
        return self.data.get("heap")

    def module(self, key: str) -> dict | None:
        """A module entry by id (``"1"``) or name (``"NET"``, any case)."""
        if key in self.modules:
            return self.modules[key]
        for entry in self.modules.values():
            if str(entry.get("name", "")).upper() == key.upper():
                return entry
        return None


def load_run(directory: str | Path, *, name: str | None = None) -> RunResults:
    """Read ``<directory>/summary.json``; :class:`ConfigError` says what is missing or unreadable."""
    d = Path(directory)
    path = d / SUMMARY_NAME if d.is_dir() or not d.name.endswith(".json") else d
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no {SUMMARY_NAME} in {d}", hint="run the suite with memhil (Stop Emulator writes it), or point at its run directory", file=str(path)) from None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", hint="check the path and permissions", file=str(path)) from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})", hint="the run was probably interrupted while writing; rerun it", file=str(path), line=exc.lineno) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object", hint="this is not a memhil summary.json", file=str(path))
    return RunResults(path, name or path.parent.name, data)


def find_runs(root: str | Path) -> list[RunResults]:
    """Every run under ``root``: ``root/summary.json`` itself, or each ``root/**/summary.json``."""
    r = Path(root)
    if not r.exists():
        raise ConfigError(f"run directory {r} does not exist", hint="give the directory memhil wrote (e.g. out/robot/memhil)", file=str(r))
    if r.is_file() or (r / SUMMARY_NAME).is_file():
        run = load_run(r)
        return [RunResults(run.path, run.path.parent.name, run.data)]
    paths = sorted(r.glob(f"**/{SUMMARY_NAME}"))
    if not paths:
        raise ConfigError(f"no {SUMMARY_NAME} under {r}", hint="the suites wrote no results: did they call Stop Emulator? is this the right directory?", file=str(r))
    return [load_run(p.parent, name=p.parent.relative_to(r).as_posix()) for p in paths]


# -- the summary -----------------------------------------------------------------------------------
def _fault(session) -> dict | None:
    """The fault the target took (it is halted in the handler), as the engine explained it; None without one."""
    fault = getattr(getattr(session, "engine", None), "fault", None)
    if fault is None:
        return None
    return {"message": fault.message, **{k: v for k, v in fault.fields.items() if k != "engine"}}


def _seconds(value: float | None) -> str | None:
    from memhil.units import format_duration

    return format_duration(value) if value is not None else None


def build_summary(session, *, firmware_modules: dict[int, int] | None = None) -> dict:
    """The version-2 summary of ``session`` (a :class:`memhil.session.Session`), as plain data."""
    import time

    opts = session.options
    ledger = session.ledger
    samples = session.sampler.samples
    firmware_modules = firmware_modules or {}
    capture_sees = sees_every_call(opts.capture)
    if session.engine is not None:
        virtual_s: float | None = session.virtual_time()
        wall_s = time.monotonic() - session._started_wall
    else:
        virtual_s = session.ended_virtual_s
        wall_s = (session.ended_wall or time.monotonic()) - session._started_wall
    symbolizer = None
    if session.image is not None and samples:
        try:
            symbolizer = session.symbolizer
        except Exception as exc:  # noqa: BLE001 - results must still be written without symbols
            log.warning("no symbolizer for the results: %s", exc)
    name = opts.modules.name
    sites = None
    growing_reachable: list[dict] = []
    reason = None
    if opts.capture == "none":
        reason = "capture mode 'none' sees no allocations; use hooks, trace or snapshot"
    else:
        live = list(ledger.live.values()) if capture_sees else _last_walk_blocks(session)
        sites, growing_reachable = growth_rows(samples, live, symbolizer, name, reachability=_reachability(session, live))
    growth_by_module = module_growth(samples)
    leak_by_module: dict[int, float] = {}
    for row in sites or ():
        leak_by_module[row["module"]] = round(leak_by_module.get(row["module"], 0.0) + row["bytes_per_hour"], 3)
    mids = set(ledger.modules) | set(opts.modules.by_id) | set(firmware_modules)
    if samples:
        mids |= set(samples[-1].modules)
    walked_modules = bool(samples) and samples[-1].modules_known
    modules = {}
    for mid in sorted(mids):
        stat = ledger.modules.get(mid)
        if capture_sees:
            current, peak = (stat.current, stat.peak) if stat else (0, 0)
        else:  # no peaks without every event; current from the last heap sample
            # None, never 0, when the walk could not tell modules apart (nodes without module ids)
            current, peak = (samples[-1].modules.get(mid, 0) if samples and walked_modules else None), None
        modules[str(mid)] = {
            "name": name(mid), "current": current, "peak": peak, "firmware": firmware_modules.get(mid),
            "growth_per_hour": growth_by_module.get(mid, 0.0 if len(samples) >= 2 else None), "leak_per_hour": leak_by_module.get(mid, 0.0) if sites is not None else None,
        }
    data = {
        "version": RESULTS_VERSION,
        "firmware": str(session.firmware) if session.firmware else None,
        "build_id": session.image.build_id if session.image else None,
        "engine": opts.engine,
        "engine_version": getattr(session.engine, "version", None),
        "fault": _fault(session),
        "platform": opts.platform,
        "capture": opts.capture,
        "virtual_s": virtual_s,
        "virtual": _seconds(virtual_s),
        "wall_s": round(wall_s, 3),
        "wall": _seconds(wall_s),
        "modules": modules,
        "total": {"current": ledger.total.current, "peak": ledger.total.peak, "allocs": ledger.total.allocs, "frees": ledger.total.frees},
        "samples": {"count": len(samples), "times_s": [round(s.t_us / 1e6, 6) for s in samples]},
        "leak_sites": sites,
        "growing_reachable": growing_reachable,
        "growth": {**DEFAULT_POLICY.as_dict(), "samples_used": max(0, len(samples) - DEFAULT_POLICY.warmup(len(samples)))},
        "heap": session.heap_check or {"checked": False, "reason": "the heap was not walked (the run ended before the results were written)"},
        "anomaly_count": len(ledger.anomalies),
        "anomalies": [{"kind": a.kind, "seq": a.seq, "ptr": _hex(a.ptr), "detail": a.detail} for a in ledger.anomalies[:100]],
        "snapshots": list(session.snapshots),
        "stacks": _stacks(session),
        "fragmentation": [{"t_s": round(f.t_us / 1e6, 6), "free": f.free_bytes, "largest_free": f.largest_free}
                          for f in session.fragmentation[-MAX_FRAGMENTATION_SAMPLES:]],
    }
    if reason:
        data["leak_sites_reason"] = reason
    return data


def _stacks(session) -> dict:
    """High-water marks of the target's painted stacks (``used`` None where a stack is not painted)."""
    if session.engine is None or session.image is None:
        return {}
    from memhil.targetmap.rundir import stack_summary

    try:
        return stack_summary(session)
    except Exception as exc:  # noqa: BLE001 - the results must still be written
        log.warning("no stack high-water marks: %s", exc)
        return {}


def _reachability(session, live: list[LiveBlock]):
    """Reachability of the live blocks now (memcheck's scan, :mod:`memhil.analysis.roots`), or None when the
    target cannot be scanned (not running, no roots): then growth alone decides."""
    if session.engine is None or not live:
        return None
    scan = session._read_scan_regions(live)  # None (and a warning) when the target cannot be read
    return scan.classify(live) if scan is not None else None


def _last_walk_blocks(session) -> list[LiveBlock]:
    try:
        return list(session.walk_heap().to_snapshot().blocks.values()) if session.engine is not None else []
    except Exception as exc:  # noqa: BLE001
        log.warning("no final heap walk: %s", exc)
        return []
