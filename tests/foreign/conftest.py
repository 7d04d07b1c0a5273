"""Foreign-style firmware (not memhil's firmware/ tree), built here, and a session that runs one to its parking point."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fwbuild import build_firmware, build_host  # noqa: E402


@pytest.fixture(scope="session")
def foreign_elf(tmp_path_factory):
    """``foreign_elf(name) -> Path`` of ``src/<name>.c`` built for the STM32F405 (once per name)."""
    out = tmp_path_factory.mktemp("foreign")
    built: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in built:
            built[name] = build_firmware(name, out)
        return built[name]

    return get


@pytest.fixture(scope="session")
def foreign_host(tmp_path_factory):
    """``foreign_host(name) -> Path`` of ``src/<name>.c`` built for the host."""
    out = tmp_path_factory.mktemp("foreign_host")
    return lambda name: build_host(name, out)
