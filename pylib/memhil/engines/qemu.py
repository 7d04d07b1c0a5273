"""The QEMU engine: ``qemu-system-arm`` driven through its gdbstub and QMP.

QEMU is started halted (``-S``) with the platform's machine and the ELF
(``-kernel``); the gdbstub, QMP and the console UART are unix sockets in a private
temporary directory, so several engines never clash. Memory, registers and
breakpoints go through :class:`~memhil.engines.gdb_rsp.GdbClient`. Acceleration is
``-icount shift=N,sleep=off``: virtual time follows executed instructions and idle
(WFI) time is skipped.

Exact ``run_for`` uses the firmware's time barrier: the host writes
``g_memhil_barrier_ms = g_memhil_uptime_ms + duration`` and breaks on
``memhil_time_barrier``, which the firmware's tick calls when uptime reaches the
barrier -- exact to one tick. Firmware without a barrier but with
``g_memhil_uptime_ms`` is run in short wall-clock slices and polled (may overshoot by
a slice); firmware with neither runs for wall-clock time (virtual time then counts
wall seconds run).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import struct
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Callable

from memhil.engines import thumb_emulate
from memhil.engines.base import CORE_REGS, Breakpoint, BreakpointCallback, BreakpointTable, Capability, ConsoleLog, Engine, EngineState, EngineStop
from memhil.engines.console_socket import ConsoleSocket, connect_socket
from memhil.engines.firmware import FirmwareInfo
from memhil.engines.gdb_rsp import SIGINT, GdbClient, StopReply
from memhil.engines.process import ChildProcess, find_program
from memhil.errors import EngineError, EngineTimeout, MemhilError, ProtocolError

log = logging.getLogger("memhil.engines.qemu")

UPTIME_SYMBOL = "g_memhil_uptime_ms"
BARRIER_SYMBOL = "g_memhil_barrier_ms"
BARRIER_FUNCTION = "memhil_time_barrier"
NO_BARRIER = (1 << 64) - 1
QEMU_ENV = "MEMHIL_QEMU"


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

    ``timeout``: wall seconds for any single answer from QEMU; ``run_timeout``: wall
    seconds a ``run_for``/``wait_for_line`` may take beyond its own duration before it
    counts as a hang; ``icount_shift``: QEMU's ``-icount shift`` when accelerated.
    """

    name = "qemu"
    package = "qemu-system-arm"

    def __init__(self, *, binary: str | None = None, timeout: float = 10.0, run_timeout: float = 120.0,
                 icount_shift: int = 0, extra_args: tuple[str, ...] = (), boot_to_main: bool = True,
                 emulate_entry: bool = True) -> None:
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
        self.accelerate = True
        self.process: ChildProcess | None = None
        self.client: GdbClient | None = None
        self.qmp = None
        self.firmware: FirmwareInfo | None = None
        self.platform = None
        self.workdir: Path | None = None
        self._sockdir: Path | None = None
        self._own_workdir = False
        self._console: ConsoleSocket | None = None
        self._breakpoints = BreakpointTable()
        self._halted_pc: int | None = None
        self._halted_regs: dict[str, int] | None = None
        #: leave breakpoints by executing a PUSH/NOP/POP/BX LR on the host instead of stepping
        self.emulate_entry = emulate_entry
        self._code_cache: dict[int, bytes] = {}
        self._p_ok: bool | None = None
        self._stop_reads: list[tuple[int, bytes]] = []
        self._resume_prefix: list[bytes] = []  # requests pipelined before the next continue (each answers OK)
        self._watch_ok: bool | None = None  # the barrier stops by write watchpoint (Z2)
        self._watchpoints: dict[tuple[int, int], list[Breakpoint]] = {}
        self._halted_watch: int | None = None  # the address of the write watchpoint the target is halted on
        self._barrier_watch: tuple[int, int] | None = None  # the barrier's own watchpoint, while inserted
        self._background: list[Callable[[], None]] = []  # host work run after each resume (add_background)
        self._in_background = False
        self._background_error: BaseException | None = None
        self._watch: re.Pattern[str] | None = None
        self._watch_lock = threading.Lock()
        self._wall_run = 0.0  # virtual time proxy when the firmware has no uptime counter

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, platform, elf: Path, *, accelerate: bool = True, workdir: Path | None = None) -> None:
        from memhil.platform import Platform

        if self.state is EngineState.RUNNING:
            raise EngineError("the qemu engine is already running", hint="stop() it before starting again, or create another engine")
        binary = find_program(self.binary, self.package)
        platform = platform if isinstance(platform, Platform) else Platform.load(platform)
        firmware = FirmwareInfo.load(elf)
        platform.check_segments(firmware.segments, elf=str(firmware.path))
        self.platform, self.firmware, self.accelerate = platform, firmware, accelerate
        self._sockdir = Path(tempfile.mkdtemp(prefix="memhil-qemu-"))
        # removed by stop(); also when the engine is collected or at interpreter exit
        self._dir_finalizer = weakref.finalize(self, shutil.rmtree, str(self._sockdir), True)
        if workdir is None:
            self.workdir, self._own_workdir = self._sockdir, True
        else:
            self.workdir = Path(workdir)
            self.workdir.mkdir(parents=True, exist_ok=True)
        self.console.close()
        self.console = ConsoleLog(self.workdir / "console.log")
        try:
            self._launch(binary)
            self.state = EngineState.RUNNING
            self.capabilities = self._capabilities()
            self.probe_regions(platform, firmware.segments)
            if self.boot_to_main and firmware.address("main") is not None:
                self._run_to(firmware.symbols["main"])
        except BaseException:
            self._cleanup(EngineState.FAILED)
            raise

    def _argv(self, binary: str) -> list[str]:
        assert self._sockdir and self.platform and self.firmware
        serials = {self.platform.console.qemu_serial: "chardev:con0"}
        if self.platform.trace_uart is not None:
            serials[self.platform.trace_uart.qemu_serial] = "null"
        argv = [
            binary, "-M", self.platform.qemu_machine, "-kernel", str(self.firmware.path),
            "-display", "none", "-monitor", "none", "-nodefaults", "-S",
            "-chardev", f"socket,id=gdb0,path={self._sockdir / 'gdb.sock'},server=on,wait=off", "-gdb", "chardev:gdb0",
            "-chardev", f"socket,id=qmp0,path={self._sockdir / 'qmp.sock'},server=on,wait=off", "-mon", "chardev=qmp0,mode=control",
            "-chardev", f"socket,id=con0,path={self._sockdir / 'console.sock'},server=on,wait=off",
        ]
        for index in range(max(serials) + 1):
            argv += ["-serial", serials.get(index, "null")]
        if self.accelerate:
            argv += ["-icount", f"shift={self.icount_shift},sleep=off"]
        return argv + list(self.extra_args)

    def _launch(self, binary: str) -> None:
        from qemu.qmp.legacy import QEMUMonitorProtocol

        assert self._sockdir and self.workdir
        self.process = ChildProcess(self._argv(binary), workdir=self.workdir, name="qemu")
        deadline = time.monotonic() + self.timeout
        gdb_path = self._sockdir / "gdb.sock"
        while not gdb_path.exists():
            if not self.process.alive():
                raise self._died("QEMU exited while starting")
            if time.monotonic() > deadline:
                raise self._hung(f"QEMU did not open its gdbstub within {self.timeout:g} s")
            time.sleep(0.01)
        sock = connect_socket(str(self._sockdir / "console.sock"), timeout=self.timeout, what="console UART")
        self._console = ConsoleSocket(sock, self.console, on_data=self._on_console)
        self.client = self._gdb_call(GdbClient.connect_unix, str(gdb_path), timeout=self.timeout)
        self.client.name = "QEMU gdbstub"
        self.client.lazy_acks = self.client.ack_mode  # QEMU 7.2: no QStartNoAckMode, acks not awaited
        qmp = QEMUMonitorProtocol(str(self._sockdir / "qmp.sock"))
        qmp.settimeout(self.timeout)
        try:
            qmp.connect()
        except Exception as exc:  # qemu.qmp raises its own ConnectError/OSError
            raise self._died(f"cannot connect to QEMU's QMP socket: {exc}") if not self.process.alive() else EngineError(
                f"cannot connect to QEMU's QMP socket: {exc}", hint="check QEMU's stderr", stderr_tail=self.process.stderr_tail()) from exc
        self.qmp = qmp
        info = self._qmp("query-version")
        q = info.get("qemu", {})
        self.version = f"{q.get('major')}.{q.get('minor')}.{q.get('micro')}" + (f" ({info['package'].strip()})" if info.get("package", "").strip() else "")

    def _capabilities(self) -> Capability:
        assert self.firmware
        caps = Capability.BREAKPOINTS | Capability.MEMORY_WRITE | Capability.WATCHPOINTS | Capability.BACKGROUND
        if self.accelerate:
            caps |= Capability.ACCELERATION
        if self._has_barrier():
            caps |= Capability.EXACT_RUN_FOR
        return caps

    def _has_barrier(self) -> bool:
        fw = self.firmware
        return fw is not None and all(fw.address(s) is not None for s in (UPTIME_SYMBOL, BARRIER_SYMBOL, BARRIER_FUNCTION))

    def stop(self) -> None:
        if self.state is EngineState.RUNNING:
            self._cleanup(EngineState.STOPPED)

    def _cleanup(self, state: EngineState) -> None:
        if self.qmp is not None:
            # QMP goes first, then QEMU by SIGTERM (a clean shutdown, as 'quit' would be): asked to quit over
            # QMP, QEMU sent its SHUTDOWN event while closing, and qemu.qmp logged the cut message as an ERROR
            try:
                self.qmp.close()
            except Exception:  # noqa: BLE001 - QEMU may already be gone
                pass
            self.qmp = None
        if self.process is not None:
            self.process.stop()
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._console is not None:
            self._console.close()
            self._console = None
        self.console.close()
        if self._sockdir is not None:
            # without a workdir the logs lived in the socket dir: the transcript stays
            # in memory (self.console.text()); pass workdir= to keep the files
            self._dir_finalizer()
            self._sockdir = None
        self.state = state

    def reset(self) -> None:
        self.check_running()
        self._run_reset_hooks("before")
        self._qmp("system_reset")
        self._halted_pc = None
        self._halted_regs = None
        self._wall_run = 0.0
        if self.boot_to_main and self.firmware and self.firmware.address("main") is not None:
            self._run_to(self.firmware.symbols["main"])
        self._run_reset_hooks("after")

    def set_acceleration(self, enabled: bool) -> None:
        if self.state is EngineState.RUNNING and enabled != self.accelerate:
            raise EngineError("QEMU fixes acceleration (-icount) when it starts", hint="pass accelerate= to start(), or stop and start again")
        self.accelerate = enabled

    # -- diagnostics -----------------------------------------------------------------------
    def _diagnostics(self) -> dict[str, object]:
        proc = self.process
        return {
            "exit_status": proc.poll() if proc else None,
            "tail": proc.stderr_tail() if proc else None,
            "console_tail": self.console.tail(10),
            "log": str(self.console.path) if self.console.path else None,
        }

    def _died(self, what: str) -> EngineError:
        if self.process is not None:
            self.process.wait(1.0)
        return EngineError(what, hint="QEMU failed; read its stderr (tail below) and the console log", **self._diagnostics())

    def _hung(self, what: str) -> EngineTimeout:
        return EngineTimeout(what, hint="QEMU hangs or the machine is overloaded; raise run_timeout/timeout or check the firmware", **self._diagnostics())

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
        try:
            return self.qmp.cmd(command, **args)  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001 - qemu.qmp errors are not MemhilErrors
            if isinstance(exc, MemhilError):
                raise
            raise self._died(f"QMP {command} failed: {exc}") from exc

    # -- memory and registers --------------------------------------------------------------
    def read_memory(self, address: int, size: int) -> bytes:
        self.check_running()
        return self._gdb_call(self.client.read_memory, address, size)  # type: ignore[union-attr]

    def read_memory_many(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        self.check_running()
        blobs = self._gdb_call(self.client.read_memory_many, ranges)  # type: ignore[union-attr]
        if self._halted_pc is not None:  # kept for leaving this stop (a POP reads the stack)
            self._stop_reads.extend(zip((a for a, _ in ranges), blobs))
        return blobs

    def write_memory(self, address: int, data: bytes) -> None:
        self.check_running()
        self._code_cache.clear()  # code may have changed
        self._stop_reads.clear()
        self._gdb_call(self.client.write_memory, address, bytes(data))  # type: ignore[union-attr]

    def read_registers(self) -> dict[str, int]:
        self.check_running()
        return decode_g(self._gdb_call(self.client.read_registers_raw))  # type: ignore[union-attr]

    def _read_u64(self, symbol: str) -> int:
        return struct.unpack("<Q", self.read_memory(self.firmware.symbols[symbol], 8))[0]  # type: ignore[union-attr]

    def _write_u64(self, symbol: str, value: int) -> None:
        self.write_memory(self.firmware.symbols[symbol], struct.pack("<Q", value))  # type: ignore[union-attr]

    # -- breakpoints -----------------------------------------------------------------------
    def add_breakpoint(self, address: int, callback: BreakpointCallback) -> Breakpoint:
        self.check_running()
        def install(bp: Breakpoint, first: bool) -> None:
            if first and not self._internal(bp.address):
                self._gdb_call(self.client.insert_breakpoint, bp.address)  # type: ignore[union-attr]

        return self._breakpoints.new(address, callback, install)

    def remove_breakpoint(self, bp: Breakpoint) -> None:
        self.check_running()
        if not self._breakpoints.drop(bp) and not self._internal(bp.address):
            self._gdb_call(self.client.remove_breakpoint, bp.address)  # type: ignore[union-attr]

    def add_watchpoint(self, address: int, size: int, callback: BreakpointCallback) -> Breakpoint:
        """A write watchpoint (``Z2``). QEMU stops before the store and, unlike a breakpoint stop, does not
        flush its translation cache; the engine performs the store on the host when it resumes."""
        self.check_running()
        if size not in (1, 2, 4, 8) or address % size:
            raise EngineError(f"cannot watch {size} bytes at {address:#x}", hint="watch 1, 2, 4 or 8 bytes at an address aligned to the size")
        wp = Breakpoint(address, callback, self._breakpoints.next_id())
        key = (address, size)
        if not self._watchpoints.get(key):
            reply = self._gdb_call(self.client.transact, b"Z2,%x,%x" % key)  # type: ignore[union-attr]
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
                    self._gdb_call(self.client.transact_ok, [b"z2,%x,%x" % key], f"removing the watchpoint at {key[0]:#x}")  # type: ignore[union-attr]
                return
        raise EngineError(f"watchpoint {wp.id} at {wp.address:#x} is not set", hint="remove each watchpoint once")

    def _internal(self, address: int) -> bool:
        return self._has_barrier() and address == self.firmware.symbols[BARRIER_FUNCTION]  # type: ignore[union-attr]

    # -- running ---------------------------------------------------------------------------
    def _resume(self) -> None:
        """Continue; if halted on a breakpoint, step over it first (remove, step, re-insert)."""
        client = self.client
        pc = self._halted_pc
        extra, self._resume_prefix = self._resume_prefix, []  # requests to send before this continue
        if pc is not None and self._halted_watch is not None:
            self._gdb_call(client.resume, prefix=self._leave_store() + extra)  # type: ignore[union-attr]
        elif pc is not None and (pc in self._breakpoints or pc == self._barrier_bp):
            prefix = self._emulated_step(pc)
            if prefix is not None:
                self._gdb_call(client.resume, prefix=extra + prefix)  # type: ignore[union-attr]
            else:
                if extra:
                    self._gdb_call(client.transact_ok, extra)  # type: ignore[union-attr]
                self._gdb_call(client.step_over_breakpoint, pc, 2, self.timeout)  # type: ignore[union-attr]
        else:
            self._gdb_call(client.resume, prefix=extra)  # type: ignore[union-attr]
        self._halted_pc = None
        self._halted_regs = None
        self._halted_watch = None
        self._stop_reads.clear()
        if self._background:
            self._run_background()

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

    _barrier_bp: int | None = None

    def _emulated_step(self, pc: int) -> list[bytes] | None:
        """Requests that perform the instruction at ``pc`` on the host (see thumb_emulate), or None
        when it must be stepped. A POP takes the words at SP from what a callback read during this
        stop, else reads them."""
        if not self.emulate_entry or self._halted_regs is None:
            return None
        insn = thumb_emulate.decode(self._code(pc))
        regs = self._halted_regs
        if self._p_ok is None:  # probe 'P' once, writing pc with its own value
            self._p_ok = self._gdb_call(self.client.transact, b"Pf=" + struct.pack("<I", pc).hex().encode()) == b"OK"  # type: ignore[union-attr]
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
        """The 4 bytes of code at ``pc``, read once (every hit of a breakpoint or watched store decodes them)."""
        code = self._code_cache.get(pc)
        if code is None:
            code = self._code_cache[pc] = self._gdb_call(self.client.read_memory, pc, 4)  # type: ignore[union-attr]
        return code

    def _stop_read(self, address: int, size: int) -> bytes:
        """``size`` bytes at ``address`` from the reads made during this stop, else from the target."""
        for start, data in self._stop_reads:
            off = address - start
            if 0 <= off and off + size <= len(data):
                return data[off : off + size]
        return self._gdb_call(self.client.read_memory, address, size)  # type: ignore[union-attr]

    def _wait(self, wall_timeout: float) -> tuple[StopReply, dict[str, int] | None]:
        stop = self._gdb_call(self.client.wait_stop, wall_timeout)  # type: ignore[union-attr]
        if stop.exited:
            err = self._died(f"the target exited (stop reply {stop.kind}, status {stop.exit_status or stop.signal})")
            self._cleanup(EngineState.FAILED)
            raise err
        regs = decode_g(self._gdb_call(self.client.read_registers_raw))  # type: ignore[union-attr]
        self._halted_pc = regs["pc"]
        self._halted_regs = regs
        watched = stop.info.get("watch")
        self._halted_watch = int(watched, 16) if watched else None
        if self._background_error is not None:
            err, self._background_error = self._background_error, None
            raise err
        return stop, regs

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

    def _run_loop(self, until: Callable[[StopReply, dict[str, int]], bool], wall_timeout: float,
                  watch: re.Pattern[str] | None = None) -> StopReply:
        """Continue, dispatching breakpoint hits, until ``until(stop, regs)`` is true. With ``watch``, a console
        match that arrived while the target was halted (the reader's interrupt then had nothing to stop)
        interrupts it right after the resume."""
        deadline = time.monotonic() + wall_timeout
        while True:
            self._resume()
            if watch is not None and self.console.search(watch, consume=False):
                self.client.interrupt()  # type: ignore[union-attr]
            stop, regs = self._wait(max(deadline - time.monotonic(), 0.01))
            finished = until(stop, regs)
            # a stop on a user breakpoint is a hit whatever else ended the run (console match, interrupt):
            # the next resume steps over the instruction, so a hit not dispatched now would be lost
            self._dispatch(regs)
            if finished:
                return stop

    def _run_to(self, address: int) -> None:
        """Run to ``address`` once (boot to main) with a temporary breakpoint."""
        temp = address not in self._breakpoints
        if temp:
            self._gdb_call(self.client.insert_breakpoint, address)  # type: ignore[union-attr]
        try:
            self._run_loop(lambda stop, regs: regs["pc"] == address, self.run_timeout)
        finally:
            if temp and self.client is not None:
                self._gdb_call(self.client.remove_breakpoint, address)

    def run_for(self, seconds: float) -> None:
        self.check_running()
        if seconds < 0:
            raise EngineError(f"cannot run for {seconds} s", hint="durations must be zero or positive")
        self._run_for(seconds, watch=None)

    def _run_for(self, seconds: float, watch: re.Pattern[str] | None) -> bool:
        """Run ``seconds`` of virtual time; with ``watch``, stop early when the console matches.
        Returns True when stopped by the console."""
        ms = round(seconds * 1000)
        wall = self.run_timeout + (0.0 if self.accelerate else seconds)
        if watch is not None and self.console.search(watch, consume=False):
            return True
        if ms <= 0:
            return False
        if self._has_barrier():
            return self._run_barrier(ms, watch, wall)
        if self.firmware and self.firmware.address(UPTIME_SYMBOL) is not None:
            return self._run_polling(ms, watch, wall)
        return self._run_wall(seconds, watch, wall)

    def _run_barrier(self, ms: int, watch, wall: float) -> bool:
        """Run to the time barrier. The firmware contract resets ``g_memhil_barrier_ms`` to NO_BARRIER just
        before it calls ``memhil_time_barrier``: a write watchpoint on that word stops it there. QEMU 7.2's
        gdbstub flushes the whole translation cache on every breakpoint stop but not on a watchpoint stop,
        so the code after the stop is not retranslated. The first run sets both the watchpoint and the
        breakpoint: a firmware whose breakpoint is reached without the write (or a stub without
        watchpoints) keeps the breakpoint from then on."""
        self._arm_watch(watch)
        try:
            # the awaited text may have come after the caller's check but before the watch was armed:
            # the reader would then never interrupt, and the run would go on to the timeout barrier
            if watch is not None and self.console.search(watch, consume=False):
                return True
            target = self._read_u64(UPTIME_SYMBOL) + ms
            return self._run_to_barrier(target, watch, wall)
        finally:
            self._arm_watch(None)

    def _run_to_barrier(self, target: int, watch, wall: float) -> bool:
        barrier_pc = self.firmware.symbols[BARRIER_FUNCTION]  # type: ignore[union-attr]
        var = self.firmware.symbols[BARRIER_SYMBOL]  # type: ignore[union-attr]
        set_watch, unset_watch = b"Z2,%x,4" % var, b"z2,%x,4" % var
        if self._watch_ok is None:  # probe: does the stub take a write watchpoint?
            if self._gdb_call(self.client.transact, set_watch) != b"OK":  # type: ignore[union-attr]
                self._watch_ok = False
        watchpoint = self._watch_ok is not False
        breakpoint = self._watch_ok is not True
        self._barrier_watch = (var, 4) if watchpoint else None
        if watchpoint and self._watch_ok:
            self._resume_prefix.append(set_watch)  # sent with the continue, in one write
        self._resume_prefix.insert(0, b"M%x,8:" % var + struct.pack("<Q", target).hex().encode())
        if breakpoint:
            if barrier_pc not in self._breakpoints:
                self._gdb_call(self.client.insert_breakpoint, barrier_pc)  # type: ignore[union-attr]
            self._barrier_bp = barrier_pc
        by_console = False

        def done(stop: StopReply, regs: dict[str, int]) -> bool:
            nonlocal by_console
            if stop.signal == SIGINT and watch is not None:
                by_console = True
                return True
            watched = watchpoint and self._halted_watch is not None and var <= self._halted_watch < var + 4
            if (watched or breakpoint and regs["pc"] == barrier_pc) and self._read_u64(UPTIME_SYMBOL) >= target:
                if self._watch_ok is None:
                    self._watch_ok = watched
                    log.debug("time barrier by %s", "write watchpoint" if watched else "breakpoint (no barrier reset seen)")
                return True
            if watch is not None and self.console.search(watch, consume=False):
                by_console = True
                return True
            return False

        try:
            self._run_loop(done, wall, watch)
        finally:
            self._resume_prefix.clear()
            if self.state is EngineState.RUNNING:
                requests = [b"M%x,8:" % var + struct.pack("<Q", NO_BARRIER).hex().encode()]
                if watchpoint:
                    requests.insert(0, unset_watch)
                    if self._halted_watch is not None:
                        requests += self._leave_store()
                        self._halted_watch = None
                if breakpoint:
                    if barrier_pc not in self._breakpoints:
                        requests.append(b"z0,%x,2" % barrier_pc)
                    self._barrier_bp = None
                self._gdb_call(self.client.transact_ok, requests, "leaving the time barrier")  # type: ignore[union-attr]
            self._barrier_watch = None
        return by_console

    def _leave_store(self) -> list[bytes]:
        """Halted on a write watchpoint, QEMU has not made the store yet: requests that make it from the host
        and move PC past it (see thumb_emulate.decode_store). Another kind of store is stepped now, with the
        watchpoints on its address lifted for the step (a flush, but rare)."""
        pc, regs, hit = self._halted_pc, self._halted_regs, self._halted_watch
        assert pc is not None and regs is not None and hit is not None
        store = thumb_emulate.decode_store(self._code(pc))
        if store is not None and not thumb_emulate.in_it_block(regs.get("xpsr", 0)):
            effect = thumb_emulate.perform_store(store, [regs[name] for name in CORE_REGS[:16]], pc)
            new_pc, out = effect.registers[15], _effect_requests(effect)
        else:
            keys = [key for key in self._watched() if key[0] <= hit < key[0] + key[1]]
            self._gdb_call(self.client.transact_ok, [b"z2,%x,%x" % k for k in keys], "lifting a watchpoint to step its store")  # type: ignore[union-attr]
            self._gdb_call(self.client.step, self.timeout)  # type: ignore[union-attr]
            self._gdb_call(self.client.transact_ok, [b"Z2,%x,%x" % k for k in keys], "re-inserting a watchpoint after its store")  # type: ignore[union-attr]
            new_pc = decode_g(self._gdb_call(self.client.read_registers_raw))["pc"]  # type: ignore[union-attr]
            out = []
        self._halted_pc = new_pc
        regs["pc"] = new_pc
        return out

    def _watched(self) -> list[tuple[int, int]]:
        """Every inserted write watchpoint as (address, size): the user's, and the barrier's own during a barrier run."""
        return list(self._watchpoints) + ([self._barrier_watch] if self._barrier_watch else [])

    def _run_sliced(self, reached: Callable[[], bool], watch, wall: float, slice_s: float = 0.02) -> bool:
        deadline = time.monotonic() + wall
        self._arm_watch(watch)
        try:
            while True:
                if watch is not None and self.console.search(watch, consume=False):
                    return True  # matched before the watch was armed, or between slices
                self._resume()
                timer = threading.Timer(slice_s, self.client.interrupt)  # type: ignore[union-attr]
                timer.start()
                try:
                    stop, regs = self._wait(max(deadline - time.monotonic(), 0.01))
                finally:
                    timer.cancel()
                self._dispatch(regs)  # a no-op unless stopped on a user breakpoint (also when interrupted there)
                if watch is not None and self.console.search(watch, consume=False):
                    return True
                if reached():
                    return False
        finally:
            self._arm_watch(None)

    def _run_polling(self, ms: int, watch, wall: float) -> bool:
        target = self._read_u64(UPTIME_SYMBOL) + ms
        return self._run_sliced(lambda: self._read_u64(UPTIME_SYMBOL) >= target, watch, wall)

    def _run_wall(self, seconds: float, watch, wall: float) -> bool:
        end = self._wall_run + seconds
        started = [time.monotonic()]

        def reached() -> bool:
            now = time.monotonic()
            self._wall_run += now - started[0]
            started[0] = now
            return self._wall_run >= end

        return self._run_sliced(reached, watch, wall)

    def virtual_time(self) -> float:
        self.check_running()
        if self.firmware and self.firmware.address(UPTIME_SYMBOL) is not None:
            return self._read_u64(UPTIME_SYMBOL) / 1000.0
        return self._wall_run

    # -- console ---------------------------------------------------------------------------
    def console_write(self, data: bytes | str) -> None:
        self.check_running()
        self._console.write(data.encode() if isinstance(data, str) else bytes(data))  # type: ignore[union-attr]

    def _arm_watch(self, regex: re.Pattern[str] | None) -> None:
        with self._watch_lock:
            self._watch = regex

    def _on_console(self) -> None:
        """Reader thread: interrupt the target as soon as the awaited line is in the log."""
        with self._watch_lock:
            regex = self._watch
            if regex is not None and self.client is not None and self.console.search(regex, consume=False):
                self._watch = None
                self.client.interrupt()

    def _run_until_console(self, regex: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        self.check_running()
        self._run_for(timeout, watch=regex)  # a reader still catching up is waited for by wait_for_text
        return self.console.search(regex)
