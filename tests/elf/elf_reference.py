"""Parsers for the reference tools' output (binutils readelf, nm, objdump, addr2line).

The tests compare memhil.elf with these, so nothing here uses memhil.elf itself.
"""

from __future__ import annotations

import re
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from memhil.errors import ToolMissingError

SRC = Path(__file__).resolve().parent / "src"


def tool(name: str) -> str:
    if name == "qemu-system-arm":  # the QEMU under test (MEMHIL_QEMU, as the engine takes it)
        name = os.environ.get("MEMHIL_QEMU") or name
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(name, package="gcc-arm-none-eabi" if name.startswith("arm-") else name)
    return path


def run(*argv: str) -> str:
    return subprocess.run([tool(argv[0]), *argv[1:]], check=True, capture_output=True, text=True).stdout


@dataclass
class FdeRows:
    """One FDE of ``readelf --debug-dump=frames-interp``: rows of (loc, cfa offset from r13, {reg: offset})."""

    lo: int
    hi: int
    rows: list[tuple[int, int, dict[str, int]]] = field(default_factory=list)

    def row(self, pc: int) -> tuple[int, dict[str, int]]:
        best = (0, {})  # CIE initial rule (CFA = r13 + 0, lr unsaved) when the FDE has no rows
        for loc, cfa, regs in self.rows:
            if loc <= pc:
                best = (cfa, regs)
        return best


def cfi_table(elf: Path) -> list[FdeRows]:
    fdes: list[FdeRows] = []
    cols: list[str] = []
    for line in run("arm-none-eabi-readelf", "--debug-dump=frames-interp", str(elf)).splitlines():
        m = re.search(r"FDE cie=\w+ pc=([0-9a-f]+)\.\.([0-9a-f]+)", line)
        if m:
            fdes.append(FdeRows(int(m.group(1), 16), int(m.group(2), 16)))
            cols = []
            continue
        if line.strip().startswith("LOC"):
            cols = line.split()[2:]
            continue
        m = re.match(r"^([0-9a-f]{8}) r13\+(\d+)\s*(.*)$", line)
        if m and fdes and cols:
            regs = {}
            for name, value in zip(cols, m.group(3).split()):
                if value.startswith("c-"):
                    regs[name] = -int(value[2:])
            fdes[-1].rows.append((int(m.group(1), 16), int(m.group(2)), regs))
    return fdes


def call_sites(elf: Path) -> dict[tuple[str, str], list[int]]:
    """(caller, callee) -> addresses of the ``bl`` instructions, from ``objdump -d``."""
    out: dict[tuple[str, str], list[int]] = {}
    caller = ""
    for line in run("arm-none-eabi-objdump", "-d", str(elf)).splitlines():
        m = re.match(r"^[0-9a-f]+ <(\w+)>:", line)
        if m:
            caller = m.group(1)
            continue
        m = re.match(r"^\s*([0-9a-f]+):\s+(?:[0-9a-f]{4} ?)+\s+bl\s+[0-9a-f]+ <(\w+)>", line)
        if m:
            out.setdefault((caller, m.group(2)), []).append(int(m.group(1), 16))
    return out


def nm_symbols(elf: Path) -> dict[str, tuple[int, int, str]]:
    """name -> (address, size, nm type letter) for sized symbols."""
    out = {}
    for line in run("arm-none-eabi-nm", "-S", str(elf)).splitlines():
        parts = line.split()
        if len(parts) == 4:
            out[parts[3]] = (int(parts[0], 16), int(parts[1], 16), parts[2])
    return out


def addr2line(elf: Path, addrs: list[int]) -> dict[int, list[tuple[str, str | None, int | None]]]:
    """address -> [(function, file, line), ...] innermost first, from ``addr2line -a -f -i``."""
    text = run("arm-none-eabi-addr2line", "-a", "-f", "-i", "-e", str(elf), *[hex(a) for a in addrs])
    result: dict[int, list[tuple[str, str | None, int | None]]] = {}
    lines = text.splitlines()
    i = 0
    current = 0
    while i < len(lines):
        if lines[i].startswith("0x"):
            current = int(lines[i], 16)
            result[current] = []
            i += 1
            continue
        func, loc = lines[i], lines[i + 1]
        loc = re.sub(r" \(discriminator \d+\)$", "", loc)
        file, _, line = loc.rpartition(":")
        result[current].append((func, None if file == "??" else file, int(line) if line.isdigit() and line != "0" else None))
        i += 2
    return result


def readelf_build_id(elf: Path) -> str | None:
    m = re.search(r"Build ID: ([0-9a-f]+)", run("arm-none-eabi-readelf", "-n", str(elf)))
    return m.group(1) if m else None


def readelf_loads(elf: Path) -> list[tuple[int, int, int, int, int]]:
    """PT_LOAD rows of ``readelf -l -W``: (offset, vaddr, paddr, filesz, memsz)."""
    rows = []
    for line in run("arm-none-eabi-readelf", "-l", "-W", str(elf)).splitlines():
        parts = line.split()
        if parts and parts[0] == "LOAD":
            rows.append(tuple(int(p, 16) for p in parts[1:6]))
    return rows  # type: ignore[return-value]


def source_line(needle: str) -> int:
    """1-based line number of the first line of tests/elf/src/app.c containing ``needle``."""
    src = (SRC / "app.c").read_text().splitlines()
    for number, text in enumerate(src, 1):
        if needle in text:
            return number
    raise LookupError(needle)
