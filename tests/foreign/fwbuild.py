"""Build the foreign-style firmware of this directory (arm-none-eabi-gcc, newlib nano) and their host builds."""

from __future__ import annotations

import subprocess
from pathlib import Path

SRC = Path(__file__).resolve().parent / "src"
CFLAGS = ["-mcpu=cortex-m4", "-mthumb", "-O1", "-g", "-ffunction-sections", "-fdata-sections", "-fno-builtin-malloc",
          "-fno-builtin-free"]


#: C libraries: newlib nano (--specs=nano.specs), newlib's full malloc, picolibc (Debian's picolibc-arm-none-eabi)
LIBC_FLAGS = {"nano": ["--specs=nano.specs"], "full": [], "picolibc": ["--specs=picolibc.specs", "-DPICOLIBC"]}


#: FreeRTOS heap schemes written as FreeRTOS writes them (src/heap<N>.c), for the FreeRTOS-style calls
HEAPS = ("heap1", "heap2", "heap4", "heap5")


def build_firmware(name: str, out_dir: Path, *, heap4: bool = False, libc: str = "nano", heap: str | None = None,
                   defines: tuple[str, ...] = ()) -> Path:
    """``src/<name>.c`` with start-up, linked against ``libc``'s malloc (:data:`LIBC_FLAGS`); with ``heap`` (one of
    :data:`HEAPS`; ``heap4=True`` is ``heap="heap4"``), src/<heap>.c's pvPortMalloc/vPortFree serve the FreeRTOS-style
    calls (``-DPORT_HEAP -D<HEAP>``); ``defines`` are more ``-D`` names. Returns the ELF."""
    heap = heap or ("heap4" if heap4 else None)
    if heap is not None and heap not in HEAPS:
        raise ValueError(f"unknown heap {heap!r}: use one of {', '.join(HEAPS)}")
    out = out_dir / f"{name}{'_' + heap if heap else ''}{''.join('_' + d.lower() for d in defines)}_{libc}.elf"
    extra = ["-DPORT_HEAP", f"-D{heap.upper()}", str(SRC / f"{heap}.c")] if heap else []
    extra += [f"-D{d}" for d in defines]
    specs = LIBC_FLAGS[libc]
    subprocess.run(
        ["arm-none-eabi-gcc", *CFLAGS, *specs, "-nostartfiles", "-Wl,--gc-sections", "-T", str(SRC / "link.ld"), "-I", str(SRC),
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
