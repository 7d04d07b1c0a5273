"""A fake Renode for the engine tests, built from Renode's own source as read in
``../shared/reference/renode-source.md`` ("row N" below is a row of its table; file:line are Renode's).

It models what the engine depends on, for release 1.15.3 or 1.16.1 (``version=``):

- the shell (AntShell): banner and first prompt written once at start, never re-sent to a new connection
  (``Shell.cs``:112-128, row 4); every typed character echoed, Enter writes ``"\\n\\r"``, results end in ``"\\r\\n"``
  (``CommandLine.cs``:633-641, ``NavigableTerminalEmulator.cs``:543-545, ``MonitorCommands.cs``:1159, row 6); an
  empty line reprints the prompt (``CommandLine.cs``:566-617); prompt ``(monitor) `` then ``(<machine>) `` (row 5);
- colour: none under ``--plain`` (``CommandLineInterface.cs``:270, row 7); otherwise errors in ``ESC[;031m``
  (ConsoleColor.Red) and the ``(monitor) `` prompt in ``ESC[31;1m`` (DarkRed) (row 7);
- the error texts of row 8, each where Renode prints it;
- ``emulation RunFor`` runs its whole period and never returns early (``MasterTimeSource.cs``:53-72, row 15);
  ``machine.PauseAndRequestEmulationPause()`` returns at once because RunFor never sets ``IsStarted``
  (``Machine.cs``:1119-1127, ``Emulation.cs``:124-133, row 16);
- hooks: the body runs (here in CPython) at each hit with ``self``/``cpu``, ``machine``, ``pc`` (row 17);
  ``self.GetRegisterUlong`` exists only in 1.16.x (``ICPUWithRegisters.cs``:29-32, row 18), ``GetRegister(n)`` in
  both; a missing member is logged as "Python runtime error" and the CPU goes on (``PythonEngine.cs``:65-83);
- ``sysbus ReadBytes``: 10 bytes a line; unmapped addresses read as 0 with a log warning (``MonitorCommands.cs``:
  1188-1203, ``SystemBus.cs``:2128-2145, row 21); numbers in hexadecimal by default (``Monitor.cs``:78);
- ``cpu GetRegisterUnsafe`` logs a warning per call (``TranslationCPU.cs``:184-189, row 23); ``cpu GetRegister``
  prints ``0x<hex>`` (``RegisterValue.cs``:26-28);
- telnet (``--port``): 1.15.3 reads 9 bytes after its negotiation before it writes anything
  (``SocketServerProvider.cs``:195-209 at 1.15.3, row 3); 1.16.1 drops 3-byte IAC commands (:182-222);
- the console UART on a PTY (``UartPtyTerminal.cs``); bytes the firmware writes reach it before RunFor returns.
- the memory map of memhil's ``stm32f4.repl`` as Renode builds it (row 28): flash, SRAM, the 64 KiB CCM.

The firmware is not executed (the fake runs no Thumb code): a scenario plays its observable effects. Two of them
model memhil's RAM rings, written the way the firmware writes them: ``trace`` events append a record to the trace
ring (``firmware/kernel/mem/memhil_trace.c``: nothing while disabled, ``seq`` = head, the uptime), ``call`` events
are a call of a function that is patched or not: when the host has written a ``b.w`` at the function's entry
(patched hooks, ``capture/patch.py``) into code it wrote, one record goes into the hook ring the host set up (its
header found by its magic). A firmware that finds a ring full waits for the host: its thread spins until the
RunFor slice ends (the host drains at the pause), so its later calls come that much later in virtual time
(:attr:`FakeRenode.ring_waits`, :attr:`FakeRenode.stalled_us`). Nothing is dropped.

Run as a program it stands in for ``renode``: ``--disable-gui --console --plain --config F`` (pipes) or
``--port N`` (telnet). ``FAKE_RENODE_VERSION`` picks the release, ``FAKE_RENODE_SCENARIO`` names a JSON file of
firmware events (see :meth:`FakeRenode.load_scenario`), ``FAKE_RENODE_ARGV`` a file to write its argv to.
"""

from __future__ import annotations

import json
import os
import re
import socket
import struct
import sys
import threading
import tty
from pathlib import Path

from memhil.capture import patch as hook_ring  # the hook ring's layout is memhil's: the wrappers it assembles use it
from memhil.capture.relocate import _branch_32
from memhil.contract import UPTIME_SYMBOL

