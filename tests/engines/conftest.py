"""Fixtures for the engine tests: a throwaway firmware (minifw), a fake gdbstub and QEMU engines
that are always stopped."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def minifw(tmp_path_factory) -> Path:
    """The engine tests' own small firmware (same contract as firmware/: banner, uptime, barrier)."""
    out = tmp_path_factory.mktemp("minifw") / "minifw.elf"
    subprocess.run(
        ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-O1", "-g", "-nostdlib", "-ffreestanding",
         "-T", str(HERE / "minifw" / "minifw.ld"), str(HERE / "minifw" / "minifw.c"), "-o", str(out)],
        check=True, capture_output=True,
    )
    return out


@pytest.fixture
def qemu_engine():
    """Factory of QemuEngine objects, all stopped at teardown whatever the test did."""
    from memhil.engines.qemu import QemuEngine

    engines: list[QemuEngine] = []

    def make(**options) -> QemuEngine:
        engine = QemuEngine(**options)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.stop()
