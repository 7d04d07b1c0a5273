"""Foreign-style firmware (not memhil's firmware/ tree), built here, and a session that runs one to its parking point."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fwbuild import build_firmware, build_host  # noqa: E402


@pytest.fixture(scope="session")
def foreign_elf(tmp_path_factory):
    """``foreign_elf(name, heap4=False, libc="nano") -> Path`` of ``src/<name>.c`` built for the STM32F405 (once each)."""
    out = tmp_path_factory.mktemp("foreign")
    built: dict[tuple[str, bool, str], Path] = {}

    def get(name: str, heap4: bool = False, libc: str = "nano") -> Path:
        if (name, heap4, libc) not in built:
            built[(name, heap4, libc)] = build_firmware(name, out, heap4=heap4, libc=libc)
        return built[(name, heap4, libc)]

    return get


@pytest.fixture(scope="session")
def foreign_host(tmp_path_factory):
    """``foreign_host(name) -> Path`` of ``src/<name>.c`` built for the host."""
    out = tmp_path_factory.mktemp("foreign_host")
    return lambda name: build_host(name, out)
