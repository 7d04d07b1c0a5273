"""Fixtures for the engine tests: a throwaway firmware (minifw), a fake gdbstub and QEMU engines
that are always stopped."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def build_minifw(out: Path, *defines: str, ram_origin: int = 0x20000000, ram_kib: int = 128) -> Path:
    script = (HERE / "minifw" / "minifw.ld").read_text().replace("0x20000000", hex(ram_origin)).replace("128K", f"{ram_kib}K")
    (out.parent / "minifw.ld").write_text(script)
    subprocess.run(
        ["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-O1", "-g", "-nostdlib", "-ffreestanding", *defines,
         "-T", str(out.parent / "minifw.ld"), str(HERE / "minifw" / "minifw.c"), "-o", str(out)],
        check=True, capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def minifw(tmp_path_factory) -> Path:
    """The engine tests' own small firmware (same contract as firmware/: banner, uptime, barrier),
    with a fake LOS_MemMalloc(g_pool, 24, 7) called every 10 ms of virtual time."""
    return build_minifw(tmp_path_factory.mktemp("minifw") / "minifw.elf")


@pytest.fixture(scope="session")
def minifw_no_barrier(tmp_path_factory) -> Path:
    """minifw without memhil_time_barrier: the engine must fall back to polling uptime."""
    return build_minifw(tmp_path_factory.mktemp("minifw_nb") / "minifw.elf", "-DMINIFW_NO_BARRIER")


@pytest.fixture(scope="session")
def minifw_freertos_tick(tmp_path_factory) -> Path:
    """minifw with a FreeRTOS-style 32-bit ``xTickCount`` at 1 kHz and no memhil symbol (no uptime, no barrier)."""
    return build_minifw(tmp_path_factory.mktemp("minifw_frt") / "minifw.elf", "-DMINIFW_FREERTOS_TICK")


@pytest.fixture(scope="session")
def minifw_thread_tick(tmp_path_factory) -> Path:
    """FreeRTOS-style xTickCount, advanced by the main loop for the ticks its SysTick handler counted."""
    return build_minifw(tmp_path_factory.mktemp("minifw_thr") / "minifw.elf", "-DMINIFW_THREAD_TICK")


@pytest.fixture(scope="session")
def minifw_unknown_tick(tmp_path_factory) -> Path:
    """minifw whose only tick counter has a name memhil does not know (``s_board_ticks``)."""
    return build_minifw(tmp_path_factory.mktemp("minifw_unk") / "minifw.elf", "-DMINIFW_UNKNOWN_TICK")


@pytest.fixture(scope="session")
def minifw_outside_map(tmp_path_factory) -> Path:
    """minifw linked for RAM at 0x20030000: past the STM32F405's 128 KiB (inside QEMU 7.2's 192 KiB only)."""
    return build_minifw(tmp_path_factory.mktemp("minifw_big") / "minifw.elf", ram_origin=0x20030000, ram_kib=64)


@pytest.fixture(scope="session")
def minifw_ccm(tmp_path_factory) -> Path:
    """minifw with all its RAM (data, bss, stack) in the 64 KiB CCM at 0x10000000: on the board's map, but
    QEMU 7.2's netduinoplus2 does not model the CCM (QEMU 8.0 and later do)."""
    return build_minifw(tmp_path_factory.mktemp("minifw_ccm") / "minifw.elf", ram_origin=0x10000000, ram_kib=64)


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


@pytest.fixture
def started_engine(qemu_engine, firmware, platform):
    """``started_engine(app, config="debug", **engine_options) -> (engine, FirmwareInfo)``: a QemuEngine started on
    a project app (stopped at teardown, as every ``qemu_engine``)."""
    from memhil.engines.firmware import FirmwareInfo

    def make(app: str, config: str = "debug", **options):
        elf = firmware(app, config)
        engine = qemu_engine(**options)
        engine.start(platform, elf)
        return engine, FirmwareInfo.load(elf)

    return make
