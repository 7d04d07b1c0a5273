"""The QEMU engine: ``qemu-system-arm`` driven through its gdbstub and QMP.

The process, its sockets and QMP are :mod:`memhil.engines.qemu_launch`; instructions the host performs to leave
a stop are :mod:`memhil.engines.thumb_emulate`; console input is :mod:`memhil.engines.uart`; the time source is
:mod:`memhil.engines.clock`; fault reports are :mod:`memhil.engines.faults`. This module keeps the stop state
and the run loops.

Nothing here depends on the host's wall clock except the wall-clock fallback time source, which only firmware
without any tick counter uses:

- ``run_for`` stops at the firmware's time barrier (one write-watchpoint stop), else at the first tick of its
  tick counter at or past the deadline (a write-watchpoint stop per tick);
- ``wait_for_line`` watches writes to the console UART's data register while it waits: the target stops at the
  store of each byte, the host performs the store (QEMU writes the byte to the console socket before the store
  completes) and reads the socket without waiting, so the wait ends at the store of the line's last byte;
- console input is handed to the UART one byte per read of its data register (see :mod:`memhil.engines.uart`);
- at every halt the console socket is read without waiting: the log holds everything the target wrote;
- a fault exception stops the target at its handler and raises :class:`~memhil.errors.TargetFault`.

QEMU 7.2's gdbstub flushes its translation cache on every breakpoint stop and single step, not on watchpoint
stops: memhil stops on watchpoints where it can, and leaves breakpoints and watched accesses by performing the
instruction on the host instead of stepping.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Callable

from memhil import contract
from memhil.elf import Image
from memhil.engines.base import Breakpoint, BreakpointCallback, BreakpointTable, Capability, Engine, EngineState
from memhil.engines.clock import Clock, choose_clock
from memhil.engines.firmware import FirmwareInfo
from memhil.engines.process import find_program
from memhil.engines.qemu_console import ConsoleWatch
from memhil.engines.qemu_launch import QemuLaunch
from memhil.engines.qemu_stops import READ, WRITE, StopHandling, decode_g  # noqa: F401 - decode_g is part of this API
from memhil.engines.qemu_time import VirtualTime
from memhil.engines.tick_stop import TickStop
from memhil.engines.uart import uart_registers
from memhil.errors import EngineError, EngineTimeout, ProtocolError

log = logging.getLogger("memhil.engines.qemu")

QEMU_ENV = "MEMHIL_QEMU"


class QemuEngine(ConsoleWatch, VirtualTime, StopHandling, Engine):
    """Engine on ``qemu-system-arm``.

    ``binary``: the QEMU to run (default: ``$MEMHIL_QEMU``, else ``qemu-system-arm`` on PATH); ``timeout``: wall
    seconds for any single answer from QEMU; ``run_timeout``: wall seconds a ``run_for``/``wait_for_line`` may
    take beyond its own duration before QEMU counts as hung; ``icount_shift``: QEMU's ``-icount shift`` when
    accelerated; ``tick_symbol``/``tick_hz``: the firmware's tick counter and rate, for firmware without memhil's
    time barrier (found by name otherwise, see :mod:`memhil.engines.clock`); ``tick_stop``: end runs on such a
    counter by a SysTick stop patched in emulator memory (:mod:`memhil.engines.tick_stop`; off for a firmware
    that checks its own flash or vector table: runs are then polled); ``catch_faults``: look, every
    ``fault_probe_s`` of wall time a run lasts, whether the core sits in a fault handler, and raise
    :class:`~memhil.errors.TargetFault` (IPSR read over QMP while the core runs, see ``_probe_fault``; a
    breakpoint on the handlers would slow QEMU 7.2 down on every page it shares with them: 1.6x on the soak);
    ``live_memory``: let captures read and write their RAM rings while the firmware runs, through QEMU's own memory
    (:mod:`memhil.engines.live_memory`; off: rings are read at stops only), and read RAM at stops the same way
    (heap walks, breakpoint hooks' node and stack reads: a ``pread`` each instead of a gdbstub round trip; writes
    still go through the gdbstub, which QEMU sees); ``poll_s``: how often a run that waits
    for its stop looks for such work (``add_background(..., poll=True)``).
    """

    name = "qemu"
    package = "qemu-system-arm"

    def __init__(self, *, binary: str | None = None, timeout: float = 10.0, run_timeout: float = 120.0,
                 icount_shift: int = 0, extra_args: tuple[str, ...] = (), boot_to_main: bool = True,
                 emulate_entry: bool = True, tick_symbol: str | None = None, tick_hz: int | None = None,
                 catch_faults: bool = True, fault_probe_s: float = 0.5, tick_stop: bool = True,
                 live_memory: bool = True, poll_s: float = 0.0002) -> None:
        super().__init__()
        if not 0 <= int(icount_shift) <= 10:
            raise EngineError(f"icount shift {icount_shift} is out of range", hint="use 0..10 (0: one instruction per ns)")
        # MEMHIL_QEMU names another qemu-system-arm (a path or a name on PATH), e.g. scripts/fetch-qemu.sh's
        self.binary = binary or os.environ.get(QEMU_ENV) or "qemu-system-arm"
        self.timeout = timeout
        self.run_timeout = run_timeout
        self.icount_shift = int(icount_shift)
        self.extra_args = tuple(extra_args)
        self.boot_to_main = boot_to_main
        self.tick_symbol, self.tick_hz, self.catch_faults = tick_symbol, tick_hz, catch_faults
        self.fault_probe_s = fault_probe_s
        self.tick_stop = tick_stop
        self.live_memory, self.poll_s = live_memory, poll_s
        self._windows: list = []  # live windows handed out (closed when QEMU stops)
        #: per platform RAM region, the window halted reads go through (None: none here; opened on first use)
        self._ram_windows: dict[str, object] = {}
        self.accelerate = True
        self.launch: QemuLaunch | None = None
        self.firmware: FirmwareInfo | None = None
        self.platform = None
        self.workdir: Path | None = None
        self.clock: Clock = Clock("wall")
        self._tick_stop: TickStop | None = None  # on a firmware timed by its tick counter
        #: the last fault the target took (it stays halted in the handler until reset)
        self.fault = None
        self._breakpoints = BreakpointTable()
        #: leave breakpoints by executing a PUSH/NOP/POP/BX LR on the host instead of stepping
        self.emulate_entry = emulate_entry
        self._code_cache: dict[int, bytes] = {}
        self._p_ok: bool | None = None
        self._stop_reads: list[tuple[int, bytes]] = []
        self._resume_prefix: list[bytes] = []  # requests pipelined before the next continue (each answers OK)
        # the stop: pc and registers when halted at a breakpoint or watched access, and which watchpoint
        self._halted_pc: int | None = None
        self._halted_regs: dict[str, int] | None = None
        self._halted_watch: int | None = None  # the address a watchpoint stopped on (before the access)
        self._halted_kind: int | None = None  # WRITE or READ
        # watchpoints: the user's (write), and the engine's own, keyed (kind, address, size)
        self._watchpoints: dict[tuple[int, int], list[Breakpoint]] = {}
        self._internal: dict[tuple[int, int, int], Callable[[], str]] = {}
        self._watch_ok: bool | None = None  # the barrier stops by write watchpoint (Z2)
        self._barrier_watch: tuple[int, int] | None = None  # the barrier's own watchpoint, while inserted
        self._barrier_bp: int | None = None
        self._uart = None
        self._input = bytearray()  # console bytes written that the UART has not been handed yet
        self._console_watch: re.Pattern[str] | None = None
        self._background: list[Callable[[], object]] = []  # host work run after each resume (add_background)
        self._polled: list[Callable[[], object]] = []  # of those, the work also run while a run waits (poll=True)
        self._in_background = False
        self._background_error: BaseException | None = None
        self._wall_run = 0.0  # virtual time when the firmware has no tick counter

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def client(self):
        return self.launch.client if self.launch is not None else None

    @property
    def process(self):
        return self.launch.process if self.launch is not None else None

    @property
    def qmp(self):
        return self.launch.qmp if self.launch is not None else None

    @property
    def _sockdir(self) -> Path | None:
        return self.launch.sockdir if self.launch is not None else None

    @property
    def time_source(self) -> str:
        """What ``run_for`` and ``virtual_time`` count on this firmware, and how a run ends (see
        :mod:`memhil.engines.clock`)."""
        if self._tick_stop is None:
            return self.clock.description
        return f"{self.clock.description}; {self._tick_stop.status}"

    def start(self, platform, elf: Path, *, accelerate: bool = True, workdir: Path | None = None) -> None:
        from memhil.platform import Platform

        if self.state is EngineState.RUNNING:
            raise EngineError("the qemu engine is already running", hint="stop() it before starting again, or create another engine")
        binary = find_program(self.binary, self.package)
        platform = platform if isinstance(platform, Platform) else Platform.load(platform)
        firmware = FirmwareInfo.load(elf)
        platform.check_segments(firmware.segments, elf=str(firmware.path))
        self.clock = choose_clock(firmware, tick_symbol=self.tick_symbol, tick_hz=self.tick_hz)
        self._uart = uart_registers(platform.console)
        self.platform, self.firmware, self.accelerate = platform, firmware, accelerate
        self.fault = None
        self.scratch_taken = []
        self._tick_stop = TickStop(self, self.clock, Image.open(firmware.path), platform, enabled=self.tick_stop) if self.clock.kind == "tick" else None
        self.launch = QemuLaunch(binary, platform, firmware, accelerate=accelerate, icount_shift=self.icount_shift,
                                 extra_args=self.extra_args, timeout=self.timeout, workdir=workdir)
        self.workdir = self.launch.workdir
        self.console.close()
        self.console = self.launch.console_log
        try:
            self.launch.start()
            self.version = self.launch.version
            self.state = EngineState.RUNNING
            self.capabilities = self._capabilities()
            self.probe_regions(platform, firmware.segments)
            if self.boot_to_main and firmware.address("main") is not None:
                self._run_to(firmware.symbols["main"])
        except BaseException:
            self._cleanup(EngineState.FAILED)
            raise

    def _capabilities(self) -> Capability:
        caps = Capability.BREAKPOINTS | Capability.MEMORY_WRITE | Capability.WATCHPOINTS | Capability.BACKGROUND
        if self.live_memory:
            caps |= Capability.LIVE_MEMORY
        if self.accelerate:
            caps |= Capability.ACCELERATION
        if self.clock.kind in ("barrier", "tick"):
            caps |= Capability.EXACT_RUN_FOR
        return caps

    def _has_barrier(self) -> bool:
        return self.clock.kind == "barrier"

    def stop(self) -> None:
        if self.state is EngineState.RUNNING:
            self._cleanup(EngineState.STOPPED)

    def _cleanup(self, state: EngineState) -> None:
        if self.launch is not None:
            self.launch.stop()
        for window in self._windows:
            window.close()
        self._windows.clear()
        self._ram_windows.clear()
        self.console.close()
        self._internal.clear()
        self._input.clear()
        self.state = state

    def reset(self) -> None:
        self.check_running()
        self._run_reset_hooks("before")
        self._qmp("system_reset")
        self._clear_halt()
        self._wall_run = 0.0
        self.fault = None
        self._input.clear()
        self._set_internal_watch(READ, self._uart.data, None)
        if self.boot_to_main and self.firmware and self.firmware.address("main") is not None:
            self._run_to(self.firmware.symbols["main"])
        self._run_reset_hooks("after")

    def set_acceleration(self, enabled: bool) -> None:
        if self.state is EngineState.RUNNING and enabled != self.accelerate:
            raise EngineError("QEMU fixes acceleration (-icount) when it starts", hint="pass accelerate= to start(), or stop and start again")
        self.accelerate = enabled

    # -- diagnostics -----------------------------------------------------------------------
    def _died(self, what: str) -> EngineError:
        return self.launch.died(what)  # type: ignore[union-attr]

    def _hung(self, what: str) -> EngineTimeout:
        return self.launch.hung(what)  # type: ignore[union-attr]

    def _gdb_call(self, fn: Callable, *args, **kwargs):
        """Run a gdbstub operation; a dropped connection or hang becomes a diagnosed engine failure."""
        if self._in_background:
            # any byte QEMU's gdbstub receives while the target runs pauses it, and the reply would be taken
            # for the awaited stop: refuse rather than desynchronise the connection
            raise EngineError("the target is running: host work done while it runs (add_background) cannot read or write it",
                              hint="read the target at the stop (in the breakpoint/watchpoint callback) and only decode in the background")
        try:
            return fn(*args, **kwargs)
        except (ProtocolError, EngineTimeout) as exc:
            self._fail(exc)

    def _fail(self, exc: ProtocolError | EngineTimeout | EngineError):
        """A gdbstub request (or a read through QEMU's memory) failed: a QEMU that exited or does not answer becomes a
        diagnosed failure (the engine is cleaned up); a malformed answer from a live QEMU is raised as it is."""
        if isinstance(exc, EngineTimeout):
            err: EngineError = self._hung(exc.message)
        elif self.process is not None and (not self.process.alive() or self.process.wait(1.0) is not None):
            err = self._died(f"QEMU exited unexpectedly ({exc.message})")
        else:
            raise exc
        self._cleanup(EngineState.FAILED)
        raise err from exc

    def _qmp(self, command: str, **args):
        return self.launch.qmp_cmd(command, **args)  # type: ignore[union-attr]

    def _hmp(self, command_line: str) -> str:
        """A human monitor command's text, over QMP (answered while the core runs)."""
        return self._qmp("human-monitor-command", **{"command-line": command_line}) or ""

    # -- memory and registers --------------------------------------------------------------
    def read_memory(self, address: int, size: int) -> bytes:
        self.check_running()
        blobs = self._read_ram([(address, size)])
        return blobs[0] if blobs is not None else self._gdb_call(self.client.read_memory, address, size)

    def read_memory_many(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        self.check_running()
        blobs = self._read_ram(ranges)
        if blobs is None:
            blobs = self._gdb_call(self.client.read_memory_many, ranges)
        if self._halted_pc is not None:  # kept for leaving this stop (a POP reads the stack)
            self._stop_reads.extend(zip((a for a, _ in ranges), blobs))
        return blobs

    def _read_ram(self, ranges: list[tuple[int, int]]) -> list[bytes] | None:
        """``ranges`` read through QEMU's memory when every one lies in a RAM region with a window
        (:meth:`_ram_window`), else None (the caller asks the gdbstub). A QEMU that is gone is diagnosed as a
        gdbstub read would be."""
        windows = [self._ram_window(a, n) for a, n in ranges]
        if not all(w is not None for w in windows):
            return None
        try:
            return [w.read_memory(a, n) for w, (a, n) in zip(windows, ranges)]  # type: ignore[union-attr]
        except EngineError as exc:
            self._fail(exc)
            raise  # _fail raises; kept for readers and type checkers

    def _ram_window(self, address: int, size: int):
        """The live window halted reads of ``[address, address + size)`` go through (a ``pread`` of QEMU's memory
        instead of a gdbstub round trip: the firmware is halted, so the bytes are those the gdbstub would read), or
        None: not inside one RAM region of the platform, no live memory here (opened on first use; see
        :meth:`live_window`), or host work running while the target runs (which must not read it at all)."""
        if self._in_background or not self.live_memory or self.platform is None or size <= 0:
            return None
        for region in self.platform.regions:
            if region.kind == "ram" and region.base <= address and address + size <= region.end:
                if region.name not in self._ram_windows:
                    self._ram_windows[region.name] = None  # the window's own check reads through the gdbstub
                    self._ram_windows[region.name] = self.live_window(region.base, region.size)
                return self._ram_windows[region.name]
        return None

    def write_memory(self, address: int, data: bytes) -> None:
        self.check_running()
        self._code_cache.clear()  # code may have changed
        self._stop_reads.clear()
        self._gdb_call(self.client.write_memory, address, bytes(data))

    def read_registers(self) -> dict[str, int]:
        self.check_running()
        return decode_g(self._gdb_call(self.client.read_registers_raw))

    def _read_counter(self) -> int:
        return self.clock.decode(self.read_memory(self.clock.address, self.clock.size))  # type: ignore[arg-type]

    # -- breakpoints and watchpoints -------------------------------------------------------
    def add_breakpoint(self, address: int, callback: BreakpointCallback) -> Breakpoint:
        self.check_running()

        def install(bp: Breakpoint, first: bool) -> None:
            if first and not self._engine_breakpoint(bp.address):
                self._gdb_call(self.client.insert_breakpoint, bp.address)

        return self._breakpoints.new(address, callback, install)

    def remove_breakpoint(self, bp: Breakpoint) -> None:
        self.check_running()
        if not self._breakpoints.drop(bp) and not self._engine_breakpoint(bp.address):
            self._gdb_call(self.client.remove_breakpoint, bp.address)

    def _engine_breakpoint(self, address: int) -> bool:
        """The engine keeps its own breakpoint here (the barrier function, a fault handler)."""
        return ((self._has_barrier() and address == self.firmware.symbols[contract.BARRIER_FUNCTION])  # type: ignore[union-attr]
)

    def add_watchpoint(self, address: int, size: int, callback: BreakpointCallback) -> Breakpoint:
        """A write watchpoint (``Z2``). QEMU stops before the store and, unlike a breakpoint stop, does not
        flush its translation cache; the engine performs the store on the host when it resumes."""
        self.check_running()
        if size not in (1, 2, 4, 8) or address % size:
            raise EngineError(f"cannot watch {size} bytes at {address:#x}", hint="watch 1, 2, 4 or 8 bytes at an address aligned to the size")
        if any(kind == WRITE and a <= address < a + n for kind, a, n in self._internal):
            raise EngineError(f"{address:#x} is watched by the engine itself (console UART or tick counter)", hint="watch another address")
        wp = Breakpoint(address, callback, self._breakpoints.next_id())
        key = (address, size)
        if not self._watchpoints.get(key):
            reply = self._gdb_call(self.client.transact, b"Z2,%x,%x" % key)
            if reply != b"OK":
                raise EngineError(f"QEMU refused a write watchpoint at {address:#x} ({reply[:40]!r})", hint="use a breakpoint instead")
        self._watchpoints.setdefault(key, []).append(wp)
        return wp

    def remove_watchpoint(self, wp: Breakpoint) -> None:
        self.check_running()
        for key, wps in self._watchpoints.items():
            if wp in wps:
                wps.remove(wp)
                if not wps:
                    del self._watchpoints[key]
                    self._gdb_call(self.client.transact_ok, [b"z2,%x,%x" % key], f"removing the watchpoint at {key[0]:#x}")
                return
        raise EngineError(f"watchpoint {wp.id} at {wp.address:#x} is not set", hint="remove each watchpoint once")

    def _set_internal_watch(self, kind: int, address: int, handler: Callable[[], str] | None, size: int = 4) -> None:
        """Insert (``handler``) or remove (None) one of the engine's own watchpoints."""
        key = (kind, address, size)
        if handler is not None and key not in self._internal:
            self._gdb_call(self.client.transact_ok, [b"Z%d,%x,%x" % key], f"watching {address:#x}")
            self._internal[key] = handler
        elif handler is None and key in self._internal:
            del self._internal[key]
            if self.state is EngineState.RUNNING:
                self._gdb_call(self.client.transact_ok, [b"z%d,%x,%x" % key], f"unwatching {address:#x}")

    # -- host work while the target runs -------------------------------------------------------
    def add_background(self, work: Callable[[], object], *, poll: bool = False) -> None:
        self._background.append(work)
        if poll:
            self._polled.append(work)

    def remove_background(self, work: Callable[[], object]) -> None:
        try:
            self._background.remove(work)
        except ValueError:
            raise EngineError("this background work was not added (or was removed already)", hint="remove what add_background added, once") from None
        if work in self._polled:
            self._polled.remove(work)

    def _run_background(self, polled: bool = False) -> int | None:
        """Each background work once (``polled``: the polled ones only), right after a continue or while a run
        waits: QEMU runs the firmware on one core while the host decodes on the other. Returns the work they
        found (the sum of the numbers they return), or None when every one returned None (nothing to look for:
        the wait need not poll them again). The first exception is kept for the next stop (see _wait)."""
        self._in_background = True
        found, active = 0, False
        try:
            for work in list(self._polled if polled else self._background):
                try:
                    got = work()
                    if got is not None:
                        active = True
                    if isinstance(got, int):
                        found += got
                except Exception as exc:  # noqa: BLE001 - re-raised at the next stop, with the target halted
                    if self._background_error is None:
                        self._background_error = exc
        finally:
            self._in_background = False
        return found if active else None

    def live_window(self, base: int, size: int):
        """A :class:`~memhil.engines.live_memory.LiveWindow` on target RAM through QEMU's memory, or None (logged
        why) where ``live_memory`` is off or the host or memory does not allow one."""
        from memhil.engines.live_memory import LiveMemoryUnavailable, open_window

        self.check_running()
        if not self.live_memory:
            return None
        flash = [r for r in self.platform.regions if r.kind != "ram" and r.base < base + size and base < r.end]  # type: ignore[union-attr]
        if flash:  # code lives there: a write that QEMU does not see would leave stale translations
            log.info("no live window on %#x-%#x: it overlaps %s, not RAM", base, base + size, flash[0].name)
            return None

        try:
            window = open_window(self.process.pid, lambda address: self._hmp(f"gpa2hva {address:#x}"), base, size, check=self.read_memory)  # type: ignore[union-attr]
        except LiveMemoryUnavailable as exc:
            log.info("no live window on %#x-%#x: %s; rings there are read at stops", base, base + size, exc)
            return None
        self._windows.append(window)
        return window
