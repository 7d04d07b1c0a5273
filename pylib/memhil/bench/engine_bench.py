"""Benchmarks on the emulator: capture overhead (hooks, trace) against a free run of the same
workload, the accelerated 24 h soak with trace capture and the timeline log, and the cost of
``run_for`` in many steps against one run of the same virtual time.

Every figure is a wall-clock ratio or rate taken in this process, side by side, on one machine.
Sessions are always stopped (``with Session``), also when a step fails.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

from memhil.session import Session, SessionOptions

Progress = Callable[[str], None]
#: return addresses kept from the soak run for the symbolize benchmark
MAX_ADDRESSES = 200_000


def _session(mode: str, run_dir: Path) -> Session:
    return Session(SessionOptions(capture=mode), run_dir=run_dir)


def capture_run(elf: Path, mode: str, virtual_s: float, workdir: Path) -> dict[str, float | int]:
    """Run ``elf`` for ``virtual_s`` with capture ``mode``; wall seconds of the run (start excluded) and events."""
    with _session(mode, workdir / f"capture-{mode}") as session:
        session.start(elf)
        before = session.capture.events if session.capture else 0
        started = time.perf_counter()
        session.run_for(virtual_s)
        wall = time.perf_counter() - started
        events = (session.capture.events if session.capture else 0) - before
        stats = dict(getattr(session.capture, "stats", {}) or {})
        stops = stats.get("stops")
        drains = getattr(session.capture, "drains", None)
        virtual = session.virtual_time()
    out: dict[str, float | int] = {"wall_s": wall, "events": events, "virtual_s": virtual}
    if stops is not None:
        out["stops"] = stops
    if mode == "trace" and isinstance(drains, int):
        out["drains"] = drains
    return out


def capture_overhead(elf: Path, virtual_s: float, workdir: Path, progress: Progress | None = None, *,
                     trace_elf: Path | None = None, trace_virtual_s: float | None = None) -> dict[str, object]:
    """Free run, trace capture and hook capture of ``elf`` for the same virtual time; with ``trace_elf``
    the trace figures (``trace_events_per_s``, ``overhead_trace_ratio``, capacity) come from a free run and
    a trace run of that workload for ``trace_virtual_s`` (a dense one: ``elf`` may make too few events to
    measure capture), and ``elf``'s own trace figures are kept under ``<stem>_`` keys."""
    runs: dict[str, dict[str, float | int]] = {}
    for mode in ("none", "trace", "hooks"):
        if progress:
            progress(f"{elf.stem}: {virtual_s:g} s virtual with capture {mode}")
        runs[mode] = capture_run(elf, mode, virtual_s, workdir)
    free = runs["none"]["wall_s"]
    hooks = runs["hooks"]
    out: dict[str, object] = {
        "capture_workload": f"{elf.stem} ({elf.parent.name}) for {virtual_s:g} s of virtual time",
        "capture_runs": runs,
        "free_wall_s": free,
        "hook_calls": hooks["events"],
        "hook_calls_per_s": hooks["events"] / hooks["wall_s"],
        "overhead_hooks_ratio": hooks["wall_s"] / free,
    }
    own = _trace_figures(runs["none"], runs["trace"])
    if trace_elf is None:
        out.update(own)
    else:
        out.update({f"{elf.stem}_{k}": v for k, v in own.items()})
        tv = trace_virtual_s if trace_virtual_s is not None else virtual_s
        trace_runs: dict[str, dict[str, float | int]] = {}
        for mode in ("none", "trace"):
            if progress:
                progress(f"{trace_elf.stem}: {tv:g} s virtual with capture {mode}")
            trace_runs[mode] = capture_run(trace_elf, mode, tv, workdir / trace_elf.stem)
        out["trace_workload"] = f"{trace_elf.stem} ({trace_elf.parent.name}) for {tv:g} s of virtual time"
        out["trace_runs"] = trace_runs
        out.update(_trace_figures(trace_runs["none"], trace_runs["trace"]))
    if hooks.get("stops") and hooks["events"]:
        out["hook_stops_per_call"] = hooks["stops"] / hooks["events"]
        out["hook_us_per_stop"] = hooks["wall_s"] / hooks["stops"] * 1e6
    return out


