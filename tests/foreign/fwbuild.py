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


def build_firmware(name: str, out_dir: Path, *, libc: str = "nano", heap: str | None = None, defines: tuple[str, ...] = ()) -> Path:
    """``src/<name>.c`` with start-up, linked against ``libc``'s malloc (:data:`LIBC_FLAGS`); with ``heap`` (one of
    :data:`HEAPS`), src/<heap>.c's pvPortMalloc/vPortFree serve the FreeRTOS-style calls (``-DPORT_HEAP -D<HEAP>``);
    ``defines`` are more ``-D`` names. Returns the ELF."""
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


FIRMWARE = SRC.parents[2] / "firmware"
#: the host build of memhil's allocator (firmware/tests/host.mk: HOST_SRCS, the release config's options)
HOST_ALLOCATOR = ["kernel/mem/los_memory.c", "kernel/mem/los_memstat.c", "kernel/mem/los_memcheck.c", "kernel/mem/memhil_trace.c",
                  "kernel/lib/los_printf.c", "tests/host_port.c"]


def build_liteos_app(name: str, files: list[str], out_dir: Path, *, config: str = "debug") -> Path:
    """``files`` of src/ as app ``name`` of memhil's firmware tree (its Makefile, LiteOS-bestfit kernel and
    start-up, linked in a copy of the tree of symlinks under ``out_dir``); returns the ELF."""
    tree = out_dir / f"{name}_tree"
    if not tree.exists():
        tree.mkdir(parents=True)
        for part in ("Makefile", "arch", "drivers", "kernel", "shell"):
            (tree / part).symlink_to(FIRMWARE / part)
        app = tree / "apps" / name
        app.mkdir(parents=True)
        for f in files:
            (app / f).symlink_to(SRC / f)
    subprocess.run(["make", "-C", str(tree), "-j2", f"CONFIGS={config}", f"APPS={name}"], check=True, capture_output=True, text=True)
    return tree / "build" / "stm32f4" / config / f"{name}.elf"


def build_liteos_host(name: str, files: list[str], out_dir: Path) -> Path:
    """``files`` of src/ (``-DHOST``) with memhil's allocator built for the host, its pool annotated for valgrind
    memcheck (MEMHIL_VALGRIND), as firmware/tests/host.mk builds leak_demo's host run."""
    out = out_dir / f"{name}_host"
    subprocess.run(
        ["gcc", "-DHOST", "-DMEMHIL_VALGRIND", "-DLOSCFG_MEM_MUL_MODULE", "-std=gnu11", "-g", "-O0", "-fno-inline",
         f"-I{FIRMWARE / 'kernel' / 'include'}", f"-I{FIRMWARE / 'kernel' / 'mem'}", f"-I{SRC}",
         *(str(FIRMWARE / f) for f in HOST_ALLOCATOR), *(str(SRC / f) for f in files), "-o", str(out)],
        check=True, capture_output=True, text=True,
    )
    return out