RED = "\x1b[;031m"  # ConsoleColor.Red: errors (row 7)
DARK_RED = "\x1b[31;1m"  # ConsoleColor.DarkRed: the (monitor) prompt (row 7)
RESET = "\x1b[0m"
SRAM, SRAM_SIZE = 0x20000000, 0x20000
CCM, CCM_SIZE = 0x10000000, 0x10000
TRACE_MAGIC = 0x4D485452  # "MHTR" (memhil_trace.h)
#: events of the firmware's thread that write a ring: they wait while it is full
THREAD_KEYS = ("trace", "call")
FLASH, FLASH_SIZE = 0x08000000, 0x100000
VERSIONS = {"1.15.3": "Renode, version 1.15.3.27000 (fake for memhil tests)", "1.16.1": "Renode, version 1.16.1.28000 (fake for memhil tests)"}


class _Register:
    def __init__(self, value: int) -> None:
        self.RawValue = value  # RegisterValue.RawValue (ulong)


class _Cpu:
    """What a hook sees as ``self``/``cpu``: ``GetRegister(int)`` in both releases (row 18)."""

    def __init__(self, fake: "FakeRenode") -> None:
        self._fake = fake

    def GetRegister(self, n: int) -> _Register:  # noqa: N802 - Renode's name
        return _Register(self._fake.regs[n])


class _Cpu116(_Cpu):
    def GetRegisterUlong(self, n: int) -> int:  # noqa: N802 - only from 1.16.0 (row 18)
        return self._fake.regs[n]


class _Bus:
    def __init__(self, fake: "FakeRenode") -> None:
        self._fake = fake

    def ReadDoubleWord(self, address: int) -> int:  # noqa: N802
        return int.from_bytes(self._fake.read(address, 4), "little")


class _Machine:
    def __init__(self, fake: "FakeRenode") -> None:
        self.SystemBus = _Bus(fake)
        self.pause_requests = 0

    def PauseAndRequestEmulationPause(self) -> None:  # noqa: N802
        """Returns at once: the emulation was not started with ``start`` (Machine.cs:1119-1127)."""
        self.pause_requests += 1


