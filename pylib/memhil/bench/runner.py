"""``memhil bench``: every registered figure in one run, a table as it goes, the results as a dict.

Figures are the medians of repeated runs on this machine with their spread (``<key>_min``,
``<key>_max``, ``<key>_runs``; DESIGN.md, Performance); ratios come from interleaved pairs. A figure
that fails is reported (``errors``) and the others still run; its keys are then absent (``None`` in
the CLI's JSON) and its targets "not measured", never a made-up number.
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
from typing import TextIO

from memhil.bench import engine_bench, offline, sysinfo  # noqa: F401 - importing registers their figures, in this order
from memhil.bench.registry import FIGURES, BenchContext
from memhil.bench.report import number
from memhil.bench.targets import TARGETS, evaluate
from memhil.errors import ConfigError, MemhilError

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_FIRMWARE_DIR = ROOT / "firmware" / "build" / "stm32f4" / "debug"
#: the apps the figures run (debug builds)
APPS = ("leak_demo", "soak", "burst")


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big each figure is. ``full`` is what the targets speak of; ``quick`` is scaled down."""

    name: str
    runs: int  # repeats per figure (interleaved pairs for ratios)
    trace_virtual_s: float  # burst, free and with trace capture, per run
    hooks_virtual_s: float  # burst, free and with patched hooks, per run
    soak_virtual_s: float  # soak app with trace + timeline (24 h in full), per run
    soak_runs: int
    run_for_virtual_s: float
    run_for_step_s: float
    burst_log_virtual_s: float  # burst app recorded with the timeline log (the parse and host-cost figures)
    symbolize_addrs: int  # cold lookups at least (distinct addresses: every halfword of .text up to this)
    host_events: int  # recorded trace records the host-cost figure decodes, at most
    log_max_bytes: int | None = None  # log rotation size; None: memhil soak's default
    breakpoint_virtual_s: float = 0.02  # burst with capture=breakpoints, per run (hundreds of calls a second)
    readme_virtual_s: float = 600.0  # the README's Robot example: Run For 10 min with capture=hooks (leak_demo)

    @classmethod
    def full(cls) -> "Scale":
        return cls("full", 5, 4.0, 4.0, 86_400.0, 5, 600.0, 1.0, 20.0, 100_000, 200_000)

    @classmethod
    def quick(cls) -> "Scale":
        return cls("quick", 5, 1.0, 1.0, 3_600.0, 5, 120.0, 1.0, 4.0, 100_000, 100_000, 4 * 1024 * 1024)

    @classmethod
    def tiny(cls) -> "Scale":
        """For the tests: every code path, seconds in all."""
        return cls("tiny", 2, 0.2, 0.2, 60.0, 2, 4.0, 1.0, 0.5, 2_000, 5_000, 256 * 1024, 0.011, readme_virtual_s=10.0)


class Table:
    """Prints progress lines and figures as they come, each figure with its spread and next to its target."""

    def __init__(self, out: TextIO | None) -> None:
        self.out = out
        self._targets = {t.key: t for t in TARGETS}
        self._t0 = time.perf_counter()

    def say(self, text: str) -> None:
        if self.out is not None:
            print(f"  .. [{time.perf_counter() - self._t0:5.0f} s] {text}", file=self.out, flush=True)

    def row(self, key: str, results: dict[str, object], unit: str = "") -> None:
        if self.out is None:
            return
        value = results.get(key)
        shown = number(value)
        lo, hi, runs = results.get(f"{key}_min"), results.get(f"{key}_max"), results.get(f"{key}_runs")
        if runs:
            shown += f" [{number(lo)} .. {number(hi)}, {runs} runs]"
        t = self._targets.get(key)
        verdict = ""
        if t is not None:
            met = t.met(float(value)) if isinstance(value, (int, float)) else None
            verdict = f"target {t.op} {t.value:,g}  {'MET' if met else 'NOT MET' if met is False else 'not measured'}"
        print(f"{key:<32} {shown:>40} {unit:<7} {verdict}", file=self.out, flush=True)


