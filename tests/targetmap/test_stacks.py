"""Stack high-water marks on synthetic memory, with the real firmware's stack descriptors."""

from __future__ import annotations

import pytest

from memhil.elf import Image
from memhil.targetmap import find_stacks, high_water, stack_usage

PAINT = 0xDEADBEEF  # any pattern: the tests pass it where the ELF's own is not used


def _memory(base: int, size: int, paint: int, used: int, bottom: bytes | None = None):
    """Target memory holding one stack: ``size - used`` painted bytes, then ``used`` bytes of 0x11."""
    data = bytearray(paint.to_bytes(4, "little") * ((size - used) // 4) + b"\x11" * used)
    if bottom is not None:
        data[: len(bottom)] = bottom
    calls = []

    def read(addr: int, n: int) -> bytes:
        calls.append((addr, n))
        assert base <= addr and addr + n <= base + size, "read outside the stack"
        return bytes(data[addr - base : addr - base + n])

    read.calls = calls  # type: ignore[attr-defined]
    return read


@pytest.fixture
def image(firmware):
    return Image.open(firmware("module_stats"))


def test_descriptors_and_paint_come_from_the_elf(image):
    lookup = find_stacks(image)
    assert lookup.missing == ()
    assert [s.name for s in lookup.stacks] == ["main"]
    main = lookup.stacks[0]
    assert (main.base, main.end) == (image.symbol("_sstack").address, image.symbol("_estack").address)
    assert lookup.paint == int.from_bytes(image.read(image.symbol("g_memhil_stack_paint").address, 4), "little")


@pytest.mark.parametrize("used", [4, 264, 1000, 8188])
def test_partly_used_stack(image, used):
    main = find_stacks(image).stacks[0]
    read = _memory(main.base, main.size, PAINT, used)
    (usage,) = stack_usage(image, read, paint=PAINT)
    assert usage.painted and usage.used == used
    assert usage.high_water_addr == main.end - used and usage.free == main.size - used
    assert read.calls == [(main.base, main.size)]  # one bulk read


def test_painted_never_used_stack_is_zero(image):
    main = find_stacks(image).stacks[0]
    (usage,) = stack_usage(image, _memory(main.base, main.size, PAINT, 0), paint=PAINT)
    assert usage.painted and usage.used == 0


def test_unpainted_stack_is_none_not_zero(image):
    main = find_stacks(image).stacks[0]
    (usage,) = stack_usage(image, _memory(main.base, main.size, PAINT, 100, bottom=b"\0\0\0\0"), paint=PAINT)
    assert usage.used is None and not usage.painted
    assert "not painted" in usage.note


def test_wrong_pattern_is_unpainted(image):
    main = find_stacks(image).stacks[0]
    (usage,) = stack_usage(image, _memory(main.base, main.size, 0x12345678, 100))  # the ELF says 0xCACACACA
    assert usage.used is None


def test_short_read_is_not_measured(image):
    (usage,) = stack_usage(image, lambda a, n: bytes(16), paint=PAINT)
    assert usage.used is None and "read 16 of" in usage.note


def test_stripped_elf_has_no_stacks_and_says_why(stripped_elf):
    image = Image.open(stripped_elf)
    lookup = find_stacks(image)
    assert lookup.stacks == () and lookup.paint is None
    assert {"g_memhil_stacks", "_sstack", "_estack", "g_memhil_stack_paint"} <= set(lookup.missing)
    assert stack_usage(image, lambda a, n: bytes(n)) == []


@pytest.mark.parametrize(
    "data, expected",
    [
        (b"", None),
        (b"\xca" * 3, None),
        (b"\xca" * 4, 4),
        (b"\xca" * 4 + b"\0" * 4, 4),
        (b"\xca" * 1024 + b"\0" * 8, 1024),
        (b"\xca" * 1030, 1028),  # a trailing partial word is ignored
        (b"\xca" * 600 + b"\xcb" + b"\xca" * 300, 600),
        (b"\0" + b"\xca" * 100, None),
    ],
)
def test_high_water_offsets(data, expected):
    assert high_water(data, 0xCACACACA) == expected


def _without(firmware, tmp_path, *symbols: str) -> Image:
    import subprocess

    out = tmp_path / "fw.elf"
    argv = ["arm-none-eabi-objcopy"] + [f"--strip-symbol={s}" for s in symbols] + [str(firmware("module_stats")), str(out)]
    subprocess.run(argv, check=True)
    return Image.open(out)


def test_without_descriptor_table_the_main_stack_comes_from_linker_symbols(firmware, tmp_path):
    image = _without(firmware, tmp_path, "g_memhil_stacks", "g_memhil_stack_count")
    lookup = find_stacks(image)
    assert lookup.missing == ("g_memhil_stacks",)
    (main,) = lookup.stacks
    assert main.name == "main" and main.source == "_sstack/_estack"
    assert (main.base, main.end) == (image.symbol("_sstack").address, image.symbol("_estack").address)


def test_without_paint_symbol_use_is_none(firmware, tmp_path):
    image = _without(firmware, tmp_path, "g_memhil_stack_paint")
    main = find_stacks(image).stacks[0]
    painted = _memory(main.base, main.size, 0xCACACACA, 200)
    (usage,) = stack_usage(image, painted)
    assert usage.used is None and "g_memhil_stack_paint" in usage.note
    (usage,) = stack_usage(image, painted, paint=0xCACACACA)  # the caller knows the pattern
    assert usage.used == 200
