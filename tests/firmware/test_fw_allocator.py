"""The bestfit allocator built for the host: every API, module statistics, and the bad inputs of issue 3."""

from __future__ import annotations

import ctypes

MAX_MODULE = 0x20


def test_seed_example_counts_whole_node(pool):
    p = pool.lib.LOS_MemMalloc(pool.addr, 0x10, 0)
    assert p
    assert pool.lib.LOS_MemMusedGet(0) == pool.node_size(0x10)
    q = pool.lib.LOS_MemMalloc(pool.addr, 0x10, 1)
    assert pool.lib.LOS_MemMusedGet(1) == pool.node_size(0x10)
    assert pool.lib.LOS_MemMfree(pool.addr, p, 0) == 0
    assert pool.lib.LOS_MemMfree(pool.addr, q, 1) == 0
    assert pool.lib.LOS_MemMusedGet(0) == 0 and pool.lib.LOS_MemMusedGet(1) == 0


def test_init_and_totals(pool):
    lib = pool.lib
    assert lib.LOS_MemPoolSizeGet(pool.addr) == pool.size
    # Only the end node is used after init; one free node spans the rest.
    assert lib.LOS_MemTotalUsedGet(pool.addr) == pool.head
    assert lib.LOS_MemUsedBlksGet(pool.addr) == 0
    assert lib.LOS_MemFreeBlksGet(pool.addr) == 1
    p = lib.LOS_MemAlloc(pool.addr, 100)
    assert lib.LOS_MemTotalUsedGet(pool.addr) == pool.head + pool.node_size(100)
    assert lib.LOS_MemUsedBlksGet(pool.addr) == 1
    assert lib.LOS_MemFree(pool.addr, p) == 0
    assert lib.LOS_MemTotalUsedGet(pool.addr) == pool.head
    assert lib.LOS_MemFreeBlksGet(pool.addr) == 1  # merged back into one node
    assert lib.LOS_MemPeakGet(pool.addr) == pool.head + pool.node_size(100)


def test_free_merges_neighbours(pool):
    lib = pool.lib
    a, b, c = (lib.LOS_MemAlloc(pool.addr, 64) for _ in range(3))
    assert b - a == pool.node_size(64) and c - b == pool.node_size(64)
    assert lib.LOS_MemFree(pool.addr, a) == 0
    assert lib.LOS_MemFree(pool.addr, c) == 0
    assert lib.LOS_MemFreeBlksGet(pool.addr) == 2  # a alone; c merged with the tail
    assert lib.LOS_MemFree(pool.addr, b) == 0
    assert lib.LOS_MemFreeBlksGet(pool.addr) == 1
    assert lib.LOS_MemIntegrityCheck(pool.addr) == 0


def test_best_fit_class_reuses_freed_block(pool):
    lib = pool.lib
    a = lib.LOS_MemAlloc(pool.addr, 200)
    guard = lib.LOS_MemAlloc(pool.addr, 16)
    assert lib.LOS_MemFree(pool.addr, a) == 0
    again = lib.LOS_MemAlloc(pool.addr, 200)
    assert again == a
    assert guard


def test_alloc_align(pool):
    lib = pool.lib
    for boundary in (8, 16, 32, 64, 256):
        p = lib.LOS_MemAllocAlign(pool.addr, 40, boundary)
        assert p and p % boundary == 0
        ctypes.memset(p, 0xAB, 40)
        assert lib.LOS_MemIntegrityCheck(pool.addr) == 0
        assert lib.LOS_MemFree(pool.addr, p) == 0
    assert lib.LOS_MemUsedBlksGet(pool.addr) == 0


def test_malloc_align_module(pool):
    lib = pool.lib
    p = lib.LOS_MemMallocAlign(pool.addr, 64, 32, 5)
    assert p % 32 == 0
    assert lib.LOS_MemMusedGet(5) >= pool.node_size(64)
    assert lib.LOS_MemMfree(pool.addr, p, 5) == 0
    assert lib.LOS_MemMusedGet(5) == 0


def test_realloc_in_place_and_moving(pool):
    lib = pool.lib
    p = lib.LOS_MemAlloc(pool.addr, 40)
    ctypes.memmove(p, b"0123456789", 10)
    q = lib.LOS_MemRealloc(pool.addr, p, 200)  # grows into the free successor
    assert q == p
    blocker = lib.LOS_MemAlloc(pool.addr, 16)
    r = lib.LOS_MemRealloc(pool.addr, q, 2000)  # successor used: moves
    assert r != q and ctypes.string_at(r, 10) == b"0123456789"
    s = lib.LOS_MemRealloc(pool.addr, r, 8)  # shrinks in place
    assert s == r
    assert lib.LOS_MemRealloc(pool.addr, s, 0) is None  # size 0 frees
    assert lib.LOS_MemFree(pool.addr, blocker) == 0
    assert lib.LOS_MemUsedBlksGet(pool.addr) == 0
    n = lib.LOS_MemRealloc(pool.addr, None, 24)  # NULL ptr allocates
    assert n and lib.LOS_MemUsedBlksGet(pool.addr) == 1


def test_mrealloc_moves_module_charge(pool):
    lib = pool.lib
    p = lib.LOS_MemMalloc(pool.addr, 40, 7)
    q = lib.LOS_MemMrealloc(pool.addr, p, 200, 7)
    assert q
    assert lib.LOS_MemMusedGet(7) == pool.node_size(200)
    assert lib.LOS_MemMrealloc(pool.addr, q, 0, 7) is None
    assert lib.LOS_MemMusedGet(7) == 0


