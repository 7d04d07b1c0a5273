"""A fake Renode monitor for the engine tests: speaks like Renode's telnet monitor
(IAC negotiation, banner, ``(monitor) ``/``(<machine>) `` prompts, echo, red error texts)
with the replies documented in reference/renode.md, over a small memory model.

Run as a program (``fake_renode.py --disable-gui --plain --port N``) it stands in for the
``renode`` binary; ``FakeRenode`` runs it in a thread for unit tests.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import tty
from pathlib import Path

RED = "\x1b[31;1m"
RESET = "\x1b[0m"
SRAM = 0x20000000


class FakeRenode:
    def __init__(self, port: int = 0, *, uptime_address: int | None = None) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", port))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.commands: list[str] = []
        self.prompt = "(monitor) "
        self.time_us = 0
        self.sram = bytearray(0x20000)  # the STM32F405: 128 KiB at 0x20000000
        self.hooks: dict[int, list[str]] = {}
        self.scheduled: list[tuple[int, int, list[int]]] = []  # (time_us, pc, [r0,r1,r2,r3,sp,lr])
        self.uptime_address = uptime_address
        self.pc = 0x08000094
        self.regs = [0x100 + n for n in range(16)]
        self.pty_master: int | None = None
        self.pty_input = bytearray()
        self.machine_created = False
        self.drop = False  # set to close the connection at the next command
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    # -- server ---------------------------------------------------------------------------
    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn:
            conn.sendall(b"\xff\xfb\x01\xff\xfb\x03\xff\xfa\x18\x01\xff\xf0")
            conn.sendall(b"Renode, version 1.15.0.0 (fake for memhil tests)\r\n\r\n" + self.prompt.encode())
            buf = b""
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    cmd = line.decode().strip()
                    self.commands.append(cmd)
                    if cmd == "quit" or self.drop:
                        return
                    reply = self.handle(cmd)
                    out = cmd + "\r\n" + (reply.replace("\n", "\r\n") + "\r\n" if reply else "") + self.prompt
                    conn.sendall(out.encode())

    def close(self) -> None:
        self.server.close()
        if self.pty_master is not None:
            os.close(self.pty_master)

    # -- commands ---------------------------------------------------------------------------
    def handle(self, cmd: str) -> str:
        m = re.fullmatch(r'mach create "([\w.\-]+)"', cmd)
        if m:
            self.prompt = f"({m[1]}) "
            self.machine_created = True
            return ""
        m = re.fullmatch(r"(?:machine LoadPlatformDescription|sysbus LoadELF) @(\S+)", cmd)
        if m:
            if not Path(m[1]).exists():
                return f"{RED}There was an error executing command '{cmd}'\nCould not find file '{m[1]}'{RESET}"
            return ""
        if re.fullmatch(r"machine SetAdvanceImmediately (true|false)", cmd) or cmd == "machine Reset":
            return ""
        m = re.fullmatch(r'emulation CreateUartPtyTerminal "(\w+)" "(\S+)" true', cmd)
        if m:
            master, slave = os.openpty()
            tty.setraw(slave)
            self.pty_master = master
            os.symlink(os.ttyname(slave), m[2])
            threading.Thread(target=self._pty_loop, daemon=True).start()
            return ""
        if re.fullmatch(r"connector Connect sysbus\.usart1 \w+", cmd):
            os.write(self.pty_master, b"memhil fake debug stm32f4 ready\r\n")  # type: ignore[arg-type]
            return ""
        m = re.fullmatch(r'emulation RunFor "(\d+):(\d\d):(\d\d)\.(\d{6})"', cmd)
        if m:
            return self._run_for(((int(m[1]) * 60 + int(m[2])) * 60 + int(m[3])) * 1_000_000 + int(m[4]))
        if cmd == "machine GetTimeSourceInfo":
            s, us = divmod(self.time_us, 1_000_000)
            h, rest = divmod(s, 3600)
            return (f"Interval: 00:00:00.000100000\nAdvance immediately: True\n"
                    f"Elapsed Virtual Time: {h:02d}:{rest // 60:02d}:{rest % 60:02d}.{us:06d}000\nElapsed Host Time: 00:00:00.5")
        m = re.fullmatch(r"sysbus ReadBytes 0x([0-9a-f]+) (\d+)", cmd)
        if m:
            addr, n = int(m[1], 16), int(m[2])
            if not (SRAM <= addr and addr + n <= SRAM + len(self.sram)):
                return f"{RED}There was an error executing command '{cmd}'\nCould not read from unmapped address{RESET}"
            values = [f"0x{b:02X}" for b in self.sram[addr - SRAM : addr - SRAM + n]]
            return "[\n" + ",\n".join(", ".join(values[i : i + 16]) for i in range(0, n, 16)) + "\n]"
        m = re.fullmatch(r"sysbus Write(DoubleWord|Byte) 0x([0-9a-f]+) 0x([0-9a-f]+)", cmd)
        if m:
            width = 4 if m[1] == "DoubleWord" else 1
            addr = int(m[2], 16) - SRAM
            self.sram[addr : addr + width] = int(m[3], 16).to_bytes(width, "little")
            return ""
        m = re.fullmatch(r'cpu AddHook 0x([0-9a-f]+) "([^"]+)"', cmd)
        if m:
            self.hooks.setdefault(int(m[1], 16), []).append(m[2])
            return ""
        m = re.fullmatch(r"cpu RemoveHooksAt 0x([0-9a-f]+)", cmd)
        if m:
            self.hooks.pop(int(m[1], 16), None)
            return ""
        if cmd == "cpu PC":
            return f"0x{self.pc:X}"
        m = re.fullmatch(r"cpu GetRegisterUnsafe (\d+)", cmd)
        if m:
            return f"0x{self.regs[int(m[1])]:X}"
        return f"{RED}No such command or device: {cmd.split()[0]}{RESET}"

    def _run_for(self, duration_us: int) -> str:
        end = self.time_us + duration_us
        for when, pc, regs in sorted(self.scheduled):
            if self.time_us <= when < end and pc in self.hooks:
                self.scheduled.remove((when, pc, regs))
                self._set_time(when)
                for body in self.hooks[pc]:
                    self._fire(body, pc, regs)
                return ""  # paused by the hook (machine.PauseAndRequestEmulationPause)
        self._set_time(end)
        return ""

    def _fire(self, body: str, pc: int, regs: list[int]) -> None:
        """Do what the IronPython hook body would: append its record to the file it names."""
        m = re.match(r"f=open\('([^']+)','a'\);f\.write\('memhil-hook %d %d %d %d %d %d %d %d\\n' % \((\d+),pc,", body)
        assert m and body.endswith("machine.PauseAndRequestEmulationPause()"), body
        with open(m[1], "a") as f:
            f.write("memhil-hook %d %d %d %d %d %d %d %d\n" % (int(m[2]), pc, *regs))

    def _set_time(self, time_us: int) -> None:
        self.time_us = time_us
        if self.uptime_address is not None:
            off = self.uptime_address - SRAM
            self.sram[off : off + 8] = (time_us // 1000).to_bytes(8, "little")

    def _pty_loop(self) -> None:
        while True:
            try:
                data = os.read(self.pty_master, 1024)  # type: ignore[arg-type]
            except OSError:
                return
            self.pty_input += data
            while b"\r" in self.pty_input:
                line, _, rest = bytes(self.pty_input).partition(b"\r")
                self.pty_input = bytearray(rest)
                os.write(self.pty_master, b"echo: " + line + b"\r\n")  # type: ignore[arg-type]


def main(argv: list[str]) -> int:
    """Stand-in for the ``renode`` program: ``--disable-gui --plain --port N``."""
    if "--port" not in argv:
        print("fake renode: --port missing", file=sys.stderr)
        return 2
    port = int(argv[argv.index("--port") + 1])
    record = os.environ.get("FAKE_RENODE_ARGV")
    if record:
        Path(record).write_text(" ".join(argv))
    fake = FakeRenode(port)
    print(f"Monitor available in telnet mode on port {port}", flush=True)
    fake._thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
