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
import struct
import threading
import time
from pathlib import Path
from typing import Callable

from memhil import contract
from memhil.engines import faults, thumb_emulate
from memhil.engines.base import CORE_REGS, Breakpoint, BreakpointCallback, BreakpointTable, Capability, ConsoleLog, Engine, EngineState, EngineStop
from memhil.engines.clock import Clock, choose_clock
from memhil.engines.firmware import FirmwareInfo
from memhil.engines.gdb_rsp import StopReply
from memhil.engines.process import find_program
from memhil.engines.qemu_launch import QemuLaunch
from memhil.engines.uart import InputQueue, uart_registers
from memhil.errors import EngineError, EngineTimeout, ProtocolError

log = logging.getLogger("memhil.engines.qemu")

# kept for callers that imported them from here
UPTIME_SYMBOL = contract.UPTIME_SYMBOL
BARRIER_SYMBOL = contract.BARRIER_SYMBOL
BARRIER_FUNCTION = contract.BARRIER_FUNCTION
NO_BARRIER = contract.NO_BARRIER
QEMU_ENV = "MEMHIL_QEMU"
#: gdbstub watchpoint types (Z2 write, Z3 read) and the stop-reply keys that name them
WRITE, READ = 2, 3
_STOP_KINDS = {"watch": WRITE, "rwatch": READ}


def _effect_requests(effect: thumb_emulate.Effect) -> list[bytes]:
    """The gdbstub requests that make ``effect`` on the target: its store (``M``), then its registers
    (``P``, ascending, so PC is written last)."""
    out = []
    if effect.store is not None:
        address, data = effect.store
        out.append(b"M%x,%x:" % (address, len(data)) + data.hex().encode())
    for number, value in sorted(effect.registers.items()):
        out.append(b"P%x=" % number + struct.pack("<I", value & 0xFFFFFFFF).hex().encode())
    return out


def decode_g(raw: bytes) -> dict[str, int]:
    """Registers from a ``g`` reply of QEMU's ARM target: r0-r15, then (without target
    XML) eight 12-byte FPA registers and fps, then cpsr/xpsr (GDB register 25)."""
    if len(raw) < 64:
        raise ProtocolError(f"register block of {len(raw)} bytes is too short for r0-r15", hint="the stub is not an ARM target")
    values = struct.unpack_from("<16I", raw)
    regs = dict(zip(CORE_REGS[:16], values))
    if len(raw) >= 168:
        regs["xpsr"] = struct.unpack_from("<I", raw, 164)[0]
    elif len(raw) >= 68:
        regs["xpsr"] = struct.unpack_from("<I", raw, 64)[0]
    return regs


