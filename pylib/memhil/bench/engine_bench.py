"""Figures on the emulator: capture against a free run of the same workload (interleaved pairs), the
accelerated 24 h soak recorded as ``memhil soak`` records it, ``run_for`` as a cost per call, and the
burst app's log (for the parse and host-cost figures).

Each figure is one function registered with :func:`memhil.bench.registry.figure`. A ratio is taken
per pair of runs made one after the other in two live sessions (free, captured, free, captured, ...),
after one warm-up run in each that is not counted (QEMU translates the code on its first pass), and
kept as the median of the pairs with its spread. Sessions are always stopped (``with Session``).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

from memhil.bench.registry import BenchContext, figure
from memhil.bench.stats import interleave, spread, spreads
from memhil.session import Session, SessionOptions
from memhil.units import format_duration


def _session(mode: str, run_dir: Path, **engine_options) -> Session:
    return Session(SessionOptions(capture=mode, engine_options=engine_options), run_dir=run_dir)


def _note_engine(ctx: BenchContext, session: Session) -> None:
    """The emulator's own version (QMP query-version), for the JSON's ``versions``."""
    version = getattr(session.engine, "version", None)
    if version and "engine_version" not in ctx.artifacts:
        ctx.artifacts["engine_version"] = version


def _engine_cpu_s(session: Session) -> float | None:
    """CPU seconds the emulator's process has used, all its threads (Linux ``/proc/PID/task/*/schedstat``, in
    nanoseconds), or None where that cannot be read."""
    process = getattr(session.engine, "process", None)
    pid = getattr(process, "pid", None)
    if pid is None:
        return None
    total = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue  # a thread that ended meanwhile
    except OSError:
        return None
    return total / 1e9


def _timed_run(session: Session, virtual_s: float) -> dict[str, float | int]:
    """``session.run_for(virtual_s)``: wall seconds, events captured, breakpoint stops and drains during it, the
    CPU seconds of the emulator's process (``engine_cpu_s``, where readable) and of this one (``host_cpu_s``), and
    for a ring capture the wall seconds its drain stops spent copying and its decoding took (``copy_s``,
    ``decode_s``, of which ``decode_running_s`` while the target ran)."""
    cap = session.capture
    events0 = cap.events if cap else 0
    stats0 = dict(getattr(cap, "stats", {}) or {}) if cap else {}
    drains0 = getattr(cap, "drains", 0) if cap else 0
    engine_cpu0, host_cpu0 = _engine_cpu_s(session), time.process_time()
    started = time.perf_counter()
    session.run_for(virtual_s)
    wall = time.perf_counter() - started
    host_cpu, engine_cpu = time.process_time() - host_cpu0, _engine_cpu_s(session)
    out: dict[str, float | int] = {"wall_s": wall, "virtual_s": virtual_s, "events": (cap.events if cap else 0) - events0,
                                   "host_cpu_s": host_cpu}
    if engine_cpu is not None and engine_cpu0 is not None:
        out["engine_cpu_s"] = engine_cpu - engine_cpu0
    if cap is not None:
        stats = getattr(cap, "stats", {}) or {}
        for key in ("stops", "copy_s", "decode_s", "decode_running_s", "live_copies", "live_s"):
            if key in stats:
                out[key] = stats[key] - stats0.get(key, 0.0)
        drains = getattr(cap, "drains", None)
        if isinstance(drains, int):
            out["drains"] = drains - drains0
    return out


def paired_capture(ctx: BenchContext, elf: Path, mode: str, virtual_s: float, also: Callable[[int], dict] | None = None) -> list[tuple]:
    """``ctx.scale.runs`` pairs of ``virtual_s`` of ``elf`` free then with capture ``mode``, in two sessions
    kept open side by side (only one runs at a time), each warmed up first by one uncounted run. ``also(i)``: a
    third run in each round, after the pair (its result is the round's third item)."""
    with _session("none", ctx.workdir / f"{elf.stem}-free") as free, _session(mode, ctx.workdir / f"{elf.stem}-{mode}") as captured:
        ctx.say(f"{elf.stem}: starting a free session and a {mode} session")
        free.start(elf)
        captured.start(elf)
        _note_engine(ctx, captured)
        for s in (free, captured):
            s.run_for(virtual_s)  # warm-up: QEMU's first translation of the code, not counted
        def captured_runs(i: int) -> tuple[dict, ...]:
            return (_timed_run(captured, virtual_s),) + ((also(i),) if also else ())

        pairs = interleave(ctx.scale.runs, lambda i: _timed_run(free, virtual_s), captured_runs, ctx.say,
                           f"{elf.stem}: {virtual_s:g} s virtual, free then {mode}")
        return [(f, *c) for f, c in pairs]


@figure("trace", shown=(("trace_events_per_s", "ev/s"), ("overhead_trace_ratio", "x")))
def trace_overhead(ctx: BenchContext) -> dict[str, object]:
    """Trace capture on the burst app (dense allocator workload) against a free run of it."""
    v = ctx.scale.trace_virtual_s
    pairs = paired_capture(ctx, ctx.elf("burst"), "trace", v)
    per = [{"trace_events_per_s": t["events"] / t["wall_s"], "overhead_trace_ratio": t["wall_s"] / f["wall_s"],
            "trace_free_wall_s": f["wall_s"], "trace_wall_s": t["wall_s"], "trace_events_per_virtual_s": t["events"] / v,
            "trace_drain_stops": t.get("drains")} for f, t in pairs]
    return {"trace_workload": f"burst for {v:g} s of virtual time, free and with trace capture, {len(pairs)} interleaved pairs",
            **spreads(per, per[0].keys())}


@figure("hooks", shown=(("hook_calls_per_s", "calls/s"), ("overhead_hooks_ratio", "x"), ("breakpoint_calls_per_s", "calls/s")))
def hooks_overhead(ctx: BenchContext) -> dict[str, object]:
    """Patched hooks (``capture=hooks``) on the burst app against a free run of it, interleaved, with a third session
    whose ring is read only at doorbell stops (the engine's ``live_memory`` off) run in the same rounds; the
    breakpoint fallback (``capture=breakpoints``) on a short run of the same app, as many runs (it takes hundreds
    of calls per second: ``breakpoint_virtual_s`` of burst is about 50 calls per ms)."""
    v = ctx.scale.hooks_virtual_s
    burst = ctx.elf("burst")
    with _session("hooks", ctx.workdir / "burst-hooks-at-stops", live_memory=False) as at_stops:
        at_stops.start(burst)
        at_stops.run_for(v)  # warm-up, not counted
        rounds = paired_capture(ctx, burst, "hooks", v, also=lambda i: _timed_run(at_stops, v))
    per = [{"hook_calls_per_s": h["events"] / h["wall_s"], "overhead_hooks_ratio": h["wall_s"] / f["wall_s"],
            "hook_calls": h["events"], "hook_free_wall_s": f["wall_s"], "hook_wall_s": h["wall_s"],
            "hook_drain_stops": h.get("stops"), "hook_copy_wall_s": h.get("copy_s"), "hook_decode_wall_s": h.get("decode_s"),
            "hook_live_copies": h.get("live_copies"), "hook_live_wall_s": h.get("live_s"),
            "hook_decode_running_wall_s": h.get("decode_running_s"),
            "hook_engine_cpu_ratio": h["engine_cpu_s"] / f["engine_cpu_s"] if "engine_cpu_s" in h and "engine_cpu_s" in f else None,
            "hook_host_cpu_us_per_call": h["host_cpu_s"] / h["events"] * 1e6 if h["events"] else None,
            "overhead_hooks_at_stops_ratio": s["wall_s"] / f["wall_s"], "hook_at_stops_drain_stops": s.get("stops")}
           for f, h, s in rounds]
    out = {"hooks_workload": f"burst for {v:g} s of virtual time, free, with patched hooks, and with patched hooks read at "
                             f"doorbell stops only, {len(rounds)} interleaved rounds",
           **spreads(per, per[0].keys())}
    out.update(breakpoint_capture(ctx, burst, ctx.scale.breakpoint_virtual_s))
    return out


@figure("readme_hooks", shown=(("readme_hooks_wall_s", "s"),))
def readme_hooks(ctx: BenchContext) -> dict[str, object]:
    """The README's Robot example as it runs: a fresh session of leak_demo with ``capture=hooks`` (start, then
    ``Run For 10 min``, which takes in every call by its end), ``ctx.scale.runs`` times; the wall of the run and the
    calls it saw."""
    v = ctx.scale.readme_virtual_s
    per = []
    for i in range(ctx.scale.runs):
        ctx.say(f"README example: leak_demo, capture=hooks, {format_duration(v)} virtual ({i + 1}/{ctx.scale.runs})")
        with _session("hooks", ctx.workdir / f"readme-{i}") as session:
            session.start(ctx.elf("leak_demo"))
            _note_engine(ctx, session)
            started = time.perf_counter()
            session.run_for(v)
            per.append({"readme_hooks_wall_s": time.perf_counter() - started, "readme_hooks_calls": session.capture.events})
    return {"readme_workload": f"leak_demo with capture=hooks, {format_duration(v)} of virtual time in one run_for, a fresh "
                               f"session each time, {len(per)} runs", **spreads(per, per[0].keys())}


def breakpoint_capture(ctx: BenchContext, elf: Path, virtual_s: float) -> dict[str, object]:
    """The breakpoint fallback: ``ctx.scale.runs`` runs of ``virtual_s`` of ``elf`` with ``capture=breakpoints``
    in one session (after one uncounted warm-up run), calls per wall second."""
    with _session("breakpoints", ctx.workdir / f"{elf.stem}-breakpoints") as session:
        session.start(elf)
        _note_engine(ctx, session)
        session.run_for(virtual_s)
        per = []
        for i in range(ctx.scale.runs):
            ctx.say(f"{elf.stem}: {virtual_s:g} s virtual with capture breakpoints ({i + 1}/{ctx.scale.runs})")
            run = _timed_run(session, virtual_s)
            per.append({"breakpoint_calls_per_s": run["events"] / run["wall_s"], "breakpoint_calls": run["events"]})
    return {"breakpoint_workload": f"{elf.stem} for {virtual_s:g} s of virtual time with capture=breakpoints, {len(per)} runs",
            **spreads(per, per[0].keys())}


def soak_defaults() -> dict[str, object]:
    """What ``memhil soak`` records with when given no options: steps, log rotation size and files kept."""
    from memhil.cli import build_parser
    from memhil.units import parse_size

    args = build_parser().parse_args(["soak", "firmware.elf"])
    return {"steps": args.steps, "max_bytes": parse_size(args.max_file_size), "max_files": args.max_files,
            "max_file_size": args.max_file_size}


def record_like_soak(ctx: BenchContext, elf: Path, virtual_s: float, log_dir: Path, label: str, *,
                     sink: Callable | None = None, max_bytes: int | None = None) -> dict[str, object]:
    """Run ``elf`` for ``virtual_s`` with trace capture and the timeline log in ``log_dir``, in ``memhil soak``'s
    steps and with its rotation (``max_bytes`` overrides the rotation size). ``sink``: an extra host-only event sink."""
    d = soak_defaults()
    steps = int(d["steps"])  # type: ignore[arg-type]
    with _session("trace", ctx.workdir / f"{elf.stem}-soak") as session:
        session.start(elf)
        _note_engine(ctx, session)
        if sink is not None:
            session.extra_sinks.append(sink)
        session.start_timeline(log_dir, max_bytes=max_bytes or int(d["max_bytes"]), max_files=int(d["max_files"]))  # type: ignore[arg-type]
        v0 = session.virtual_time()
        started = time.perf_counter()
        step = virtual_s / steps
        for i in range(steps):
            session.run_for(step if i < steps - 1 else virtual_s - step * (steps - 1))
            if (i + 1) % max(1, steps // 4) == 0 and i + 1 < steps:
                wall = time.perf_counter() - started
                ctx.say(f"{label}: {format_duration(session.virtual_time() - v0)} virtual in {wall:.1f} s wall")
        session.drain()
        wall = time.perf_counter() - started
        virtual = session.virtual_time() - v0
        events = session.capture.events if session.capture else 0
        writer = session.timeline
        error = str(writer.error) if writer is not None and writer.error else None
        gaps = len(getattr(session.capture, "gaps", []))
        session.stop()
    files = sorted(log_dir.glob("memlog*.bin"))
    return {"virtual_s": virtual, "wall_s": wall, "events": events, "log_bytes": sum(p.stat().st_size for p in files),
            "log_files": len(files), "log_error": error, "trace_gaps": gaps, "steps": steps}


@figure("soak", shown=(("soak_wall_s", "s"), ("acceleration_factor", "x")))
def soak(ctx: BenchContext) -> dict[str, object]:
    """The soak app for ``soak_virtual_s`` (24 h in full) with trace capture and the timeline log, as ``memhil soak``
    records it, ``soak_runs`` times; the last run's log stays for the parse figure (artifact ``soak_log``)."""
    s = ctx.scale
    runs = []
    log_dir = ctx.workdir / "soak-log"
    for i in range(s.soak_runs):
        shutil.rmtree(log_dir, ignore_errors=True)
        ctx.say(f"soak: run {i + 1} of {s.soak_runs}, {format_duration(s.soak_virtual_s)} virtual")
        got = record_like_soak(ctx, ctx.elf("soak"), s.soak_virtual_s, log_dir, f"soak run {i + 1}", max_bytes=s.log_max_bytes)
        got["acceleration_factor"] = got["virtual_s"] / got["wall_s"]
        runs.append(got)
    last = runs[-1]
    ctx.artifacts["soak_log"] = (log_dir, _log_kind("soak", last, ctx))
    return {"soak_workload": f"soak for {format_duration(s.soak_virtual_s)} of virtual time with trace capture and the timeline log, "
                             f"in memhil soak's {last['steps']} steps, {len(runs)} runs",
            "soak_virtual_s": last["virtual_s"], "soak_events": last["events"], "soak_log_bytes": last["log_bytes"],
            "soak_log_files": last["log_files"], "soak_log_error": next((r["log_error"] for r in runs if r["log_error"]), None),
            "soak_trace_gaps": sum(int(r["trace_gaps"]) for r in runs),
            **spread("soak_wall_s", [r["wall_s"] for r in runs]), **spread("acceleration_factor", [r["acceleration_factor"] for r in runs]),
            **spread("soak_events_per_wall_s", [r["events"] / r["wall_s"] for r in runs])}


def _log_kind(app: str, rec: dict[str, object], ctx: BenchContext) -> str:
    rotation = ctx.scale.log_max_bytes or soak_defaults()["max_bytes"]
    return (f"{app}.elf, {format_duration(float(rec['virtual_s']))} virtual recorded as memhil soak records it (trace capture), "
            f"{int(rec['events']):,} events, {int(rec['log_bytes']) / 1e6:.1f} MB in {rec['log_files']} file(s) of at most "
            f"{int(rotation) / 2**20:g} MiB")  # type: ignore[call-overload]


@figure("burst_log", shown=(("burst_log_bytes", "B"),))
def burst_log(ctx: BenchContext) -> dict[str, object]:
    """The burst app recorded as ``memhil soak`` records it, for the parse figure (artifact ``burst_log``), and the
    first ``host_events`` of its events as trace records (artifact ``trace_records``) for the host-cost figure."""
    from memhil.bench.offline import encode_record

    s = ctx.scale
    log_dir = ctx.workdir / "burst-log"
    shutil.rmtree(log_dir, ignore_errors=True)
    records = bytearray()
    limit = s.host_events

    def keep(event) -> None:
        if len(records) < limit * 40:
            records.extend(encode_record(event))

    keep.host_only = True  # type: ignore[attr-defined] # touches no target: drains stay overlapped
    ctx.say(f"burst: recording {s.burst_log_virtual_s:g} s virtual with trace capture and the timeline log")
    got = record_like_soak(ctx, ctx.elf("burst"), s.burst_log_virtual_s, log_dir, "burst", sink=keep, max_bytes=s.log_max_bytes)
    ctx.artifacts["burst_log"] = (log_dir, _log_kind("burst", got, ctx))
    ctx.artifacts["trace_records"] = bytes(records)
    return {"burst_log_virtual_s": got["virtual_s"], "burst_log_wall_s": got["wall_s"], "burst_log_events": got["events"],
            "burst_log_bytes": got["log_bytes"], "burst_log_files": got["log_files"], "burst_log_error": got["log_error"]}


@figure("run_for", shown=(("run_for_ms_per_call", "ms"), ("run_for_overhead_ratio", "x")))
def run_for_cost(ctx: BenchContext) -> dict[str, object]:
    """What one ``run_for`` call costs: ``run_for(V)`` once against ``V / step`` calls of ``run_for(step)``, in
    interleaved pairs in one session of the soak app without capture; per call, the added wall over the
    calls after the first, in ms. The ratio of the two walls is kept as information (a second of a
    sleeping firmware costs almost nothing, so it mostly measures its own denominator)."""
    s = ctx.scale
    steps = max(2, round(s.run_for_virtual_s / s.run_for_step_s))
    each = s.run_for_virtual_s / steps
    with _session("none", ctx.workdir / "run_for") as session:
        session.start(ctx.elf("soak"))
        _note_engine(ctx, session)
        engine = session.engine
        engine.run_for(s.run_for_virtual_s)  # warm-up, not counted

        def one(_: int) -> float:
            t0 = time.perf_counter()
            engine.run_for(s.run_for_virtual_s)
            return time.perf_counter() - t0

        def many(_: int) -> float:
            t0 = time.perf_counter()
            for _ in range(steps):
                engine.run_for(each)
            return time.perf_counter() - t0

        pairs = interleave(s.runs, one, many, ctx.say, f"run_for: {s.run_for_virtual_s:g} s virtual once, then in {steps} calls")
    per = [{"run_for_ms_per_call": (b - a) / (steps - 1) * 1e3, "run_for_overhead_ratio": b / a, "run_for_one_wall_s": a,
            "run_for_steps_wall_s": b} for a, b in pairs]
    return {"run_for_workload": f"soak without capture: {s.run_for_virtual_s:g} s virtual once vs {steps} x {each:g} s, "
                                f"{len(pairs)} interleaved pairs", "run_for_steps": steps, **spreads(per, per[0].keys())}
