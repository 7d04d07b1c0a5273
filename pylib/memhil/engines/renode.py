"""The Renode engine: Renode 1.15.x or 1.16.x driven through its monitor, with no network listener.

Renode cannot be installed on memhil's build machines. Its behaviour was read in its source instead
(``../shared/reference/renode-source.md``, "row N" below), and this engine is tested against a fake
(``tests/engines/fake_renode.py``) that models those lines, for 1.15.3 and 1.16.1. ``memhil doctor --engine
renode`` checks the engine against a real Renode on a machine that has one.

How it works
  * control (:mod:`memhil.engines.renode_shell`): ``renode --disable-gui --console --plain --config
    <run>/renode.config`` with its console on pipes, or pyrenode3 in-process (``backend="auto"`` tries pyrenode3
    first and falls back to the ``renode`` program, logging why). No port is opened. ``monitor_port=`` attaches to
    a Renode the user started with ``--port`` (that port is open to the network: Renode binds every interface).
    The per-run config gives the shell its own history file (``history-path``), which it rewrites after every
    command (row 27), so parallel runs share nothing.
  * start: the version from the banner (or ``version``), refused outside 1.15.x-1.16.x; ``numbersMode
    Hexadecimal``; ``mach create``, ``machine LoadPlatformDescription``, ``sysbus LoadELF``, ``machine
    SetAdvanceImmediately`` (acceleration, row 12), the console UART on a PTY (``emulation CreateUartPtyTerminal``
    + ``connector Connect``, rows 13-14; a PTY is a local file, not a socket).
  * time: ``emulation RunFor`` blocks until the whole period has passed (``MasterTimeSource.cs``:53-72, row 15):
    exact in virtual time (to the microsecond of the time string), no barrier needed. Long runs are cut in slices
    of at most ``max_slice`` virtual seconds; at each slice end, with the emulation paused, the console PTY is
    read without waiting, hook records are handed to their callbacks, and the slice-end work runs: trace capture
    and patched hooks drain their RAM ring there (:attr:`~memhil.engines.base.Capability.SLICE_END`,
    :meth:`add_slice_end`), with no breakpoint on their doorbell.
  * slice length: a firmware that finds its ring full waits, spinning until the slice ends (nothing is lost, but
    its allocator calls are late in virtual time). So the slices follow the rings: a slice end that finds a ring
    more than half full halves the next slices (down to 10 us), a full-length slice that leaves every ring under
    a quarter full doubles them (up to ``max_slice``). ``run_for`` stays exact: the slices add up to what was
    asked, to the microsecond. The capture counts in its ``stats`` the slice ends that found its ring full
    (``found_full``); the engine's :attr:`slice_stats` how often the slice was halved and doubled.
  * hooks (:mod:`memhil.engines.renode_hooks`): ``cpu AddHook`` bodies that capture registers and memory windows
    at the hit into fixed-size records; a hook cannot pause RunFor (row 16). A body that fails is only logged by
    Renode ("Python runtime error", row 17): the engine raises it at the slice end when it reads Renode's log,
    which it does over the console pipe; attached or in-process, the log is not memhil's to read.
  * faults: hooks at the fault handlers of the vector table record the exception; the run raises
    :class:`~memhil.errors.TargetFault` at the slice end.
  * console input: ``sysbus.<uart> WriteChar`` per byte while the emulation is paused: the firmware sees the bytes
    from the virtual time of that halt on, whatever the host's load.
  * memory: ``sysbus ReadBytes`` (row 21), ``sysbus WriteDoubleWord``/``WriteByte`` (row 22) while paused;
    registers with ``cpu GetRegister N`` (row 23: ``GetRegisterUnsafe`` logs a warning per call).
  * the GDB server is never started (it binds every interface, row 2).

Wall clock: nothing the firmware sees depends on it. The host waits (wall time) only for the monitor's reply to
each command, bounded by ``timeout`` to detect a hung Renode; console output is read without waiting at each
slice end, and the slice schedule of a console wait is fixed. Not confirmed in renode-source.md, so to check on a
real Renode (``memhil doctor``): that the UART hands each byte to the PTY on the CPU thread (the write path above
is read in ``UartPtyTerminal.cs`` and AntShell, the UART side is not), the ``version`` and ``echo`` commands, the
``--plain`` log line format, and ``WriteChar`` on the UART.

Rings: the fake runs no firmware code. It writes the records the firmware's trace writer and memhil's patched
wrappers would write and waits on a full ring as they do, so the tests verify the slice-end draining, the slice
sizing, and the patch written (``WriteDoubleWord``/``WriteByte``) and taken out through the monitor; that the
wrappers' Thumb code runs on Renode's CPU as on QEMU's is not verified here.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Callable

from memhil import contract
from memhil.engines import faults
from memhil.engines.base import CORE_REGS, Breakpoint, BreakpointCallback, BreakpointTable, Capability, ConsoleLog, Engine, EngineState, EngineStop
from memhil.engines.firmware import FirmwareInfo
from memhil.engines.process import find_program
from memhil.engines.renode_hooks import HookRecord, RecordReader, Window, hook_body
from memhil.engines.renode_monitor import check_version, ident, int_arg, parse_bytes, parse_int, parse_time, parse_version, path_arg, time_arg
from memhil.engines.renode_shell import PipeShell, PyRenodeShell, Shell, TelnetShell
from memhil.errors import EngineError, ProtocolError, TargetFault

log = logging.getLogger("memhil.engines.renode")

RENODE_PACKAGE = "renode (from renode.io; not in Debian)"
#: what a breakpoint hook captures unless told otherwise: 512 bytes of stack, 64 bytes either side of R0 and R1
#: (an allocator's pointer argument or result, and its node header)
DEFAULT_CAPTURE = (Window("sp", 0, 512), Window("r0", -64, 128), Window("r1", -64, 128))
FAULT_CAPTURE = (Window("sp", 0, 512), Window(None, faults.FAULT_REGS, 20), Window(None, 0xE000ED04, 4))  # + ICSR
#: the shortest RunFor slice the engine cuts when a ring fills fast (microseconds; RunFor's resolution is 1 us)
MIN_SLICE_US = 10
#: how Renode logs a hook body that failed (PythonEngine.cs:65-83; row 17): the CPU goes on, the record is lost
_HOOK_ERROR = re.compile(r"Python runtime error")


def renode_config(workdir: Path) -> Path:
    """The run's own Renode config (INI, ``ConfigurationManager.cs``; row 27): history in the run directory."""
    path = workdir / "renode.config"
    history = workdir / "renode.history"
    path.write_text(f"[general]\nhistory-path={history}\n")
    return path