class QemuEngine(Engine):
    """Engine on ``qemu-system-arm``.

    ``binary``: the QEMU to run (default: ``$MEMHIL_QEMU``, else ``qemu-system-arm`` on PATH); ``timeout``: wall
    seconds for any single answer from QEMU; ``run_timeout``: wall seconds a ``run_for``/``wait_for_line`` may
    take beyond its own duration before QEMU counts as hung; ``icount_shift``: QEMU's ``-icount shift`` when
    accelerated; ``tick_symbol``/``tick_hz``: the firmware's tick counter and rate, for firmware without memhil's
    time barrier (found by name otherwise, see :mod:`memhil.engines.clock`); ``catch_faults``: stop at fault
    handlers and raise :class:`~memhil.errors.TargetFault`.
    """

    name = "qemu"
    package = "qemu-system-arm"

    def __init__(self, *, binary: str | None = None, timeout: float = 10.0, run_timeout: float = 120.0,
                 icount_shift: int = 0, extra_args: tuple[str, ...] = (), boot_to_main: bool = True,
                 emulate_entry: bool = True, tick_symbol: str | None = None, tick_hz: int | None = None,
                 catch_faults: bool = True) -> None:
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
        self.accelerate = True
        self.launch: QemuLaunch | None = None
        self.firmware: FirmwareInfo | None = None
        self.platform = None
        self.workdir: Path | None = None
        self.clock: Clock = Clock("wall")
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
        self._fault_handlers: dict[int, tuple[int, ...]] = {}
        self._uart = None
        self._input = InputQueue()
        self._console_watch: re.Pattern[str] | None = None
        self._background: list[Callable[[], None]] = []  # host work run after each resume (add_background)
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
        """What ``run_for`` and ``virtual_time`` count on this firmware (see :mod:`memhil.engines.clock`)."""
        return self.clock.description

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
        self.launch = QemuLaunch(binary, platform, firmware, accelerate=accelerate, icount_shift=self.icount_shift,
                                 extra_args=self.extra_args, timeout=self.timeout, workdir=workdir)
        self.workdir = self.launch.workdir
        self.console.close()
        self.console = ConsoleLog(self.workdir / "console.log")
        self.launch.console_log = self.console
        try:
            self.launch.start(self.console, None)
            self.version = self.launch.version
            self.state = EngineState.RUNNING
            self.capabilities = self._capabilities()
            self.probe_regions(platform, firmware.segments)
            if self.catch_faults:
                self._insert_fault_breakpoints()
            if self.boot_to_main and firmware.address("main") is not None:
                self._run_to(firmware.symbols["main"])
        except BaseException:
            self._cleanup(EngineState.FAILED)
            raise

    def _capabilities(self) -> Capability:
        caps = Capability.BREAKPOINTS | Capability.MEMORY_WRITE | Capability.WATCHPOINTS | Capability.BACKGROUND
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
        self.console.close()
        self._internal.clear()
        self._input.clear()
        self.state = state

    def reset(self) -> None:
        self.check_running()
        self._qmp("system_reset")
        self._halted_pc = self._halted_regs = self._halted_watch = self._halted_kind = None
        self._wall_run = 0.0
        self.fault = None
        self._input.clear()
        self._set_internal_watch(READ, self._uart.data, None)
        if self.boot_to_main and self.firmware and self.firmware.address("main") is not None:
            self._run_to(self.firmware.symbols["main"])

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
        except ProtocolError as exc:
            if self.process is not None and (not self.process.alive() or self.process.wait(1.0) is not None):
                err = self._died(f"QEMU exited unexpectedly ({exc.message})")
                self._cleanup(EngineState.FAILED)
                raise err from exc
            raise
        except EngineTimeout as exc:
            err = self._hung(exc.message)
            self._cleanup(EngineState.FAILED)
            raise err from exc

    def _qmp(self, command: str, **args):
        return self.launch.qmp_cmd(command, **args)  # type: ignore[union-attr]

    # -- memory and registers --------------------------------------------------------------
    def read_memory(self, address: int, size: int) -> bytes:
        self.check_running()
        return self._gdb_call(self.client.read_memory, address, size)

    def read_memory_many(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        self.check_running()
        blobs = self._gdb_call(self.client.read_memory_many, ranges)
        if self._halted_pc is not None:  # kept for leaving this stop (a POP reads the stack)
            self._stop_reads.extend(zip((a for a, _ in ranges), blobs))
        return blobs

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

    def _read_u64(self, symbol: str) -> int:
        return struct.unpack("<Q", self.read_memory(self.firmware.symbols[symbol], 8))[0]  # type: ignore[union-attr]

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
        return (self._has_barrier() and address == self.firmware.symbols[BARRIER_FUNCTION]) or address in self._fault_handlers  # type: ignore[union-attr]

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

    def _insert_fault_breakpoints(self) -> None:
        vectors = self.read_memory(0, 4 * 7)  # VTOR resets to 0 (B3.2.5), aliased to the boot flash
        self._fault_handlers = faults.fault_handlers(vectors)
        for address in self._fault_handlers:
            self._gdb_call(self.client.insert_breakpoint, address)

    # -- host work while the target runs -------------------------------------------------------
    def add_background(self, work: Callable[[], None]) -> None:
        self._background.append(work)

    def remove_background(self, work: Callable[[], None]) -> None:
        try:
            self._background.remove(work)
        except ValueError:
            raise EngineError("this background work was not added (or was removed already)", hint="remove what add_background added, once") from None

    def _run_background(self) -> None:
        """Each background work once, right after a continue: QEMU runs the firmware on one core while the
        host decodes on the other. The first exception is kept for the next stop (see _wait)."""
        self._in_background = True
        try:
            for work in list(self._background):
                try:
                    work()
                except Exception as exc:  # noqa: BLE001 - re-raised at the next stop, with the target halted
                    if self._background_error is None:
                        self._background_error = exc
        finally:
            self._in_background = False

    # -- leaving a stop --------------------------------------------------------------------
    def _resume(self) -> None:
        """Continue; if halted on a breakpoint, leave it first (performed on the host, else stepped)."""
        client = self.client
        pc = self._halted_pc
        extra, self._resume_prefix = self._resume_prefix, []  # requests to send before this continue
        if pc is not None and self._halted_watch is not None:
            self._gdb_call(client.resume, prefix=self._leave_access() + extra)
        elif pc is not None and (pc in self._breakpoints or pc == self._barrier_bp or pc in self._fault_handlers):
            prefix = self._emulated_step(pc)
            if prefix is not None:
                self._gdb_call(client.resume, prefix=extra + prefix)
            else:
                if extra:
                    self._gdb_call(client.transact_ok, extra)
                self._gdb_call(client.step_over_breakpoint, pc, 2, self.timeout)
        else:
            self._gdb_call(client.resume, prefix=extra)
        self._halted_pc = None
        self._halted_regs = None
        self._halted_watch = self._halted_kind = None
        self._stop_reads.clear()
        if self._background:
            self._run_background()

    def _emulated_step(self, pc: int) -> list[bytes] | None:
        """Requests that perform the instruction at ``pc`` on the host (see thumb_emulate), or None
        when it must be stepped. A POP takes the words at SP from what a callback read during this
        stop, else reads them."""
        if not self.emulate_entry or self._halted_regs is None:
            return None
        insn = thumb_emulate.decode(self._code(pc))
        regs = self._halted_regs
        if self._p_ok is None:  # probe 'P' once, writing pc with its own value
            self._p_ok = self._gdb_call(self.client.transact, b"Pf=" + struct.pack("<I", pc).hex().encode()) == b"OK"
        if not self._p_ok:
            return None
        if insn is None or thumb_emulate.in_it_block(regs.get("xpsr", 0)):
            return None
        stack = b""
        if insn.stack_bytes:
            stack = self._stop_read(regs["sp"], insn.stack_bytes)
        effect = thumb_emulate.execute(insn, [regs[name] for name in CORE_REGS[:16]], pc, stack)
        return None if effect is None else _effect_requests(effect)

    def _code(self, pc: int) -> bytes:
        """The 4 bytes of code at ``pc``, read once (every hit of a breakpoint or watched access decodes them)."""
        code = self._code_cache.get(pc)
        if code is None:
            code = self._code_cache[pc] = self._gdb_call(self.client.read_memory, pc, 4)
        return code

    def _stop_read(self, address: int, size: int) -> bytes:
        """``size`` bytes at ``address`` from the reads made during this stop, else from the target."""
        for start, data in self._stop_reads:
            off = address - start
            if 0 <= off and off + size <= len(data):
                return data[off : off + size]
        return self._gdb_call(self.client.read_memory, address, size)

    def _leave_access(self) -> list[bytes]:
        """Halted on a watchpoint, QEMU has not made the access yet: requests that make it from the host and
        move PC past it (a store: its bytes; a load: the register, with the value read now, so a device register's
        read side effect happens once). Another kind of access is stepped now, with the watchpoints on its address
        lifted for the step (a flush, but rare)."""
        pc, regs, hit, kind = self._halted_pc, self._halted_regs, self._halted_watch, self._halted_kind
        assert pc is not None and regs is not None and hit is not None
        values = [regs[name] for name in CORE_REGS[:16]]
        code = self._code(pc)
        effect = None
        if not thumb_emulate.in_it_block(regs.get("xpsr", 0)):
            if kind == READ:
                load = thumb_emulate.decode_load(code)
                if load is not None:
                    data = self._gdb_call(self.client.read_memory, thumb_emulate.load_address(load, values), load.size)
                    effect = thumb_emulate.perform_load(load, values, pc, data)
            else:
                store = thumb_emulate.decode_store(code)
                if store is not None:
                    effect = thumb_emulate.perform_store(store, values, pc)
        if effect is not None:
            new_pc, out = effect.registers[15], _effect_requests(effect)
        else:
            keys = [(k, a, n) for k, a, n in self._watched() if a <= hit < a + n]
            self._gdb_call(self.client.transact_ok, [b"z%d,%x,%x" % k for k in keys], "lifting a watchpoint to step its access")
            self._gdb_call(self.client.step, self.timeout)
            self._gdb_call(self.client.transact_ok, [b"Z%d,%x,%x" % k for k in keys], "re-inserting a watchpoint after its access")
            new_pc = decode_g(self._gdb_call(self.client.read_registers_raw))["pc"]
            out = []
        self._halted_pc = new_pc
        regs["pc"] = new_pc
        return out

    def _complete_access_now(self) -> None:
        """Make the watched access at this stop now (not with the next continue), and leave the target at the next
        instruction as a plain halt: what follows (console bytes, the counter) is then in the target."""
        requests = self._leave_access()
        if requests:
            self._gdb_call(self.client.transact_ok, requests, "performing a watched access")
        self._halted_pc = self._halted_regs = self._halted_watch = self._halted_kind = None
        self._stop_reads.clear()

    def _watched(self) -> list[tuple[int, int, int]]:
        """Every inserted watchpoint as (kind, address, size): the user's, the engine's own, and the barrier's
        during a barrier run."""
        out = [(WRITE, a, n) for a, n in self._watchpoints] + list(self._internal)
        if self._barrier_watch:
            out.append((WRITE, *self._barrier_watch))
        return out

    # -- stops -----------------------------------------------------------------------------------
    def _wait(self, wall_timeout: float) -> tuple[StopReply, dict[str, int]]:
        stop = self._gdb_call(self.client.wait_stop, wall_timeout)
        if stop.exited:
            err = self._died(f"the target exited (stop reply {stop.kind}, status {stop.exit_status or stop.signal})")
            self._cleanup(EngineState.FAILED)
            raise err
        regs = decode_g(self._gdb_call(self.client.read_registers_raw))
        self._halted_pc = regs["pc"]
        self._halted_regs = regs
        self._halted_watch = self._halted_kind = None
        for key, kind in _STOP_KINDS.items():
            if stop.info.get(key):
                self._halted_watch, self._halted_kind = int(stop.info[key], 16), kind
        self.launch.console.drain()  # type: ignore[union-attr] - everything the target wrote is in hand
        if self._background_error is not None:
            err, self._background_error = self._background_error, None
            raise err
        return stop, regs

    def _engine_stop(self, regs: dict[str, int]) -> str | None:
        """Handle a stop on one of the engine's own watchpoints or fault breakpoints: the name of what happened
        ("console", "input", "tick"), or None for any other stop. A fault raises."""
        if self._halted_watch is not None:
            for (kind, address, size), handler in self._internal.items():
                if kind == self._halted_kind and address <= self._halted_watch < address + size:
                    return handler()
            return None
        pc = regs["pc"]
        if pc in self._fault_handlers and pc not in self._breakpoints:
            fault = faults.explain(regs, self.read_memory, self.firmware.path, engine=f"qemu {self.version}")  # type: ignore[union-attr]
            if fault is not None:
                self.fault = fault
                raise fault
        return None

    def _dispatch(self, regs: dict[str, int]) -> None:
        if self._halted_watch is not None:
            hit = self._halted_watch
            for (address, size), wps in list(self._watchpoints.items()):
                if address <= hit < address + size:
                    for wp in list(wps):
                        wp.callback(EngineStop(self, regs, complete=True))
            return
        for bp in list(self._breakpoints.get(regs["pc"], ())):
            bp.callback(EngineStop(self, regs, complete=True))

    def _run_loop(self, until: Callable[[StopReply, dict[str, int], str | None], bool], wall_timeout: float) -> StopReply:
        """Continue, handling the engine's own stops and dispatching breakpoint hits, until
        ``until(stop, regs, what)`` is true (``what``: the engine's own stop, else None)."""
        deadline = time.monotonic() + wall_timeout
        while True:
            self._resume()
            stop, regs = self._wait(max(deadline - time.monotonic(), 0.01))
            what = self._engine_stop(regs)
            finished = until(stop, regs, what)
            if what is None:
                # a stop on a user breakpoint is a hit whatever else ended the run: the next resume leaves
                # the instruction, so a hit not dispatched now would be lost
                self._dispatch(regs)
            if finished:
                return stop

    def _run_to(self, address: int) -> None:
        """Run to ``address`` once (boot to main) with a temporary breakpoint."""
        temp = address not in self._breakpoints
        if temp:
            self._gdb_call(self.client.insert_breakpoint, address)
        try:
            self._run_loop(lambda stop, regs, what: what is None and regs["pc"] == address, self.run_timeout)
        finally:
            if temp and self.client is not None and self.state is EngineState.RUNNING:
                self._gdb_call(self.client.remove_breakpoint, address)

    # -- the console -----------------------------------------------------------------------------
    # While a wait watches the console, the engine stops at each store to the UART's data register and at each read
    # of its status register. QEMU stops *before* a watched access and would stop again on a plain continue, and
    # QEMU 7.2's gdbstub drops debug writes to device registers, so the host cannot make the store itself. So:
    # at a store, the byte is taken from the register being stored; if it completes the awaited text, the store is
    # stepped (one translation-cache flush per wait) and the wait ends right after it; otherwise the data-register
    # watch is lifted, the store runs, and the next status read (a polled driver checks TXE before each byte)
    # stops the target, where the host performs that read, drains the console and puts the data watch back.
    def _watch_console(self, watch: re.Pattern[str] | None) -> None:
        uart = self._uart
        self._console_watch = watch
        self._set_internal_watch(WRITE, uart.data, self._on_console_store if watch is not None else None)
        self._set_internal_watch(READ, uart.status, self._on_console_status if watch is not None else None)

    def _on_console_store(self) -> str:
        regs, pc = self._halted_regs, self._halted_pc
        store = thumb_emulate.decode_store(self._code(pc))  # type: ignore[arg-type]
        byte = b""
        if store is not None and regs is not None:
            byte = bytes([regs[CORE_REGS[store.rt]] & 0xFF])
        self._set_internal_watch(WRITE, self._uart.data, None)
        if byte and self.console.matches_with(self._console_watch, byte):  # type: ignore[arg-type]
            self._gdb_call(self.client.step, self.timeout)  # the store, with its watch lifted
            self._halted_pc = self._halted_regs = self._halted_watch = self._halted_kind = None
            self._stop_reads.clear()
            self.launch.console.drain()  # type: ignore[union-attr]
            return "console"
        self._halted_pc = self._halted_regs = self._halted_watch = self._halted_kind = None  # runs unwatched
        return "tx"

    def _on_console_status(self) -> str:
        self._complete_access_now()
        self.launch.console.drain()  # type: ignore[union-attr]
        if self.console.search(self._console_watch, consume=False):  # type: ignore[arg-type]
            return "console"
        self._set_internal_watch(WRITE, self._uart.data, self._on_console_store)
        return "tx"

    def _on_console_load(self) -> str:
        self._complete_access_now()  # the host read the data register: the UART is free for the next byte
        self._feed_uart()
        return "input"

    def _feed_uart(self) -> None:
        """Hand the UART the next pending console byte if its receive register is empty, and wait (the target
        halted, so no virtual time passes) until it holds it; watch reads of the data register while bytes wait."""
        uart = self._uart
        if self._input and not uart.received(self.read_memory(uart.status, 4)):
            self.launch.console.write(self._input.pop())  # type: ignore[union-attr]
            deadline = time.monotonic() + self.timeout
            while not uart.received(self.read_memory(uart.status, 4)):
                if time.monotonic() > deadline:
                    raise self._hung(f"QEMU did not hand a console byte to the UART within {self.timeout:g} s")
                time.sleep(0.0001)
        self._set_internal_watch(READ, uart.data, self._on_console_load if self._input else None)

    def console_write(self, data: bytes | str) -> None:
        self.check_running()
        self._input.add(data.encode() if isinstance(data, str) else bytes(data))
        self._feed_uart()

    def _settle_console(self) -> None:
        if self.launch is not None and self.launch.console is not None:
            self.launch.console.drain()

    def _run_until_console(self, regex: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        self.check_running()
        self._run_for(timeout, watch=regex)
        return self.console.search(regex)

    # -- time ------------------------------------------------------------------------------------
    def run_for(self, seconds: float) -> None:
        self.check_running()
        if seconds < 0:
            raise EngineError(f"cannot run for {seconds} s", hint="durations must be zero or positive")
        self._run_for(seconds, watch=None)

    def _run_for(self, seconds: float, watch: re.Pattern[str] | None) -> bool:
        """Run ``seconds`` of virtual time; with ``watch``, stop at the console store that makes it match.
        Returns True when stopped by the console."""
        if self.fault is not None:
            raise self.fault  # the target sits in its fault handler until reset
        self._settle_console()
        if watch is not None and self.console.search(watch, consume=False):
            return True
        if round(seconds * 1000) <= 0:
            return False
        wall = self.run_timeout + (0.0 if self.accelerate else seconds)
        if watch is not None:
            self._watch_console(watch)
        try:
            if self.clock.kind == "barrier":
                return self._run_to_barrier(self._read_counter() + round(seconds * 1000), watch, wall)
            if self.clock.kind == "tick":
                return self._run_ticks(self.clock.ticks(seconds), watch, wall)
            return self._run_wall(seconds, watch, wall)
        finally:
            if watch is not None and self.state is EngineState.RUNNING:
                self._watch_console(None)

    def _by_console(self, watch, what: str | None) -> bool:
        return watch is not None and what == "console" and self.console.search(watch, consume=False) is not None

    def _run_to_barrier(self, target: int, watch, wall: float) -> bool:
        """Run to the time barrier. The firmware contract resets ``g_memhil_barrier_ms`` to NO_BARRIER just
        before it calls ``memhil_time_barrier``: a write watchpoint on that word stops it there. QEMU 7.2's
        gdbstub flushes the whole translation cache on every breakpoint stop but not on a watchpoint stop,
        so the code after the stop is not retranslated. The first run sets both the watchpoint and the
        breakpoint: a firmware whose breakpoint is reached without the write (or a stub without
        watchpoints) keeps the breakpoint from then on."""
        barrier_pc = self.firmware.symbols[BARRIER_FUNCTION]  # type: ignore[union-attr]
        var = self.firmware.symbols[BARRIER_SYMBOL]  # type: ignore[union-attr]
        set_watch, unset_watch = b"Z2,%x,4" % var, b"z2,%x,4" % var
        if self._watch_ok is None:  # probe: does the stub take a write watchpoint?
            if self._gdb_call(self.client.transact, set_watch) != b"OK":
                self._watch_ok = False
        watchpoint = self._watch_ok is not False
        breakpoint = self._watch_ok is not True
        self._barrier_watch = (var, 4) if watchpoint else None
        if watchpoint and self._watch_ok:
            self._resume_prefix.append(set_watch)  # sent with the continue, in one write
        # the deadline is written before the firmware runs again: its next sleep already ends there
        self._resume_prefix.insert(0, b"M%x,8:" % var + struct.pack("<Q", target).hex().encode())
        if breakpoint:
            if barrier_pc not in self._breakpoints:
                self._gdb_call(self.client.insert_breakpoint, barrier_pc)
            self._barrier_bp = barrier_pc
        by_console = False

        def done(stop: StopReply, regs: dict[str, int], what: str | None) -> bool:
            nonlocal by_console
            if self._by_console(watch, what):
                by_console = True
                return True
            if what is not None:
                return False
            watched = watchpoint and self._halted_watch is not None and var <= self._halted_watch < var + 4
            if (watched or breakpoint and regs["pc"] == barrier_pc) and self._read_counter() >= target:
                if self._watch_ok is None:
                    self._watch_ok = watched
                    log.debug("time barrier by %s", "write watchpoint" if watched else "breakpoint (no barrier reset seen)")
                return True
            return False

        try:
            self._run_loop(done, wall)
        finally:
            self._resume_prefix.clear()
            if self.state is EngineState.RUNNING:
                requests = [b"M%x,8:" % var + struct.pack("<Q", NO_BARRIER).hex().encode()]
                if watchpoint:
                    requests.insert(0, unset_watch)
                    if self._halted_watch is not None and var <= self._halted_watch < var + 4:
                        requests += self._leave_access()
                        self._halted_watch = self._halted_kind = None
                if breakpoint:
                    if barrier_pc not in self._breakpoints:
                        requests.append(b"z0,%x,2" % barrier_pc)
                    self._barrier_bp = None
                self._gdb_call(self.client.transact_ok, requests, "leaving the time barrier")
            self._barrier_watch = None
        return by_console

    def _run_ticks(self, ticks: int, watch, wall: float) -> bool:
        """Run ``ticks`` of the firmware's tick counter: a write watchpoint on it stops the target at every
        tick; the host makes the store, reads the counter and ends the run at the first value at or past the
        deadline (counted modulo the counter's width)."""
        clock = self.clock
        mask = (1 << 8 * clock.size) - 1
        start = self._read_counter()
        reached = ticks <= 0
        by_console = False

        def on_tick() -> str:
            nonlocal reached
            self._complete_access_now()
            reached = (self._read_counter() - start) & mask >= ticks
            return "tick"

        def done(stop: StopReply, regs: dict[str, int], what: str | None) -> bool:
            nonlocal by_console
            if self._by_console(watch, what):
                by_console = True
                return True
            return what == "tick" and reached

        if reached:
            return False
        self._set_internal_watch(WRITE, clock.address, on_tick)  # type: ignore[arg-type]
        try:
            self._run_loop(done, wall)
        finally:
            if self.state is EngineState.RUNNING:
                self._set_internal_watch(WRITE, clock.address, None)  # type: ignore[arg-type]
        return by_console

    def _run_wall(self, seconds: float, watch, wall: float, slice_s: float = 0.02) -> bool:
        """No tick counter: run in wall-clock slices (interrupts) and count wall seconds as virtual time."""
        end = self._wall_run + seconds
        deadline = time.monotonic() + wall + seconds
        while True:
            started = time.monotonic()
            self._resume()
            timer = threading.Timer(slice_s, self.client.interrupt)
            timer.start()
            try:
                stop, regs = self._wait(max(deadline - time.monotonic(), 0.01))
            finally:
                timer.cancel()
            self._wall_run += time.monotonic() - started
            what = self._engine_stop(regs)
            if what is None:
                self._dispatch(regs)
            if self._by_console(watch, what):
                return True
            if self._wall_run >= end:
                return False

    def virtual_time(self) -> float:
        self.check_running()
        if self.clock.kind in ("barrier", "tick"):
            return self._read_counter() / self.clock.hz
        return self._wall_run
