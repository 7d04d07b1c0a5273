"""Walk newlib's malloc heaps from their own state: nano-malloc (``--specs=nano.specs``, also picolibc's
allocator) and the full dlmalloc-based ``mallocr.c``.

**nano-malloc** (newlib/libc/stdlib/nano-mallocr.c, and picolibc's nano-malloc, which also keeps the break in
``__malloc_sbrk_top``): chunks are carved from ``sbrk`` in address order starting at
``__malloc_sbrk_start``; a chunk is ``{long size; ...}`` where ``size`` counts the whole chunk, the user pointer is
``chunk + CHUNK_OFFSET`` (4) rounded up to ``MALLOC_ALIGN`` (8), and free chunks are on ``__malloc_free_list``
(address ordered, ``next`` at offset 4). Chunks end at the program break, which nano-malloc does not keep: it is
the ``_sbrk`` implementation's own variable (libgloss/libnosys: ``static char *heap_end``), found by name
(:data:`BREAK_SYMBOLS`, or ``break_symbol``).

**mallocr.c** (dlmalloc 2.6): chunks ``{prev_size; size}`` from ``__malloc_sbrk_base`` rounded up to 8 to the top
chunk ``__malloc_av_[2]``; the low bit of ``size`` (PREV_INUSE) of the *next* chunk says whether a chunk is in
use; the user pointer is ``chunk + 8`` and its usable size ``size - 4`` (an in-use chunk may use the next chunk's
``prev_size``). The top chunk ends the walk, so no program break is needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from memhil.errors import ConfigError

from .walker import HeapError, HeapNode, HeapWalk

if TYPE_CHECKING:
    from memhil.elf import Image

ReadMemory = Callable[[int, int], bytes]

#: names of the ``_sbrk`` break variable in common implementations (GCC names a function's static ``name.N``)
BREAK_SYMBOLS = ("heap_end", "__brkval", "brk", "__heap_ptr")
_NANO = ("__malloc_sbrk_start", "__malloc_free_list")
_FULL = ("__malloc_av_", "__malloc_sbrk_base")
_MAX_FREE = 1 << 16


def is_nano(image: Image) -> bool:
    return all(image.find_symbol(s) is not None for s in _NANO)


def is_full(image: Image) -> bool:
    return all(image.find_symbol(s) is not None for s in _FULL)


def _u32(raw: bytes | memoryview, off: int = 0) -> int:
    return int.from_bytes(raw[off : off + 4], "little")


def find_break_symbol(image: Image, name: str | None = None):
    """The ``_sbrk`` break variable: ``name`` when given, else the first of :data:`BREAK_SYMBOLS` (or ``NAME.N``)."""
    names = (name,) if name else BREAK_SYMBOLS
    for candidate in names:
        sym = image.find_symbol(candidate)
        if sym is None:
            sym = next((s for s in image.symbols if s.kind == "object" and s.name.split(".", 1)[0] == candidate and s.size == 4), None)
        if sym is not None and sym.kind == "object" and sym.size == 4:
            return sym
    return None


class NanoMallocWalker:
    """Walks nano-malloc chunks from ``__malloc_sbrk_start`` to the program break."""

    chunk_offset = 4
    align = 8

    def __init__(self, image: Image, *, break_symbol: str | None = None) -> None:
        if not is_nano(image):
            raise ConfigError("this firmware has no newlib nano-malloc state (__malloc_sbrk_start, __malloc_free_list)",
                              hint="link with --specs=nano.specs, or use capture=hooks with --profile newlib")
        self.start_sym = image.symbol("__malloc_sbrk_start")
        self.free_sym = image.symbol("__malloc_free_list")
        # picolibc's nano-malloc keeps the break itself (__malloc_sbrk_top); newlib's leaves it to _sbrk
        self.brk = image.find_symbol("__malloc_sbrk_top") if break_symbol is None else None
        self.brk = self.brk or find_break_symbol(image, break_symbol)
        if self.brk is None:
            raise ConfigError(
                "cannot find the program break of this firmware's _sbrk (nano-malloc does not keep it): no variable "
                f"named {break_symbol or ' / '.join(BREAK_SYMBOLS)}",
                hint="name your _sbrk's break variable heap_end (as libnosys does), or use capture=hooks with --profile newlib",
            )

    def walk(self, read_memory: ReadMemory) -> HeapWalk:
        start = _u32(bytes(read_memory(self.start_sym.address, 4)))
        top = _u32(bytes(read_memory(self.brk.address, 4)))
        walk = HeapWalk(start, max(top - start, 0), self.chunk_offset, 0, has_modules=False)
        if start == 0:
            return walk  # no malloc yet
        if top < start:
            walk.errors.append(HeapError(self.brk.address, "pool-header", f"the break {top:#010x} ({self.brk.name}) is below the heap start {start:#010x}"))
            return walk
        walk.end_node = top
        data = memoryview(bytes(read_memory(start, top - start)))
        free = set(self._free_list(read_memory, start, top, walk))
        if walk.errors:
            return walk
        addr, prev = start, None
        while addr + 4 <= top:
            size = _u32(data, addr - start)
            if size < 12 or size % 4 or addr + size > top:
                walk.errors.append(HeapError(addr, "size", f"chunk size {size} is below 12, unaligned, or runs past the break {top:#010x}",
                                             prev, None, bytes(data[addr - start : addr - start + 64])))
                return walk
            used = addr not in free
            ptr = (addr + self.chunk_offset + self.align - 1) & ~(self.align - 1)
            walk.nodes.append(HeapNode(addr, size, used, False, ptr))
            prev, addr = addr, addr + size
        return walk

    def _free_list(self, read_memory: ReadMemory, start: int, top: int, walk: HeapWalk) -> list[int]:
        out: list[int] = []
        node = _u32(bytes(read_memory(self.free_sym.address, 4)))
        while node and len(out) < _MAX_FREE:
            if not start <= node < top or (out and node <= out[-1]):
                walk.errors.append(HeapError(node, "free-link", f"free chunk {node:#010x} is outside the heap [{start:#010x}, {top:#010x}) "
                                             "or out of address order", out[-1] if out else None))
                return out
            out.append(node)
            node = _u32(bytes(read_memory(node + 4, 4)))
        return out


class NewlibMallocWalker:
    """Walks the full newlib malloc (dlmalloc) from ``__malloc_sbrk_base`` to the top chunk."""

    PREV_INUSE = 0x1
    SIZE_BITS = 0x3

    def __init__(self, image: Image) -> None:
        if not is_full(image):
            raise ConfigError("this firmware has no newlib malloc state (__malloc_av_, __malloc_sbrk_base)",
                              hint="use capture=hooks with --profile newlib")
        self.av = image.symbol("__malloc_av_")
        self.base_sym = image.symbol("__malloc_sbrk_base")

    def walk(self, read_memory: ReadMemory) -> HeapWalk:
        base = _u32(bytes(read_memory(self.base_sym.address, 4)))
        top = _u32(bytes(read_memory(self.av.address + 8, 4)))  # av_[2]: the top chunk
        walk = HeapWalk(base, 0, 8, 0, has_modules=False)
        if base in (0, 0xFFFFFFFF):
            return walk  # no malloc yet
        first = (base + 7) & ~7
        if not first <= top:
            walk.errors.append(HeapError(self.av.address + 8, "pool-header", f"the top chunk {top:#010x} is below the heap start {first:#010x}"))
            return walk
        top_size = _u32(bytes(read_memory(top + 4, 4))) & ~self.SIZE_BITS
        walk.pool_size = top + top_size - base
        walk.end_node = top
        data = memoryview(bytes(read_memory(first, top - first + 8)))
        addr, prev = first, None
        while addr < top:
            size = _u32(data, addr - first + 4) & ~self.SIZE_BITS
            if size < 16 or size % 8 or addr + size > top:
                walk.errors.append(HeapError(addr, "size", f"chunk size {size} is below 16, unaligned, or runs past the top chunk {top:#010x}",
                                             prev, None, bytes(data[addr - first : addr - first + 64])))
                return walk
            used = bool(_u32(data, addr + size - first + 4) & self.PREV_INUSE)
            walk.nodes.append(HeapNode(addr, size, used, False, addr + 8))
            prev, addr = addr, addr + size
        return walk