def hook_capture(burst: Path, virtual_s: float, workdir: Path, progress: Progress | None = None, *,
                 breakpoint_virtual_s: float = 0.02, repeats: int = 3) -> dict[str, object]:
    """Patched hooks (``capture=hooks``) on the dense ``burst`` workload against its free run, ``repeats`` times
    interleaved (medians, with the spread); the breakpoint fallback (``capture=breakpoints``) once on a short run
    (it takes hundreds of calls per second: ``breakpoint_virtual_s`` of burst is about 50 calls per ms)."""
    from statistics import median

    free: list[float] = []
    hooks: list[dict[str, float | int]] = []
    for i in range(repeats):
        for mode in ("none", "hooks"):
            if progress:
                progress(f"{burst.stem}: {virtual_s:g} s virtual with capture {mode} ({i + 1}/{repeats})")
            run = capture_run(burst, mode, virtual_s, workdir / f"hooks-{i}")
            (free.append(run["wall_s"]) if mode == "none" else hooks.append(run))  # type: ignore[func-returns-value]
    if progress:
        progress(f"{burst.stem}: {breakpoint_virtual_s:g} s virtual with capture breakpoints")
    stopped = capture_run(burst, "breakpoints", breakpoint_virtual_s, workdir / "breakpoints")
    rates = [h["events"] / h["wall_s"] for h in hooks]
    ratios = [h["wall_s"] / f for h, f in zip(hooks, free)]
    return {
        "hook_workload": f"{burst.stem} ({burst.parent.name}) for {virtual_s:g} s of virtual time, {repeats} interleaved runs",
        "hook_runs": {"none_wall_s": free, "hooks": hooks, "breakpoints": stopped},
        "hook_calls": hooks[0]["events"],
        "hook_calls_per_s": median(rates),
        "hook_calls_per_s_spread": [min(rates), max(rates)],
        "overhead_hooks_ratio": median(ratios),
        "overhead_hooks_ratio_spread": [min(ratios), max(ratios)],
        "breakpoint_calls_per_s": stopped["events"] / stopped["wall_s"],
    }


def _trace_figures(free: dict[str, float | int], trace: dict[str, float | int]) -> dict[str, object]:
    """Trace events per wall second, wall against the free run, and the host's cost per event
    (the wall the trace run adds, per event) with the rate that cost alone would allow."""
    events = trace["events"]
    added = trace["wall_s"] - free["wall_s"]
    return {
        "trace_events": events,
        "trace_events_per_s": events / trace["wall_s"],
        "overhead_trace_ratio": trace["wall_s"] / free["wall_s"],
        "trace_added_us_per_event": added / events * 1e6 if events else None,
        "trace_capacity_events_per_s": events / added if added > 0 and events else None,
        "trace_drain_stops": trace.get("drains"),
        "trace_events_per_virtual_s": events / trace["virtual_s"] if trace["virtual_s"] else None,
    }


def soak(elf: Path, virtual_s: float, chunk_s: float, workdir: Path, progress: Progress | None = None) -> dict[str, object]:
    """The soak firmware with trace capture and the timeline log on, run ``virtual_s`` in ``chunk_s`` pieces.

    Also keeps up to :data:`MAX_ADDRESSES` return addresses (the firmware-recorded LRs) of the events,
    in order, as the address mix for the symbolize benchmark."""
    addresses: list[int] = []

    def keep(event) -> None:
        if len(addresses) < MAX_ADDRESSES:
            addresses.extend(event.lrs)

    keep.host_only = True  # type: ignore[attr-defined] # touches no target: drains stay overlapped

    with tempfile.TemporaryDirectory(prefix="memhil-bench-soak-") as tmp, _session("trace", workdir / "soak") as session:
        session.start(elf)
        session.extra_sinks.append(keep)
        session.start_timeline(Path(tmp) / "timeline")
        v0 = session.virtual_time()
        started = time.perf_counter()
        done = 0.0
        while done < virtual_s:
            step = min(chunk_s, virtual_s - done)
            session.run_for(step)
            done += step
            if progress:
                wall = time.perf_counter() - started
                progress(f"soak: {done / 3600:.2f} h of {virtual_s / 3600:.2f} h virtual in {wall:.1f} s wall ({done / wall:.0f}x)")
        wall = time.perf_counter() - started
        virtual = session.virtual_time() - v0
        events = session.capture.events if session.capture else 0
        writer = session.timeline
        log_bytes = writer.bytes_written if writer is not None else 0
        log_error = str(writer.error) if writer is not None and writer.error else None
        gaps = len(getattr(session.capture, "gaps", []))
        session.stop()
    return {
        "soak_virtual_s": virtual, "soak_wall_s": wall, "acceleration_factor": virtual / wall,
        "soak_events": events, "soak_events_per_wall_s": events / wall, "soak_log_bytes": log_bytes,
        "soak_log_error": log_error, "soak_trace_gaps": gaps, "_addresses": addresses,
    }


def run_for_overhead(elf: Path, virtual_s: float, step_s: float, workdir: Path, progress: Progress | None = None) -> dict[str, object]:
    """``run_for(virtual_s)`` once against ``virtual_s / step_s`` calls of ``run_for(step_s)``, no capture, each from reset."""
    walls: dict[str, float] = {}
    for name, steps in (("one", 1), ("steps", max(1, round(virtual_s / step_s)))):
        if progress:
            progress(f"run_for: {virtual_s:g} s virtual in {steps} call(s)")
        with _session("none", workdir / f"run_for-{name}") as session:
            session.start(elf)
            engine = session.engine
            each = virtual_s / steps
            started = time.perf_counter()
            for _ in range(steps):
                engine.run_for(each)
            walls[name] = time.perf_counter() - started
    steps = max(1, round(virtual_s / step_s))
    return {
        "run_for_workload": f"{elf.stem}: {virtual_s:g} s virtual, once vs {steps} x {virtual_s / steps:g} s",
        "run_for_one_wall_s": walls["one"], "run_for_steps_wall_s": walls["steps"], "run_for_steps": steps,
        "run_for_overhead_ratio": walls["steps"] / walls["one"],
        "run_for_ms_per_call": (walls["steps"] - walls["one"]) / max(steps - 1, 1) * 1e3,
    }
