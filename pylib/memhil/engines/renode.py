"""The Renode engine: Renode driven through its monitor.

Renode cannot be installed on memhil's build machines, so this engine is tested
against the protocol only (tests/engines/test_renode.py with a fake monitor that
replies as reference/renode.md documents). What has run against a real Renode: nothing.

How it works
  * start: ``renode --disable-gui --plain --port N`` on a free loopback port, or attach
    to a running monitor with ``monitor_port=``, or -- when ``pyrenode3`` is importable
    (``backend="auto"``/``"pyrenode3"``) -- Renode loaded in-process; then ``mach create``, ``machine
    LoadPlatformDescription @<board>.repl``, ``sysbus LoadELF @<elf>``, ``machine
    SetAdvanceImmediately true`` (acceleration), and the console UART on a PTY
    (``emulation CreateUartPtyTerminal`` + ``connector Connect``) -- a PTY, not a
    socket terminal, so nothing listens on the network. The GDB server is never
    started (it binds every interface).
  * time: ``emulation RunFor "hh:mm:ss.ffffff"``; ``virtual_time()`` reads the
    firmware's ``g_memhil_uptime_ms`` when present (same clock as the QEMU engine),
    else ``machine GetTimeSourceInfo``.
  * hooks (design): ``cpu AddHook <addr> "<python>"``. The IronPython body appends one
    line ``memhil-hook <id> <pc> <r0> <r1> <r2> <r3> <sp> <lr>`` to ``<workdir>/hooks.log``
    and calls ``machine.PauseAndRequestEmulationPause()``; ``RunFor`` then returns early.
    The host reads the new records, runs each callback (the machine is paused: memory
    reads through ``sysbus ReadBytes``), and runs for the time left (taken from
    ``GetTimeSourceInfo``).
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import tempfile
import threading
import time
from pathlib import Path

from memhil.engines.base import CORE_REGS, Breakpoint, BreakpointCallback, BreakpointTable, Capability, ConsoleLog, Engine, EngineState, EngineStop
from memhil.engines.firmware import FirmwareInfo
from memhil.engines.process import ChildProcess, find_program
from memhil.engines.renode_monitor import MonitorClient, PyRenodeMonitor, ident, int_arg, parse_bytes, parse_int, parse_time, path_arg, time_arg
from memhil.errors import EngineError, ProtocolError

RENODE_PACKAGE = "renode (from renode.io; not in Debian)"
UPTIME_SYMBOL = "g_memhil_uptime_ms"
_HOOK_LINE = re.compile(r"^memhil-hook (\d+)((?: -?\d+){7})\s*$")
_REGS_IN_RECORD = ("pc", "r0", "r1", "r2", "r3", "sp", "lr")


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hook_script(bp_id: int, log_path: Path) -> str:
    """The IronPython body of a hook (Python 2 syntax, single quotes only: it sits in a
    double-quoted monitor argument). ``pc`` and ``self`` (the CPU) are given by Renode."""
    target = path_arg(log_path, must_exist=False)[1:]
    regs = ",".join(f"self.GetRegisterUlong({n})" for n in range(4))
    return (
        f"f=open('{target}','a');"
        f"f.write('memhil-hook %d %d %d %d %d %d %d %d\\n' % ({int(bp_id)},pc,{regs},self.GetRegisterUlong(13),self.GetRegisterUlong(14)));"
        "f.close();machine.PauseAndRequestEmulationPause()"
    )


class _PtyReader:
    """Reads the console PTY Renode created into the engine's ConsoleLog."""

    def __init__(self, path: Path, log: ConsoleLog, timeout: float) -> None:
        import termios
        import tty

        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise EngineError(f"Renode did not create the console PTY {path}", hint="check Renode's output")
            time.sleep(0.02)
        self.fd = os.open(str(path), os.O_RDWR | os.O_NOCTTY)
        try:
            tty.setraw(self.fd, termios.TCSANOW)
        except termios.error:
            pass
        self.log = log
        self.closed = False
        self._thread = threading.Thread(target=self._run, name="memhil-renode-console", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import select

        while not self.closed:
            try:
                ready, _, _ = select.select([self.fd], [], [], 0.1)
                if not ready:
                    continue
                data = os.read(self.fd, 65536)
            except (OSError, ValueError):
                return
            if not data:
                return
            self.log.feed(data)

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._thread.join(timeout=1)
            try:
                os.close(self.fd)
            except OSError:
                pass


class RenodeEngine(Engine):
    """Engine on Renode's monitor. ``renode_binary``: program to start; ``monitor_port``:
    attach to a Renode already listening on 127.0.0.1:port instead of starting one."""

    name = "renode"

    def __init__(self, *, renode_binary: str = "renode", monitor_port: int | None = None, timeout: float = 60.0,
                 machine: str = "memhil", backend: str = "auto") -> None:
        super().__init__()
        if backend not in ("auto", "telnet", "pyrenode3"):
            raise EngineError(f"unknown Renode backend {backend!r}", hint="use 'auto', 'telnet' or 'pyrenode3'")
        self.backend = backend
        self.renode_binary = renode_binary
        self.monitor_port = monitor_port
        self.timeout = timeout
        self.machine = ident(machine)
        self.monitor: MonitorClient | None = None
        self.process: ChildProcess | None = None
        self.firmware: FirmwareInfo | None = None
        self.platform = None
        self.workdir: Path | None = None
        self.accelerate = True
        self._breakpoints = BreakpointTable()
        self._hooks_seen = 0
        self._console_reader: _PtyReader | None = None
        self._time_origin = 0.0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, platform, elf: Path, *, accelerate: bool = True, workdir: Path | None = None) -> None:
        from memhil.platform import Platform

        if self.state is EngineState.RUNNING:
            raise EngineError("the renode engine is already running", hint="stop() it first")
        platform = platform if isinstance(platform, Platform) else Platform.load(platform)
        firmware = FirmwareInfo.load(elf)
        platform.check_segments(firmware.segments, elf=str(firmware.path))
        use_pyrenode3 = self.backend == "pyrenode3" or (
            self.backend == "auto" and self.monitor_port is None and importlib.util.find_spec("pyrenode3") is not None)
        binary = None if (self.monitor_port or use_pyrenode3) else find_program(self.renode_binary, RENODE_PACKAGE)
        self.platform, self.firmware, self.accelerate = platform, firmware, accelerate
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="memhil-renode-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.console.close()
        self.console = ConsoleLog(self.workdir / "console.log")
        try:
            if use_pyrenode3:
                self.monitor = PyRenodeMonitor()  # type: ignore[assignment]
            else:
                port = self.monitor_port or self._launch(binary)  # type: ignore[arg-type]
                if self.monitor is None:
                    self.monitor = MonitorClient.connect("127.0.0.1", port, timeout=self.timeout, retry_for=self.timeout)
            self.state = EngineState.RUNNING
            self._setup_machine()
        except BaseException:
            self._cleanup(EngineState.FAILED)
            raise
        self.capabilities = Capability.BREAKPOINTS | Capability.MEMORY_WRITE | Capability.EXACT_RUN_FOR
        if accelerate:
            self.capabilities |= Capability.ACCELERATION

    def _launch(self, binary: str) -> int:
        """Start Renode on a free loopback port; a port taken meanwhile makes Renode exit: retry."""
        assert self.workdir
        for _ in range(3):
            port = free_loopback_port()
            self.process = ChildProcess([binary, "--disable-gui", "--plain", "--port", str(port)], workdir=self.workdir, name="renode")
            try:
                self.monitor = MonitorClient.connect("127.0.0.1", port, timeout=self.timeout, retry_for=self.timeout)
                return port
            except EngineError:
                if self.process.alive():
                    raise self._failure("Renode started but its monitor does not answer")
                self.process.stop()
        raise self._failure("Renode exited at start three times (port clash?)")

    def _setup_machine(self) -> None:
        assert self.platform and self.firmware and self.workdir
        self.execute(f'mach create "{self.machine}"')
        self.execute(f"machine LoadPlatformDescription {path_arg(self.platform.repl)}")
        self.execute(f"sysbus LoadELF {path_arg(self.firmware.path)}")
        self.execute(f"machine SetAdvanceImmediately {'true' if self.accelerate else 'false'}")
        pty = self.workdir / "console.pty"
        self.execute(f'emulation CreateUartPtyTerminal "memhil_console" "{path_arg(pty, must_exist=False)[1:]}" true')
        self.execute(f"connector Connect sysbus.{ident(self.platform.console.name)} memhil_console")
        self._console_reader = _PtyReader(pty, self.console, self.timeout)
        self._time_origin = 0.0

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
        proc = self.process
        tail = ""
        if proc is not None:
            proc.wait(1.0)
            try:
                tail = "\n".join(proc.stdout_path.read_text(errors="replace").splitlines()[-15:])
            except OSError:
                tail = proc.stderr_tail()
        return EngineError(what, hint="see Renode's output (tail below) and the console log",
                           exit_status=proc.poll() if proc else None, tail=tail or None, console_tail=self.console.tail(10))

    def stop(self) -> None:
        if self.state is EngineState.RUNNING:
            self._cleanup(EngineState.STOPPED)

    def _cleanup(self, state: EngineState) -> None:
        if self.monitor is not None:
            if self.process is not None and state is not EngineState.FAILED:
                try:
                    self.monitor.sock.sendall(b"quit\n")  # type: ignore[union-attr]
                except OSError:
                    pass
            self.monitor.close()
            self.monitor = None
        if self._console_reader is not None:
            self._console_reader.close()
            self._console_reader = None
        if self.process is not None:
            if self.process.wait(3.0) is None:
                self.process.stop()
            self.process.stop()
        self.console.close()
        self.state = state

    def reset(self) -> None:
        """``machine Reset`` and reload the ELF; Renode's clock keeps counting, so the
        machine time at reset becomes the new origin of virtual_time()."""
        self.check_running()
        self.execute("machine Reset")
        self.execute(f"sysbus LoadELF {path_arg(self.firmware.path)}")  # type: ignore[union-attr]
        self._time_origin = self._machine_time()

    def set_acceleration(self, enabled: bool) -> None:
        self.accelerate = enabled
        if self.state is EngineState.RUNNING:
            self.execute(f"machine SetAdvanceImmediately {'true' if enabled else 'false'}")

    # -- time ------------------------------------------------------------------------------
    def _machine_time(self) -> float:
        return parse_time(self.execute("machine GetTimeSourceInfo"))

    def virtual_time(self) -> float:
        self.check_running()
        address = self.firmware.address(UPTIME_SYMBOL) if self.firmware else None
        if address is not None:
            return int.from_bytes(self.read_memory(address, 8), "little") / 1000.0
        return self._machine_time() - self._time_origin

    def run_for(self, seconds: float) -> None:
        self.check_running()
        time_arg(seconds)  # validates
        end = self._machine_time() + seconds
        remaining = seconds
        while round(remaining * 1_000_000) > 0:
            self.execute(f"emulation RunFor {time_arg(remaining)}", timeout=self.timeout + (0 if self.accelerate else remaining))
            hits = self._new_hook_records()
            for bp_id, regs in hits:
                for bp in [b for bps in self._breakpoints.values() for b in bps if b.id == bp_id]:
                    bp.callback(EngineStop(self, regs, complete=False))
            remaining = round(end - self._machine_time(), 6)
            if not hits:
                break

    def _new_hook_records(self) -> list[tuple[int, dict[str, int]]]:
        path = self.workdir / "hooks.log"  # type: ignore[operator]
        if not path.exists():
            return []
        lines = path.read_text(errors="replace").splitlines()
        fresh, self._hooks_seen = lines[self._hooks_seen :], len(lines)
        records = []
        for line in fresh:
            match = _HOOK_LINE.match(line)
            if not match:
                raise ProtocolError(f"malformed hook record {line[:80]!r} in {path}", hint="a hook body failed in Renode; see its log")
            values = [int(v) & 0xFFFFFFFF for v in match[2].split()]
            records.append((int(match[1]), dict(zip(_REGS_IN_RECORD, values))))
        return records

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
        self.check_running()
        regs = {name: parse_int(self.execute(f"cpu GetRegisterUnsafe {n}")) for n, name in enumerate(CORE_REGS[:16])}
        regs["pc"] = parse_int(self.execute("cpu PC"))
        return regs

    # -- hooks ---------------------------------------------------------------------------------
    def add_breakpoint(self, address: int, callback: BreakpointCallback) -> Breakpoint:
        self.check_running()
        return self._breakpoints.new(address, callback, lambda bp, first: self._add_hook(bp))

    def remove_breakpoint(self, bp: Breakpoint) -> None:
        self.check_running()
        others = self._breakpoints.drop(bp)
        # Renode removes hooks per address: drop all, re-add the others
        self.execute(f"cpu RemoveHooksAt {int_arg(bp.address)}")
        for other in others:
            self._add_hook(other)

    def _add_hook(self, bp: Breakpoint) -> None:
        self.execute(f'cpu AddHook {int_arg(bp.address)} "{hook_script(bp.id, self.workdir / "hooks.log")}"')  # type: ignore[operator]

    # -- console ---------------------------------------------------------------------------
    def _run_until_console(self, regex: re.Pattern[str], timeout: float) -> re.Match[str] | None:
        """Run in growing virtual-time slices; UART bytes reach the PTY a little after
        RunFor returns, so each slice waits briefly (wall clock) for bytes in flight."""
        self.check_running()
        deadline = self._machine_time() + timeout
        step = 0.01
        while True:
            match = self.console.search(regex)
            if match is not None:
                return match
            now = self._machine_time()
            if now >= deadline - 0.5e-6:  # RunFor has microsecond resolution
                self.console.wait_changed(0.2)
                return self.console.search(regex)
            self.run_for(min(step, deadline - now))
            step = min(step * 2, 0.5)
            self.console.wait_changed(0.005)

    def console_write(self, data: bytes | str) -> None:
        self.check_running()
        self._console_reader.write(data.encode() if isinstance(data, str) else bytes(data))  # type: ignore[union-attr]
