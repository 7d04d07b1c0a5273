"""Walk a FreeRTOS heap_4 heap from its own state (portable/MemMang/heap_4.c), layout from DWARF.

heap_4 keeps ``static uint8_t ucHeap[configTOTAL_HEAP_SIZE]``, the list head ``static BlockLink_t xStart`` and
``static BlockLink_t *pxEnd`` (the end marker at the top of the heap). Every block starts with ``BlockLink_t
{pxNextFreeBlock, xBlockSize}``, padded to the port's alignment (``xHeapStructSize``: sizeof rounded up to
portBYTE_ALIGNMENT, 8 on Cortex-M); ``xBlockSize`` counts the header and has the top bit set while the block is
allocated (``heapBLOCK_ALLOCATED_BITMASK``; before FreeRTOS 10.4 the same bit is ``xBlockAllocatedBit``), and an
allocated block's ``pxNextFreeBlock`` is NULL. Blocks tile the heap from ``ucHeap`` rounded up to the alignment
to ``pxEnd``; the free ones are also on the address-ordered list from ``xStart``, which the walk checks.

The walk returns a :class:`memhil.heap.walker.HeapWalk` (no module ids), so snapshots, reachability and the
fragmentation figures work as for LiteOS pools.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from memhil.errors import ConfigError, DebugInfoMissingError, ElfError

from .walker import HeapError, HeapNode, HeapWalk

if TYPE_CHECKING:
    from memhil.elf import Image

ReadMemory = Callable[[int, int], bytes]

SYMBOLS = ("ucHeap", "xStart", "pxEnd")
#: portBYTE_ALIGNMENT of the Cortex-M ports
DEFAULT_ALIGNMENT = 8
_MAX_FREE = 1 << 16


def is_heap4(image: Image) -> bool:
    return all(image.find_symbol(s) is not None for s in SYMBOLS)


class FreeRtosHeapWalker:
    """Walks heap_4; ``alignment`` is the port's portBYTE_ALIGNMENT."""

    def __init__(self, image: Image, *, alignment: int = DEFAULT_ALIGNMENT) -> None:
        if not image.has_dwarf:
            raise DebugInfoMissingError("the ELF has no DWARF debug info, so the FreeRTOS BlockLink_t layout cannot be known",
                                        hint="use the ELF built with -g", path=str(getattr(image, "path", "")))
        missing = [s for s in SYMBOLS if image.find_symbol(s) is None]
        if missing:
            raise ConfigError(f"this firmware has no FreeRTOS heap_4 state ({', '.join(missing)} missing)",
                              hint="memhil walks heap_4 (ucHeap, xStart, pxEnd); for heap_1/2/3/5 use capture=hooks with --profile freertos")
        try:
            link = image.struct_layout("BlockLink_t")
        except ElfError:
            link = image.struct_layout("A_BLOCK_LINK")
        self.next_off = link.member("pxNextFreeBlock").offset
        size_m = link.member("xBlockSize")
        self.size_off, self.word = size_m.offset, size_m.size
        self.alloc_bit = 1 << (8 * self.word - 1)
        self.alignment = alignment
        self.head = (link.size + alignment - 1) & ~(alignment - 1)
        self.heap = image.symbol("ucHeap")
        self.start = image.symbol("xStart").address
        self.end_ptr = image.symbol("pxEnd").address

    def _u(self, raw: bytes, off: int, size: int = 4) -> int:
        return int.from_bytes(raw[off : off + size], "little")

    def walk(self, read_memory: ReadMemory) -> HeapWalk:
        first = (self.heap.address + self.alignment - 1) & ~(self.alignment - 1)
        walk = HeapWalk(self.heap.address, self.heap.size, self.head, 0, has_modules=False)
        end = self._u(bytes(read_memory(self.end_ptr, 4)), 0)
        if end == 0:
            return walk  # heap_4 sets up the heap on the first pvPortMalloc: nothing is allocated yet
        if not first < end <= self.heap.address + self.heap.size:
            walk.errors.append(HeapError(self.end_ptr, "pool-header", f"pxEnd {end:#010x} is outside ucHeap [{first:#010x}, {self.heap.end:#010x})"))
            return walk
        walk.end_node = end
        data = memoryview(bytes(read_memory(first, end - first + self.head)))
        addr, prev = first, None
        free_seen: list[int] = []
        while addr < end:
            off = addr - first
            raw_size = self._u(data, off + self.size_off, self.word)
            used = bool(raw_size & self.alloc_bit)
            size = raw_size & ~self.alloc_bit
            if size < self.head or size % self.alignment or addr + size > end:
                walk.errors.append(HeapError(addr, "size", f"block size {size} (xBlockSize {raw_size:#x}) is below the {self.head}-byte header, "
                                             f"unaligned, or runs past pxEnd {end:#010x}", prev, None, bytes(data[off : off + 64])))
                return walk
            nxt = self._u(data, off + self.next_off)
            if used and nxt:
                walk.errors.append(HeapError(addr, "free-link", f"allocated block has pxNextFreeBlock {nxt:#010x} (heap_4 sets NULL)",
                                             prev, addr + size, bytes(data[off : off + 64])))
                return walk
            if not used:
                free_seen.append(addr)
            walk.nodes.append(HeapNode(addr, size, used, False, addr + self.head))
            prev, addr = addr, addr + size
        listed = self._free_list(read_memory, end)
        if listed != free_seen:
            extra = sorted(set(listed) ^ set(free_seen))
            walk.errors.append(HeapError(extra[0] if extra else self.start, "free-link",
                                         f"the free list from xStart ({len(listed)} blocks) does not match the free blocks in the heap "
                                         f"({len(free_seen)}); first difference at {extra[0] if extra else 0:#010x}", prev))
        return walk

    def _free_list(self, read_memory: ReadMemory, end: int) -> list[int]:
        out = []
        node = self._u(bytes(read_memory(self.start + self.next_off, 4)), 0)
        while node and node != end and len(out) < _MAX_FREE:
            out.append(node)
            node = self._u(bytes(read_memory(node + self.next_off, 4)), 0)
        return out
