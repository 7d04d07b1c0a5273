"""binutils readings the target-map tests compare against (readelf -SW, nm)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


def readelf_sections(elf: Path) -> dict[str, tuple[int, int, str]]:
    """``readelf -SW``: name -> (address, size, flags) of every section."""
    out = subprocess.run(["arm-none-eabi-readelf", "-SW", str(elf)], check=True, capture_output=True, text=True).stdout
    sections = {}
    for line in out.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]{8})\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\S*)", line)
        if m and m[1] != "NULL":
            sections[m[1]] = (int(m[2], 16), int(m[3], 16), m[4])
    return sections


def nm_symbols(elf: Path) -> dict[str, int]:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], check=True, capture_output=True, text=True).stdout
    return {parts[2]: int(parts[0], 16) for parts in (l.split() for l in out.splitlines()) if len(parts) == 3}
