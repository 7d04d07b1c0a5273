"""Starting and stopping one ``qemu-system-arm``: its command line, process, sockets and QMP.

QEMU is started halted (``-S``) with the platform's machine and the ELF (``-kernel``); the gdbstub, QMP and the
console UART are unix sockets in a private temporary directory, so several engines never clash and nothing
listens on a network interface. Acceleration is ``-icount shift=N,sleep=off``: virtual time follows executed
instructions and idle (WFI) time is skipped.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import weakref
from pathlib import Path

from memhil.engines.base import ConsoleLog
from memhil.engines.console_socket import ConsoleSocket, connect_socket
from memhil.engines.gdb_rsp import GdbClient
from memhil.engines.process import ChildProcess
from memhil.errors import EngineError, EngineTimeout


class QemuLaunch:
    """One QEMU process and its three connections (gdbstub, QMP, console). ``stop()`` releases all of them."""

    def __init__(self, binary: str, platform, firmware, *, accelerate: bool, icount_shift: int, extra_args: tuple[str, ...],
                 timeout: float, workdir: Path | None) -> None:
        self.binary, self.platform, self.firmware = binary, platform, firmware
        self.accelerate, self.icount_shift, self.extra_args, self.timeout = accelerate, icount_shift, extra_args, timeout
        self.sockdir = Path(tempfile.mkdtemp(prefix="memhil-qemu-"))
        # removed by stop(); also when the launch is collected or at interpreter exit
        self._dir_finalizer = weakref.finalize(self, shutil.rmtree, str(self.sockdir), True)
        self.workdir = Path(workdir) if workdir is not None else self.sockdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        #: the console transcript (the log file, and what errors quote)
        self.console_log = ConsoleLog(self.workdir / "console.log")
        self.process: ChildProcess | None = None
        self.client: GdbClient | None = None
        self.qmp = None
        self.console: ConsoleSocket | None = None
        self.version: str | None = None

    def argv(self) -> list[str]:
        serials = {self.platform.console.qemu_serial: "chardev:con0"}
        if self.platform.trace_uart is not None:
            serials[self.platform.trace_uart.qemu_serial] = "null"
        argv = [
            self.binary, "-M", self.platform.qemu_machine, "-kernel", str(self.firmware.path),
            "-display", "none", "-monitor", "none", "-nodefaults", "-S",
            "-chardev", f"socket,id=gdb0,path={self.sockdir / 'gdb.sock'},server=on,wait=off", "-gdb", "chardev:gdb0",
            "-chardev", f"socket,id=qmp0,path={self.sockdir / 'qmp.sock'},server=on,wait=off", "-mon", "chardev=qmp0,mode=control",
            "-chardev", f"socket,id=con0,path={self.sockdir / 'console.sock'},server=on,wait=off",
        ]
        for index in range(max(serials) + 1):
            argv += ["-serial", serials.get(index, "null")]
        if self.accelerate:
            argv += ["-icount", f"shift={self.icount_shift},sleep=off"]
        return argv + list(self.extra_args)

    def start(self) -> None:
        from qemu.qmp.legacy import QEMUMonitorProtocol

        self.process = ChildProcess(self.argv(), workdir=self.workdir, name="qemu")
        deadline = time.monotonic() + self.timeout
        gdb_path = self.sockdir / "gdb.sock"
        while not gdb_path.exists():
            if not self.process.alive():
                raise self.died("QEMU exited while starting")
            if time.monotonic() > deadline:
                raise self.hung(f"QEMU did not open its gdbstub within {self.timeout:g} s")
            time.sleep(0.01)
        sock = connect_socket(str(self.sockdir / "console.sock"), timeout=self.timeout, what="console UART")
        self.console = ConsoleSocket(sock, self.console_log)
        try:
            self.client = GdbClient.connect_unix(str(gdb_path), timeout=self.timeout)
        except EngineError as exc:
            raise (self.died(f"QEMU exited unexpectedly ({exc.message})") if not self.process.alive() else exc) from exc
        self.client.name = "QEMU gdbstub"
        self.client.lazy_acks = self.client.ack_mode  # QEMU 7.2: no QStartNoAckMode, acks not awaited
        qmp = QEMUMonitorProtocol(str(self.sockdir / "qmp.sock"))
        qmp.settimeout(self.timeout)
        try:
            qmp.connect()
        except Exception as exc:  # qemu.qmp raises its own ConnectError/OSError
            raise self.died(f"cannot connect to QEMU's QMP socket: {exc}") if not self.process.alive() else EngineError(
                f"cannot connect to QEMU's QMP socket: {exc}", hint="check QEMU's stderr", stderr_tail=self.process.stderr_tail()) from exc
        self.qmp = qmp
        info = self.qmp_cmd("query-version")
        q = info.get("qemu", {})
        package = info.get("package", "").strip()
        self.version = f"{q.get('major')}.{q.get('minor')}.{q.get('micro')}" + (f" ({package})" if package else "")

    def qmp_cmd(self, command: str, **args):
        try:
            return self.qmp.cmd(command, **args)  # type: ignore[union-attr]
        except Exception as exc:  # noqa: BLE001 - qemu.qmp errors are not MemhilErrors
            raise self.died(f"QMP {command} failed: {exc}") from exc

    # -- diagnostics -------------------------------------------------------------------------------------------
    def diagnostics(self) -> dict[str, object]:
        proc, log = self.process, self.console_log
        return {
            "exit_status": proc.poll() if proc else None,
            "tail": proc.stderr_tail() if proc else None,
            "console_tail": log.tail(10),
            "log": str(log.path) if log.path else None,
        }

    def died(self, what: str) -> EngineError:
        if self.process is not None:
            self.process.wait(1.0)
        tail = self.process.stderr_tail() if self.process else ""
        hint = "QEMU failed; read its stderr (tail below) and the console log"
        if "Lockup" in tail:
            hint = ("the core locked up: a fault inside a fault handler, or with faults masked (ARMv7-M B1.5.15), "
                    "e.g. an initial SP outside the emulator's RAM; QEMU exits on a lockup")
        return EngineError(what, hint=hint, **self.diagnostics())

    def hung(self, what: str) -> EngineTimeout:
        return EngineTimeout(what, hint="QEMU does not answer: it is stuck or stopped, or the host is overloaded; raise "
                                        "timeout/run_timeout only if the host is known to be this slow",
                             **self.diagnostics())

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def stop(self) -> None:
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
        if self.console is not None:
            self.console.close()
            self.console = None
        # without a workdir the logs lived in the socket dir: the transcript stays in memory
        self._dir_finalizer()