class FakeRenode:
    """The emulated Renode: one monitor command in, its reply out; a small memory and firmware model."""

    def __init__(self, *, version: str = "1.16.1", plain: bool = True, out=None, uptime_address: int | None = None) -> None:
        if version not in VERSIONS:
            raise ValueError(f"the fake models {sorted(VERSIONS)}, not {version}")
        self.version = version
        self.plain = plain
        self.out = out  # callable(str) for output (log lines go there too)
        self.commands: list[str] = []
        self.machine: str | None = None
        self.time_us = 0
        # SRAM, flash, and the NVIC's system control space (NVIC.cs models it at 0xE000E000; row 28)
        self.mem = {SRAM: bytearray(SRAM_SIZE), FLASH: bytearray(FLASH_SIZE), CCM: bytearray(CCM_SIZE), 0xE000E000: bytearray(0x1000)}
        self.regs = [0x100 + n for n in range(16)]
        self.hooks: dict[int, list[str]] = {}
        self.events: list[dict] = []  # firmware events by virtual time (see load_scenario)
        self.uptime_address = uptime_address
        self._boot: list[tuple[int, int, int, int]] = []  # the firmware's start-up copies, done at the first RunFor
        self.numbers_hex = True
        self.pty_master: int | None = None
        self.uart_rx = bytearray()
        self.cpu = _Cpu116(self) if version.startswith("1.16") else _Cpu(self)
        self.machine_obj = _Machine(self)
        self.log_lines: list[str] = []
        self.quitted = False
        self.trace_ring: int | None = None  # address of g_memhil_trace, for ``trace`` events
        self.ring_waits = 0  # times the firmware found a ring full and waited for the slice end
        self.stalled_us = 0  # virtual time it spent waiting
        self.unpatched_calls = 0  # ``call`` events whose function was not patched (no record)

    # -- output ---------------------------------------------------------------------------
    def log(self, level: str, message: str) -> None:
        """A log line as ConsoleBackend prints it in --plain mode."""
        s, us = divmod(self.time_us, 1_000_000)
        line = f"{(s // 3600) % 24:02d}:{(s // 60) % 60:02d}:{s % 60:02d}.{us // 100:04d} [{level}] {message}"
        self.log_lines.append(line)
        if self.out is not None:
            self.out(line + "\n")

    def error(self, text: str) -> str:
        return text if self.plain else f"{RED}{text}{RESET}"

    @property
    def prompt(self) -> str:
        text = f"({self.machine}) " if self.machine else "(monitor) "
        return text if self.plain else (f"{DARK_RED}{text}{RESET}" if not self.machine else f"\x1b[33m{text}{RESET}")

    @property
    def banner(self) -> str:
        return VERSIONS[self.version]

    # -- memory -----------------------------------------------------------------------------
    def _region(self, address: int, size: int):
        for base, data in self.mem.items():
            if base <= address and address + size <= base + len(data):
                return data, address - base
        return None, 0

    def read(self, address: int, size: int) -> bytes:
        data, off = self._region(address, size)
        if data is None:  # SystemBus.cs:2128-2145: zeros and a warning, not an error (row 21)
            self.log("WARNING", f"sysbus: ReadBytes from non existing peripheral at {address:#x}.")
            return bytes(size)
        return bytes(data[off : off + size])

    def write(self, address: int, value: bytes) -> None:
        data, off = self._region(address, len(value))
        if data is None:
            self.log("WARNING", f"sysbus: WriteBytes to non existing peripheral at {address:#x}.")
            return
        data[off : off + len(value)] = value

    def load_elf(self, path: str) -> None:
        from elftools.elf.elffile import ELFFile

        with open(path, "rb") as f:
            elf = ELFFile(f)
            self._boot = []
            for seg in elf.iter_segments():
                if seg["p_type"] == "PT_LOAD" and seg["p_filesz"]:
                    self.write(seg["p_paddr"], seg.data())  # at the load (physical) address (row 11)
                if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] != seg["p_paddr"]:
                    self._boot.append((seg["p_paddr"], seg["p_vaddr"], seg["p_filesz"], seg["p_memsz"]))
            symtab = elf.get_section_by_name(".symtab")
            found = symtab.get_symbol_by_name(UPTIME_SYMBOL) if symtab is not None else None
            if found and self.uptime_address is None:  # the firmware's 1 ms uptime follows virtual time
                self.uptime_address = found[0]["st_value"]

    # -- firmware model ------------------------------------------------------------------------
    def load_scenario(self, events: list[dict]) -> None:
        """Firmware events by virtual time, each a dict with ``t_us`` and any of: ``hit`` (pc; optional ``regs``
        {index: value} set first), ``write`` (address, ``hex`` bytes), ``uart`` (text the firmware prints);
        ``every_us`` repeats it; and the ring writes of the firmware's thread: ``trace`` (the hex of a 40-byte
        ``memhil_trace_rec``; seq and t_ms are the firmware's), ``call`` (the address of a function the firmware
        calls, with ``fid``, ``result``, and ``node``/``stack`` hex for the record: see :meth:`_patched_call`)."""
        self.events = sorted(events, key=lambda e: e["t_us"])

    def _set_time(self, time_us: int) -> None:
        self.time_us = time_us
        if self.uptime_address is not None:
            self.write(self.uptime_address, (time_us // 1000).to_bytes(8, "little"))

    def _start_up(self) -> None:
        """What the firmware's reset handler does first: .data copied from flash to RAM, .bss cleared."""
        boot, self._boot = self._boot, []
        for paddr, vaddr, filesz, memsz in boot:
            self.write(vaddr, self.read(paddr, filesz) + bytes(memsz - filesz))

    def run_for(self, duration_us: int) -> None:
        """The whole period, always (MasterTimeSource.cs:53-72): hooks run at their hits and cannot pause it."""
        self._start_up()
        end = self.time_us + duration_us
        while True:
            due = [e for e in self.events if self.time_us <= e["t_us"] < end]
            if not due:
                break
            event = min(due, key=lambda e: e["t_us"])
            self.events.remove(event)
            if event.get("every_us"):  # a periodic event (a tick interrupt)
                self.events.append({**event, "t_us": event["t_us"] + event["every_us"]})
            self._set_time(event["t_us"])
            if "regs" in event:
                for n, value in event["regs"].items():
                    self.regs[int(n)] = value
            if "write" in event:
                self.write(event["write"], bytes.fromhex(event["hex"]))
            if "uart" in event and self.pty_master is not None:
                os.write(self.pty_master, event["uart"].encode())
            if "hit" in event:
                self.regs[15] = event["hit"]
                for body in list(self.hooks.get(event["hit"], ())):
                    self._run_hook(body, event["hit"])
            written = True
            if "trace" in event:
                written = self._trace_record(event)
            elif "call" in event:
                written = self._patched_call(event)
            if not written:
                self._wait_for_host(event, end)
        self._echo_uart_input()
        self._set_time(end)

    def _wait_for_host(self, event: dict, end: int) -> None:
        """The ring is full: the firmware's thread spins (``memhil_trace.c``'s loop, the wrapper's claim loop) until
        the host drains it, which is at the end of this slice; the call and every later one of the thread come
        that much later."""
        delay = end - event["t_us"]
        self.ring_waits += 1
        self.stalled_us += delay
        for other in self.events:
            if any(k in other for k in THREAD_KEYS) and other["t_us"] >= event["t_us"]:
                other["t_us"] += delay
        self.events.append({k: v for k, v in event.items() if k != "every_us"} | {"t_us": end})

    def _u32(self, address: int) -> int:
        return int.from_bytes(self.read(address, 4), "little")

    def _trace_record(self, event: dict) -> bool:
        """``OsMemTraceRecord`` (memhil_trace.c): nothing while disabled; False (wait) when full; else the record
        at slot head % capacity with seq = head and t_ms = the uptime, then head + 1."""
        ring = self.trace_ring
        if ring is None:
            raise ValueError("a trace event needs the scenario's trace_ring")
        magic, _version, rec_size, capacity, enabled, head, tail, _lost = struct.unpack("<IHHIIIII", self.read(ring, 28))
        if magic != TRACE_MAGIC or not enabled:
            return True
        if (head - tail) & 0xFFFFFFFF >= capacity:
            return False
        rec = bytearray(bytes.fromhex(event["trace"]))
        struct.pack_into("<II", rec, 0, head, (self.time_us // 1000) & 0xFFFFFFFF)
        self.write(ring + 28 + (head % capacity) * rec_size, bytes(rec))
        self.write(ring + 16, ((head + 1) & 0xFFFFFFFF).to_bytes(4, "little"))
        return True

    def _patched_call(self, event: dict) -> bool:
        """A call of ``event["call"]``. Unpatched (no ``b.w`` at its entry into code the host wrote): no record.
        Patched: what the wrapper leaves in the hook ring (``capture/patch.py``): nothing while disabled; False
        (wait) when full; else in the slot of the claim number (claim % capacity) the words seq = claim, fid, r0-r3,
        result, lr, sp, uptime (64 bits), then ``node`` and ``stack`` (hex, zero-padded to rec_size); claim and head
        + 1 (the record is complete as it is claimed: nothing interrupts this wrapper)."""
        entry = event["call"] & ~1
        branch = _branch_32(*struct.unpack("<HH", self.read(entry, 4)), entry)
        if branch is None or branch.kind != "b" or branch.cond is not None:  # not B T4 (ARMv7-M A7.7.12)
            self.unpatched_calls += 1
            return True
        wrapper = branch.target & 0xFFFFFFFF
        if not any(self.read(wrapper, 16)):
            raise ValueError(f"the branch at {entry:#x} goes to {wrapper:#x}, where the host wrote no code")
        ring = self._hook_ring()
        if ring is None:
            raise ValueError("a patched function ran, but no hook ring header is in RAM")
        hdr = {name: self._u32(ring + offset) for name, offset in hook_ring.HDR.items()}
        if not hdr["enabled"]:
            return True
        claim, rec_size, capacity = hdr["claim"], hdr["rec_size"], hdr["capacity"]
        if (claim - hdr["tail"]) & 0xFFFFFFFF >= capacity:
            return False
        ms = self.time_us // 1000
        words = [claim, event["fid"], *self.regs[0:4], event.get("result", 0), self.regs[14], self.regs[13], ms & 0xFFFFFFFF, ms >> 32]
        rec = hook_ring.FIXED.pack(*words) + bytes.fromhex(event.get("node", "")) + bytes.fromhex(event.get("stack", ""))
        self.write(hdr["slots"] + claim % capacity * rec_size, rec.ljust(rec_size, b"\0")[:rec_size])
        for name in ("claim", "head"):
            self.write(ring + hook_ring.HDR[name], ((claim + 1) & 0xFFFFFFFF).to_bytes(4, "little"))
        return True

    def _hook_ring(self) -> int | None:
        """The hook ring's header: the first word-aligned "MHPK" magic with this memhil's version in SRAM or the CCM."""
        for base in (SRAM, CCM):
            data = self.mem[base]
            at = data.find(hook_ring.MAGIC.to_bytes(4, "little"))
            while at >= 0:
                if at % 4 == 0 and at + hook_ring.HDR_SIZE <= len(data) and struct.unpack_from("<I", data, at + hook_ring.HDR["version"])[0] == hook_ring.VERSION:
                    return base + at
                at = data.find(hook_ring.MAGIC.to_bytes(4, "little"), at + 1)
        return None

    def _run_hook(self, body: str, pc: int) -> None:
        """The body as Renode runs it (BlockPythonEngine.cs:30-37, 55-62); a missing member or unbound name is
        logged and the CPU goes on (PythonEngine.cs:65-83)."""
        scope = {"self": self.cpu, "cpu": self.cpu, "machine": self.machine_obj, "pc": pc}
        try:
            exec(body.replace('\\"', '"'), scope)  # StringToken unescapes only \" (row 19)
        except (AttributeError, NameError, ArithmeticError) as exc:
            self.log("ERROR", f"Python runtime error: {exc}")

    def _echo_uart_input(self) -> None:
        """The firmware's console echo: a received line comes back as ``echo: <line>``."""
        while b"\r" in self.uart_rx and self.pty_master is not None:
            line, _, rest = bytes(self.uart_rx).partition(b"\r")
            self.uart_rx = bytearray(rest)
            os.write(self.pty_master, b"echo: " + line + b"\r\n")

    # -- commands -------------------------------------------------------------------------------
    def handle(self, cmd: str) -> str:
        self.commands.append(cmd)
        try:
            return self._handle(cmd)
        except _Recoverable as exc:  # Monitor.cs:996
            return self.error(f"There was an error executing command '{cmd}'\n{exc}")

    def _num(self, value: int) -> str:
        return f"0x{value:X}" if self.numbers_hex else str(value)

    def _handle(self, cmd: str) -> str:  # noqa: C901 - one branch per command, like Renode's dispatch
        if cmd == "version":
            return self.banner
        m = re.fullmatch(r'echo "([^"]*)"', cmd)
        if m:
            return m[1]
        m = re.fullmatch(r"numbersMode (Hexadecimal|Decimal)", cmd)
        if m:
            self.numbers_hex = m[1] == "Hexadecimal"
            return ""
        if cmd.startswith("numbersMode"):
            return self.error(f"Bad parameters for command {cmd.split()[0]} {' '.join(cmd.split()[1:])}")  # MonitorCommands.cs:1064
        m = re.fullmatch(r'mach create "([\w.\-]+)"', cmd)
        if m:
            if self.machine is not None:
                raise _Recoverable("Given machine is already added or name is already taken.")  # Emulation.cs:208
            self.machine = m[1]
            return ""
        m = re.fullmatch(r'mach set "([^"]*)"', cmd)
        if m:
            if m[1] != self.machine:
                return self.error(f"Machine {m[1]} not found.")  # MachCommand.cs:92
            return ""
        m = re.fullmatch(r"(machine LoadPlatformDescription|sysbus LoadELF) @(\S+)", cmd)
        if m:
            if not Path(m[2]).exists():
                return self.error(f"Could not find file '{m[2]}'")  # Monitor.cs:319
            if m[1] == "sysbus LoadELF":
                self.load_elf(m[2])
            return ""
        if re.fullmatch(r"machine SetAdvanceImmediately (true|false)", cmd):
            return ""
        if cmd == "machine Reset":
            self._set_time(self.time_us)
            return ""
        m = re.fullmatch(r'emulation CreateUartPtyTerminal "(\w+)" "(\S+)" true', cmd)
        if m:
            master, slave = os.openpty()
            tty.setraw(slave)
            self.pty_master = master
            if os.path.lexists(m[2]):
                os.unlink(m[2])
            os.symlink(os.ttyname(slave), m[2])
            return ""
        if re.fullmatch(r"connector Connect sysbus\.usart1 \w+", cmd):
            os.write(self.pty_master, b"memhil fake debug stm32f4 ready\r\n")  # type: ignore[arg-type]
            return ""
        m = re.fullmatch(r"sysbus\.usart1 WriteChar (0x[0-9a-fA-F]+|\d+)", cmd)
        if m:
            self.uart_rx.append(int(m[1], 0) & 0xFF)
            return ""
        m = re.fullmatch(r'emulation RunFor "(\d+):(\d\d):(\d\d)\.(\d{6})"', cmd)
        if m:
            self.run_for(((int(m[1]) * 60 + int(m[2])) * 60 + int(m[3])) * 1_000_000 + int(m[4]))
            return ""
        if cmd == "machine GetTimeSourceInfo":  # TimeSourceBase.cs:51-61, 9 decimals (TimeInterval.cs:212-219)
            s, us = divmod(self.time_us, 1_000_000)
            return (f"Interval: 00:00:00.000100000\nAdvance immediately: True\n"
                    f"Elapsed Virtual Time: {s // 3600:02d}:{(s // 60) % 60:02d}:{s % 60:02d}.{us:06d}000\nElapsed Host Time: 00:00:00.500000000")
        m = re.fullmatch(r"sysbus ReadBytes (0x[0-9a-fA-F]+|\d+) (0x[0-9a-fA-F]+|\d+)", cmd)
        if m:  # MonitorCommands.cs:1188-1203: "[", 10 bytes a line, "]"
            data = self.read(int(m[1], 0), int(m[2], 0))
            values = [(f"0x{b:02X}" if self.numbers_hex else str(b)) + ", " for b in data]
            return "[\n" + "\n".join("".join(values[i : i + 10]) for i in range(0, len(values), 10)) + "\n]"
        m = re.fullmatch(r"sysbus Write(DoubleWord|Byte) (0x[0-9a-fA-F]+|\d+) (0x[0-9a-fA-F]+|\d+)", cmd)
        if m:
            width = 4 if m[1] == "DoubleWord" else 1
            self.write(int(m[2], 0), (int(m[3], 0) & ((1 << 8 * width) - 1)).to_bytes(width, "little"))
            return ""
        if cmd.startswith("sysbus Write") or cmd.startswith("sysbus ReadBytes"):
            return self.error(f"Bad parameters for command sysbus {cmd.split()[1]}")
        m = re.fullmatch(r'cpu AddHook (0x[0-9a-fA-F]+) "((?:[^"\\]|\\.)*)"', cmd)
        if m:
            self.hooks.setdefault(int(m[1], 16), []).append(m[2])
            return ""
        m = re.fullmatch(r"cpu RemoveHooksAt (0x[0-9a-fA-F]+)", cmd)
        if m:
            self.hooks.pop(int(m[1], 16), None)
            return ""
        if cmd == "cpu PC":
            return self._num(self.regs[15])
        m = re.fullmatch(r"cpu GetRegister (\d+)", cmd)
        if m:
            return f"0x{self.regs[int(m[1])]:X}"  # RegisterValue.cs:26-28
        m = re.fullmatch(r"cpu GetRegisterUnsafe (\d+)", cmd)
        if m:  # obsolete: a warning per call (TranslationCPU.cs:184-189)
            self.log("WARNING", "cpu: GetRegisterUnsafe is obsolete, use GetRegister instead")
            return f"0x{self.regs[int(m[1])]:X}"
        m = re.fullmatch(r"\$(\w+)", cmd)
        if m:
            return self.error(f"No such variable: ${m[1]}")  # Monitor.cs:1148
        if cmd.count('"') % 2:
            return self.error("Could not tokenize here:\n" + cmd[cmd.index('"'):])  # Monitor.cs:1162
        return self.error(f"No such command or device: {cmd.split()[0]}")  # Monitor.cs:692


class _Recoverable(Exception):
    pass


class AntShell:
    """The monitor's line discipline (AntShell): echo, Enter, results, prompt."""

    def __init__(self, fake: FakeRenode, write) -> None:
        self.fake = fake
        self.write = write
        self.line = bytearray()

    def start(self) -> None:
        self.write(self.fake.banner + "\r\n\r\n" + self.fake.prompt)  # Shell.cs:112-128

    def feed(self, data: bytes) -> bool:
        """Returns False after ``quit``."""
        for b in data:
            if b in (0x0D, 0x0A):  # both are Enter (NavigableTerminalEmulator.cs:131-132)
                self.write("\n\r")
                cmd = self.line.decode(errors="replace").strip()
                self.line.clear()
                if cmd in ("quit", "q"):
                    self.fake.quitted = True
                    return False
                if cmd:
                    reply = self.fake.handle(cmd)
                    if reply:
                        self.write(reply.replace("\n", "\r\n") + "\r\n")
                self.write(self.fake.prompt)
            else:
                self.line.append(b)
                self.write(chr(b))  # echo (CommandLine.cs:633-641)
        return True


class TelnetServer:
    """``--port N``: the telnet monitor, on loopback here (Renode binds every interface, row 2)."""

    def __init__(self, fake: FakeRenode, port: int = 0) -> None:
        self.fake = fake
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", port))
        self.server.listen(4)
        self.port = self.server.getsockname()[1]
        self.pending = bytearray()  # written before any client connected: queued (row 4)
        self.conn: socket.socket | None = None
        self.lock = threading.Lock()
        self.shell = AntShell(fake, self._write)
        self.shell.start()
        self.connections = 0
        self.handshake_read: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _write(self, text: str) -> None:
        data = text.encode()
        with self.lock:
            if self.conn is None:
                self.pending += data
            else:
                try:
                    self.conn.sendall(data)
                except OSError:
                    pass

    def _serve(self) -> None:
        while not self.fake.quitted:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # SocketsManager.cs:50 (noDelay: true; row 32)
            self.connections += 1
            self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        with conn:
            conn.sendall(b"\xff\xfd\x00\xff\xfb\x01\xff\xfb\x03\xff\xfc\x22")  # DO BINARY, WILL ECHO, WILL SGA, WONT LINEMODE
            if self.fake.version.startswith("1.15"):
                got = b""
                while len(got) < 9:  # stream.ReadByte() 9 times before the writer starts (1.15.3 :195-209)
                    chunk = conn.recv(9 - len(got))
                    if not chunk:
                        return
                    got += chunk
                self.handshake_read.append(got)
            with self.lock:
                self.conn = conn
                if self.pending:
                    conn.sendall(bytes(self.pending))
                    self.pending.clear()
            buf = b""
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                buf += data
                if not self.fake.version.startswith("1.15"):  # 1.16.1 skips 3-byte IAC commands (:182-222)
                    buf = re.sub(rb"\xff[\xfb-\xfe].", b"", buf, flags=re.DOTALL)
                if b"\xff" in buf and buf.index(b"\xff") > len(buf) - 3:
                    continue
                data, buf = buf, b""
                if not self.shell.feed(data):
                    break
            with self.lock:
                self.conn = None

    def close(self) -> None:
        self.fake.quitted = True
        self.server.close()
        if self.fake.pty_master is not None:
            os.close(self.fake.pty_master)


def main(argv: list[str]) -> int:
    """Stand-in for the ``renode`` program."""
    record = os.environ.get("FAKE_RENODE_ARGV")
    if record:
        Path(record).write_text(" ".join(argv))
    version = os.environ.get("FAKE_RENODE_VERSION", "1.16.1")
    if version not in VERSIONS:  # a release the fake does not model: print its banner and serve nothing else
        VERSIONS[version] = f"Renode, version {version}.0 (fake for memhil tests)"
    plain = "--plain" in argv
    scenario = os.environ.get("FAKE_RENODE_SCENARIO")
    if "--console" in argv:
        out = sys.stdout.buffer

        def write(text: str) -> None:
            out.write(text.encode())
            out.flush()

        fake = FakeRenode(version=version, plain=plain, out=write)
        if scenario:
            data = json.loads(Path(scenario).read_text())
            fake.uptime_address = data.get("uptime_address")
            fake.trace_ring = data.get("trace_ring")
            fake.load_scenario(data.get("events", []))
        fake.log("INFO", "Loaded monitor commands from: fake")
        shell = AntShell(fake, write)
        shell.start()
        stdin = sys.stdin.buffer.raw  # Console.Read() on redirected input (ConsoleIOSource RedirectedHandling)
        while True:
            data = os.read(stdin.fileno(), 4096)
            if not data or not shell.feed(data):
                return 0
    if "--port" in argv:
        fake = FakeRenode(version=version, plain=plain, out=lambda text: (sys.stdout.write(text), sys.stdout.flush()))
        server = TelnetServer(fake, int(argv[argv.index("--port") + 1]))
        fake.log("INFO", f"Monitor available in telnet mode on port {server.port}")
        server._thread.join()
        return 0
    print("fake renode: give --console or --port", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
