"""Fixtures of the capture tests: the patched hooks' own test firmware (tests/capture/fw), built on demand."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

FW_DIR = Path(__file__).with_name("fw")


@pytest.fixture(scope="session")
def hookfw(tmp_path_factory) -> Path:
    """tests/capture/fw/hookfw.c built with arm-none-eabi-gcc and newlib-nano (newlib's malloc family, an
    allocating interrupt handler, a function whose prologue cannot be moved)."""
    out = tmp_path_factory.mktemp("hookfw") / "hookfw.elf"
    subprocess.run(
        ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft", "-O1", "-g", "-std=gnu11", "-Wall",
         "-Wextra", "-Werror", "-nostartfiles", "--specs=nano.specs", "-T", str(FW_DIR / "hookfw.ld"), "-o", str(out),
         str(FW_DIR / "hookfw.c"), "-lc", "-lgcc"],
        check=True, capture_output=True, text=True,
    )
    return out
