"""Fixtures for the ELF/DWARF tests: small Cortex-M4 programs built with arm-none-eabi-gcc, and the
reference tools (addr2line, nm, readelf, objdump) they are compared with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from elf_reference import SRC, run

CFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-O1", "-nostdlib", "-ffreestanding", "-T", str(SRC / "link.ld")]
SOURCES = [str(SRC / "app.c"), str(SRC / "startup.c")]


@dataclass(frozen=True)
class Built:
    """Paths of the test program in its variants."""

    app: Path  # -g (DWARF 5), GNU build-id
    nobuildid: Path  # no build-id note: identity falls back to a hash
    stripped: Path  # arm-none-eabi-strip --strip-debug: symbols, no DWARF
    bare: Path  # arm-none-eabi-strip (all): no symbols, no DWARF
    dwarf: dict[int, Path]  # DWARF version -> ELF (-gdwarf-N -gstrict-dwarf)
    workdir: Path


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    out = tmp_path_factory.mktemp("elf")

    def cc(name: str, *extra: str) -> Path:
        path = out / name
        run("arm-none-eabi-gcc", *CFLAGS, *extra, *SOURCES, "-o", str(path))
        return path

    app = cc("app.elf", "-g", "-Wl,--build-id")
    nobuildid = cc("nobuildid.elf", "-g", "-Wl,--build-id=none")
    stripped = out / "stripped.elf"
    run("arm-none-eabi-strip", "--strip-debug", "-o", str(stripped), str(app))
    bare = out / "bare.elf"
    run("arm-none-eabi-strip", "-o", str(bare), str(app))
    dwarf = {v: cc(f"dwarf{v}.elf", f"-gdwarf-{v}", "-gstrict-dwarf") for v in (2, 3, 4)}
    dwarf[5] = app
    return Built(app, nobuildid, stripped, bare, dwarf, out)
