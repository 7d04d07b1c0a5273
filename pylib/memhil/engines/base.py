"""The engine protocol: what capture, keywords and reports may ask of an emulator.

This module imports nothing else of memhil but errors; engines implement the
primitives (``_start``, ``_stop``, memory, registers, breakpoints, running) and
inherit the shared behaviour (console expect, lifecycle checks, context manager).
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import re
import threading
from pathlib import Path
from typing import Callable, Protocol

from memhil.errors import ConsoleTimeout, EngineError, PlatformError, TargetError

#: ARM core registers by GDB's numbering for Cortex-M (0-12, sp, lr, pc, xpsr=25 in QEMU's XML)
CORE_REGS = ("r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r11", "r12", "sp", "lr", "pc", "xpsr")


class Capability(enum.Flag):
    NONE = 0
    ACCELERATION = enum.auto()
    EXACT_RUN_FOR = enum.auto()  # the firmware's time barrier was found
    BREAKPOINTS = enum.auto()
    MEMORY_WRITE = enum.auto()
    WATCHPOINTS = enum.auto()  # add_watchpoint: stop on writes to an address
    BACKGROUND = enum.auto()  # add_background: host work runs while the target runs
    SLICE_END = enum.auto()  # add_slice_end: host work at every end of a run slice, target paused (Renode's RunFor)
    LIVE_MEMORY = enum.auto()  # live_window: target RAM read and written while the target runs


class StopContext(Protocol):
    """What a breakpoint callback sees. The target stays stopped while the callback runs."""

    pc: int
    regs: dict[str, int]  # at least r0-r3, sp, lr, pc; more are fetched lazily by read_registers()

    def read_memory(self, address: int, size: int) -> bytes: ...

    def write_memory(self, address: int, data: bytes) -> None: ...

    def read_registers(self) -> dict[str, int]: ...


BreakpointCallback = Callable[[StopContext], None]


class EngineStop:
    """The :class:`StopContext` every engine hands its breakpoint callbacks: memory goes through the
    engine's own methods (so its caches stay right), registers are the ones captured at the stop when
    ``complete`` (QEMU's ``g`` reply), else read from the engine on demand (Renode's hook record holds
    only r0-r3, sp, lr, pc)."""

    def __init__(self, engine: "Engine", regs: dict[str, int], *, complete: bool) -> None:
        self._engine = engine
        self._complete = complete
        self.regs = regs
        self.pc = regs["pc"]

    def read_memory(self, address: int, size: int) -> bytes:
        return self._engine.read_memory(address, size)

    def read_memory_many(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        return self._engine.read_memory_many(ranges)

    def write_memory(self, address: int, data: bytes) -> None:
        self._engine.write_memory(address, data)

    def read_registers(self) -> dict[str, int]:
        return dict(self.regs) if self._complete else self._engine.read_registers()


@dataclasses.dataclass(frozen=True)
class Breakpoint:
    address: int
    callback: BreakpointCallback
    id: int


class BreakpointTable(dict):
    """An engine's breakpoints by address (``dict[int, list[Breakpoint]]``), with the ids they are given."""

    def __init__(self) -> None:
        super().__init__()
        self._next_id = 1

    def next_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def new(self, address: int, callback: BreakpointCallback, install: Callable[[Breakpoint, bool], None]) -> Breakpoint:
        """A breakpoint at ``address`` (Thumb bit cleared), put in the emulator by ``install(bp, first)``
        (``first``: no other breakpoint is at that address yet); not kept if ``install`` fails."""
        address &= ~1
        bp = Breakpoint(address, callback, self.next_id())
        first = not self.get(address)
        self.setdefault(address, []).append(bp)
        try:
            install(bp, first)
        except BaseException:
            self.drop(bp)
            raise
        return bp

    def drop(self, bp: Breakpoint) -> list[Breakpoint]:
        """Forget ``bp``; the breakpoints left at its address (none: the address is gone from the table)."""
        bps = self.get(bp.address, [])
        if bp not in bps:
            raise EngineError(f"breakpoint {bp.id} at {bp.address:#x} is not set", hint="remove each breakpoint once")
        bps.remove(bp)
        if not bps:
            del self[bp.address]
        return bps


class EngineState(enum.Enum):
    NEW = "new"
    RUNNING = "running"  # started: the emulator process exists (target may be halted between run_for calls)
    STOPPED = "stopped"
    FAILED = "failed"