def test_bad_sizes_and_pools(pool):
    lib = pool.lib
    assert lib.LOS_MemInit(None, 4096) == 1
    assert lib.LOS_MemInit(pool.addr, 64) == 1  # below the minimum pool size
    assert lib.LOS_MemAlloc(None, 16) is None
    assert lib.LOS_MemAlloc(pool.addr, 0) is None
    assert lib.LOS_MemAlloc(pool.addr, 0x80000010) is None
    assert lib.LOS_MemAlloc(pool.addr, 0x40000010) is None
    assert lib.LOS_MemAlloc(pool.addr, pool.size) is None
    for boundary in (0, 3, 24, 4 if ctypes.sizeof(ctypes.c_void_p) == 8 else 2):
        assert lib.LOS_MemAllocAlign(pool.addr, 64, boundary) is None
    assert lib.LOS_MemRealloc(pool.addr, None, 0x80000000) is None
    assert lib.LOS_MemUsedBlksGet(pool.addr) == 0
    assert lib.LOS_MemIntegrityCheck(pool.addr) == 0
    assert lib.LOS_MemIntegrityCheck(None) == 1
    assert lib.LOS_MemPoolSizeGet(None) == 0xFFFFFFFF


def test_invalid_module_id(pool):
    lib = pool.lib
    assert lib.LOS_MemMalloc(pool.addr, 16, MAX_MODULE + 1) is None
    assert "error module ID input!\n" in pool.console()
    assert lib.LOS_MemMusedGet(MAX_MODULE + 1) == 0xFFFFFFFF
    p = lib.LOS_MemMalloc(pool.addr, 16, MAX_MODULE)
    assert p and lib.LOS_MemMusedGet(MAX_MODULE) == pool.node_size(16)
    assert lib.LOS_MemMfree(pool.addr, p, MAX_MODULE + 1) == 1
    assert lib.LOS_MemMallocAlign(pool.addr, 16, 32, 99) is None
    assert lib.LOS_MemMrealloc(pool.addr, p, 64, 99) is None
    assert lib.LOS_MemMusedGet(MAX_MODULE) == pool.node_size(16)


def test_foreign_interior_and_double_free(pool):
    lib = pool.lib
    outside = (ctypes.c_uint64 * 8)()
    assert lib.LOS_MemFree(pool.addr, ctypes.addressof(outside) + 16) == 1
    assert lib.LOS_MemRealloc(pool.addr, ctypes.addressof(outside) + 16, 64) is None
    assert lib.LOS_MemFree(pool.addr, None) == 1
    p = lib.LOS_MemAlloc(pool.addr, 64)
    assert lib.LOS_MemFree(pool.addr, p + 8) == 1
    assert lib.LOS_MemFree(pool.addr, p + 1) == 1  # misaligned
    assert lib.LOS_MemFree(pool.addr, p) == 0
    assert lib.LOS_MemFree(pool.addr, p) == 1  # double free
    assert lib.LOS_MemRealloc(pool.addr, p, 32) is None
    assert "double free or foreign pointer" in pool.console()
    assert lib.LOS_MemIntegrityCheck(pool.addr) == 0
    assert lib.LOS_MemUsedBlksGet(pool.addr) == 0


def test_free_in_wrong_module_charges_owner(pool):
    lib = pool.lib
    p = lib.LOS_MemMalloc(pool.addr, 32, 1)
    assert lib.LOS_MemMfree(pool.addr, p, 2) == 0
    out = pool.console()
    assert f"node[0x{p:x}] alloced in module 1, but free in module 2\n node's taskId: 0x0\n" in out
    assert lib.LOS_MemMusedGet(1) == 0 and lib.LOS_MemMusedGet(2) == 0
    assert lib.LOS_MemMfree(pool.addr, p, 1) == 1  # already freed


def test_task_id_recorded(pool):
    lib = pool.lib
    ctypes.c_uint32.in_dll(lib, "g_memhil_cur_task").value = 9
    p = lib.LOS_MemAlloc(pool.addr, 16)
    lib.LOS_MemTaskIdGet.restype = ctypes.c_uint32
    lib.LOS_MemTaskIdGet.argtypes = [ctypes.c_void_p]
    assert lib.LOS_MemTaskIdGet(p) == 9


def test_integrity_check_detects_corruption(pool):
    lib = pool.lib
    a = lib.LOS_MemAlloc(pool.addr, 32)
    b = lib.LOS_MemAlloc(pool.addr, 32)
    assert b
    ctypes.memset(a, 0x41, 32 + 8)  # overflow into the next node header
    assert lib.LOS_MemIntegrityCheck(pool.addr) == 1
    assert "broken node head" in pool.console()
    lib.OsMemUsedNodeShow(pool.addr)
    assert "LOS_MemIntegrityCheck error\n" in pool.console()


def test_memused_rows(pool):
    lib = pool.lib
    ptrs = [lib.LOS_MemAlloc(pool.addr, 24) for _ in range(3)]
    lib.OsMemUsedNodeShow(pool.addr)
    lines = pool.console().splitlines()
    header = "node        " + ("".join(f"    LR[{i}]   " for i in range(3)) if pool.config == "debug" else "")
    assert lines[0] == header
    rows = [int(line.split(":")[0], 16) for line in lines[1:]]
    assert rows == [p - pool.head for p in ptrs]
