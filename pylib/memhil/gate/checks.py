"""The gate's checks over run results: module budgets, leaks, heap integrity, growth over a baseline.

Each check is one :class:`Check` (one JUnit test case): ``pass``, ``fail`` or ``skip`` with a
one-line message and, for failures, details (a leak's call stacks). Results a check needs but a
run does not hold are collected first over every run and raised together as one
:class:`ConfigError` (the gate's exit 2), so a broken setup is not mistaken for a pass or a fail.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from memhil.errors import ConfigError
from memhil.gate.budgets import MODULE_KEYS, Budgets, ModuleBudget
from memhil.modules import DEFAULT_MODULES
from memhil.results import RESULTS_VERSION, RunResults, sees_every_call

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class Check:
    run: str
    name: str
    status: str
    message: str
    details: str = ""

    @property
    def failed(self) -> bool:
        return self.status == FAIL


@dataclass
class GateResult:
    checks: list[Check] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.failed]

    @property
    def exit_code(self) -> int:
        return 1 if self.failures else 0

    def count(self, status: str) -> int:
        return sum(1 for c in self.checks if c.status == status)


@dataclass(frozen=True)
class _Frame:
    function: str | None
    file: str | None
    line: int | None


def _size(n: float | int | None) -> str:
    if n is None:
        return "?"
    n = float(n)
    for unit, factor in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= factor:
            return f"{n / factor:.1f} {unit}"
    return f"{n:g} B"


# -- what each run must hold -----------------------------------------------------------------------
def _module_keys(run: RunResults, budgets: Budgets) -> list[str]:
    """Modules to check in ``run``: each with its own budget, plus every module of the run when defaults limit something."""
    keys = list(budgets.modules)
    if any(getattr(budgets.defaults, k) is not None for k in MODULE_KEYS):
        for mid, entry in run.modules.items():
            name = str(entry.get("name") or mid).upper()
            if name not in keys and mid not in keys:
                keys.append(name)
    return keys


def _find_module(run: RunResults, key: str, budgets: Budgets) -> tuple[str, dict | None]:
    """(display name, entry) of a module given by name or id; entry None when the run never saw it."""
    entry = run.module(key)
    if entry is not None:
        return str(entry.get("name") or key), entry
    mid = budgets.module_names.get(key)
    if mid is None:
        mid = DEFAULT_MODULES.get(key)
    if mid is None and key.isdigit():
        mid = int(key)
    if mid is not None and str(mid) in run.modules:
        entry = run.modules[str(mid)]
        return str(entry.get("name") or key), entry
    return key, None


def _known(run: RunResults, key: str, budgets: Budgets) -> bool:
    return run.module(key) is not None or key in budgets.module_names or key in DEFAULT_MODULES or key.isdigit()


def missing_results(run: RunResults, budgets: Budgets, *, baseline: bool = False) -> list[str]:
    """What ``run`` lacks for these budgets, in words."""
    data = run.data
    out: list[str] = []
    version = data.get("version")
    if not isinstance(version, int) or version < RESULTS_VERSION:
        out.append(f"results version {RESULTS_VERSION} (found {version!r}: written by an older memhil; rerun the suites)")
    if not isinstance(data.get("modules"), dict):
        out.append("module figures ('modules')")
        return out
    if records_nothing(run):
        return out
    for key in _module_keys(run, budgets):
        name, entry = _find_module(run, key, budgets)
        if entry is None:
            continue
        limits = budgets.for_module(key)
        for metric in ("current", "peak"):
            if getattr(limits, metric) is not None and entry.get(metric) is None and sees_every_call(data.get("capture")):
                out.append(f"{metric} bytes of module {name} (capture {data.get('capture')!r} does not record them; use hooks or trace)")
    needs_sites = budgets.leaks_fail or any(budgets.for_module(k).leak_per_hour is not None for k in _module_keys(run, budgets))
    if needs_sites and data.get("leak_sites") is None:
        out.append("leak sites ('leak_sites'" + (f": {data['leak_sites_reason']}" if data.get("leak_sites_reason") else "") + ")")
    if budgets.heap_integrity and not isinstance(data.get("heap"), dict):
        out.append("heap integrity ('heap')")
    if budgets.max_anomalies is not None and data.get("anomaly_count") is None:
        out.append("anomaly count ('anomaly_count')")
    return out


def records_nothing(run: RunResults) -> bool:
    """A run started with capture 'none' measured no allocations on purpose: its checks are skipped, not missing."""
    return run.data.get("capture") == "none"


def check_inputs(runs: list[RunResults], budgets: Budgets, baseline: list[RunResults] | None) -> None:
    """Raise :class:`ConfigError` naming every missing result and every budgeted module no run knows."""
    problems: list[str] = []
    for run in runs:
        problems += [f"{run.path}: missing {m}" for m in missing_results(run, budgets)]
    for key, line in budgets.module_lines.items():
        if not any(_known(run, key, budgets) for run in runs):
            problems.append(f"{budgets.source}:{line}: module {key!r} is not a module of any run (add it under [module_names], or fix the name)")
    for run in baseline or ():
        if not isinstance(run.data.get("modules"), dict):
            problems.append(f"{run.path}: missing module figures ('modules') in the baseline run")
    if problems:
        raise ConfigError("the gate cannot judge these runs:\n  " + "\n  ".join(problems),
                          hint="rerun the suites with this memhil and capture hooks or trace, or fix the budget file")


# -- the checks ---------------------------------------------------------------------------------------
def run_gate(runs: list[RunResults], budgets: Budgets, *, suppressions=None, baseline: list[RunResults] | None = None) -> GateResult:
    """Every check for every run; raises :class:`ConfigError` first when results are missing."""
    check_inputs(runs, budgets, baseline)
    result = GateResult(runs=[r.name for r in runs])
    for run in runs:
        if records_nothing(run):
            result.checks.append(Check(run.name, "memory results", SKIP,
                                       "capture 'none': this run recorded no allocations (start it with capture=trace or hooks to gate it)"))
            if budgets.heap_integrity and isinstance(run.heap, dict):
                result.checks.append(_heap_check(run))
            continue
        leaks, suppressed = _leaks(run, budgets, suppressions)
        result.checks += _module_checks(run, budgets, leaks)
        result.checks.append(_leak_check(run, budgets, leaks, suppressed))
        if budgets.heap_integrity:
            result.checks.append(_heap_check(run))
        if budgets.max_anomalies is not None:
            result.checks.append(_anomaly_check(run, budgets.max_anomalies))
        result.checks += _stack_checks(run, budgets)
        if baseline is not None:
            result.checks += _baseline_checks(run, _match(run, runs, baseline), budgets)
    if result.checks and all(c.status == SKIP for c in result.checks):
        raise ConfigError("no run recorded memory results the gate can check: every check was skipped:\n  "
                          + "\n  ".join(f"{c.run}: {c.name}: {c.message}" for c in result.checks),
                          hint="start the suites' firmware with capture=trace (or hooks), run it with Run For, end with Stop Emulator")
    return result


def _module_checks(run: RunResults, budgets: Budgets, leaks: list[dict]) -> list[Check]:
    out = []
    for key in _module_keys(run, budgets):
        name, entry = _find_module(run, key, budgets)
        limits: ModuleBudget = budgets.for_module(key)
        entry = entry or {"current": 0, "peak": 0}
        mid = _module_id(entry, run)
        for metric, label in (("current", "current bytes"), ("peak", "peak bytes")):
            limit = getattr(limits, metric)
            if limit is None:
                continue
            value = entry.get(metric, 0)
            if value is None:
                out.append(Check(run.name, f"module {name} {metric}", SKIP, f"capture {run.data.get('capture')!r} records no {label}"))
                continue
            ok = value <= limit
            out.append(Check(run.name, f"module {name} {metric}", PASS if ok else FAIL,
                             f"{label} {value} ({_size(value)}) {'<=' if ok else '>'} budget {limit} ({_size(limit)})"))
        if limits.leak_per_hour is not None:
            rate = sum(s.get("bytes_per_hour") or 0.0 for s in leaks if s.get("module") == mid)
            ok = rate <= limits.leak_per_hour
            sites = ", ".join(s["site"] for s in leaks if s.get("module") == mid)
            out.append(Check(run.name, f"module {name} leak_per_hour", PASS if ok else FAIL,
                             f"leaks {rate:.0f} B per virtual hour {'<=' if ok else '>'} budget {limits.leak_per_hour}" + (f" (from {sites})" if sites else "")))
    return out


def _module_id(entry: dict, run: RunResults) -> int | None:
    for mid, e in run.modules.items():
        if e is entry:
            return int(mid)
    return None


def _leaks(run: RunResults, budgets: Budgets, suppressions) -> tuple[list[dict], list[tuple[dict, str]]]:
    """(unsuppressed leak sites, [(suppressed site, suppression name)]) of ``run`` per the budgets."""
    leaks: list[dict] = []
    suppressed: list[tuple[dict, str]] = []
    for site in run.leak_sites or ():
        if (site.get("rises") or 0) < budgets.min_rises or (site.get("grown_bytes") or 0) < budgets.min_leak_bytes:
            continue
        by = _suppressed_by(site, suppressions)
        if by:
            suppressed.append((site, by))
        else:
            leaks.append(site)
    return leaks, suppressed


def _suppressed_by(site: dict, suppressions) -> str | None:
    if suppressions is None or not len(suppressions):
        return None
    stacks = [[_Frame(f.get("function"), f.get("file"), f.get("line")) for f in s.get("frames", ())] for s in site.get("stacks") or ()]
    if not stacks:
        stacks = [[_Frame(site.get("function"), site.get("file"), site.get("line"))]]
    names = [suppressions.match(stack) for stack in stacks]
    return names[0] if all(names) else None


def format_stack(site: dict) -> str:
    """A leak site with its call stacks, one frame per line, as the failure text shows it."""
    head = (f"{site.get('bytes', 0)} bytes in {site.get('blocks', 0)} blocks at {site['site']}"
            + (f" in {site['function']}" if site.get("function") else "")
            + f" (module {site.get('module_name', site.get('module'))}, +{site.get('grown_bytes', 0)} B over the run, "
            f"{site.get('bytes_per_hour', 0):.0f} B per virtual hour"
            + (f", first seen at {site['first_seen_s']:.3f} s" if site.get("first_seen_s") is not None else "") + ")")
    lines = [head]
    for stack in site.get("stacks") or ():
        lines.append(f"  call stack ({stack.get('bytes', 0)} bytes, {stack.get('blocks', 0)} blocks):")
        for i, f in enumerate(stack.get("frames") or ()):
            where = f"{f['file']}:{f['line']}" if f.get("file") and f.get("line") else "??"
            lines.append(f"    #{i} {f.get('pc') or '':>10} in {f.get('function') or '??'} ({where})")
    return "\n".join(lines)


def _leak_check(run: RunResults, budgets: Budgets, leaks: list[dict], suppressed: list[tuple[dict, str]]) -> Check:
    note = f"; {len(suppressed)} suppressed ({', '.join(sorted({n for _, n in suppressed}))})" if suppressed else ""
    if not leaks:
        too_few = _too_few_samples(run, budgets)
        if too_few:
            return Check(run.name, "leaks", SKIP, too_few + " (run longer with Run For)" + note)
        return Check(run.name, "leaks", PASS, "no growing leak site" + note)
    total = sum(s.get("bytes_per_hour") or 0 for s in leaks)
    message = (f"{len(leaks)} unsuppressed leak site(s), {total:.0f} B per virtual hour: "
               + ", ".join(s["site"] + (f" ({s['function']})" if s.get("function") else "") for s in leaks[:5]) + note)
    details = "\n\n".join(format_stack(s) for s in leaks)
    return Check(run.name, "leaks", FAIL if budgets.leaks_fail else PASS, message, details)


def _too_few_samples(run: RunResults, budgets: Budgets) -> str | None:
    """Why ``run`` had too few samples for its growth test to find a leak site, or None. The summary's ``growth``
    says how many samples the test used after the warm-up and how many it needs; a summary without it, only the
    sample count, which must allow ``min_rises`` rises."""
    data = run.data
    count = data["samples"].get("count") if isinstance(data.get("samples"), dict) else None
    growth = data.get("growth") if isinstance(data.get("growth"), dict) else {}
    used, needed = growth.get("samples_used"), growth.get("min_samples")
    if isinstance(used, int) and isinstance(needed, int):
        if used < needed:
            return f"only {count} sample(s), {used} after the warm-up: the growth test needs {needed}"
        return None
    if count is not None and count < budgets.min_rises + 1:
        return f"only {count} sample(s): growth needs at least {budgets.min_rises + 1}"
    return None


def _heap_check(run: RunResults) -> Check:
    heap = run.heap or {}
    if not heap.get("checked"):
        return Check(run.name, "heap integrity", SKIP, f"not walked: {heap.get('reason', 'unknown reason')}")
    if heap.get("ok"):
        return Check(run.name, "heap integrity", PASS, f"{heap.get('nodes', '?')} nodes walked, no broken node")
    errors = heap.get("errors") or ["(no detail)"]
    return Check(run.name, "heap integrity", FAIL, errors[0].splitlines()[0], "\n".join(errors))


def _stack_checks(run: RunResults, budgets: Budgets) -> list[Check]:
    """One check per budgeted stack: its high-water mark stays below the limit."""
    stacks = run.data.get("stacks") or {}
    checks = []
    for name, limit in budgets.stacks.items():
        entry = stacks.get(name)
        if entry is None:
            known = ", ".join(stacks) or "none recorded"
            checks.append(Check(run.name, f"stack {name}", SKIP, f"no stack named {name!r} in this run (stacks: {known})"))
        elif entry.get("used") is None:
            checks.append(Check(run.name, f"stack {name}", SKIP, f"not measurable: {entry.get('note') or 'the stack is not painted'}"))
        else:
            used = int(entry["used"])
            checks.append(Check(run.name, f"stack {name}", PASS if used < limit else FAIL,
                                f"high-water mark {_size(used)} of {_size(entry.get('size'))} (limit {_size(limit)})"))
    return checks


def _anomaly_check(run: RunResults, limit: int) -> Check:
    n = run.data.get("anomaly_count", 0)
    kinds = sorted({a.get("kind", "?") for a in run.data.get("anomalies") or ()})
    return Check(run.name, "anomalies", PASS if n <= limit else FAIL, f"{n} ledger anomalies (limit {limit})" + (f": {', '.join(kinds)}" if kinds else ""),
                 "\n".join(f"seq {a.get('seq')}: {a.get('kind')} {a.get('ptr')} {a.get('detail')}" for a in (run.data.get("anomalies") or [])[:20]))


def _match(run: RunResults, runs: list[RunResults], baseline: list[RunResults]) -> RunResults | None:
    for b in baseline:
        if b.name == run.name:
            return b
    if len(runs) == 1 and len(baseline) == 1:
        return baseline[0]
    return None


def _baseline_checks(run: RunResults, base: RunResults | None, budgets: Budgets) -> list[Check]:
    if base is None:
        return [Check(run.name, "baseline", SKIP, "no run of the same name in the baseline (new suite?)")]
    out = []
    pct, extra = budgets.tolerance_pct, budgets.tolerance_bytes
    mids = sorted(set(run.modules) | set(base.modules), key=lambda m: int(m) if m.isdigit() else 0)
    for mid in mids:
        now, was = run.modules.get(mid) or {}, base.modules.get(mid) or {}
        name = now.get("name") or was.get("name") or mid
        for metric in ("current", "peak"):
            a, b = now.get(metric), was.get(metric)
            if a is None or b is None or (a == 0 and b == 0):
                continue
            allowed = max((b * pct / 100.0) if pct is not None else 0.0, float(extra or 0))
            grown = a - b
            ok = grown <= allowed
            pct_text = f"{100.0 * grown / b:+.1f}%" if b else "new"
            out.append(Check(run.name, f"baseline module {name} {metric}", PASS if ok else FAIL,
                             f"{metric} {a} vs baseline {b}: {grown:+d} B ({pct_text}), allowed +{allowed:.0f} B"))
    return out or [Check(run.name, "baseline", PASS, "no module figures to compare")]


def iter_failures(result: GateResult) -> Iterable[str]:
    for c in result.failures:
        yield f"FAIL {c.run}: {c.name}: {c.message}" + (f"\n{c.details}" if c.details else "")
