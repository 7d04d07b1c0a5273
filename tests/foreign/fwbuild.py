"""Build the foreign-style firmware of this directory (arm-none-eabi-gcc, newlib nano) and their host builds."""

from __future__ import annotations

import subprocess
from pathlib import Path

SRC = Path(__file__).resolve().parent / "src"
CFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-O1", "-g", "-ffunction-sections", "-fdata-sections", "-fno-builtin-malloc",
          "-fno-builtin-free"]


#: C libraries: newlib nano (--specs=nano.specs), newlib's full malloc, picolibc (Debian's picolibc-arm-none-eabi)
LIBC_FLAGS = {"nano": ["--specs=nano.specs"], "full": [], "picolibc": ["--specs=picolibc.specs", "-DPICOLIBC"]}


def build_firmware(name: str, out_dir: Path, *, heap4: bool = False, libc: str = "nano") -> Path:
    """``src/<name>.c`` with start-up, linked against ``libc``'s malloc (:data:`LIBC_FLAGS`); with ``heap4``,
    heap4.c's heap_4-style pvPortMalloc/vPortFree serve the FreeRTOS-style calls; returns the ELF."""
    out = out_dir / f"{name}{'_heap4' if heap4 else ''}_{libc}.elf"
    extra = ["-DHEAP4", str(SRC / "heap4.c")] if heap4 else []
    specs = LIBC_FLAGS[libc]
    subprocess.run(
        ["arm-none-eabi-gcc", *CFLAGS, *specs, "-nostartfiles", "-Wl,--gc-sections", "-T", str(SRC / "link.ld"),
         str(SRC / "startup.c"), str(SRC / f"{name}.c"), *extra, "-o", str(out)],
        check=True, capture_output=True, text=True,
    )
    return out


def build_host(name: str, out_dir: Path) -> Path:
    """``src/<name>.c`` for the host (``-DHOST``), for valgrind memcheck."""
    out = out_dir / f"{name}_host"
    subprocess.run(["gcc", "-DHOST", "-O1", "-g", "-fno-builtin-malloc", "-fno-builtin-free", str(SRC / f"{name}.c"), "-o", str(out)],
                   check=True, capture_output=True, text=True)
    return out
