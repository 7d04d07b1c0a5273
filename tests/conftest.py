"""Fixtures shared by every test area. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE_DIR = ROOT / "firmware"
_build_lock = threading.Lock()
_built = False


def firmware_path(app: str, config: str = "debug", board: str = "stm32f4") -> Path:
    """Path of a scenario ELF, building the firmware (``make -C firmware``) once if it is missing."""
    global _built
    path = FIRMWARE_DIR / "build" / board / config / f"{app}.elf"
    if not path.exists() and not _built:
        with _build_lock:
            subprocess.run(["make", "-C", str(FIRMWARE_DIR), "-j2"], check=True, capture_output=True)
            _built = True
    if not path.exists():
        raise FileNotFoundError(f"firmware {path} was not built by `make -C firmware`")
    return path


@pytest.fixture(scope="session")
def firmware():
    """``firmware(app, config='debug', board='stm32f4') -> Path`` of a built scenario ELF."""
    return firmware_path


@pytest.fixture(scope="session")
def platform():
    from memhil.platform import Platform

    return Platform.load("stm32f4")
