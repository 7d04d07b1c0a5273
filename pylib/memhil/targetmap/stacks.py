"""Stack descriptors and stack high-water marks measured from the paint pattern.

The firmware's reset handler fills each stack with a known word (``g_memhil_stack_paint``,
0xCACACACA) before anything runs on it. Cortex-M stacks are full-descending (ARM ARMv7-M
B1.5.2, "the stack pointer points to the last stacked item; the stack grows down"), so the
deepest use of a stack is found by scanning upward from its lowest address for the first word
that no longer holds the pattern: everything from there to the top has been written at least once.

Stacks are described by ``g_memhil_stacks[]`` (``{const char *name; UINT32 base; UINT32 size;}``
with ``g_memhil_stack_count`` entries), which are ``const`` and therefore read from the ELF, not
the target. When the firmware does not export them, the main stack comes from the linker symbols
``_sstack``/``_estack``.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable

from memhil.contract import PAINT_SYMBOL, STACK_COUNT_SYMBOL, STACKS_SYMBOL
from memhil.errors import ElfError

if TYPE_CHECKING:
    from memhil.elf import Image

log = logging.getLogger("memhil.targetmap")

ReadMemory = Callable[[int, int], bytes]

MAIN_STACK_SYMBOLS = ("_sstack", "_estack")
_DESC = struct.Struct("<III")  # name pointer, base, size
_MAX_STACKS = 64
_MAX_STACK_SIZE = 1 << 24
_CHUNK = 256


@dataclass(frozen=True)
class StackDesc:
    """A stack as the firmware describes it: lowest address ``base`` and ``size`` bytes."""

    name: str
    base: int
    size: int
    source: str  # "g_memhil_stacks" | "_sstack/_estack"

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True)
class StackUsage:
    """One stack's measured use. ``used`` is None when the stack is not painted (never 0 by default)."""

    name: str
    base: int
    size: int
    used: int | None
    high_water_addr: int | None
    painted: bool
    note: str = ""

    @property
    def end(self) -> int:
        return self.base + self.size

    @property
    def free(self) -> int | None:
        return None if self.used is None else self.size - self.used

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class StackLookup:
    """The stacks found in an ELF, the paint word (None when not exported), and what was missing."""

    stacks: tuple[StackDesc, ...]
    paint: int | None
    missing: tuple[str, ...]


def _u32(image: Image, address: int) -> int:
    return int.from_bytes(image.read(address, 4), "little")


def _c_string(image: Image, address: int, limit: int = 32) -> str:
    """A NUL-terminated string from the image, read in shrinking pieces near a segment's end."""
    size = limit
    while size > 0:
        try:
            raw = image.read(address, size)
            break
        except ElfError:
            size //= 2
    else:
        return f"stack@{address:#x}"
    name = raw.split(b"\0", 1)[0].decode("ascii", "replace")
    return name or f"stack@{address:#x}"


def find_stacks(image: Image, *, paint: int | None = None) -> StackLookup:
    """Read the stack descriptors and the paint word from ``image``.

    ``paint`` overrides the firmware's ``g_memhil_stack_paint`` (for firmware that paints but does
    not export the word). Symbols the lookup needed and did not find are named in ``missing``.
    """
    missing: list[str] = []
    stacks: list[StackDesc] = []
    table = image.find_symbol(STACKS_SYMBOL)
    count_sym = image.find_symbol(STACK_COUNT_SYMBOL)
    if table is not None:
        try:
            count = _u32(image, count_sym.address) if count_sym is not None else table.size // _DESC.size
            if not 0 <= count <= _MAX_STACKS:
                raise ElfError(f"{STACK_COUNT_SYMBOL} is {count}", hint="rebuild the firmware")
            raw = image.read(table.address, count * _DESC.size)
            for i in range(count):
                name_ptr, base, size = _DESC.unpack_from(raw, i * _DESC.size)
                if 0 < size <= _MAX_STACK_SIZE:
                    stacks.append(StackDesc(_c_string(image, name_ptr), base, size, STACKS_SYMBOL))
        except ElfError as exc:
            log.warning("cannot read %s from %s: %s", STACKS_SYMBOL, image.path, exc)
            missing.append(STACKS_SYMBOL)
            stacks.clear()
    else:
        missing.append(STACKS_SYMBOL)
    if not stacks:
        lo, hi = (image.find_symbol(n) for n in MAIN_STACK_SYMBOLS)
        if lo is not None and hi is not None and 0 < hi.address - lo.address <= _MAX_STACK_SIZE:
            stacks.append(StackDesc("main", lo.address, hi.address - lo.address, "/".join(MAIN_STACK_SYMBOLS)))
        else:
            missing.extend(n for n, s in zip(MAIN_STACK_SYMBOLS, (lo, hi)) if s is None)
    if paint is None:
        sym = image.find_symbol(PAINT_SYMBOL)
        if sym is not None:
            try:
                paint = _u32(image, sym.address)
            except ElfError:
                paint = None
        if paint is None:
            missing.append(PAINT_SYMBOL)
    return StackLookup(tuple(stacks), paint, tuple(missing))


def high_water(data: bytes, paint: int) -> int | None:
    """Offset of the first word of ``data`` (scanned from the low end) that is not ``paint``.

    Returns ``len(data)`` rounded down to whole words when every word still holds the pattern,
    and None when the lowest word does not (the stack is not painted, or it overflowed).
    """
    word = paint.to_bytes(4, "little")
    words = len(data) // 4
    if words == 0 or data[:4] != word:
        return None
    chunk = word * (_CHUNK // 4)
    off = 0
    view = memoryview(data)
    while off + _CHUNK <= words * 4 and view[off : off + _CHUNK] == chunk:
        off += _CHUNK
    while off < words * 4 and view[off : off + 4] == word:
        off += 4
    return off


def measure_stack(desc: StackDesc, data: bytes, paint: int | None) -> StackUsage:
    """A :class:`StackUsage` from the bytes of one stack (read in one piece)."""
    if paint is None:
        return StackUsage(desc.name, desc.base, desc.size, None, None, False,
                          f"the firmware exports no {PAINT_SYMBOL}: painting unknown, use not measured")
    if len(data) < desc.size:
        return StackUsage(desc.name, desc.base, desc.size, None, None, False,
                          f"read {len(data)} of {desc.size} bytes of the stack")
    off = high_water(data, paint)
    if off is None:
        return StackUsage(desc.name, desc.base, desc.size, None, None, False,
                          f"lowest word is not the paint pattern {paint:#010x}: stack not painted (or overflowed)")
    return StackUsage(desc.name, desc.base, desc.size, desc.size - off, desc.base + off, True)


def stack_usage(image: Image, read_memory: ReadMemory, *, paint: int | None = None) -> list[StackUsage]:
    """High-water mark of every stack the firmware describes; one bulk read per stack.

    ``used`` is ``None`` (never 0) when painting is absent: no paint symbol and no ``paint``
    given, or the stack's lowest word does not hold the pattern.
    """
    lookup = find_stacks(image, paint=paint)
    return [measure_stack(d, bytes(read_memory(d.base, d.size)), lookup.paint) for d in lookup.stacks]
