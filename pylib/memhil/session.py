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

from memhil import contract
from memhil.errors import CaptureError, ConfigError, ElfError, MemhilError
from memhil.heap import Ledger, Snapshot
from memhil.modules import ModuleMap
from memhil.results import MIN_CHUNK_S, SAMPLE_CHUNKS, SiteSampler, build_summary, sees_every_call, split_duration

log = logging.getLogger("memhil.session")

CAPTURE_MODES = ("hooks", "breakpoints", "trace", "snapshot", "none")
#: growth samples a run of any length is cut into, at most (see Session.sample_gap)
SAMPLES_PER_RUN = 64
#: where the capture sees every call, the least virtual time between two heap walks inside one run_for (a walk
#: halts the firmware and reads its heap; the ledger's samples need no stop, see Session.run_for)
MIN_WALK_GAP_S = 1.0


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
    #: more LiteOS pools to walk with the system pool, by symbol (the buffer given to LOS_MemInit) or address:
    #: pools the firmware made before capture began, or with no hooks to see it (see :meth:`Session.heap_pools`)
    pools: tuple[str | int, ...] = ()

    def __post_init__(self) -> None:
        if self.capture not in CAPTURE_MODES:
            raise ConfigError(f"unknown capture mode {self.capture!r}", hint=f"use one of {', '.join(CAPTURE_MODES)}")
        self.pools = tuple(parse_pools(self.pools))


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
        self.fragmentation: list = []  # FragmentationSample per sample (memhil.targetmap.render)
        self._walk_unavailable = False
        self._last_walk_us: int | None = None
        #: ledger samples taken as events arrive (event modes): virtual µs between them, and when the next is due
        self._stream_gap_us: int | None = None
        self._next_sample_us: int | None = None
        self._memory: dict[str, object] = {}  # per snapshot: memory read for reachability
        self.timeline = None
        self._symbolizer = None
        self._heap = None  # memhil.heap.select.TargetHeap, once the image is known
        #: pools LOS_MemInit made while hooks ran (address -> size), and the hooks that see it
        self.pools: dict[int, int] = {}
        self._pool_hooks = None
        self._named_pools: list[tuple[str, int]] = []
        self._started_wall = 0.0
        #: more event sinks, called after the ledger; one that never touches the target may say so with a
        #: ``host_only = True`` attribute, and trace drains then stay overlapped with the firmware
        self.extra_sinks: list[Callable] = []
        self.sampler = SiteSampler()
        self.heap_check: dict | None = None
        self.ended_virtual_s: float | None = None
        self.ended_wall: float | None = None

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
        self._heap = None
        self.pools = {}
        self._named_pools = [(str(p), self._pool_address(p)) for p in self.options.pools]
        self.platform.check_segments(self.image.load_segments, elf=str(self.firmware))
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger()
        self.snapshots.clear()
        self.sampler.clear()
        self._last_walk_us = None
        self._stream_gap_us = self._next_sample_us = None
        self._at_prompt = False  # the last command's answer ended with the prompt (consumed with it)
        self.heap_check = None
        self.ended_virtual_s = self.ended_wall = None
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

        options = {"on_pool": self._on_pool} if mode == "hooks" else {}
        self.capture = create_capture(mode, self.engine, self.image, profile=self.options.profile, sinks=[_SessionSink(self)], **options)
        self.capture.attach()
        if mode in ("hooks", "breakpoints"):
            from memhil.capture.pools import PoolHooks

            # patched hooks see the pool functions they could patch themselves; breakpoints catch the rest
            only = getattr(self.capture, "unpatched_pool_functions", None)
            self._pool_hooks = PoolHooks(self.engine, self.image, self.capture.profile, self._on_pool, only=only)
            self._pool_hooks.attach()

    @property
    def pool_calls(self) -> tuple[int, int]:
        """Calls of the profile's pool functions seen while hooks ran, and how many of them failed (patched and
        breakpoint-hooked alike)."""
        stats = getattr(self.capture, "stats", None) or {}
        hooks = self._pool_hooks
        return (stats.get("pool_calls", 0) + (hooks.calls if hooks else 0), stats.get("pool_failed", 0) + (hooks.failed if hooks else 0))

    def _on_pool(self, kind: str, pool: int, size: int) -> None:
        """A pool function returned success while hooks ran: remember the pool (``init``) or forget it (``deinit``)."""
        if kind == "init":
            self.pools[pool] = size
        else:
            self.pools.pop(pool, None)

    def _pool_address(self, pool: str | int) -> int:
        """The address of a pool the user named: an address, or the symbol of the buffer given to LOS_MemInit."""
        if isinstance(pool, int):
            return pool
        sym = self._need_image().find_symbol(pool)
        if sym is None:
            raise ConfigError(
                f"pool {pool!r} is neither an address nor a symbol of {self.firmware}",
                hint="name the buffer the firmware passes to LOS_MemInit (e.g. g_netPool) or give its address (0x2000a000)",
            )
        return sym.address

    def heap_pools(self, *, check: bool = True) -> list[int]:
        """The LiteOS pools walked besides the system pool and those chained to it: the pools the user named and
        those LOS_MemInit made while hooks ran. With ``check``, each named pool must hold a valid pool header by
        now (a :class:`ConfigError` says which does not); without, a bad one shows as its walk's error."""
        if not self._named_pools and not self.pools:
            return []
        if check:
            heap, read = self._target_heap(), self._need_engine().read_memory
            for label, addr in self._named_pools:
                heap.check_pool(read, addr, named=label)
        return list(dict.fromkeys([addr for _, addr in self._named_pools] + list(self.pools)))

    @property
    def _ledger_only(self) -> bool:
        """No timeline and no extra sinks: captured events feed the ledger alone (in batches, or as rows)."""
        return self.timeline is None and not self.extra_sinks

    def _on_events(self, events) -> None:
        if self._ledger_only:
            self._feed_in_time(events, None, _event_time, lambda part, _: self.ledger.apply_many(part))
        else:
            for event in events:
                self._on_event(event)

    def _on_event(self, event) -> None:
        self._samples_before(event.t_us)
        if self.timeline is not None:
            self.timeline.write(event)  # first: the writer follows self.ledger and reads it before the event
        self.ledger.apply(event)
        for sink in self.extra_sinks:
            sink(event)

    def _on_rows(self, rows, stacks=None) -> None:
        self._feed_in_time(rows, stacks, _row_time, self.ledger.apply_rows)

    def _feed_in_time(self, items, stacks, time_of, feed) -> None:
        """``feed(part, its stacks)`` the events (or rows) of a batch, cut where a ledger sample falls due between
        two of them, the sample taken at the cut (:meth:`_samples_before`)."""
        due = self._next_sample_us
        if due is None or not items or time_of(items[-1]) <= due:  # the usual batch: no sample in it
            feed(items, stacks)
            return
        start = 0
        for i, item in enumerate(items):
            t = time_of(item)
            if t > self._next_sample_us:  # type: ignore[operator]
                if i > start:
                    feed(items[start:i], stacks[start:i] if stacks is not None else None)
                    start = i
                self._samples_before(t)
        feed(items[start:], stacks[start:] if stacks is not None else None)

    def _samples_before(self, t_us: int) -> None:
        """The ledger samples due before an event at ``t_us``, each at its own time, holding every event up to that
        time and none after it (event modes, see :meth:`run_for`): where the samples fall depends on the events'
        virtual times alone, never on how the host's decoding happened to cut the batches. Host work only: it may
        run while the firmware runs, as the capture decodes."""
        gap = self._stream_gap_us
        while gap and (due := self._next_sample_us) is not None and t_us > due:
            self.sampler.take(due, self.ledger.live.values())
            nxt = due + gap
            if nxt + SAMPLES_PER_RUN * gap < t_us:  # a long quiet stretch: on to its last point (the same ledger)
                nxt += (t_us - nxt) // gap * gap
            self._next_sample_us = nxt

    def _ledger_sample(self, t_us: int) -> None:
        """A ledger sample at ``t_us`` with every event up to it taken in (the end of a run); the grid of the samples
        taken as events arrive goes on after it."""
        self._samples_before(t_us)  # the grid's points before t_us: after it, the next is at t_us or later
        self.sampler.take(t_us, self.ledger.live.values())
        if self._stream_gap_us and self._next_sample_us == t_us:  # that point is this sample
            self._next_sample_us += self._stream_gap_us

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
            if self._pool_hooks is not None:
                hooks, self._pool_hooks = self._pool_hooks, None
                if self.engine is not None:
                    hooks.detach()
            self.stop_timeline()
            if self.engine is not None:
                engine, self.engine = self.engine, None
                self.ended_wall = time.monotonic()
                try:
                    self.ended_virtual_s = engine.virtual_time()
                except Exception as exc:  # noqa: BLE001 - a dead engine has no time; keep stopping
                    log.debug("no virtual time at stop: %s", exc)
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
        """Run ``seconds`` of virtual time, taking samples of live bytes per allocation site (the growth figures of
        the end-of-run results) and heap walks (fragmentation) spaced in virtual time, not per call.

        Where the capture sees every allocator call (hooks, breakpoints, trace), the samples come from the ledger
        as the events arrive, while the firmware runs (the capture decodes on the host's other core), one at each
        point of a grid :meth:`sample_gap` apart in virtual time, holding the events up to that point and none after
        (so where they fall, and what they hold, does not depend on the host's speed): the firmware stops only for
        heap walks, at most ``SAMPLE_CHUNKS``
        a call and ``MIN_WALK_GAP_S`` apart, and at the end of the call, when every event is in and a last sample
        and a due walk are taken. Elsewhere (snapshots) a sample is a heap walk: a run is cut into at most
        ``SAMPLE_CHUNKS`` chunks no shorter than :meth:`sample_gap`, each followed by one. Either way a soak made of
        many ``run_for`` calls stops the engine about ``SAMPLES_PER_RUN`` times, not eight times per call."""
        engine = self._need_engine()
        if self.options.capture == "none":  # nothing to sample: one run, one barrier
            engine.run_for(seconds)
            return
        self._before_run()
        gap = self.sample_gap(engine.virtual_time() + max(seconds, 0.0))
        if sees_every_call(self.options.capture):
            self._stream_gap_us = int(gap * 1e6)
            if self._next_sample_us is None:
                self._next_sample_us = int(engine.virtual_time() * 1e6) + self._stream_gap_us
            walk_gap = max(gap, MIN_WALK_GAP_S)
            parts = split_duration(seconds, min_chunk=walk_gap)
            for i, part in enumerate(parts):
                engine.run_for(part)
                if i < len(parts) - 1:  # a walk inside the call; the events are taken in at its end
                    self._walk_sample(walk_gap)
            self.drain()
            self.sample(min_walk_gap_s=walk_gap)
            return
        chunks = max(1, min(SAMPLE_CHUNKS, int(seconds / gap + 1e-9))) if seconds > 0 else 1
        for part in split_duration(seconds, chunks=chunks):
            engine.run_for(part)
            self.drain()
            self.sample(min_walk_gap_s=gap)

    def _before_run(self) -> None:
        """The target is about to run: the capture records what its sinks take now (``Capture.before_run``)."""
        if self.capture is not None:
            self.capture.before_run()

    @staticmethod
    def sample_gap(horizon_s: float) -> float:
        """Virtual seconds between useful samples in a run reaching ``horizon_s``: ``horizon / SAMPLES_PER_RUN``,
        at least ``MIN_CHUNK_S`` (denser samples would only be thinned away by the sampler, see MAX_SAMPLES)."""
        return max(MIN_CHUNK_S, horizon_s / SAMPLES_PER_RUN)

    def sample(self, *, min_walk_gap_s: float = 0.0) -> None:
        """Record live bytes per (module, allocation pc) now (from the ledger, or a heap walk in snapshot mode),
        and the heap's fragmentation (free bytes, largest free block) from a walk where the ELF allows one.

        In hooks/trace mode the walk (only needed for fragmentation) is skipped when the last one is less
        than ``min_walk_gap_s`` of virtual time ago."""
        mode = self.options.capture
        if mode == "none":
            return
        t_us = int(self.virtual_time() * 1e6)
        walk = self._walk_sample(min_walk_gap_s, t_us, always=mode == "snapshot")
        if sees_every_call(mode):
            self._ledger_sample(t_us)
        elif walk is not None and walk.ok:  # a broken heap is reported by check_heap, not sampled as if freed
            self.sampler.take(t_us, walk.to_snapshot().blocks.values(), modules_known=walk.has_modules)

    def _walk_sample(self, min_gap_s: float, t_us: int | None = None, *, always: bool = False):
        """Walk the heap for a fragmentation sample when the last walk is ``min_gap_s`` of virtual time ago or more
        (or ``always``); returns the walk, or None when none was made."""
        if t_us is None:
            t_us = int(self.virtual_time() * 1e6)
        if not (always or self._last_walk_us is None or t_us - self._last_walk_us >= min_gap_s * 1e6):
            return None
        walk = self._sample_walk()
        self._last_walk_us = t_us  # tried: an ELF that allows no walk is not asked again at every chunk
        if walk is not None:
            from memhil.targetmap.render import fragmentation_sample

            self.fragmentation.append(fragmentation_sample(walk, t_us))
        return walk

    def _sample_walk(self):
        if self._walk_unavailable:
            return None
        try:
            return self.walk_heap(check_pools=False)  # a named pool not yet initialised is a walk error, not a stop
        except MemhilError as exc:  # e.g. no DWARF: say it once, keep sampling the ledger
            log.warning("no heap walk for samples: %s", exc)
            self._walk_unavailable = True
            return None

    def drain(self) -> None:
        """Take in what the capture holds; the timeline log then extends to the current virtual time."""
        drain = getattr(self.capture, "drain", None)
        if drain is not None:
            drain()
        if self.timeline is not None and self.engine is not None:
            self.timeline.tick(int(round(self.engine.virtual_time() * 1e6)))

    def virtual_time(self) -> float:
        return self._need_engine().virtual_time()

    def write_line(self, text: str) -> None:
        self._need_engine().console_write(text + "\r")

    def wait_for_line(self, pattern: str, timeout: float = 10.0):
        engine = self._need_engine()
        self._before_run()
        match = engine.wait_for_line(pattern, timeout)
        self.drain()
        return match

    def command(self, text: str, *, prompt: str = contract.SHELL_PROMPT, timeout: float = 5.0) -> str:
        """Send a shell command and return its output (the lines up to the next prompt).

        Waits first for the shell's prompt, so output still coming from start-up is not taken for the answer.
        """
        engine = self._need_engine()
        self._before_run()
        ready = re.compile(rf"[\s\S]*{prompt}")  # greedy: consume through the last prompt seen
        # the prompt that ended the previous answer was consumed with it: the shell is still waiting there
        if engine.console.search(ready) is None and not self._at_prompt:
            engine.wait_for_text(ready, timeout, what="shell prompt", hint="check the firmware runs its shell (see the console log)")
        self._at_prompt = False
        self.write_line(text)
        match = engine.wait_for_text(rf"^(?:{re.escape(text)}\n)?([\s\S]*?){prompt}", timeout,
                                     what=f"answer to {text!r}", hint="check the command exists in the firmware shell (see the console log)")
        self._at_prompt = True
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
        return self.read_u32(self._module_table_address() + 4 * mid)

    def _module_table_address(self) -> int:
        try:
            return self._need_image().symbol(contract.MODULE_USED_SYMBOL).address
        except ElfError as exc:
            raise ConfigError(
                f"this firmware keeps no per-module statistics (no {contract.MODULE_USED_SYMBOL})",
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
        if not sees_every_call(self.options.capture):
            raise ConfigError("peaks need a capture that sees every call", hint="use capture mode hooks or trace")
        self.drain()
        return self.ledger.module_peak(mid)

    def _source(self, source: str) -> str:
        if source == "auto":
            return "ledger" if sees_every_call(self.options.capture) else "walk"
        if source not in ("ledger", "walk", "firmware"):
            raise ConfigError(f"unknown source {source!r}", hint="use ledger, walk or firmware")
        if source == "ledger" and not sees_every_call(self.options.capture):
            raise ConfigError("the host ledger needs capture mode hooks or trace", hint="use source=walk or firmware, or start with capture=hooks")
        return source

    # -- heap walk and snapshots ---------------------------------------------------------------
    def walk_heap(self, *, check_pools: bool = True):
        """Walk the firmware's heap from its allocator's own state (:class:`memhil.heap.select.TargetHeap`): for
        LiteOS every pool (the system pool, those chained to it, and :meth:`heap_pools`) as one walk."""
        return self._target_heap().walk(self._need_engine().read_memory, self.heap_pools(check=check_pools))

    def walk_pools(self):
        """Every heap of the firmware, one walk each (for LiteOS, each pool: see :meth:`walk_heap`)."""
        return self._target_heap().walk_all(self._need_engine().read_memory, self.heap_pools())

    def _target_heap(self):
        from memhil.heap.select import TargetHeap

        if self._heap is None:
            self._heap = TargetHeap(self._need_image())
        return self._heap

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
        self._memory[name] = self._read_scan_regions(list(snap.blocks.values()))
        return snap

    def _read_scan_regions(self, blocks):
        """Read what reachability needs at this instant (:func:`memhil.analysis.roots.collect_roots`): the writable
        sections, the registers, each task's live stack and the blocks' contents.

        Returns None where the target cannot be read (then leaks are only "not freed")."""
        from memhil.analysis.roots import collect_roots

        image, engine = self.image, self.engine
        if image is None or engine is None:
            return None
        try:
            return collect_roots(image, engine.read_memory, engine.read_registers(), blocks, arenas=self._pool_extents())
        except MemhilError as exc:
            log.warning("no reachability scan: %s", exc)
            return None

    def _pool_extents(self) -> list[tuple[int, int]]:
        """Every LiteOS pool with a valid header now, ``(start, end)``: heap memory, never a root (empty for
        other heaps, and for pools not yet initialised)."""
        try:
            heap = self._target_heap()
        except MemhilError:
            return []
        return heap.pool_extents(self._need_engine().read_memory, self.heap_pools(check=False))

    def snapshot(self, name: str) -> Snapshot:
        try:
            return self.snapshots[name]
        except KeyError:
            raise ConfigError(f"no snapshot named {name!r}", hint=f"take it first; known: {', '.join(self.snapshots) or 'none'}") from None

    def leaks(self, before: str, after: str, *, suppressions: str | Path | None = None, reachability: bool = True):
        """Blocks allocated after ``before`` and live at ``after``, as loss records.

        With ``reachability`` (and the memory read when ``after`` was taken), blocks are classified as
        memcheck does, and still-reachable ones are kept apart from the leaks."""
        from memhil.analysis.leaks import find_leaks
        from memhil.analysis.suppress import Suppressions

        supp = Suppressions.load(suppressions) if suppressions else None
        first, last = self.snapshot(before), self.snapshot(after)
        scan = self._memory.get(after) if reachability else None
        reach = scan.classify(last.blocks.values()) if scan is not None else None
        return find_leaks(first, last, self.symbolizer, supp, reach)

    # -- timeline ------------------------------------------------------------------------------
    def start_timeline(self, directory: str | Path | None = None, *, max_bytes: int | None = None, max_files: int | None = None) -> Path:
        from memhil.timeline.writer import TimelineWriter

        if not sees_every_call(self.options.capture):
            raise CaptureError("the timeline log needs every allocator event", hint="start with capture=trace (or hooks)")
        directory = Path(directory) if directory else self.run_dir / "timeline"
        kwargs = {k: v for k, v in (("max_bytes", max_bytes), ("max_files", max_files)) if v is not None}
        self.drain()
        self.timeline = TimelineWriter(
            directory, build_id=self._need_image().build_id, platform=self.options.platform, engine=self.options.engine,
            follow=self.ledger, **kwargs,
        )
        return directory

    def stop_timeline(self) -> None:
        if self.timeline is not None:
            writer, self.timeline = self.timeline, None
            writer.close()
            if getattr(writer, "error", None):
                log.warning("the timeline log stopped early: %s", writer.error)

    # -- results ----------------------------------------------------------------------------------

    def check_heap(self) -> dict:
        """Walk the heap and record its integrity (needs the node layout from DWARF); never raises."""
        if self.engine is None or self.image is None:
            return self.heap_check or {"checked": False, "reason": "no firmware running"}
        try:
            walks = self.walk_pools()
        except MemhilError as exc:
            self.heap_check = {"checked": False, "reason": str(exc).splitlines()[0]}
        else:
            self.heap_check = {
                "checked": True, "ok": all(w.ok for w in walks), "errors": [str(e) for w in walks for e in w.errors],
                "nodes": sum(len(w.nodes) for w in walks), "used": sum(w.used for w in walks),
                "free": sum(w.free for w in walks), "pools": [f"{w.pool:#010x}" for w in walks],
            }
            if sees_every_call(self.options.capture) and self.heap_check["ok"]:
                from memhil.analysis.crosscheck import crosscheck_walk

                self.drain()
                walked = {p: b for w in walks for p, b in w.to_snapshot().blocks.items()}
                self.heap_check["ledger"] = crosscheck_walk(walked, self.ledger.live).as_dict()
        return self.heap_check

    def summary(self) -> dict:
        """What the CI gate needs, as plain data (schema in :mod:`memhil.results`).

        While the firmware runs this takes a last sample, walks the heap and reads the firmware's
        own module figures; afterwards it reports what was recorded.
        """
        running = self.engine is not None
        if running:
            self.drain()
            self.sample()
            self.check_heap()
        return build_summary(self, firmware_modules=self._firmware_modules() if running else {})

    def _firmware_modules(self) -> dict[int, int]:
        if self.image is None or not self.image.find_symbol(contract.MODULE_USED_SYMBOL):
            return {}
        mids = set(self.ledger.modules) | set(self.options.modules.by_id)
        try:
            table = self._firmware_module_table()
        except MemhilError as exc:
            log.warning("cannot read the firmware's module figures: %s", exc)
            return {}
        return {mid: table[mid] for mid in sorted(mids) if mid < len(table)}

    def _firmware_module_table(self) -> list[int]:
        """``g_moduleMemUsedSize[0..MEM_MODULE_MAX]`` in one read."""
        from memhil.analysis.crosscheck import read_module_table
        from memhil.modules import MEM_MODULE_MAX

        return read_module_table(self._need_engine().read_memory, self._module_table_address(), MEM_MODULE_MAX + 1)

    def crosscheck(self, *modules: str | int):
        """The host's module figures against the firmware's own (all known modules when none given): the ledger with
        hooks or trace, a heap walk with capture=snapshot; a difference comes with the untracked blocks (plain
        ``LOS_MemAlloc``) that explain it."""
        from memhil.analysis.crosscheck import crosscheck_modules

        if sees_every_call(self.options.capture):
            self.drain()
            source, known = self.ledger, set(self.ledger.modules)
        else:  # snapshot (or none): the module figures come from a walk of the heap
            source = self.walk_heap().to_snapshot("crosscheck", int(self.virtual_time() * 1e6))
            known = set(source.modules or {})
        mids = [self.options.modules.id(m) for m in modules] or sorted(known | set(self.options.modules.by_id))
        return crosscheck_modules(source, self._firmware_module_table(), mids)

    def write_summary(self, extra: dict | None = None) -> Path:
        data = self.summary()
        if extra:
            data.update(extra)
        path = self.run_dir / "summary.json"
        path.write_text(json.dumps(data, indent=2, default=_json_default))
        return path


def _event_time(event) -> int:
    return event.t_us


def _row_time(row) -> int:
    return row[1] * 1000  # memhil.events.ROW_FIELDS: t_ms second


class _SessionSink:
    """The session's capture sink: one event (``__call__``), a drained batch (``many``), or a batch of trace
    rows for the ledger alone (``many_rows``, while ``takes_rows``)."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def host_only(self) -> bool:
        """The ledger and the timeline writer touch only host state, so a capture may feed them while the
        target runs; an extra sink might read the target, so unless it says ``host_only`` the capture feeds
        it at stops."""
        return all(getattr(sink, "host_only", False) for sink in self._session.extra_sinks)

    def __call__(self, event) -> None:
        self._session._on_event(event)

    def many(self, events) -> None:
        self._session._on_events(events)

    @property
    def takes_rows(self) -> bool:
        """Rows go straight to the ledger when nothing else (timeline, extra sinks) wants events."""
        return self._session._ledger_only

    def many_rows(self, rows, stacks=None) -> None:
        self._session._on_rows(rows, stacks)


def parse_pools(pools) -> list[str | int]:
    """Pools as the user gives them (a list, or one string separated by commas): each an address (``0x2000a000``,
    decimal) as int, or a symbol name as str."""
    if isinstance(pools, (str, int)):
        pools = [pools]
    out: list[str | int] = []
    for item in pools:
        for part in ([item] if isinstance(item, int) else str(item).replace(",", " ").split()):
            if isinstance(part, int):
                out.append(part)
            elif re.fullmatch(r"0[xX][0-9a-fA-F]+|[0-9]+", part):
                out.append(int(part, 16 if part[:2] in ("0x", "0X") else 10))  # int(part, 0) refuses "0123"
            elif re.fullmatch(r"[A-Za-z_.$][\w.$]*", part):
                out.append(part)
            else:
                raise ConfigError(f"pool {part!r} is neither an address nor a symbol name",
                                  hint="give the buffer passed to LOS_MemInit by symbol (g_netPool) or address (0x2000a000)")
    return out


def _json_default(value):
    if hasattr(value, "as_dict"):
        return value.as_dict()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    return repr(value)