def run_bench(scale: Scale, *, firmware_dir: Path = DEFAULT_FIRMWARE_DIR, out: TextIO | None = sys.stdout,
              workdir: Path | None = None, only: tuple[str, ...] | None = None) -> dict[str, object]:
    """Run every registered figure (or those named in ``only``) at ``scale``; returns the results (see :func:`write_json`)."""
    firmware_dir = Path(firmware_dir)
    for app in APPS:
        if not (firmware_dir / f"{app}.elf").is_file():
            raise ConfigError(f"benchmark firmware {firmware_dir / f'{app}.elf'} is missing", hint="build it first: make -C firmware -j2")
    if only is not None:
        unknown = [name for name in only if name not in FIGURES]
        if unknown:
            raise ConfigError(f"unknown bench figure(s): {', '.join(unknown)}", hint=f"choose from {', '.join(FIGURES)}")
    table = Table(out)
    results: dict[str, object] = {
        "scale": dataclasses.asdict(scale),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join(["memhil", "bench"] + (["--quick"] if scale.name == "quick" else [])),
        "machine": sysinfo.machine(),
        "versions": sysinfo.versions(),
        "errors": {},
    }
    errors: dict[str, str] = results["errors"]  # type: ignore[assignment]
    if out is not None:
        m, v = results["machine"], results["versions"]
        print(f"memhil bench ({scale.name}) on {m['cpu_model']}, {m['cores']} cores; {v['qemu']}; Python {v['python']}", file=out)  # type: ignore[index]
        print(f"{'figure':<32} {'median [min .. max, runs]':>40} {'unit':<7} target", file=out)
    started = time.perf_counter()
    step_wall: dict[str, float] = {}
    owner: dict[str, str] = {}  # key -> the figure that produced it
    with tempfile.TemporaryDirectory(prefix="memhil-bench-") as tmp:
        ctx = BenchContext(scale, firmware_dir, Path(workdir) if workdir else Path(tmp), table.say)
        for fig in FIGURES.values():
            if only is not None and fig.name not in only:
                continue
            table.say(f"{fig.name} ...")
            t0 = time.perf_counter()
            try:
                got = fig.fn(ctx)
            except (MemhilError, OSError) as exc:
                errors[fig.name] = f"{type(exc).__name__}: {exc}"
                table.say(f"{fig.name} failed: {str(exc).splitlines()[0]}")
                continue
            except Exception as exc:  # noqa: BLE001 - a bug in one figure must not lose the others
                errors[fig.name] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
                table.say(f"{fig.name} failed: {exc!r}")
                continue
            clash = sorted(k for k in got if k in owner)
            if clash:  # two figures measuring under one name: neither figure is what its key says
                errors[fig.name] = "ConfigError: keys already produced by another figure: " + ", ".join(f"{k} ({owner[k]})" for k in clash)
                table.say(f"{fig.name} failed: {errors[fig.name]}")
                continue
            owner.update({k: fig.name for k in got})
            results.update({k: v for k, v in got.items() if not k.startswith("_")})
            step_wall[fig.name] = time.perf_counter() - t0
            for key, unit in fig.shown:
                table.row(key, results, unit)
        if "engine_version" in ctx.artifacts:
            results["versions"]["qemu_engine"] = ctx.artifacts["engine_version"]  # type: ignore[index]
    results["step_wall_s"] = step_wall
    results["total_wall_s"] = time.perf_counter() - started
    results["targets"] = evaluate(results)
    if out is not None:
        met = [k for k, t in results["targets"].items() if t["met"]]  # type: ignore[union-attr]
        print(f"{len(met)} of {len(TARGETS)} targets met; {results['total_wall_s']:.0f} s in all", file=out)
    return results


def write_json(results: dict[str, object], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n")
