"""Helpers for the firmware tests: the host build of the allocator, loaded with ctypes."""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
HOST_BUILD = FIRMWARE / "build" / "host"
POOL_SIZE = 64 * 1024


def build_host() -> None:
    subprocess.run(["make", "-C", str(FIRMWARE), "host"], check=True, capture_output=True)


class Pool:
    """One LiteOS pool in host memory, with the library that manages it."""

    def __init__(self, lib: ctypes.CDLL, config: str, size: int = POOL_SIZE) -> None:
        self.lib = lib
        self.config = config
        self.buf = (ctypes.c_uint8 * size)()
        self.addr = ctypes.addressof(self.buf)
        self.size = size
        assert lib.LOS_MemInit(self.addr, size) == 0
        lib.host_set_sys_pool(self.addr)
        self.head = lib.host_node_head_size()
        self.console()  # drop earlier output

    def console(self) -> str:
        return self.lib.host_console_take().decode()

    def node_size(self, size: int) -> int:
        """LiteOS allocSize: ALIGN(size + head, sizeof(UINTPTR))."""
        return (size + self.head + 7) & ~7


def load(config: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(HOST_BUILD / config / "libmemhil_mem.so"))
    vp, u32 = ctypes.c_void_p, ctypes.c_uint32
    sig = {
        "LOS_MemInit": (u32, [vp, u32]),
        "LOS_MemAlloc": (vp, [vp, u32]),
        "LOS_MemAllocAlign": (vp, [vp, u32, u32]),
        "LOS_MemRealloc": (vp, [vp, vp, u32]),
        "LOS_MemFree": (u32, [vp, vp]),
        "LOS_MemMalloc": (vp, [vp, u32, u32]),
        "LOS_MemMallocAlign": (vp, [vp, u32, u32, u32]),
        "LOS_MemMfree": (u32, [vp, vp, u32]),
        "LOS_MemMrealloc": (vp, [vp, vp, u32, u32]),
        "LOS_MemMusedGet": (u32, [u32]),
        "LOS_MemTotalUsedGet": (u32, [vp]),
        "LOS_MemUsedBlksGet": (u32, [vp]),
        "LOS_MemFreeBlksGet": (u32, [vp]),
        "LOS_MemPoolSizeGet": (u32, [vp]),
        "LOS_MemIntegrityCheck": (u32, [vp]),
        "LOS_MemPeakGet": (u32, [vp]),
        "host_console_take": (ctypes.c_char_p, []),
        "host_node_head_size": (u32, []),
        "host_pool_overhead": (u32, []),
        "host_set_sys_pool": (None, [vp]),
        "OsMemUsedNodeShow": (None, [vp]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib
