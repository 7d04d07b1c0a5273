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
def los_options_elf(tmp_path_factory):
    """``los_options_elf(defines) -> Path``: tests/heap/liteos_options/los_options.c (LiteOS 5.0.0's allocator
    structures) compiled for Cortex-M4 with those ``LOSCFG_`` defines, once per set of defines."""
    src = ROOT / "tests" / "heap" / "liteos_options" / "los_options.c"
    out = tmp_path_factory.mktemp("los_options")
    built: dict[tuple[str, ...], Path] = {}

    def build(defines) -> Path:
        key = tuple(defines)
        if key not in built:
            elf = out / f"los_{len(built)}.elf"
            subprocess.run(
                ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-O0", "-g", "-nostdlib", "-Wl,-e,Reset_Handler",
                 "-Wl,-Ttext=0x08000000", "-Wl,-Tbss=0x20000000", *(f"-D{d}" for d in key), str(src), "-o", str(elf)],
                check=True, capture_output=True, text=True,
            )
            built[key] = elf
        return built[key]

    return build


@pytest.fixture(scope="session")
def firmware():
    """``firmware(app, config='debug', board='stm32f4') -> Path`` of a built scenario ELF."""
    return firmware_path


@pytest.fixture(scope="session")
def platform():
    from memhil.platform import Platform

    return Platform.load("stm32f4")
