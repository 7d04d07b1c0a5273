"""``memhil bench``: run every benchmark side by side in one run, print a table, write JSON.

Figures are ratios or rates from this one run on this machine (DESIGN.md, Performance). A step that
fails is reported (``errors``) and the others still run; its figures are then ``None`` and its
targets "not measured", never a made-up number.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, TextIO

from memhil.bench import engine_bench, offline, sysinfo
from memhil.bench.targets import TARGETS, evaluate
from memhil.errors import ConfigError, MemhilError

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_FIRMWARE_DIR = ROOT / "firmware" / "build" / "stm32f4" / "debug"


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big each benchmark is. ``full`` is what the targets speak of; ``quick`` is scaled down."""

    name: str
    capture_virtual_s: float  # leak_demo with none / trace / hooks (trace figures: burst, trace_virtual_s)
    soak_virtual_s: float  # soak with trace + timeline (24 h in full)
    soak_chunk_s: float
    run_for_virtual_s: float
    run_for_step_s: float
    symbolize_addrs: int
    log_bytes: int
    log_max_bytes: int  # rotation size of the synthetic log
    trace_virtual_s: float = 2.0  # burst (dense allocator workload) free and with trace capture

    @classmethod
    def full(cls) -> "Scale":
        return cls("full", 20.0, 86_400.0, 3_600.0, 600.0, 1.0, 1_000_000, 256 * 1024 * 1024, 96 * 1024 * 1024, 4.0)

    @classmethod
    def quick(cls) -> "Scale":
        return cls("quick", 5.0, 3_600.0, 600.0, 120.0, 1.0, 200_000, 24 * 1024 * 1024, 6 * 1024 * 1024, 1.0)

    @classmethod
    def tiny(cls) -> "Scale":
        """For the tests: every code path, seconds in all."""
        return cls("tiny", 0.5, 60.0, 30.0, 4.0, 1.0, 2_000, 2 * 1024 * 1024, 512 * 1024, 0.1)


