from dataclasses import dataclass
from pathlib import Path

import pytest

from memhil.errors import PlatformError
from memhil.platform import Platform, parse_repl


@dataclass
class Seg:
    vaddr: int
    paddr: int
    memsz: int
    filesz: int


def test_stm32f4_map_comes_from_the_repl_and_fits_both_engines(platform):
    assert platform.qemu_machine == "netduinoplus2"
    regions = {r.name: (r.base, r.size) for r in platform.regions}
    # the STM32F405 (RM0090 2.3.1), as QEMU 8.0+ models it; QEMU 7.2 maps 192 KiB of SRAM and no CCM
    assert regions == {"flash": (0x08000000, 0x100000), "sram": (0x20000000, 0x20000), "ccm": (0x10000000, 0x10000)}
    assert platform.console.base == 0x40011000 and platform.trace_uart.base == 0x40004400
    assert platform.systick_hz == 168_000_000


def test_repl_has_no_url_fetches(platform):
    assert "http" not in platform.repl.read_text()


def test_segments_outside_the_map_are_refused(platform):
    platform.check_segments([Seg(0x08000000, 0x08000000, 0x1000, 0x1000), Seg(0x20000000, 0x08001000, 0x100, 0x80),
                             Seg(0x10000000, 0x10000000, 0x10000, 0)])  # the whole CCM
    # an ELF linked for QEMU 7.2's 192 KiB: its stack top runs past the chip's 128 KiB
    with pytest.raises(PlatformError) as err:
        platform.check_segments([Seg(0x2001e000, 0x2001e000, 0x2000 + 0x10000, 0)], elf="big.elf")
    assert "outside the memory" in str(err.value) and "big.elf" in str(err.value) and "sram 0x20000000-0x20020000" in str(err.value)
    with pytest.raises(PlatformError):
        platform.check_segments([Seg(0x1000fff0, 0x1000fff0, 0x20, 0)])  # past the end of the CCM


def test_unknown_platform_lists_known_ones():
    with pytest.raises(PlatformError) as err:
        Platform.load("no-such-board")
    assert "stm32f4" in str(err.value)


def _board(tmp_path: Path, repl: str, toml_extra: str = "") -> Path:
    (tmp_path / "b.repl").write_text(repl)
    (tmp_path / "platform.toml").write_text(
        'name = "b"\nrepl = "b.repl"\n[qemu]\nmachine = "netduinoplus2"\n[console]\nname = "usart1"\n' + toml_extra
    )
    return tmp_path


GOOD = """
sram: Memory.MappedMemory @ sysbus 0x20000000
    size: 0x10000 // comment
usart1: UART.STM32_UART @ sysbus <0x40011000, +0x100>
    -> nvic@37
"""


def test_toml_memory_must_agree_with_repl(tmp_path):
    _board(tmp_path, GOOD, '[[memory]]\nname = "sram"\nbase = 0x20000000\nsize = 0x20000\n')
    with pytest.raises(PlatformError) as err:
        Platform.load(tmp_path)
    assert "disagrees" in str(err.value)


def test_minimal_board_loads(tmp_path):
    p = Platform.load(_board(tmp_path, GOOD))
    assert p.regions[0].size == 0x10000 and p.console.base == 0x40011000


@pytest.mark.parametrize("repl,fragment", [
    ("using \"platforms/cpus/stm32f4.repl\"\n", "'using' imports"),
    ("sram Memory.MappedMemory\n", "cannot read"),
    ("    size: 0x10\n", "before any peripheral"),
    ("sram: Memory.MappedMemory @ sysbus 0xZZ\n", "cannot read address"),
    ("sram: Memory.MappedMemory @ sysbus 0x20000000\n", "lacks an address or size"),
])
def test_bad_repl_lines_name_the_line(tmp_path, repl, fragment):
    with pytest.raises(PlatformError) as err:
        Platform.load(_board(tmp_path, repl))
    assert fragment in str(err.value)


def test_uart_missing_from_repl(tmp_path):
    with pytest.raises(PlatformError) as err:
        Platform.load(_board(tmp_path, "sram: Memory.MappedMemory @ sysbus 0x20000000\n    size: 0x100\n"))
    assert "usart1" in str(err.value)


def test_parse_repl_reads_properties(platform):
    entries = {e.name: e for e in parse_repl(platform.repl)}
    assert entries["cpu"].props["cpuType"] == "cortex-m4"
    assert entries["usart2"].address == 0x40004400 and entries["usart2"].size == 0x100


NVIC = "nvic: IRQControllers.NVIC @ sysbus 0xE000E000\n    systickFrequency: 168000000\n"


def _clock_board(tmp_path: Path, top: str = "") -> Path:
    """A board whose platform.toml has ``top`` as top-level keys (before any table) and a .repl with an NVIC."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "b.repl").write_text(GOOD + NVIC)
    (tmp_path / "platform.toml").write_text(
        'name = "b"\nrepl = "b.repl"\n' + top + '[qemu]\nmachine = "netduinoplus2"\n[console]\nname = "usart1"\n'
    )
    return tmp_path


def test_stm32f4_systick_reference_clock_is_hclk_over_8(platform):
    assert platform.systick_ref_hz * 8 == platform.systick_hz


def test_toml_systick_must_agree_with_repl(tmp_path):
    board = _clock_board(tmp_path, "systick_hz = 72000000\n")
    with pytest.raises(PlatformError) as err:
        Platform.load(board)
    assert "systickFrequency 168000000" in str(err.value) and "72000000" in str(err.value)


def test_systick_from_repl_when_toml_is_silent(tmp_path):
    p = Platform.load(_clock_board(tmp_path, "systick_ref_hz = 21000000\n"))
    assert (p.systick_hz, p.systick_ref_hz) == (168_000_000, 21_000_000)
    assert Platform.load(_clock_board(tmp_path / "b2")).systick_ref_hz == 0


@pytest.mark.parametrize("extra, words", [
    ("systick_ref_hz = 336000000\n", "faster than the processor clock"),
    ("systick_ref_hz = 21000500\n", "whole number of kHz"),
    ('systick_hz = "fast"\n', "whole number of kHz"),
])
def test_bad_systick_clocks_are_refused(tmp_path, extra, words):
    with pytest.raises(PlatformError) as err:
        Platform.load(_clock_board(tmp_path, extra))
    assert words in str(err.value)
