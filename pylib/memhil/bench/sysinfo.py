"""The machine and the tool versions a benchmark ran on (so figures from different runs can be compared)."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import memhil


def machine() -> dict[str, object]:
    """Cores (usable by this process and online), CPU model from ``/proc/cpuinfo``, memory, kernel."""
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_mb = None
    try:
        match = re.search(r"MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text())
        mem_mb = round(int(match.group(1)) / 1024) if match else None
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cores": usable, "cpu_count": os.cpu_count(), "cpu_model": model or platform.processor() or "unknown",
            "memory_mb": mem_mb, "kernel": platform.release(), "arch": platform.machine()}


def _first_line(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def versions() -> dict[str, str | None]:
    """QEMU (the one ``MEMHIL_QEMU`` selects, else ``qemu-system-arm`` on PATH), arm-none-eabi-gcc, Python and
    memhil versions (None when a tool is missing)."""
    qemu_bin = os.environ.get("MEMHIL_QEMU") or "qemu-system-arm"
    qemu = _first_line([qemu_bin, "--version"])
    gcc = _first_line(["arm-none-eabi-gcc", "--version"])
    return {
        "qemu": qemu,
        "qemu_binary": shutil.which(qemu_bin) or qemu_bin,
        "arm_none_eabi_gcc": gcc,
        "python": sys.version.split()[0],
        "memhil": memhil.__version__,
    }
