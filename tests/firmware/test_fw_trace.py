"""Trace ring (debug config, host build): one 40-byte record per public call, waits instead of overwriting."""

from __future__ import annotations

import ctypes

import pytest

from fw_hostlib import Pool


class Rec(ctypes.Structure):
    _fields_ = [("seq", ctypes.c_uint32), ("t_ms", ctypes.c_uint32), ("kind", ctypes.c_uint8),
                ("module", ctypes.c_uint8), ("task", ctypes.c_uint16), ("ptr", ctypes.c_uint32),
                ("old_ptr", ctypes.c_uint32), ("size", ctypes.c_uint32), ("node_size", ctypes.c_uint32),
                ("lr", ctypes.c_uint32 * 3)]


class Ring(ctypes.Structure):
    _fields_ = [("magic", ctypes.c_uint32), ("version", ctypes.c_uint16), ("rec_size", ctypes.c_uint16),
                ("capacity", ctypes.c_uint32), ("enabled", ctypes.c_uint32), ("head", ctypes.c_uint32),
                ("tail", ctypes.c_uint32), ("lost", ctypes.c_uint32)]


@pytest.fixture
def traced(host_libs):
    lib = host_libs["debug"]
    ring = Ring.in_dll(lib, "g_memhil_trace")
    recs = (Rec * ring.capacity).from_address(ctypes.addressof(ring) + ctypes.sizeof(Ring))
    pool = Pool(lib, "debug")
    ring.head = ring.tail = 0
    ring.enabled = 1
    yield pool, ring, recs
    ring.enabled = 0
    ctypes.c_void_p.in_dll(lib, "g_memhil_host_half_full").value = None


def test_ring_header(traced):
    _, ring, _ = traced
    assert (ring.magic, ring.version, ring.rec_size, ring.capacity) == (0x4D485452, 1, 40, 1024)
    assert ctypes.sizeof(Rec) == 40


def test_one_record_per_call(traced):
    pool, ring, recs = traced
    lib = pool.lib
    ctypes.c_uint32.in_dll(lib, "g_memhil_cur_task").value = 3
    p = lib.LOS_MemMalloc(pool.addr, 100, 5)
    q = lib.LOS_MemMrealloc(pool.addr, p, 300, 5)
    a = lib.LOS_MemAllocAlign(pool.addr, 64, 64)
    assert lib.LOS_MemMalloc(pool.addr, 0, 5) is None  # failed call: no record
    assert lib.LOS_MemFree(pool.addr, a) == 0
    assert lib.LOS_MemMrealloc(pool.addr, q, 0, 5) is None  # realloc to 0 -> a FREE record
    got = [(r.seq, r.kind, r.module, r.task, r.size) for r in recs[: ring.head]]
    # the plain API's record carries module 0xFF (untracked by module statistics); its node has module 0
    assert got == [(0, 1, 5, 3, 100), (1, 3, 5, 3, 300), (2, 4, 0xFF, 3, 64), (3, 2, 0, 3, 0), (4, 2, 5, 3, 0)]
    assert recs[1].ptr == q & 0xFFFFFFFF and recs[1].old_ptr == p & 0xFFFFFFFF
    assert recs[0].node_size == pool.node_size(100)


def test_disabled_writes_nothing(traced):
    pool, ring, _ = traced
    ring.enabled = 0
    assert pool.lib.LOS_MemAlloc(pool.addr, 16)
    assert ring.head == 0


def test_full_ring_waits_for_host(traced):
    pool, ring, recs = traced
    lib = pool.lib
    calls = []

    @ctypes.CFUNCTYPE(None)
    def drain():
        calls.append(ring.head - ring.tail)
        if ring.head - ring.tail >= ring.capacity:
            ring.tail = ring.head  # the host consumes everything

    ctypes.c_void_p.in_dll(lib, "g_memhil_host_half_full").value = ctypes.cast(drain, ctypes.c_void_p).value
    for _ in range(ring.capacity + 10):
        p = lib.LOS_MemAlloc(pool.addr, 8)
        assert lib.LOS_MemFree(pool.addr, p) == 0
    assert ring.lost == 0
    assert ring.head == 2 * (ring.capacity + 10)
    assert min(calls) == ring.capacity // 2
    assert max(calls) == ring.capacity  # it waited at full instead of overwriting
    last = recs[(ring.head - 1) % ring.capacity]
    assert last.seq == ring.head - 1
