"""Property test: random alloc/free/realloc/align sequences against a Python model; after every step the pool passes
LOS_MemIntegrityCheck and the module totals equal the model's exactly."""

from __future__ import annotations

import ctypes

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fw_hostlib import Pool

MODULES = 6

op = st.one_of(
    st.tuples(st.just("malloc"), st.integers(1, 3000), st.integers(0, MODULES - 1)),
    st.tuples(st.just("align"), st.integers(1, 1000), st.sampled_from([8, 16, 64, 128, 1024]),
              st.integers(0, MODULES - 1)),
    st.tuples(st.just("free"), st.integers(0, 10_000)),
    st.tuples(st.just("realloc"), st.integers(0, 10_000), st.integers(0, 3000)),
)


def _node_size(pool: Pool, ptr: int) -> int:
    head = pool.head
    gap = ctypes.c_uint32.from_address(ptr - 4).value
    node = ptr - head - ((gap & 0x3FFFFFFF) if gap & 0x40000000 else 0)
    size_and_flag = ctypes.c_uint32.from_address(node + _size_off(pool)).value
    return size_and_flag & 0x3FFFFFFF


def _size_off(pool: Pool) -> int:
    # sizeAndFlag is the last member: at head-4 on Cortex-M, at head-8 on LP64 hosts (tail padding).
    return pool.head - 8 if ctypes.sizeof(ctypes.c_void_p) == 8 else pool.head - 4


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(op, max_size=40))
def test_random_sequences_match_model(host_libs, ops):
    for config in ("debug", "release"):
        lib = host_libs[config]
        (ctypes.c_uint32 * 33).in_dll(lib, "g_moduleMemUsedSize")[:] = [0] * 33
        pool = Pool(lib, config, size=16 * 1024)
        live: dict[int, tuple[int, int, bytes]] = {}  # ptr -> (module, node size, content)
        for step in ops:
            kind = step[0]
            if kind == "malloc":
                _, size, module = step
                p = lib.LOS_MemMalloc(pool.addr, size, module)
                if p:
                    data = bytes([len(live) & 0xFF]) * min(size, 16)
                    ctypes.memmove(p, data, len(data))
                    live[p] = (module, _node_size(pool, p), data)
            elif kind == "align":
                _, size, boundary, module = step
                p = lib.LOS_MemMallocAlign(pool.addr, size, boundary, module)
                if p:
                    assert p % boundary == 0
                    live[p] = (module, _node_size(pool, p), b"")
            elif kind == "free" and live:
                p = sorted(live)[step[1] % len(live)]
                module = live.pop(p)[0]
                assert lib.LOS_MemMfree(pool.addr, p, module) == 0
            elif kind == "realloc" and live:
                p = sorted(live)[step[1] % len(live)]
                module, _, data = live[p]
                q = lib.LOS_MemMrealloc(pool.addr, p, step[2], module)
                if step[2] == 0:
                    assert q is None
                    del live[p]
                elif q:
                    del live[p]
                    keep = data[: step[2]]
                    assert ctypes.string_at(q, len(keep)) == keep
                    live[q] = (module, _node_size(pool, q), keep)
            assert lib.LOS_MemIntegrityCheck(pool.addr) == 0, pool.console()
            for m in range(MODULES):
                expected = sum(n for (mod, n, _) in live.values() if mod == m)
                assert lib.LOS_MemMusedGet(m) == expected
            assert lib.LOS_MemUsedBlksGet(pool.addr) == len(live)
            assert lib.LOS_MemTotalUsedGet(pool.addr) == pool.head + sum(n for (_, n, _) in live.values())