class RenodeEngine(Engine):
    """Engine on Renode. ``renode_binary``: the program to start; ``backend``: ``"auto"`` (pyrenode3 when it loads
    Renode, else the program), ``"binary"`` or ``"pyrenode3"``; ``monitor_port``: attach to a Renode the user
    started with ``--port`` on this machine instead; ``max_slice``: virtual seconds per RunFor between slice ends."""

    name = "renode"

    def __init__(self, *, renode_binary: str = "renode", monitor_port: int | None = None, timeout: float = 60.0,
                 machine: str = "memhil", backend: str = "auto", max_slice: float = 0.1, catch_faults: bool = True,
                 tick_symbol: str | None = None, tick_hz: int | None = None, tick_stop: bool = True) -> None:
        # tick_symbol/tick_hz/tick_stop time a firmware without memhil's barrier on QEMU; RunFor is exact in virtual
        # time on any firmware, so Renode accepts them (one suite, either engine) and needs none
        super().__init__()
        if backend == "telnet":  # the name of the old pipe-less backend: the program, now over a pipe
            backend = "binary"
        if backend not in ("auto", "binary", "pyrenode3"):
            raise EngineError(f"unknown Renode backend {backend!r}", hint="use 'auto', 'binary' or 'pyrenode3'")
        if not max_slice > 0:
            raise EngineError(f"max_slice={max_slice!r} must be positive", hint="give virtual seconds, e.g. 0.1")
        self.backend = backend
        self.renode_binary = renode_binary
        self.monitor_port = monitor_port
        self.timeout = timeout
        self._max_slice_us = max(MIN_SLICE_US, round(max_slice * 1_000_000))
        #: the length of the next RunFor slices in microseconds: ``max_slice`` until a ring drained at a slice end
        #: asks for shorter ones (:meth:`_fit_slice`)
        self.slice_us = self._max_slice_us
        #: how the slice length moved: times it was halved and doubled, the shortest it reached (microseconds)
        self.slice_stats = {"shrunk": 0, "grown": 0, "shortest_us": self.slice_us}
        self.catch_faults = catch_faults
        self.machine = ident(machine)
        self.monitor: Shell | None = None
        self.firmware: FirmwareInfo | None = None
        self._uptime: int | None = None  # address of the firmware's uptime (contract.UPTIME_SYMBOL), if it has one
        self.platform = None
        self.workdir: Path | None = None
        self.accelerate = True
        #: the last fault the target took
        self.fault: TargetFault | None = None
        self._breakpoints = BreakpointTable()
        self._captures: dict[int, tuple[Window, ...]] = {}
        self._fault_hooks: dict[int, int] = {}  # bp id -> handler address
        self._fault_numbers: dict[int, tuple[int, ...]] = {}  # handler address -> exception numbers
        self._records: RecordReader | None = None
        self._slice_end: list[Callable[[], float | None]] = []
        self._console_fd: int | None = None
        self._uart: str | None = None
        self._time_origin = 0.0
        self._stop_time: float | None = None  # virtual time of the hit whose callback runs
        self._log_file = None
        self.hook_errors: list[str] = []

    @property
    def process(self):
        """The Renode program this engine started (a :class:`~memhil.engines.process.ChildProcess`), else None."""
        return self.monitor.process if isinstance(self.monitor, PipeShell) else None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, platform, elf: Path, *, accelerate: bool = True, workdir: Path | None = None) -> None:
        from memhil.platform import Platform

        if self.state is EngineState.RUNNING:
            raise EngineError("the renode engine is already running", hint="stop() it first")
        platform = platform if isinstance(platform, Platform) else Platform.load(platform)
        firmware = FirmwareInfo.load(elf)
        platform.check_segments(firmware.segments, elf=str(firmware.path))
        self.platform, self.firmware, self.accelerate = platform, firmware, accelerate
        self._uptime = firmware.address(contract.UPTIME_SYMBOL)
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="memhil-renode-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.console.close()
        self.console = ConsoleLog(self.workdir / "console.log")
        self._log_file = open(self.workdir / "renode.log", "a")
        self.fault = None
        self.hook_errors = []
        try:
            self.monitor = self._connect()
            self.state = EngineState.RUNNING
            self._check_version()
            self.execute("numbersMode Hexadecimal")
            self._setup_machine()
        except BaseException:
            self._cleanup(EngineState.FAILED)
            raise
        self.capabilities = Capability.BREAKPOINTS | Capability.MEMORY_WRITE | Capability.EXACT_RUN_FOR | Capability.SLICE_END
        if accelerate:
            self.capabilities |= Capability.ACCELERATION

    def _connect(self):
        assert self.workdir
        if self.monitor_port is not None:
            return TelnetShell.attach("127.0.0.1", self.monitor_port, timeout=self.timeout, on_log=self._on_log)
        if self.backend in ("auto", "pyrenode3"):
            if self.backend == "pyrenode3" or importlib.util.find_spec("pyrenode3") is not None:
                try:
                    return PyRenodeShell(on_log=self._on_log)
                except EngineError as exc:
                    if self.backend == "pyrenode3":
                        raise
                    log.warning("pyrenode3 is installed but could not load Renode (%s); using the %s program instead",
                                exc.message, self.renode_binary)
        binary = find_program(self.renode_binary, RENODE_PACKAGE)
        argv = [binary, "--disable-gui", "--console", "--plain", "--config", str(renode_config(self.workdir))]
        return PipeShell(argv, workdir=self.workdir, timeout=self.timeout, on_log=self._on_log)

    def _check_version(self) -> None:
        banner = self.monitor.banner  # type: ignore[union-attr]
        version = parse_version(banner)
        if version is None:
            banner = self.execute("version")
            version = parse_version(banner)
        self.version = ".".join(map(str, check_version(version, banner)))

    def _on_log(self, line: str) -> None:
        if self._log_file is not None:
            self._log_file.write(line + "\n")
            self._log_file.flush()
        if _HOOK_ERROR.search(line):
            self.hook_errors.append(line)

    def _setup_machine(self) -> None:
        assert self.platform and self.firmware and self.workdir
        self.execute(f'mach create "{self.machine}"')
        self.execute(f"machine LoadPlatformDescription {path_arg(self.platform.repl)}")
        self.execute(f"sysbus LoadELF {path_arg(self.firmware.path)}")
        self.execute(f"machine SetAdvanceImmediately {'true' if self.accelerate else 'false'}")
        pty = Path(path_arg(self.workdir)[1:]) / "console.pty"  # not resolved: a PTY link left by an earlier run
        self.execute(f'emulation CreateUartPtyTerminal "memhil_console" "{pty}" true')  # forceCreate replaces it
        self._uart = ident(self.platform.console.name)
        self.execute(f"connector Connect sysbus.{self._uart} memhil_console")
        self._open_console(pty)
        self._records = RecordReader(self.workdir / "hooks.rec")
        self._time_origin = 0.0
        if self.catch_faults:
            self._add_fault_hooks()

    def _open_console(self, pty: Path) -> None:
        """Open the PTY Renode linked at ``pty`` (``UartPtyTerminal.cs``:91-118; raw, row 13), non-blocking."""
        import termios
        import tty

        if not pty.exists():
            raise EngineError(f"Renode did not create the console PTY {pty}", hint="see renode.log in the run directory")
        fd = os.open(str(pty), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            tty.setraw(fd, termios.TCSANOW)
        except termios.error:
            pass
        self._console_fd = fd

    def _settle_console(self) -> None:
        """Take in what the firmware wrote, without waiting (every slice end, and :meth:`Engine.wait_for_text`):
        Renode writes each UART byte to the PTY on the CPU thread (``UartPtyTerminal.WriteChar`` -> AntShell
        ``StreamIOSource.Write`` -> ``PtyUnixStream.WriteByte``), so at a halt it is all in the PTY already."""
        fd = self._console_fd
        while fd is not None:
            try:
                data = os.read(fd, 65536)
            except OSError:  # BlockingIOError: nothing more; EIO: the PTY's other side closed
                return
            if not data:
                return
            self.console.feed(data)

    def execute(self, command: str, *, timeout: float | None = None) -> str:
        """Run one monitor command (built from validated values); failures carry Renode's output."""
        if self.monitor is None:
            raise EngineError("the renode engine is not connected", hint="call start() first")
        try:
            return self.monitor.execute(command, timeout=timeout)
        except ProtocolError as exc:
            err = self._failure(f"Renode stopped answering ({exc.message})")
            self._cleanup(EngineState.FAILED)
            raise err from exc

    def _failure(self, what: str) -> EngineError:
        process = self.process
        tail = process.stderr_tail() if process is not None else ""
        status = process.poll() if process is not None else None
        log_tail = ""
        if self.workdir is not None and (self.workdir / "renode.log").exists():
            log_tail = "\n".join((self.workdir / "renode.log").read_text(errors="replace").splitlines()[-10:])
        return EngineError(what, hint="see renode.log and renode.stderr in the run directory", exit_status=status,
                           tail=(log_tail + "\n" + tail).strip() or None, console_tail=self.console.tail(10))

    def stop(self) -> None:
        if self.state is EngineState.RUNNING:
            self._cleanup(EngineState.STOPPED)

    def _cleanup(self, state: EngineState) -> None:
        shell, self.monitor = self.monitor, None
        if isinstance(shell, PipeShell) and state is not EngineState.FAILED:
            shell.quit()
        elif shell is not None:
            shell.close()
        if self._console_fd is not None:
            try:
                os.close(self._console_fd)
            except OSError:
                pass
            self._console_fd = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self.console.close()
        self.state = state

    def reset(self) -> None:
        """``machine Reset`` and reload the ELF (row 25); Renode's clock keeps counting, so the machine time at
        reset becomes the new origin of virtual_time(). Hooks survive a reset; the reset hooks run before and
        after it (a patched-hook capture drains its ring, then patches the reloaded flash again)."""
        self.check_running()
        self._run_reset_hooks("before")
        self.execute("machine Reset")
        self.execute(f"sysbus LoadELF {path_arg(self.firmware.path)}")  # type: ignore[union-attr]
        self._time_origin = self._machine_time()
        self.fault = None
        self._run_reset_hooks("after")

    def set_acceleration(self, enabled: bool) -> None:
        self.accelerate = enabled
        if self.state is EngineState.RUNNING:
            self.execute(f"machine SetAdvanceImmediately {'true' if enabled else 'false'}")
            if enabled:
                self.capabilities |= Capability.ACCELERATION
            else:
                self.capabilities &= ~Capability.ACCELERATION

    # -- time ------------------------------------------------------------------------------
    def _machine_time(self) -> float:
        return parse_time(self.execute("machine GetTimeSourceInfo"))

    @property
    def time_source(self) -> str:
        return "Renode's virtual clock (emulation RunFor, exact to the microsecond)"

    def virtual_time(self) -> float:
        self.check_running()
        if self._stop_time is not None:
            return self._stop_time
        if self._uptime is not None:
            return int.from_bytes(self.read_memory(self._uptime, 8), "little") / 1000.0
        return self._machine_time() - self._time_origin

    def run_for(self, seconds: float) -> None:
        self.check_running()
        time_arg(seconds)  # validates
        self._run_for(seconds, None)

    def _run_for(self, seconds: float, watch: re.Pattern[str] | None) -> bool:
        """Run ``seconds`` of virtual time in slices of at most ``max_slice``; with ``watch``, end at the first
        slice end where the console matches. Returns True when ended by the console."""
        if self.fault is not None:
            raise self.fault
        self._halt_work()
        if watch is not None and self.console.search(watch, consume=False):
            return True
        remaining = round(seconds * 1_000_000)
        step = self.slice_us
        if watch is not None:
            step = min(step, 1000)  # console waits start with 1 ms slices and double up to the slice length
        while remaining > 0:
            chunk = min(step, remaining)
            wall = self.timeout + (0 if self.accelerate else chunk / 1e6)
            self.execute(f"emulation RunFor {time_arg(chunk / 1e6)}", timeout=wall)
            remaining -= chunk
            self._fit_slice(chunk, self._halt_work())
            if watch is not None:
                if self.console.search(watch, consume=False):
                    return True
                step = min(step * 2, self.slice_us)
            else:
                step = self.slice_us
        return False

    def _fit_slice(self, ran_us: int, fill: float | None) -> None:
        """Size the next slices against the rings drained at slice ends (see :meth:`add_slice_end`): a slice of
        ``ran_us`` after which a ring was more than half full halves them (not below :data:`MIN_SLICE_US`); a
        full-length slice after which every ring was under a quarter full doubles them (up to ``max_slice``).
        Between the two thresholds a steady event rate keeps its slice length: halving from above 1/2 leaves the
        fill above 1/4, doubling from below 1/4 leaves it below 1/2."""
        if fill is None:
            return
        if fill > 0.5:
            self.slice_us = max(MIN_SLICE_US, min(self.slice_us, ran_us) // 2)
            self.slice_stats["shrunk"] += 1
            self.slice_stats["shortest_us"] = min(self.slice_stats["shortest_us"], self.slice_us)
        elif fill < 0.25 and ran_us >= self.slice_us and self.slice_us < self._max_slice_us:
            self.slice_us = min(self._max_slice_us, self.slice_us * 2)
            self.slice_stats["grown"] += 1

    def _halt_work(self) -> float | None:
        """At a slice end (emulation paused): the console, the hook records, faults, then the slice-end work.
        Returns the fullest ring the work reported (a fraction), None when none reported one."""
        self._settle_console()
        records = self._records.read(self._captures.get) if self._records is not None else []
        if self.hook_errors:
            errors, self.hook_errors = self.hook_errors, []
            raise EngineError("a Renode hook failed: " + errors[0], hint="see renode.log in the run directory", errors=len(errors))
        for record in records:
            self._dispatch(record)
        fill: float | None = None
        for work in list(self._slice_end):
            got = work()
            if got is not None:
                fill = got if fill is None else max(fill, got)
        return fill

    def _dispatch(self, record: HookRecord) -> None:
        handler = self._fault_hooks.get(record.bp_id)
        if handler is not None:
            self._fault(record)
            return
        # add_breakpoint adds the uptime to every hook's windows: the callback's virtual time is the hit's
        self._stop_time = int.from_bytes(record.read(self._uptime, 8), "little") / 1000.0 if self._uptime is not None else None
        try:
            for bp in list(self._breakpoints.get(record.pc & ~1, ())):
                if bp.id == record.bp_id:
                    bp.callback(RecordStop(self, record))
        finally:
            self._stop_time = None

    def _fault(self, record: HookRecord) -> None:
        regs = dict(record.regs)
        icsr = int.from_bytes(record.read(0xE000ED04, 4), "little")
        numbers = self._fault_numbers.get(record.pc & ~1, ())
        regs["xpsr"] = numbers[0] if len(numbers) == 1 else icsr & 0x1FF
        fault = faults.explain(regs, record.read, self.firmware.path, engine=f"renode {self.version}")  # type: ignore[union-attr]
        if fault is not None:
            self.fault = fault
            raise fault

    def _add_fault_hooks(self) -> None:
        """A hook at each fault handler of the vector table (at the ELF's lowest load address)."""
        base = min((s.vaddr for s in self.firmware.segments if s.memsz), default=None)  # type: ignore[union-attr]
        if base is None:
            return
        self._fault_numbers = faults.fault_handlers(self.read_memory(base, 4 * 7))
        for address in self._fault_numbers:
            bp_id = self._breakpoints.next_id()
            self._fault_hooks[bp_id] = address
            self._install_hook(address, bp_id, FAULT_CAPTURE)


    # -- work at slice ends ----------------------------------------------------------------
    def add_slice_end(self, work: Callable[[], float | None]) -> None:
        """Call ``work()`` at every RunFor slice end, with the emulation paused (it may read and write the target):
        how a trace ring or a patched-hook ring is drained on Renode (:attr:`Capability.SLICE_END`), where nothing
        can stop the firmware mid-run. Also once before each run.

        ``work`` returns the fraction of its ring it found filled (records held / capacity), or None; the engine
        sizes the next slices from the fullest (:meth:`_fit_slice`), so that a firmware at a steady event rate
        does not find its ring full and wait for the slice end."""
        self._slice_end.append(work)

    def remove_slice_end(self, work: Callable[[], float | None]) -> None:
        try:
            self._slice_end.remove(work)
        except ValueError:
            raise EngineError("this slice-end work was not added (or was removed already)", hint="remove what add_slice_end added, once") from None

    # -- memory and registers --------------------------------------------------------------
    def read_memory(self, address: int, size: int) -> bytes:
        self.check_running()
        if size <= 0:
            return b""
        out = bytearray()
        for off in range(0, size, 4096):
            n = min(4096, size - off)
            out += parse_bytes(self.execute(f"sysbus ReadBytes {int_arg(address + off)} {n}"), n)
        return bytes(out)

    def write_memory(self, address: int, data: bytes) -> None:
        """Write while the emulation is paused (between RunFor slices): words with ``WriteDoubleWord``, the
        unaligned ends with ``WriteByte`` (row 22). The firmware sees the bytes when the next slice starts."""
        self.check_running()
        data = bytes(data)
        i = 0
        while i < len(data):
            if (address + i) % 4 == 0 and len(data) - i >= 4:
                word = int.from_bytes(data[i : i + 4], "little")
                self.execute(f"sysbus WriteDoubleWord {int_arg(address + i)} {int_arg(word)}")
                i += 4
            else:
                self.execute(f"sysbus WriteByte {int_arg(address + i)} {int_arg(data[i])}")
                i += 1

    def read_registers(self) -> dict[str, int]:
        """r0-r15 with ``cpu GetRegister N`` (``RegisterValue`` prints ``0x<hex>``; R13-R15 = SP, LR, PC; row 23)."""
        self.check_running()
        return {name: parse_int(self.execute(f"cpu GetRegister {n}")) for n, name in enumerate(CORE_REGS[:16])}

    # -- hooks ---------------------------------------------------------------------------------
    def add_breakpoint(self, address: int, callback: BreakpointCallback, *, capture: tuple[Window, ...] | None = None) -> Breakpoint:
        """A hook at ``address``; its callback runs at the end of the RunFor slice the hit happened in, with the
        registers and the memory ``capture`` windows (default :data:`DEFAULT_CAPTURE`, plus the firmware's uptime)
        as they were at the hit."""
        self.check_running()
        windows = tuple(capture if capture is not None else DEFAULT_CAPTURE)
        if self._uptime is not None:
            windows += (Window(None, self._uptime, 8),)
        return self._breakpoints.new(address, callback, lambda bp, first: self._install_hook(bp.address, bp.id, windows))

    def remove_breakpoint(self, bp: Breakpoint) -> None:
        self.check_running()
        others = self._breakpoints.drop(bp)
        # Renode removes hooks per address (row 20): drop all, re-add the others
        self.execute(f"cpu RemoveHooksAt {int_arg(bp.address)}")
        self._captures.pop(bp.id, None)
        for other in others:
            self._install_hook(other.address, other.id, self._captures[other.id])
        for bp_id, handler in self._fault_hooks.items():
            if handler == bp.address:
                self._install_hook(handler, bp_id, FAULT_CAPTURE)

    def _install_hook(self, address: int, bp_id: int, windows: tuple[Window, ...]) -> None:
        self._captures[bp_id] = windows
        body = hook_body(bp_id, self.workdir / "hooks.rec", windows)  # type: ignore[operator]
        self.execute(f'cpu AddHook {int_arg(address)} "{body}"')

    # -- console ---------------------------------------------------------------------------
    def _run_until_console(self, regex: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        """Run in slices (1 ms, doubling up to ``max_slice``) until the console matches at a slice end. Each slice
        end reads the PTY without waiting; the slice schedule is fixed, so the wait ends at the same virtual time
        on every host."""
        self.check_running()
        self._run_for(timeout, regex)
        return self.console.search(regex)

    def console_write(self, data: bytes | str) -> None:
        """Hand the bytes to the console UART with ``sysbus.<uart> WriteChar`` while the emulation is paused: the
        firmware receives them from the virtual time of this halt on."""
        self.check_running()
        for byte in data.encode() if isinstance(data, str) else bytes(data):
            self.execute(f"sysbus.{self._uart} WriteChar {int_arg(byte)}")


class RecordStop(EngineStop):
    """What a callback of a Renode hook sees: registers and memory as the hook captured them at the hit."""

    def __init__(self, engine: RenodeEngine, record: HookRecord) -> None:
        super().__init__(engine, dict(record.regs), complete=True)
        self.record = record

    def read_memory(self, address: int, size: int) -> bytes:
        return self.record.read(address, size)

    def read_memory_many(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        return [self.record.read(a, n) for a, n in ranges]

    def write_memory(self, address: int, data: bytes) -> None:
        raise EngineError("a Renode hook callback runs after its RunFor slice: writing memory then would not act at the hit",
                          hint="write from add_slice_end work or between run_for calls")
