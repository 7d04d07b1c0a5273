"""FreeRTOS heap_2 and heap_5 states laid out in synthetic memory, at the addresses of a real foreign ELF (so the
walkers take BlockLink_t and HeapRegion_t from its DWARF): headers, free lists and list heads written as the
schemes write them, for walks of good and broken heaps without an emulator."""

from __future__ import annotations

import struct

RAM, RAM_SIZE = 0x20000000, 128 * 1024
ALLOC = 0x80000000
HEAD = 8


class Memory:
    """The STM32F405's SRAM as a bytearray; other addresses (flash: the region table) read from the ELF."""

    def __init__(self, image) -> None:
        self.image = image
        self.ram = bytearray(RAM_SIZE)
        self.reads: list[tuple[int, int]] = []

    def __call__(self, addr: int, size: int) -> bytes:
        self.reads.append((addr, size))
        if RAM <= addr and addr + size <= RAM + RAM_SIZE:
            return bytes(self.ram[addr - RAM : addr - RAM + size])
        return self.image.read(addr, size)

    def put(self, addr: int, *words: int) -> None:
        struct.pack_into(f"<{len(words)}I", self.ram, addr - RAM, *words)


def tile(start: int, end: int, blocks: list[tuple[int | None, bool]]) -> list[tuple[int, int, bool]]:
    """``[(address, size, used)]`` of blocks tiling ``[start, end)``; a size of None takes the rest."""
    out, addr = [], start
    for size, used in blocks:
        size = end - addr if size is None else size
        out.append((addr, size, used))
        addr += size
    assert addr == end, "the blocks must tile the span"
    return out


def lay_heap5(mem: Memory, image, regions: list[list[tuple[int | None, bool]]], *, markers_listed: tuple[bool, ...] = ()):
    """heap_5 over the ELF's ucHeapLow and ucHeapHigh (both 8-aligned, their table in flash). ``regions`` gives each
    region's blocks; ``markers_listed[i]`` says whether region i's end marker is still on the free list (heap_5
    drops it when a freed block ending at it swallows it). Returns ``(blocks, markers)``."""
    spans = [(image.symbol(n).address, image.symbol(n).end - HEAD) for n in ("ucHeapLow", "ucHeapHigh")]
    blocks: list[tuple[int, int, bool]] = []
    chain: list[int] = []
    markers = [m for _, m in spans]
    for i, ((first, marker), layout) in enumerate(zip(spans, regions)):
        region = tile(first, marker, layout)
        blocks += region
        chain += [a for a, _, used in region if not used]
        if i < len(spans) - 1 and (markers_listed[i] if i < len(markers_listed) else True):
            chain.append(marker)
        mem.put(marker, 0xDEAD0000 if i < len(spans) - 1 else 0, 0)  # a swallowed marker keeps a stale link
    for addr, size, used in blocks:
        mem.put(addr, 0, size | (ALLOC if used else 0))
    links = chain + [markers[-1]]
    for here, nxt in zip(links, links[1:]):
        mem.put(here, nxt)
    mem.put(image.symbol("xStart").address, links[0], 0)
    mem.put(image.symbol("pxEnd").address, markers[-1])
    return blocks, markers


def lay_heap2(mem: Memory, image, layout: list[tuple[int | None, bool]], *, allocated_bit: bool = True):
    """heap_2 over the ELF's ucHeap: blocks tiling the aligned heap, the free ones listed smallest first, the list
    ending at &xEnd (whose xBlockSize is configADJUSTED_HEAP_SIZE). Returns the blocks."""
    uc = image.symbol("ucHeap")
    first = (uc.address + 7) & ~7
    adjusted = uc.size - 8
    blocks = tile(first, first + adjusted, layout)
    for addr, size, used in blocks:
        mem.put(addr, 0xBAD0BAD0 if used and not allocated_bit else 0, size | (ALLOC if used and allocated_bit else 0))
    free = sorted(((size, addr) for addr, size, used in blocks if not used))
    end = image.symbol("xEnd").address
    links = [a for _, a in free] + [end]
    for here, nxt in zip(links, links[1:]):
        mem.put(here, nxt)
    mem.put(image.symbol("xStart").address, links[0], 0)
    mem.put(end, 0, adjusted)
    return blocks
