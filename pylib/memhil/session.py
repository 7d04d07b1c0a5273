"""The memory-testing session: one engine, one firmware, one capture, and what they produce.

The Robot library, the pytest plugin and the CLI are thin shells over :class:`Session`:
it starts the engine, attaches the capture (hooks, trace or snapshots), keeps the
ledger and named snapshots, answers module and leak questions, runs the timeline log,
and writes the run directory the CI gate reads.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from memhil.errors import AssertionFailure, CaptureError, ConfigError, ElfError, MemhilError
from memhil.heap import Ledger, Snapshot
from memhil.modules import ModuleMap

log = logging.getLogger("memhil.session")

CAPTURE_MODES = ("hooks", "trace", "snapshot", "none")
SUMMARY_VERSION = 1


@dataclass
class SessionOptions:
    engine: str = "qemu"
    platform: str = "stm32f4"
    capture: str = "hooks"
    profile: str = "liteos"
    accelerate: bool = True
    modules: ModuleMap = field(default_factory=ModuleMap)
    unwind_depth: int = 16
    engine_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.capture not in CAPTURE_MODES:
            raise ConfigError(f"unknown capture mode {self.capture!r}", hint=f"use one of {', '.join(CAPTURE_MODES)}")


class Session:
    """Run firmware in an emulator and answer questions about its memory."""

    def __init__(self, options: SessionOptions | None = None, *, run_dir: str | Path = "out/run") -> None:
        self.options = options or SessionOptions()
        self.run_dir = Path(run_dir)
        self.engine = None
        self.image = None
        self.platform = None
        self.firmware: Path | None = None
        self.capture = None
        self.ledger = Ledger()
        self.snapshots: dict[str, Snapshot] = {}
        self.timeline = None
        self._symbolizer = None
        self._layout = None
        self._started_wall = 0.0
        self.extra_sinks: list[Callable] = []

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, firmware: str | Path, *, capture: str | None = None) -> None:
        """Start the engine with ``firmware`` and attach the capture; stops everything again on failure."""
        from memhil.elf import Image
        from memhil.engines import create_engine
        from memhil.platform import Platform

        if self.engine is not None:
            raise ConfigError("a firmware is already running in this session", hint="stop it first (Stop Emulator)")
        if capture is not None:
            if capture not in CAPTURE_MODES:
                raise ConfigError(f"unknown capture mode {capture!r}", hint=f"use one of {', '.join(CAPTURE_MODES)}")
            self.options.capture = capture
        self.firmware = Path(firmware)
        self.platform = Platform.load(self.options.platform)
        self.image = Image.open(self.firmware)
        self.platform.check_segments(self.image.load_segments, elf=str(self.firmware))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger()
        self.snapshots.clear()
        engine = create_engine(self.options.engine, **self.options.engine_options)
        self.engine = engine
        self._started_wall = time.monotonic()
        try:
            engine.start(self.platform, self.firmware, accelerate=self.options.accelerate, workdir=self.run_dir)
            self._attach_capture()
        except BaseException:
            self.stop()
            raise

    def _attach_capture(self) -> None:
        mode = self.options.capture
        if mode in ("none", "snapshot"):
            return
        from memhil.capture import create_capture

        self.capture = create_capture(mode, self.engine, self.image, profile=self.options.profile, sinks=[self._on_event])
        self.capture.attach()

    def _on_event(self, event) -> None:
        self.ledger.apply(event)
        if self.timeline is not None:
            self.timeline.write(event)
        for sink in self.extra_sinks:
            sink(event)

    def stop(self) -> None:
        """Drain what is captured, close the timeline, stop the engine. Safe to call twice."""
        try:
            if self.capture is not None and self.engine is not None:
                try:
                    self.drain()
                except MemhilError as exc:  # a dead engine must not hide the stop
                    log.warning("final drain failed: %s", exc)
        finally:
            self.capture = None
            self.stop_timeline()
            if self.engine is not None:
                engine, self.engine = self.engine, None
                engine.stop()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.engine is not None

    def _need_engine(self):
        if self.engine is None:
            raise ConfigError("no firmware is running", hint="start one first (Start Emulator / session.start(elf))")
        return self.engine

    # -- time and console ------------------------------------------------------------------
    def run_for(self, seconds: float) -> None:
        self._need_engine().run_for(seconds)
        self.drain()

    def drain(self) -> None:
        drain = getattr(self.capture, "drain", None)
        if drain is not None:
            drain()

    def virtual_time(self) -> float:
        return self._need_engine().virtual_time()

    def write_line(self, text: str) -> None:
        self._need_engine().console_write(text + "\r")

    def wait_for_line(self, pattern: str, timeout: float = 10.0):
        match = self._need_engine().wait_for_line(pattern, timeout)
        self.drain()
        return match

    def command(self, text: str, *, prompt: str = r"LiteOS # ", timeout: float = 5.0) -> str:
        """Send a shell command and return its output (the lines up to the next prompt)."""
        engine = self._need_engine()
        engine.console.search(r"[\s\S]*")  # consume everything seen so far
        self.write_line(text)
        match = _wait_for_text(engine, rf"^(?:{re.escape(text)}\n)?([\s\S]*?){prompt}", timeout)
        self.drain()
        return match.group(1)

    # -- symbols and memory ------------------------------------------------------------------
    @property
    def symbolizer(self):
        if self._symbolizer is None:
            from memhil.elf import Symbolizer

            self._symbolizer = Symbolizer(self._need_image())
        return self._symbolizer

    def _need_image(self):
        if self.image is None:
            raise ConfigError("no firmware loaded", hint="start a firmware first")
        return self.image

    def read_u32(self, address: int) -> int:
        return int.from_bytes(self._need_engine().read_memory(address, 4), "little")

    def read_symbol_u32(self, name: str, index: int = 0) -> int:
        sym = self._need_image().symbol(name)
        return self.read_u32(sym.address + 4 * index)

    def firmware_module_used(self, module: str | int) -> int:
        """The firmware's own figure, ``g_moduleMemUsedSize[module]`` read from target memory."""
        mid = self.options.modules.id(module)
        try:
            return self.read_symbol_u32("g_moduleMemUsedSize", mid)
        except ElfError as exc:
            raise ConfigError(
                "this firmware keeps no per-module statistics (no g_moduleMemUsedSize)",
                hint="build it with LOSCFG_MEM_MUL_MODULE, or assert on the host ledger instead",
            ) from exc

    def module_used(self, module: str | int, *, source: str = "auto") -> int:
        """Current bytes of a module: from the host ledger (hooks/trace), a heap walk, or the firmware."""
        mid = self.options.modules.id(module)
        source = self._source(source)
        if source == "firmware":
            return self.firmware_module_used(mid)
        if source == "walk":
            return self.walk_heap().to_snapshot("", 0).module_used(mid)
        self.drain()
        return self.ledger.module_used(mid, tracked_only=False)

    def module_peak(self, module: str | int) -> int:
        mid = self.options.modules.id(module)
        if self.options.capture in ("snapshot", "none"):
            raise ConfigError("peaks need a capture that sees every call", hint="use capture mode hooks or trace")
        self.drain()
        return self.ledger.module_peak(mid)

    def _source(self, source: str) -> str:
        if source == "auto":
            return "ledger" if self.options.capture in ("hooks", "trace") else "walk"
        if source not in ("ledger", "walk", "firmware"):
            raise ConfigError(f"unknown source {source!r}", hint="use ledger, walk or firmware")
        if source == "ledger" and self.options.capture in ("snapshot", "none"):
            raise ConfigError("the host ledger needs capture mode hooks or trace", hint="use source=walk or firmware, or start with capture=hooks")
        return source

    # -- heap walk and snapshots ---------------------------------------------------------------
    def walk_heap(self):
        from memhil.heap.layout import NodeLayout
        from memhil.heap.walker import HeapWalker

        image = self._need_image()
        if self._layout is None:
            self._layout = NodeLayout.from_image(image)
        pool = self.read_symbol_u32("m_aucSysMem0")
        return HeapWalker(self._layout).walk(self._need_engine().read_memory, pool)

    def take_snapshot(self, name: str, *, source: str = "auto") -> Snapshot:
        if not name:
            raise ConfigError("a snapshot needs a name", hint="e.g. Take Heap Snapshot    before")
        source = self._source(source)
        if source == "walk":
            snap = self.walk_heap().to_snapshot(name, int(self.virtual_time() * 1e6))
        else:
            self.drain()
            snap = self.ledger.snapshot(name)
        self.snapshots[name] = snap
        return snap

    def snapshot(self, name: str) -> Snapshot:
        try:
            return self.snapshots[name]
        except KeyError:
            raise ConfigError(f"no snapshot named {name!r}", hint=f"take it first; known: {', '.join(self.snapshots) or 'none'}") from None

    def leaks(self, before: str, after: str, *, suppressions: str | Path | None = None):
        from memhil.analysis.leaks import find_leaks
        from memhil.analysis.suppress import Suppressions

        supp = Suppressions.load(suppressions) if suppressions else None
        return find_leaks(self.snapshot(before), self.snapshot(after), self.symbolizer, supp)

    # -- timeline ------------------------------------------------------------------------------
    def start_timeline(self, directory: str | Path | None = None, *, max_bytes: int | None = None, max_files: int | None = None) -> Path:
        from memhil.timeline.writer import TimelineWriter

        if self.options.capture not in ("hooks", "trace"):
            raise CaptureError("the timeline log needs every allocator event", hint="start with capture=trace (or hooks)")
        directory = Path(directory) if directory else self.run_dir / "timeline"
        kwargs = {k: v for k, v in (("max_bytes", max_bytes), ("max_files", max_files)) if v is not None}
        self.drain()
        self.timeline = TimelineWriter(
            directory, build_id=self._need_image().build_id, platform=self.options.platform, engine=self.options.engine, **kwargs
        )
        # the writer starts from the live blocks captured so far (its first checkpoint)
        seed = getattr(self.timeline, "seed", None)
        if seed is not None:
            seed(self.ledger)
        return directory

    def stop_timeline(self) -> None:
        if self.timeline is not None:
            writer, self.timeline = self.timeline, None
            writer.close()
            if getattr(writer, "error", None):
                log.warning("the timeline log stopped early: %s", writer.error)

    # -- results ----------------------------------------------------------------------------------
    def assert_module_used(self, module: str | int, op: str, expected: int, *, source: str = "auto") -> int:
        actual = self.module_used(module, source=source)
        if not _compare(actual, op, expected):
            name = self.options.modules.name(self.options.modules.id(module))
            raise AssertionFailure(f"module {name} uses {actual} bytes, expected {op} {expected}", hint="see the heap report attached to the test", module=name, source=self._source(source))
        return actual

    def summary(self) -> dict:
        """What the CI gate needs, as plain data."""
        modules = {}
        fw = {}
        for mid in sorted(set(self.ledger.modules) | set(self.options.modules.by_id)):
            stat = self.ledger.modules.get(mid)
            entry = {"name": self.options.modules.name(mid), "current": stat.current if stat else 0, "peak": stat.peak if stat else 0}
            modules[str(mid)] = entry
        if self.engine is not None and self.image is not None and self.image.find_symbol("g_moduleMemUsedSize"):
            for mid in modules:
                fw[mid] = self.firmware_module_used(int(mid))
        return {
            "version": SUMMARY_VERSION,
            "firmware": str(self.firmware),
            "build_id": self.image.build_id if self.image else None,
            "engine": self.options.engine,
            "platform": self.options.platform,
            "capture": self.options.capture,
            "virtual_s": self.virtual_time() if self.engine else None,
            "wall_s": time.monotonic() - self._started_wall,
            "modules": modules,
            "firmware_modules": fw,
            "total": {"current": self.ledger.total.current, "peak": self.ledger.total.peak, "allocs": self.ledger.total.allocs, "frees": self.ledger.total.frees},
            "anomalies": [a.__dict__ if hasattr(a, "__dict__") else {"kind": a.kind, "seq": a.seq, "ptr": a.ptr, "detail": a.detail} for a in self.ledger.anomalies[:100]],
            "snapshots": list(self.snapshots),
        }

    def write_summary(self, extra: dict | None = None) -> Path:
        data = self.summary()
        if extra:
            data.update(extra)
        path = self.run_dir / "summary.json"
        path.write_text(json.dumps(data, indent=2, default=_json_default))
        return path


def _json_default(value):
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return repr(value)


_OPS = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def _compare(actual: int, op: str, expected: int) -> bool:
    try:
        return _OPS[op](actual, expected)
    except KeyError:
        raise ConfigError(f"unknown comparison {op!r}", hint=f"use one of {' '.join(_OPS)}") from None


def _wait_for_text(engine, pattern: str, timeout: float):
    from memhil.errors import ConsoleTimeout

    regex = re.compile(pattern)
    match = engine._run_until_console(regex, timeout)
    if match is None:
        raise ConsoleTimeout(
            f"no answer matching {pattern!r} within {timeout:g} s of virtual time",
            hint="check the command exists in the firmware shell (see the console log)",
            log=str(engine.console.path) if engine.console.path else None,
            console_tail=engine.console.tail(),
        )
    return match
