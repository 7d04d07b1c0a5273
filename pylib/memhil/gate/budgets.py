"""Budget files for ``memhil gate``: what each module may use and leak, and how much a merge may grow it.

The file is TOML. Sizes are integers (bytes) or strings with a unit (``"8 KiB"``, ``"1.5MiB"``,
:func:`memhil.units.parse_size`); a leak rate is bytes per virtual hour, written the same way::

    [defaults]                 # every module without its own table; any key may be left out
    current = "64 KiB"         # live bytes at the end of the run
    peak = "96 KiB"            # highest live bytes during the run (needs capture hooks, breakpoints or trace)
    leak_per_hour = 0          # bytes per virtual hour of growing, unsuppressed leak sites

    [modules.NET]              # a module by name (from the firmware's module map) or id: [modules.1]
    current = "8 KiB"
    peak = "12 KiB"
    leak_per_hour = 0

    [leaks]
    fail = true                # an unsuppressed leak site fails the gate (default true)
    min_rises = 2              # a growing site is a leak when its live bytes or blocks rose this often after the warm-up
    min_bytes = 0              # ignore leak sites that grew less than this

    [heap]
    integrity = true           # a broken heap node found by the walk at stop fails the gate (default true)
    max_anomalies = 100        # ledger anomalies (unknown frees, lost events) allowed; default: not checked

    [stacks]                   # stack high-water marks (firmware that paints its stacks), by stack name
    main = "6 KiB"

    [baseline]                 # only with --baseline RUN_DIR
    tolerance_pct = 5          # module current/peak may grow this many percent over the baseline...
    tolerance_bytes = "512 B"  # ...or this many bytes; growth beyond every tolerance given fails

    [module_names]             # optional: names for module ids the run does not name
    CODEC = 7

Errors name the file, the line and what is wrong; a key nobody reads is an error too (a typo
must not silently drop a budget).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memhil.errors import ConfigError
from memhil.units import parse_size

MODULE_KEYS = ("current", "peak", "leak_per_hour")
_SECTIONS = {
    "defaults": MODULE_KEYS,
    "leaks": ("fail", "min_rises", "min_bytes"),
    "heap": ("integrity", "max_anomalies"),
    "baseline": ("tolerance_pct", "tolerance_bytes"),
}


@dataclass
class ModuleBudget:
    """Limits of one module; ``None`` means not checked."""

    current: int | None = None
    peak: int | None = None
    leak_per_hour: int | None = None

    def merged(self, defaults: "ModuleBudget") -> "ModuleBudget":
        return ModuleBudget(*(getattr(self, k) if getattr(self, k) is not None else getattr(defaults, k) for k in MODULE_KEYS))


@dataclass
class Budgets:
    """A parsed budget file; ``modules`` maps a name or id as written (upper case) to its budget."""

    source: str = "<budgets>"
    defaults: ModuleBudget = field(default_factory=ModuleBudget)
    modules: dict[str, ModuleBudget] = field(default_factory=dict)
    module_lines: dict[str, int] = field(default_factory=dict)
    module_names: dict[str, int] = field(default_factory=dict)
    leaks_fail: bool = True
    min_rises: int = 2
    min_leak_bytes: int = 0
    heap_integrity: bool = True
    max_anomalies: int | None = None
    tolerance_pct: float | None = None
    tolerance_bytes: int | None = None
    stacks: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> "Budgets":
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read budget file {p}: {exc.strerror}", hint="check the --budgets path", file=str(p)) from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"budget file {p} is not UTF-8 text", hint="save it as plain UTF-8 TOML", file=str(p)) from exc
        return cls.parse(text, str(p))

    @classmethod
    def parse(cls, text: str, source: str = "<budgets>") -> "Budgets":
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"line (\d+)", str(exc))
            line = int(m.group(1)) if m else None
            where = f"{source}:{line}" if line else source
            raise ConfigError(f"{where}: invalid TOML: {exc}", hint="fix the syntax (strings in double quotes, one key = value per line)", file=source, line=line) from exc
        return _Reader(text, source).read(doc)

    def for_module(self, key: str) -> ModuleBudget:
        return self.modules.get(key.upper(), ModuleBudget()).merged(self.defaults)


class _Reader:
    """Turns the TOML document into :class:`Budgets`, finding line numbers for what it refuses."""

    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source

    def line_of(self, table: str | None, key: str | None = None) -> int | None:
        """Line of ``key`` inside ``[table]`` (or of the table header when ``key`` is None)."""
        current: str | None = None
        header = None
        for i, raw in enumerate(self.lines, 1):
            line = raw.split("#", 1)[0].strip()
            m = re.fullmatch(r"\[\s*([^\[\]]+?)\s*\]", line)
            if m:
                current = re.sub(r"\s*\.\s*", ".", m.group(1)).replace('"', "")
                if table is not None and current == table and key is None:
                    return i
                if table is not None and current == table:
                    header = i
                continue
            if key is not None and current == table and re.match(rf'^"?{re.escape(key)}"?\s*=', line):
                return i
            if key is not None and table and "." in table and current == table.split(".", 1)[0]:
                sub = table.split(".", 1)[1]
                if re.match(rf'^"?{re.escape(sub)}"?\s*\.\s*"?{re.escape(key)}"?\s*=', line):
                    return i
        return header

    def error(self, table: str | None, key: str | None, what: str, hint: str) -> ConfigError:
        line = self.line_of(table, key)
        where = f"{self.source}:{line}" if line else self.source
        return ConfigError(f"{where}: {what}", hint=hint, file=self.source, line=line)

    def read(self, doc: dict[str, Any]) -> Budgets:
        b = Budgets(self.source)
        for name, value in doc.items():
            if name not in _SECTIONS and name not in ("modules", "module_names", "stacks"):
                raise self.error(name if isinstance(value, dict) else None, None if isinstance(value, dict) else name,
                                 f"unknown section or key {name!r}", f"use {', '.join(['modules', 'module_names', 'stacks', *_SECTIONS])}")
            if not isinstance(value, dict):
                raise self.error(None, name, f"{name!r} must be a table ([{name}])", f"write [{name}] and its keys below it")
        for key, value in doc.get("module_names", {}).items():
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0x20:
                raise self.error("module_names", key, f"module id of {key} must be an integer 0-32, not {value!r}", "e.g. CODEC = 7")
            b.module_names[key.upper()] = value
        b.defaults = self.module("defaults", doc.get("defaults", {}))
        for key, value in doc.get("modules", {}).items():
            table = f"modules.{key}"
            if not isinstance(value, dict):
                raise self.error("modules", key, f"modules.{key} must be a table", f"write [modules.{key}] with current/peak/leak_per_hour below it")
            b.modules[key.upper()] = self.module(table, value)
            b.module_lines[key.upper()] = self.line_of(table) or 0
        for key, value in doc.get("stacks", {}).items():
            b.stacks[key] = self.size("stacks", key, value)
        leaks = doc.get("leaks", {})
        self.only("leaks", leaks)
        b.leaks_fail = self.boolean("leaks", "fail", leaks.get("fail", True))
        b.min_rises = self.count("leaks", "min_rises", leaks.get("min_rises", 2), minimum=1)
        b.min_leak_bytes = self.size("leaks", "min_bytes", leaks.get("min_bytes", 0))
        heap = doc.get("heap", {})
        self.only("heap", heap)
        b.heap_integrity = self.boolean("heap", "integrity", heap.get("integrity", True))
        if "max_anomalies" in heap:
            b.max_anomalies = self.count("heap", "max_anomalies", heap["max_anomalies"])
        base = doc.get("baseline", {})
        self.only("baseline", base)
        if "tolerance_pct" in base:
            pct = base["tolerance_pct"]
            if isinstance(pct, bool) or not isinstance(pct, (int, float)) or pct < 0:
                raise self.error("baseline", "tolerance_pct", f"tolerance_pct must be a number >= 0, not {pct!r}", "e.g. tolerance_pct = 5 (percent)")
            b.tolerance_pct = float(pct)
        if "tolerance_bytes" in base:
            b.tolerance_bytes = self.size("baseline", "tolerance_bytes", base["tolerance_bytes"])
        return b

    def only(self, table: str, values: dict) -> None:
        allowed = _SECTIONS.get(table, MODULE_KEYS)
        for key in values:
            if key not in allowed:
                raise self.error(table, key, f"unknown key {key!r} in [{table}]", f"use {', '.join(allowed)}")

    def module(self, table: str, values: dict) -> ModuleBudget:
        for key in values:
            if key not in MODULE_KEYS:
                raise self.error(table, key, f"unknown key {key!r} in [{table}]", f"use {', '.join(MODULE_KEYS)}")
        return ModuleBudget(*(self.size(table, k, values[k]) if k in values else None for k in MODULE_KEYS))

    def size(self, table: str, key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise self.error(table, key, f"{key} must be a size (bytes, or a string with a unit), not {value!r}", 'e.g. 4096 or "8 KiB"')
        try:
            return parse_size(value)
        except ConfigError as exc:
            raise self.error(table, key, f"{key}: {exc.message}", 'write bytes or a unit: 4096, "8 KiB", "1.5 MiB"') from exc

    def count(self, table: str, key: str, value: Any, *, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(table, key, f"{key} must be an integer >= {minimum}, not {value!r}", f"e.g. {key} = {max(minimum, 2)}")
        return value

    def boolean(self, table: str, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise self.error(table, key, f"{key} must be true or false, not {value!r}", f"e.g. {key} = true")
        return value