class ConsoleLog:
    """The console transcript: the saved artifact *and* the expect buffer.

    Engines feed received bytes with :meth:`feed` (from any thread); waits match
    against the text after the last consumed position, so what a test matched is
    exactly what the log file shows.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._file = open(path, "ab", buffering=0) if path else None
        self._buf = bytearray()
        self._pos = 0  # start of the not-yet-consumed text
        self._cond = threading.Condition()

    def feed(self, data: bytes) -> None:
        if not data:
            return
        with self._cond:
            self._buf += data
            if self._file:
                self._file.write(data)
            self._cond.notify_all()

    def text(self) -> str:
        with self._cond:
            return self._buf.decode("utf-8", "replace")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.text().replace("\r", "").splitlines()[-lines:])

    def search(self, pattern: str | re.Pattern[str], *, consume: bool = True) -> re.Match[str] | None:
        """Find ``pattern`` in the unconsumed text; on a match, consume up to its end."""
        regex = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) else pattern
        with self._cond:
            text = self._buf[self._pos :].decode("utf-8", "replace").replace("\r", "")
            match = regex.search(text)
            if match and consume:
                consumed = text[: match.end()]
                # map the consumed text back to a byte offset (\r were removed)
                self._pos += _byte_len_with_cr(self._buf, self._pos, consumed)
            return match

    def matches_with(self, pattern: re.Pattern[str], extra: bytes) -> bool:
        """Would the unconsumed text match ``pattern`` once ``extra`` is appended? (Nothing is consumed or fed.)"""
        with self._cond:
            text = (bytes(self._buf[self._pos :]) + extra).decode("utf-8", "replace").replace("\r", "")
        return pattern.search(text) is not None

    def close(self) -> None:
        with self._cond:  # a reader thread may be feeding right now
            if self._file:
                self._file.close()
                self._file = None


def _byte_len_with_cr(buf: bytearray, start: int, consumed: str) -> int:
    want = len(consumed.encode("utf-8", "replace"))
    pos = start
    seen = 0
    while seen < want and pos < len(buf):
        if buf[pos] != 0x0D:
            seen += 1
        pos += 1
    return pos - start


class Engine(abc.ABC):
    """An emulator running one firmware image on one platform.

    Times are virtual seconds (floats) since the target's reset; ``run_for`` is exact
    to one firmware tick where the firmware has a time barrier. Everything a test or
    keyword sees must be the same whichever engine runs.
    """

    name: str = "engine"

    def __init__(self) -> None:
        self.state = EngineState.NEW
        self.console: ConsoleLog = ConsoleLog()
        self.capabilities = Capability.NONE
        #: the emulator's own version string once started (e.g. "10.0.2 (Debian 1:10.0.2+ds-2...)"), else None
        self.version: str | None = None
        #: regions of the platform the emulator turned out not to map (probe_regions)
        self.missing_regions: tuple = ()
        #: called with "before" just before a reset and "after" once the target is halted again after it (a
        #: capture that patched emulator memory takes in what it holds, then patches again)
        self.reset_hooks: list[Callable[[str], None]] = []
        #: unused flash and RAM handed out on this target (memhil.capture.scratch Areas: patched hook code and ring,
        #: the tick stop), so the next user of scratch memory leaves them alone
        self.scratch_taken: list = []

    # -- lifecycle ---------------------------------------------------------------
    @abc.abstractmethod
    def start(self, platform, elf: Path, *, accelerate: bool = True, workdir: Path | None = None) -> None:
        """Start the emulator with ``elf`` loaded on ``platform``, halted at reset."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop the emulator and release every process, socket and file. Idempotent."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Reset the target (virtual time back to 0, memory reloaded)."""

    def _run_reset_hooks(self, phase: str) -> None:
        for hook in list(self.reset_hooks):
            hook(phase)

    def probe_regions(self, platform, segments=()) -> tuple:
        """The platform's memory regions this emulator does not map, found by reading the first and last word of
        each (the same board has 192 KiB of SRAM and no CCM on QEMU 7.2, 128 KiB and a CCM on QEMU 8.0+ and on
        the chip). A load segment of the firmware in a missing region is a clear error: the emulator would run
        something else than what was linked. Call it halted, before the firmware runs."""
        missing = []
        for region in platform.regions:
            try:
                self.read_memory_many([(region.base, 4), (region.end - 4, 4)])
            except TargetError:
                missing.append(region)
        self.missing_regions = tuple(missing)
        for seg in segments:
            for region in missing:
                start, size = seg.vaddr, seg.memsz
                if size and start < region.end and region.base < start + size:
                    raise PlatformError(
                        f"firmware segment at {start:#010x}-{start + size:#010x} lies in {region.name} "
                        f"({region.base:#010x}-{region.end:#010x}), which this {self.name} does not map",
                        hint="link it out of that region, or use an emulator that models it (QEMU 8.0 and later have "
                             "the STM32F405's 64 KiB CCM; scripts/fetch-qemu.sh unpacks one beside Debian's)")
        return self.missing_regions

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- time --------------------------------------------------------------------
    @abc.abstractmethod
    def run_for(self, seconds: float) -> None:
        """Run the target for ``seconds`` of virtual time, then halt it."""

    @abc.abstractmethod
    def virtual_time(self) -> float:
        """Virtual seconds since reset (the firmware's clock, at least one-tick resolution)."""

    @abc.abstractmethod
    def set_acceleration(self, enabled: bool) -> None:
        """Skip idle time (WFI) instead of waiting it out. Some engines fix this at start."""

    # -- state ---------------------------------------------------------------------
    @abc.abstractmethod
    def read_memory(self, address: int, size: int) -> bytes: ...

    def read_memory_many(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        """Several ranges at once; engines that can pipeline the reads override this."""
        return [self.read_memory(address, size) for address, size in ranges]

    @abc.abstractmethod
    def write_memory(self, address: int, data: bytes) -> None: ...

    @abc.abstractmethod
    def read_registers(self) -> dict[str, int]: ...

    # -- hooks ---------------------------------------------------------------------
    @abc.abstractmethod
    def add_breakpoint(self, address: int, callback: BreakpointCallback) -> Breakpoint:
        """Call ``callback`` each time execution reaches ``address`` (Thumb bit ignored)."""

    @abc.abstractmethod
    def remove_breakpoint(self, bp: Breakpoint) -> None: ...

    def add_watchpoint(self, address: int, size: int, callback: BreakpointCallback) -> Breakpoint:
        """Call ``callback`` each time the target writes to ``[address, address + size)``; the callback sees
        memory as it was before the write. Engines with :attr:`Capability.WATCHPOINTS` implement it."""
        raise EngineError(f"the {self.name} engine has no write watchpoints", hint="check Capability.WATCHPOINTS and use a breakpoint instead")

    def remove_watchpoint(self, wp: Breakpoint) -> None:
        raise EngineError(f"the {self.name} engine has no write watchpoints", hint="check Capability.WATCHPOINTS")

    # -- host work overlapped with the target ---------------------------------------------
    def add_background(self, work: Callable[[], object], *, poll: bool = False) -> None:
        """Call ``work()`` after every resume, while the target runs: a capture reads its data at a stop
        and decodes it here, on the host's other core, instead of keeping the target halted. ``work`` must not
        touch the target through the engine (the engine refuses its debug requests until it returns; a
        :meth:`live_window` may be used); an exception it raises is re-raised at the next stop. ``poll``: call it
        also while a run waits for its stop, every ``poll_s`` of wall time, and again at once while it returns a
        nonzero number (work it found); a polled work that returns None has nothing to look for, and the wait stops
        polling until the next one. Engines with :attr:`Capability.BACKGROUND` implement it."""
        raise EngineError(f"the {self.name} engine runs no host work while the target runs",
                          hint="check Capability.BACKGROUND and do the work at the stop instead")

    def remove_background(self, work: Callable[[], None]) -> None:
        raise EngineError(f"the {self.name} engine runs no host work while the target runs", hint="check Capability.BACKGROUND")

    def live_window(self, base: int, size: int):
        """A window on ``[base, base + size)`` of target RAM that reads and writes while the target runs (a
        :class:`memhil.engines.live_memory.LiveWindow`: ``read_memory``, ``write_memory``), or None where the engine
        has none for that memory (the reason is logged). Engines with :attr:`Capability.LIVE_MEMORY` may give one."""
        return None

    # -- console ---------------------------------------------------------------------
    @abc.abstractmethod
    def console_write(self, data: bytes | str) -> None: ...

    def wait_for_line(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        """Run the target until a console line matches ``pattern`` (a regex searched within one line).

        ``timeout`` is virtual seconds. Raises :class:`ConsoleTimeout` with the console
        tail and the log path.
        """
        regex = re.compile(rf"^[^\n]*?(?:{pattern})[^\n]*\n", re.MULTILINE)
        return self.wait_for_text(regex, timeout, what=f"console line matching {pattern!r}",
                                  hint="check the firmware prints it (see the console log), or raise the timeout")

    def wait_for_text(self, regex: str | re.Pattern[str], timeout: float, *, what: str | None = None,
                      hint: str = "see the console log") -> re.Match[str]:
        """Run the target until the unconsumed console text matches ``regex`` (may span lines); consume it.

        ``timeout`` is virtual seconds; on timeout, :class:`ConsoleTimeout` carries the console tail and log path."""
        if isinstance(regex, str):
            regex = re.compile(regex, re.MULTILINE)
        match = self._run_until_console(regex, timeout)
        if match is None:
            self._settle_console()
            match = self.console.search(regex)
        if match is None:
            raise ConsoleTimeout(
                f"no {what or f'console text matching {regex.pattern!r}'} within {timeout:g} s of virtual time",
                hint=hint,
                log=str(self.console.path) if self.console.path else None,
                console_tail=self.console.tail(),
            )
        return match

    def _settle_console(self) -> None:
        """Take in what the target wrote before it halted. Both engines read their console without waiting at a
        halt (QEMU's socket, Renode's PTY) and override this; an engine whose console is always in hand needs
        nothing more."""

    def _run_until_console(self, regex: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        """Default: run in virtual-time slices until the regex matches. Engines may do better."""
        deadline = self.virtual_time() + timeout
        match = self.console.search(regex)
        step = 0.01
        while match is None and self.virtual_time() < deadline:
            self.run_for(min(step, max(deadline - self.virtual_time(), 0.001)))
            step = min(step * 2, 0.5)
            match = self.console.search(regex)
        return match

    def check_running(self) -> None:
        if self.state is not EngineState.RUNNING:
            raise EngineError(f"the {self.name} engine is {self.state.value}, not running", hint="call start() first (Start Emulator in Robot)")
