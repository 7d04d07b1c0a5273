"""Fuzz the .repl reader: whatever the text, parse_repl returns entries or raises PlatformError."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from memhil.errors import PlatformError
from memhil.platform import parse_repl

PIECES = ["sram: Memory.MappedMemory @ sysbus 0x20000000", "    size: 0x20000", "usart1: UART.STM32_UART @ sysbus <0x40011000, +0x100>",
          "    -> nvic@37", "// comment", "using \"other.repl\"", "nvic: IRQControllers.NVIC @ sysbus 0xE000E000", "  frequency: 72000000",
          ":", "@", "<", "+0x", "->", "\t", "\n", " ", "0x", "sysbus", "@ sysbus <0x1, +0x0>", "x: Y @ sysbus -1", "a: b", "\x00", "é"]


def _parse(data: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "board.repl"
        path.write_bytes(data)
        try:
            entries = parse_repl(path)
        except PlatformError as exc:
            assert exc.hint, "every PlatformError says how to fix it"
            return None
        assert isinstance(entries, list)
        return entries


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=30))
def test_fuzz_repl_from_valid_pieces(pieces):
    _parse("\n".join(pieces).encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_fuzz_repl_random_bytes(data):
    _parse(data)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_repl_random_text(text):
    _parse(text.encode("utf-8", "surrogatepass"))
