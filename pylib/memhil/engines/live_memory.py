"""Target RAM read and written while the firmware runs: QEMU's own memory, through ``/proc/PID/mem``.

QEMU holds each RAM region of the board (the STM32F405's SRAM, its CCM) as one block of its own process memory,
and HMP's ``gpa2hva`` (read over QMP) says where a guest address lies in it. memhil starts QEMU as its child, so
it may open the child's ``/proc/PID/mem`` (the kernel's ptrace access check: the same user, and Yama's default
scope lets a parent read its descendants) and ``pread``/``pwrite`` the guest's RAM with no stop and no gdbstub
round trip: 64 KiB in ~15 µs against ~1 ms through the gdbstub.

What makes this safe for a ring of records (trace capture, patched hooks):

- the firmware publishes a record by storing ``head`` after the record's words (the trace firmware puts a fence
  before it; the hook wrapper's stores are in that order). Under ``-icount`` QEMU runs the one vCPU on one host
  thread and emits the guest's stores in program order; an x86 host (total store order) lets another thread see
  them in that order, so a reader that reads ``head`` first sees whole records below it. A host that orders
  stores more weakly (arm64) gets no window: the rings are read at stops as before;
- the host writes only ``tail``, a word the firmware only compares against: a torn or late value makes the ring
  look fuller, never emptier, so the firmware waits or rings early but never overwrites a record;
- nothing here touches code or devices: a window covers RAM that ``gpa2hva`` names one region for, from its
  first byte to its last, contiguous in QEMU's memory.

:func:`open_window` refuses (:class:`LiveMemoryUnavailable`, with the reason) wherever one of these does not hold;
the captures then drain at stops, exactly as without it.
"""

from __future__ import annotations

import os
import platform as host_platform
import re
from typing import Callable, Sequence

from memhil.errors import EngineError

#: the hosts whose memory model keeps the firmware's store order for another thread (x86: total store order)
TSO_MACHINES = frozenset({"x86_64", "amd64", "i386", "i486", "i586", "i686", "x86"})

_GPA2HVA = re.compile(r"Host virtual address for (0x[0-9a-fA-F]+) \((.*)\) is (0x[0-9a-fA-F]+)")


class LiveMemoryUnavailable(Exception):
    """No live window here; the message says why (the captures then read their rings at stops)."""


def parse_gpa2hva(text: str) -> tuple[str, int]:
    """(region name, host address) from HMP ``gpa2hva``'s answer; :class:`LiveMemoryUnavailable` for any other
    answer ("No memory is mapped at address ...", an unknown command)."""
    found = _GPA2HVA.search(text or "")
    if found is None:
        raise LiveMemoryUnavailable(f"QEMU's gpa2hva answered {(text or '').strip()!r}")
    return found.group(2), int(found.group(3), 16)


class LiveWindow:
    """``[base, base + size)`` of target RAM, read and written while the target runs or is halted. It has the
    engine's ``read_memory``/``write_memory``/``read_memory_many``, so a capture reads its ring the same way
    through either. Addresses outside the window raise :class:`EngineError`; so does a QEMU that has gone."""

    def __init__(self, fd: int, base: int, size: int, host: int, what: str) -> None:
        self._fd = fd
        self.base, self.size, self.end = base, size, base + size
        self._delta = host - base
        self.what = what
        self.reads = 0
        self.writes = 0

    def _host(self, address: int, size: int) -> int:
        if not (self.base <= address and address + size <= self.end):
            raise EngineError(f"{size} bytes at {address:#x} are outside the live window {self.base:#x}-{self.end:#x}",
                              hint="read other memory through the engine at a stop")
        if self._fd < 0:
            raise EngineError("the live window is closed (the emulator stopped)", hint="open a new window after a restart")
        return address + self._delta

    def read_memory(self, address: int, size: int) -> bytes:
        at = self._host(address, size)
        try:
            data = os.pread(self._fd, size, at)
        except OSError as exc:
            raise EngineError(f"reading {size} bytes of target RAM at {address:#x} through QEMU's memory: {exc}",
                              hint="QEMU exited or its memory is no longer readable") from exc
        if len(data) != size:
            raise EngineError(f"reading {size} bytes of target RAM at {address:#x} through QEMU's memory gave {len(data)}",
                              hint="QEMU exited or its memory is no longer readable")
        self.reads += 1
        return data

    def read_memory_many(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        return [self.read_memory(a, n) for a, n in ranges]

    def write_memory(self, address: int, data: bytes) -> None:
        at = self._host(address, len(data))
        try:
            done = os.pwrite(self._fd, data, at)
        except OSError as exc:
            raise EngineError(f"writing {len(data)} bytes of target RAM at {address:#x} through QEMU's memory: {exc}",
                              hint="QEMU exited or its memory is no longer writable") from exc
        if done != len(data):
            raise EngineError(f"writing {len(data)} bytes of target RAM at {address:#x} through QEMU's memory wrote {done}",
                              hint="QEMU exited or its memory is no longer writable")
        self.writes += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    @property
    def closed(self) -> bool:
        return self._fd < 0


def open_window(pid: int, gpa2hva: Callable[[int], str], base: int, size: int, *, machine: str | None = None,
                check: Callable[[int, int], bytes] | None = None) -> LiveWindow:
    """A :class:`LiveWindow` on ``[base, base + size)`` of the QEMU process ``pid``. ``gpa2hva(address)`` runs
    HMP's ``gpa2hva`` and returns its text; ``check(address, size)``, when given, reads the same bytes through the
    gdbstub (target halted), which the window must read alike. Raises :class:`LiveMemoryUnavailable` with the
    reason on a host that orders stores weakly (``machine``, default this host's), memory that is not one RAM
    region contiguous in QEMU, or a ``/proc/PID/mem`` the kernel does not let memhil open."""
    machine = (machine or host_platform.machine()).lower()
    if machine not in TSO_MACHINES:
        raise LiveMemoryUnavailable(f"this host ({machine}) may reorder the firmware's stores as another thread sees them")
    if size <= 0:
        raise LiveMemoryUnavailable(f"an empty window ({size} bytes)")
    first_region, first = parse_gpa2hva(gpa2hva(base))
    last_region, last = parse_gpa2hva(gpa2hva(base + size - 1))
    if last_region != first_region or last - first != size - 1:
        raise LiveMemoryUnavailable(f"{base:#x}-{base + size:#x} is not one RAM region contiguous in QEMU's memory "
                                    f"({first_region} at {first:#x}, {last_region} at {last:#x})")
    path = f"/proc/{pid}/mem"
    try:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise LiveMemoryUnavailable(f"cannot open {path}: {exc.strerror} (the kernel's ptrace access check)") from None
    window = LiveWindow(fd, base, size, first, f"{first_region} {base:#x}-{base + size:#x}")
    if check is not None:
        probe = min(size, 64)
        try:
            seen, expected = window.read_memory(base, probe), check(base, probe)
        except EngineError as exc:
            window.close()
            raise LiveMemoryUnavailable(f"reading {path}: {exc.message}") from None
        if seen != expected:
            window.close()
            raise LiveMemoryUnavailable(f"{path} at {first:#x} does not hold what the gdbstub reads at {base:#x}")
    return window