class Table:
    """Prints steps and figures as they come, each figure next to its target."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self._targets = {t.key: t for t in TARGETS}

    def say(self, text: str) -> None:
        if self.out is not None:
            print(f"  .. {text}", file=self.out, flush=True)

    def row(self, key: str, value: object, unit: str = "") -> None:
        if self.out is None:
            return
        shown = f"{value:,.3f}" if isinstance(value, float) else ("-" if value is None else f"{value:,}" if isinstance(value, int) else str(value))
        t = self._targets.get(key)
        verdict = ""
        if t is not None:
            met = t.met(float(value)) if isinstance(value, (int, float)) else None
            verdict = f"target {t.op} {t.value:,g}  {'MET' if met else 'NOT MET' if met is False else 'not measured'}"
        print(f"{key:<30} {shown:>16} {unit:<8} {verdict}", file=self.out, flush=True)


def run_bench(scale: Scale, *, firmware_dir: Path = DEFAULT_FIRMWARE_DIR, out: TextIO | None = sys.stdout,
              workdir: Path | None = None) -> dict[str, object]:
    """Run every benchmark at ``scale``; returns the results (see :func:`write_json`)."""
    firmware_dir = Path(firmware_dir)
    leak_demo, soak_elf, burst = firmware_dir / "leak_demo.elf", firmware_dir / "soak.elf", firmware_dir / "burst.elf"
    for elf in (leak_demo, soak_elf, burst):
        if not elf.is_file():
            raise ConfigError(f"benchmark firmware {elf} is missing", hint="build it first: make -C firmware -j2")
    table = Table(out)
    results: dict[str, object] = {
        "scale": dataclasses.asdict(scale),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["memhil", "bench"] + (["--quick"] if scale.name == "quick" else [])),
        "machine": sysinfo.machine(),
        "versions": sysinfo.versions(),
        "errors": {},
    }
    if out is not None:
        m, v = results["machine"], results["versions"]
        print(f"memhil bench ({scale.name}) on {m['cpu_model']}, {m['cores']} cores; {v['qemu']}; Python {v['python']}", file=out)
        print(f"{'figure':<30} {'value':>16} {'unit':<8} target", file=out)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="memhil-bench-") as tmp:
        base = Path(workdir) if workdir else Path(tmp)

        def step(name: str, fn: Callable[[], dict[str, object]], shown: tuple[tuple[str, str], ...]) -> dict[str, object]:
            t0 = time.perf_counter()
            try:
                got = fn()
            except (MemhilError, OSError) as exc:
                results["errors"][name] = f"{type(exc).__name__}: {exc}"  # type: ignore[index]
                table.say(f"{name} failed: {str(exc).splitlines()[0]}")
                return {}
            except Exception as exc:  # noqa: BLE001 - a bug in one step must not lose the others' figures
                results["errors"][name] = "".join(traceback.format_exception_only(type(exc), exc)).strip()  # type: ignore[index]
                table.say(f"{name} failed: {exc!r}")
                return {}
            results.update({k: v for k, v in got.items() if not k.startswith("_")})
            results.setdefault("step_wall_s", {})[name] = time.perf_counter() - t0  # type: ignore[index]
            for key, unit in shown:
                table.row(key, got.get(key), unit)
            return got

        step("elf_load", lambda: offline.elf_load(soak_elf), (("elf_load_s", "s"), ("elf_lines_s", "s")))
        step("capture", lambda: engine_bench.capture_overhead(leak_demo, scale.capture_virtual_s, base, table.say,
                                                              trace_elf=burst, trace_virtual_s=scale.trace_virtual_s),
             (("hook_calls_per_s", "calls/s"), ("overhead_hooks_ratio", "x"), ("hook_stops_per_call", "stops"),
              ("hook_us_per_stop", "us"), ("trace_events_per_s", "ev/s"), ("overhead_trace_ratio", "x"),
              ("trace_capacity_events_per_s", "ev/s"), ("trace_added_us_per_event", "us"),
              ("leak_demo_trace_events_per_s", "ev/s"), ("leak_demo_overhead_trace_ratio", "x")))
        step("hooks", lambda: engine_bench.hook_capture(burst, scale.trace_virtual_s, base, table.say),
             (("hook_calls_per_s", "calls/s"), ("overhead_hooks_ratio", "x"), ("breakpoint_calls_per_s", "calls/s")))
        soak = step("soak", lambda: engine_bench.soak(soak_elf, scale.soak_virtual_s, scale.soak_chunk_s, base, table.say),
                    (("soak_virtual_s", "s"), ("soak_wall_s", "s"), ("acceleration_factor", "x"), ("soak_events", "events")))
        step("run_for", lambda: engine_bench.run_for_overhead(soak_elf, scale.run_for_virtual_s, scale.run_for_step_s, base, table.say),
             (("run_for_overhead_ratio", "x"), ("run_for_ms_per_call", "ms")))
        addresses = soak.get("_addresses") or []
        step("symbolize", lambda: offline.symbolize(soak_elf, addresses, scale.symbolize_addrs),  # type: ignore[arg-type]
             (("symbolize_addrs_per_s", "addr/s"), ("symbolize_1m_s", "s"), ("symbolize_frame_addrs_per_s", "addr/s")))
        step("timeline", lambda: _timeline(base, scale, table), (("write_mb_per_s", "MB/s"), ("parse_mb_per_s_1worker", "MB/s"),
                                                                 ("parse_mb_per_s_2workers", "MB/s"), ("reader_peak_rss_mb", "MB")))
    results["total_wall_s"] = time.perf_counter() - started
    results["targets"] = evaluate(results)
    if out is not None:
        met = [k for k, t in results["targets"].items() if t["met"]]  # type: ignore[union-attr]
        print(f"{len(met)} of {len(TARGETS)} targets met; {results['total_wall_s']:.0f} s in all", file=out)
    return results


def _timeline(base: Path, scale: Scale, table: Table) -> dict[str, object]:
    """Write a synthetic soak-like log, parse it with 1 and 2 workers in child processes; always delete it."""
    with tempfile.TemporaryDirectory(prefix="memhil-bench-log-", dir=None) as tmp:
        directory = Path(tmp)
        wrote = offline.write_log(directory, scale.log_bytes, scale.log_max_bytes, table.say)
        table.say(f"parsing {wrote['log_bytes'] / 1e6:.0f} MB in {wrote['log_files']} files with 1 worker")
        one = offline.parse(directory, 1)
        table.say("parsing with 2 workers")
        two = offline.parse(directory, 2)
    return {
        **wrote,
        "parse_mb_per_s_1worker": one["mb_per_s"], "parse_mb_per_s_2workers": two["mb_per_s"],
        "parse_speedup_2workers": two["mb_per_s"] / one["mb_per_s"],
        "parse_events": one["events"], "parse_bad_records": one["bad_records"] + two["bad_records"],
        "reader_peak_rss_mb": max(one["peak_rss_self_mb"], one["peak_rss_workers_mb"], two["peak_rss_self_mb"], two["peak_rss_workers_mb"]),
        "reader_peak_rss_detail_mb": {"1worker_self": one["peak_rss_self_mb"], "2workers_parent": two["peak_rss_self_mb"],
                                      "2workers_worker": two["peak_rss_workers_mb"]},
    }


def write_json(results: dict[str, object], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
