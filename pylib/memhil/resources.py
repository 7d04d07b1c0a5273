"""The run's own cost: peak resident memory and page faults of the framework and its emulators.

Two sources, as seed 003 measures a process:

- ``getrusage(2)`` (POSIX): ``RUSAGE_SELF`` for this Python process, ``RUSAGE_CHILDREN`` for every
  child that has been waited for (an emulator counts once it has exited). On Linux ``ru_maxrss``
  is in KiB.
- ``/proc/<pid>/status`` (``VmHWM``, ``VmRSS``, kB) and ``/proc/<pid>/stat`` (fields 10 ``minflt``,
  12 ``majflt``, 14/15 ``utime``/``stime`` in clock ticks, proc(5)) for an emulator that still runs.
"""

from __future__ import annotations

import os
import resource
from dataclasses import asdict, dataclass
from pathlib import Path

from memhil.errors import EngineError

_PROC = Path("/proc")


@dataclass(frozen=True)
class Usage:
    """Resource use of one process (or of all waited-for children)."""

    source: str  # "self" | "children" | "pid <n>"
    peak_rss_mb: float
    minor_faults: int
    major_faults: int
    user_s: float
    system_s: float
    rss_mb: float | None = None  # current resident size, only for a live process

    def as_dict(self) -> dict:
        return asdict(self)

    def __sub__(self, before: "Usage") -> "Usage":
        """Faults and CPU time since ``before`` (peak RSS is a maximum, so it is kept, not subtracted)."""
        return Usage(self.source, self.peak_rss_mb, self.minor_faults - before.minor_faults, self.major_faults - before.major_faults,
                     self.user_s - before.user_s, self.system_s - before.system_s, self.rss_mb)

    def format(self) -> str:
        rss = f", now {self.rss_mb:.1f} MB" if self.rss_mb is not None else ""
        return (f"{self.source}: peak RSS {self.peak_rss_mb:.1f} MB{rss}, page faults {self.minor_faults} minor / "
                f"{self.major_faults} major, CPU {self.user_s:.2f} s user + {self.system_s:.2f} s system")


def _rusage(who: int, source: str) -> Usage:
    ru = resource.getrusage(who)
    return Usage(source, ru.ru_maxrss / 1024.0, ru.ru_minflt, ru.ru_majflt, ru.ru_utime, ru.ru_stime)


def self_usage() -> Usage:
    """This process (the framework): ``getrusage(RUSAGE_SELF)``."""
    return _rusage(resource.RUSAGE_SELF, "self")


def child_usage() -> Usage:
    """Every terminated and waited-for child (the emulators of finished runs): ``getrusage(RUSAGE_CHILDREN)``.

    Peak RSS is that of the largest child, not a sum (getrusage(2))."""
    return _rusage(resource.RUSAGE_CHILDREN, "children")


def process_usage(pid: int) -> Usage:
    """A running process (e.g. ``engine.process.pid``) from ``/proc/<pid>/status`` and ``/proc/<pid>/stat``."""
    if not isinstance(pid, int) or pid <= 0:
        raise EngineError(f"{pid!r} is not a process id", hint="pass the emulator's pid, e.g. engine.process.pid")
    base = _PROC / str(pid)
    try:
        status = (base / "status").read_text()
        stat = (base / "stat").read_text()
    except FileNotFoundError:
        raise EngineError(f"process {pid} is not running", hint="read the emulator's usage before it stops; after it, use child_usage()", pid=pid) from None
    except PermissionError:
        raise EngineError(f"no permission to read /proc/{pid}", hint="measure a process you started", pid=pid) from None
    return parse_proc(status, stat, pid)


def parse_proc(status: str, stat: str, pid: int) -> Usage:
    """:class:`Usage` from the text of ``/proc/<pid>/status`` and ``/proc/<pid>/stat`` (proc(5))."""
    fields: dict[str, str] = {}
    for line in status.splitlines():
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()

    def kb(name: str) -> float | None:
        value = fields.get(name)
        if value is None:
            return None
        try:
            return int(value.split()[0]) / 1024.0
        except (ValueError, IndexError):
            raise EngineError(f"/proc/{pid}/status has an unreadable {name}: {value!r}", hint="report this kernel's proc format", pid=pid) from None

    # comm (field 2) is in parentheses and may hold spaces: split after the last ')'
    close = stat.rfind(")")
    rest = stat[close + 2 :].split() if close >= 0 else []
    if len(rest) < 13:
        raise EngineError(f"/proc/{pid}/stat is too short ({len(rest)} fields after comm)", hint="the process may be a zombie; use child_usage()", pid=pid)
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    # rest[0] is field 3 (state): minflt is field 10, majflt 12, utime 14, stime 15
    minflt, majflt, utime, stime = int(rest[7]), int(rest[9]), int(rest[11]), int(rest[12])
    hwm = kb("VmHWM")
    return Usage(f"pid {pid}", hwm if hwm is not None else 0.0, minflt, majflt, utime / tick, stime / tick, kb("VmRSS"))


def engine_usage(engine: object) -> Usage | None:
    """The running emulator of an engine that exposes ``process.pid`` (QEMU does); None otherwise."""
    process = getattr(engine, "process", None)
    pid = getattr(process, "pid", None)
    if not isinstance(pid, int):
        return None
    return process_usage(pid)
