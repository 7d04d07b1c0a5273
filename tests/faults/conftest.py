"""Fixtures for the fault tests: tiny faulting firmware built here, and a check that every test
leaves no QEMU process behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .procs import qemu_children

FW = Path(__file__).resolve().parent / "fw"


def build_faultfw(out: Path, *defines: str) -> Path:
    subprocess.run(
        ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-O1", "-g", "-nostdlib", "-ffreestanding", *defines,
         "-T", str(FW / "faultfw.ld"), str(FW / "faultfw.c"), "-o", str(out)],
        check=True, capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def hang_elf(tmp_path_factory) -> Path:
    return build_faultfw(tmp_path_factory.mktemp("hang") / "hang.elf", "-DFAULT_HANG")


@pytest.fixture(scope="session")
def fault_elf(tmp_path_factory) -> Path:
    # 0x30000000: between SRAM and the peripherals, mapped by no bus on netduinoplus2
    return build_faultfw(tmp_path_factory.mktemp("fault") / "fault.elf", "-DFAULT_WRITE", "-DFAULT_ADDRESS=0x30000000u")


@pytest.fixture(autouse=True)
def no_emulator_left():
    before = set(qemu_children())
    yield
    left = [p for p in qemu_children() if p not in before]
    assert left == [], f"QEMU processes left behind: {left}"
