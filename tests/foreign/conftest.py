"""Foreign-style firmware (not memhil's firmware/ tree), built here, and a session that runs one to its parking point."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fwbuild import build_firmware, build_host  # noqa: E402


@pytest.fixture(scope="session")
def foreign_elf(tmp_path_factory):
    """``foreign_elf(name, libc="nano", heap=None, defines=()) -> Path`` of ``src/<name>.c`` built for the STM32F405
    (once each; ``heap`` is one of fwbuild.HEAPS)."""
    out = tmp_path_factory.mktemp("foreign")
    built: dict[tuple, Path] = {}

    def get(name: str, libc: str = "nano", heap: str | None = None, defines: tuple[str, ...] = ()) -> Path:
        key = (name, libc, heap, tuple(defines))
        if key not in built:
            built[key] = build_firmware(name, out, libc=libc, heap=heap, defines=tuple(defines))
        return built[key]

    return get


@pytest.fixture(scope="session")
def foreign_host(tmp_path_factory):
    """``foreign_host(name) -> Path`` of ``src/<name>.c`` built for the host."""
    out = tmp_path_factory.mktemp("foreign_host")
    return lambda name: build_host(name, out)
