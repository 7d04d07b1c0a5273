"""Fixtures for the firmware tests: the allocator built for the host (``make -C firmware host``) loaded with ctypes."""

from __future__ import annotations

import ctypes

import pytest

from fw_hostlib import Pool, build_host, load


@pytest.fixture(scope="session")
def host_libs() -> dict[str, ctypes.CDLL]:
    build_host()
    return {c: load(c) for c in ("debug", "release")}


@pytest.fixture(params=["debug", "release"])
def pool(request, host_libs) -> Pool:
    lib = host_libs[request.param]
    ctypes.c_uint32.in_dll(lib, "g_memhil_cur_task").value = 0
    (ctypes.c_uint32 * 33).in_dll(lib, "g_moduleMemUsedSize")[:] = [0] * 33
    return Pool(lib, request.param)
