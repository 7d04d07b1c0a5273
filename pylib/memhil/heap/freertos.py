"""Walk FreeRTOS's own heaps (portable/MemMang heap_1, heap_2, heap_4, heap_5) from their state, layout from DWARF.

Every scheme but heap_1 starts each block with ``BlockLink_t {pxNextFreeBlock, xBlockSize}``, padded to the port's
alignment (``xHeapStructSize``/``heapSTRUCT_SIZE``: sizeof rounded up to portBYTE_ALIGNMENT, 8 on Cortex-M);
``xBlockSize`` counts the header and, from FreeRTOS 10.5 on in every scheme (heap_4/5 long before), has the top bit
set while the block is allocated (``heapBLOCK_ALLOCATED_BITMASK``, formerly ``xBlockAllocatedBit``). The user
pointer is the block plus the header.

- **heap_4**: ``static uint8_t ucHeap[configTOTAL_HEAP_SIZE]``, the list head ``static BlockLink_t xStart`` and
  ``static BlockLink_t *pxEnd`` (the end marker at the top of the heap). Blocks tile the heap from ``ucHeap``
  rounded up to the alignment to ``pxEnd``; an allocated block's ``pxNextFreeBlock`` is NULL; free blocks are
  also on the address-ordered list from ``xStart``, which the walk checks.
- **heap_2**: ``ucHeap``, ``static BlockLink_t xStart, xEnd`` (``xEnd`` is a struct, not a pointer: the list ends
  at ``&xEnd``, whose ``xBlockSize`` holds ``configADJUSTED_HEAP_SIZE``, ucHeap's size less one alignment unit). No
  coalescing, the free list is ordered by size, and blocks tile ``[aligned ucHeap, + configADJUSTED_HEAP_SIZE)``:
  the first block covers all of it and every split leaves its tail as a block. Before 10.5 heap_2 has no
  allocated bit: a block is allocated when it is not on the free list (the walk uses that rule, and where any
  block carries the bit, checks that bit and list agree).
- **heap_5**: ``xStart``, ``pxEnd`` and no heap array of its own: ``vPortDefineHeapRegions`` takes a
  ``HeapRegion_t {pucStartAddress, xSizeInBytes}`` array ended by a zero size. Each region starts at its address
  rounded up to the alignment and ends with a ``BlockLink_t`` end marker (size 0) at ``(start + size - header)``
  rounded down; a marker's ``pxNextFreeBlock`` links to the next region's free blocks, and the last region's
  marker is ``pxEnd``. The regions are taken from the ``HeapRegion_t`` array in the ELF (a file-scope or static
  variable, read from the target) or given by the caller, **not** from the free list: heap_5 merges a freed block
  that ends at a region's marker with the marker (``prvInsertBlockIntoFreeList`` only spares ``pxEnd``), so the
  marker drops off the list, and a region whose blocks are all allocated then leaves no trace on it. A walk that
  guessed regions from the list could miss a whole region and call its blocks freed; without the array memhil says
  so (:class:`HeapNotWalkableError`).
- **heap_1**: ``ucHeap`` and ``xNextFreeByte`` only: blocks have no header, so nothing can list them. The used
  bytes are known (:meth:`FreeRtosHeap1.totals`); everything that needs blocks raises
  :class:`HeapNotWalkableError`, which names capture=hooks with ``--profile freertos`` as the way.

A walk returns a :class:`memhil.heap.walker.HeapWalk` (no module ids), so snapshots, reachability and the
fragmentation figures work as for LiteOS pools. A broken heap never raises here: the walk stops at the first bad
header or list link and says what and where in :attr:`HeapWalk.errors` (``to_snapshot`` then raises
:class:`memhil.errors.HeapCorruptionError`).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Callable, Sequence

from memhil.errors import ConfigError, DebugInfoMissingError, ElfError, HeapCorruptionError

from .walker import HeapError, HeapNode, HeapWalk, combine_walks

if TYPE_CHECKING:
    from memhil.elf import Image

ReadMemory = Callable[[int, int], bytes]

HEAP4_SYMBOLS = ("ucHeap", "xStart", "pxEnd")
HEAP2_SYMBOLS = ("ucHeap", "xStart", "xEnd")
HEAP5_SYMBOLS = ("xStart", "pxEnd")
HEAP1_SYMBOLS = ("ucHeap", "xNextFreeByte")
#: heap_5's region set-up; its presence tells heap_5 from heap_4 when an application names a region ``ucHeap``
DEFINE_REGIONS = "vPortDefineHeapRegions"
#: portBYTE_ALIGNMENT of the Cortex-M ports
DEFAULT_ALIGNMENT = 8
_MAX_FREE = 1 << 16
_MAX_REGIONS = 64
_HOOKS_HINT = "use capture=hooks with --profile freertos (the host then sees every pvPortMalloc and vPortFree)"


class HeapNotWalkableError(ConfigError):
    """memhil cannot list this heap's blocks from its state (heap_1, or heap_5 with regions it cannot know)."""


def _has(image: Image, names: Sequence[str]) -> bool:
    return all(image.find_symbol(s) is not None for s in names)


def is_heap4(image: Image) -> bool:
    return _has(image, HEAP4_SYMBOLS) and image.find_symbol(DEFINE_REGIONS) is None


def is_heap5(image: Image) -> bool:
    return _has(image, HEAP5_SYMBOLS) and (image.find_symbol(DEFINE_REGIONS) is not None or image.find_symbol("ucHeap") is None)


def is_heap2(image: Image) -> bool:
    return _has(image, HEAP2_SYMBOLS) and image.find_symbol("pxEnd") is None


def is_heap1(image: Image) -> bool:
    return _has(image, HEAP1_SYMBOLS) and image.find_symbol("xStart") is None


def _u(raw: bytes | memoryview, off: int = 0, size: int = 4) -> int:
    return int.from_bytes(raw[off : off + size], "little")


class _ReadThrough:
    """``read_memory`` that serves reads inside spans already read (the heap, read once) from them, so following
    a long free list costs no round trip to the target per block."""

    def __init__(self, read_memory: ReadMemory) -> None:
        self.read_memory = read_memory
        self.spans: list[tuple[int, memoryview]] = []

    def keep(self, base: int, data: memoryview) -> memoryview:
        self.spans.append((base, data))
        return data

    def __call__(self, addr: int, size: int) -> bytes:
        for base, data in self.spans:
            if base <= addr and addr + size <= base + len(data):
                return bytes(data[addr - base : addr - base + size])
        return bytes(self.read_memory(addr, size))


class _BlockLinkHeap:
    """What heap_2, heap_4 and heap_5 share: the ``BlockLink_t`` layout from DWARF and the header size."""

    scheme: str
    needs: tuple[str, ...]

    def __init__(self, image: Image, *, alignment: int = DEFAULT_ALIGNMENT) -> None:
        if not image.has_dwarf:
            raise DebugInfoMissingError("the ELF has no DWARF debug info, so the FreeRTOS BlockLink_t layout cannot be known",
                                        hint="use the ELF built with -g", path=str(getattr(image, "path", "")))
        missing = [s for s in self.needs if image.find_symbol(s) is None]
        if missing:
            raise ConfigError(f"this firmware has no FreeRTOS {self.scheme} state ({', '.join(missing)} missing)",
                              hint=f"memhil walks {self.scheme} from {', '.join(self.needs)}; for another heap scheme use the "
                                   "walker for it (memhil.heap.select.TargetHeap picks one), or " + _HOOKS_HINT)
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
        self.start = image.symbol("xStart").address

    def _align_up(self, addr: int) -> int:
        return (addr + self.alignment - 1) & ~(self.alignment - 1)

    def _header(self, read_memory: ReadMemory, addr: int) -> tuple[int, int]:
        """``(pxNextFreeBlock, raw xBlockSize)`` of the header at ``addr``."""
        raw = bytes(read_memory(addr, self.head))
        return _u(raw, self.next_off), _u(raw, self.size_off, self.word)

    def _tile(self, walk: HeapWalk, data: memoryview, first: int, end: int, *, null_next: bool, what_end: str) -> list[int] | None:
        """Blocks from ``first`` to ``end`` (``data`` holds ``[first, end)``), appended to ``walk.nodes`` with
        ``used`` from the allocated bit; the free blocks' addresses, or None after the first bad header."""
        addr, prev = first, None
        free: list[int] = []
        while addr < end:
            off = addr - first
            raw_size = _u(data, off + self.size_off, self.word)
            used = bool(raw_size & self.alloc_bit)
            size = raw_size & ~self.alloc_bit
            if size < self.head or size % self.alignment or addr + size > end:
                walk.errors.append(HeapError(addr, "size", f"block size {size} (xBlockSize {raw_size:#x}) is below the {self.head}-byte header, "
                                             f"not a multiple of {self.alignment}, or runs past {what_end} {end:#010x}", prev, None,
                                             bytes(data[off : off + 64])))
                return None
            nxt = _u(data, off + self.next_off)
            if used and nxt and null_next:
                walk.errors.append(HeapError(addr, "free-link", f"allocated block has pxNextFreeBlock {nxt:#010x} ({self.scheme} sets NULL)",
                                             prev, addr + size, bytes(data[off : off + 64])))
                return None
            if not used:
                free.append(addr)
            walk.nodes.append(HeapNode(addr, size, used, False, addr + self.head))
            prev, addr = addr, addr + size
        return free

    def _follow(self, read_memory: ReadMemory, stop: int, first: int | None = None) -> tuple[list[tuple[int, int]], str | None]:
        """The free list from ``xStart`` up to ``stop``: ``[(block, raw xBlockSize)]``, and what was wrong if it
        did not reach ``stop`` (NULL before it, or a loop). ``first`` is xStart's pxNextFreeBlock when the caller
        has read it already."""
        out: list[tuple[int, int]] = []
        node = self._header(read_memory, self.start)[0] if first is None else first
        seen: set[int] = set()
        while node != stop:
            if node == 0:
                return out, f"the free list from xStart ends in NULL after {len(out)} blocks, before its end {stop:#010x}"
            if node in seen or len(out) >= _MAX_FREE:
                return out, f"the free list from xStart loops back to {node:#010x} after {len(out)} blocks"
            seen.add(node)
            nxt, raw = self._header(read_memory, node)
            out.append((node, raw))
            node = nxt
        return out, None

    def _list_mismatch(self, walk: HeapWalk, listed: list[int], free_seen: list[int], where: str) -> None:
        extra = sorted(set(listed) ^ set(free_seen))
        first = extra[0] if extra else self.start
        walk.errors.append(HeapError(first, "free-link",
                                     f"the free list from xStart ({len(listed)} blocks) does not match the free blocks {where} "
                                     f"({len(free_seen)}); first difference at {first:#010x}"))


class _UcHeap(_BlockLinkHeap):
    """heap_2 and heap_4: one ``ucHeap`` array, its blocks from ``first`` (ucHeap aligned up) on, and the symbol
    that ends the free list (``end_symbol``: the pointer pxEnd, or the struct xEnd)."""

    end_symbol: str

    def __init__(self, image: Image, *, alignment: int = DEFAULT_ALIGNMENT) -> None:
        super().__init__(image, alignment=alignment)
        self.heap = image.symbol("ucHeap")
        self.first = self._align_up(self.heap.address)
        self.end_at = image.symbol(self.end_symbol).address

    def _new_walk(self) -> HeapWalk:
        return HeapWalk(self.heap.address, self.heap.size, self.head, 0, has_modules=False)


class FreeRtosHeapWalker(_UcHeap):
    """Walks heap_4; ``alignment`` is the port's portBYTE_ALIGNMENT."""

    scheme = "heap_4"
    needs = HEAP4_SYMBOLS
    end_symbol = "pxEnd"

    def walk(self, read_memory: ReadMemory) -> HeapWalk:
        first, walk = self.first, self._new_walk()
        end = _u(bytes(read_memory(self.end_at, 4)))
        if end == 0:
            return walk  # heap_4 sets up the heap on the first pvPortMalloc: nothing is allocated yet
        if not first < end <= self.heap.address + self.heap.size:
            walk.errors.append(HeapError(self.end_at, "pool-header", f"pxEnd {end:#010x} is outside ucHeap [{first:#010x}, {self.heap.end:#010x})"))
            return walk
        walk.end_node = end
        read_memory = _ReadThrough(read_memory)
        data = read_memory.keep(first, memoryview(bytes(read_memory(first, end - first))))
        free_seen = self._tile(walk, data, first, end, null_next=True, what_end="pxEnd")
        if free_seen is None:
            return walk
        chain, broken = self._follow(read_memory, end)
        listed = [a for a, _ in chain]
        if broken:
            walk.errors.append(HeapError(listed[-1] if listed else self.start, "free-link", broken))
        elif listed != free_seen:
            self._list_mismatch(walk, listed, free_seen, "in the heap")
        return walk


class FreeRtosHeap2Walker(_UcHeap):
    """Walks heap_2 (no coalescing, free list ordered by size, the list ending at the ``xEnd`` struct)."""

    scheme = "heap_2"
    needs = HEAP2_SYMBOLS
    end_symbol = "xEnd"

    def walk(self, read_memory: ReadMemory) -> HeapWalk:
        first, walk = self.first, self._new_walk()
        head_next = self._header(read_memory, self.start)[0]
        adjusted = self._header(read_memory, self.end_at)[1]
        if head_next == 0 and adjusted == 0:
            return walk  # heap_2 sets up the heap on the first pvPortMalloc: nothing is allocated yet
        end = first + adjusted
        if not self.head <= adjusted or end > self.heap.end or adjusted % self.alignment:
            walk.errors.append(HeapError(self.end_at, "pool-header",
                                         f"xEnd.xBlockSize {adjusted:#x} is not the heap's usable size (configADJUSTED_HEAP_SIZE: a "
                                         f"multiple of {self.alignment} that fits ucHeap [{self.heap.address:#010x}, {self.heap.end:#010x}) "
                                         f"from {first:#010x}); xEnd was overwritten"))
            return walk
        walk.end_node = end
        read_memory = _ReadThrough(read_memory)
        data = read_memory.keep(first, memoryview(bytes(read_memory(first, adjusted))))
        if self._tile(walk, data, first, end, null_next=False, what_end="the heap's end") is None:
            return walk
        chain, broken = self._follow(read_memory, self.end_at, head_next)
        if broken:
            walk.errors.append(HeapError(chain[-1][0] if chain else self.start, "free-link", broken))
            return walk
        blocks = {n.address: n for n in walk.nodes}
        last = 0
        for addr, raw in chain:
            node = blocks.get(addr)
            if node is None:
                walk.errors.append(HeapError(addr, "free-link", f"the free list from xStart holds {addr:#010x}, which is not a block of the heap"))
                return walk
            if raw & self.alloc_bit:
                walk.errors.append(HeapError(addr, "free-link", f"block {addr:#010x} is on the free list but marked allocated (xBlockSize {raw:#x})"))
                return walk
            if raw < last:
                walk.errors.append(HeapError(addr, "free-link", f"the free list is not ordered by size (heap_2 keeps it so): block {addr:#010x} "
                                                                f"of {raw} bytes comes after one of {last}"))
                return walk
            last = raw
        listed = {a for a, _ in chain}
        has_bit = any(n.used for n in walk.nodes)  # FreeRTOS 10.5+ marks allocated blocks; older heap_2 does not
        for node in walk.nodes:
            if has_bit and not node.used and node.address not in listed:
                walk.errors.append(HeapError(node.address, "free-link", f"block {node.address:#010x} is neither allocated (top bit of xBlockSize) "
                                                                        "nor on the free list: the list lost it or its header was overwritten"))
                return walk
            node.used = node.address not in listed
        return walk


class FreeRtosHeap5Walker(_BlockLinkHeap):
    """Walks heap_5: the regions from ``regions`` (``[(pucStartAddress, xSizeInBytes), ...]`` as given to
    vPortDefineHeapRegions), else from the ``HeapRegion_t`` array named ``regions_symbol``, else from the one
    ``HeapRegion_t`` array variable in the ELF (read from the target, so an array filled at run time works)."""

    scheme = "heap_5"
    needs = HEAP5_SYMBOLS

    def __init__(self, image: Image, *, alignment: int = DEFAULT_ALIGNMENT, regions: Sequence[tuple[int, int]] | None = None,
                 regions_symbol: str | None = None) -> None:
        super().__init__(image, alignment=alignment)
        self.end_ptr = image.symbol("pxEnd").address
        self.given = [(int(a), int(n)) for a, n in regions] if regions else None
        self.array = None
        self.array_problem = ""
        if self.given is None:
            if regions_symbol:
                self.array = image.symbol(regions_symbol)
            else:
                found = find_region_arrays(image)
                if len(found) == 1:
                    self.array = found[0]
                elif found:
                    self.array_problem = (f"the ELF has {len(found)} HeapRegion_t arrays ({', '.join(s.name for s in found)}) and memhil "
                                          "cannot tell which one vPortDefineHeapRegions was given")
                else:
                    self.array_problem = ("the ELF has no HeapRegion_t array in static storage; a table that is a local variable of the "
                                          "function that called vPortDefineHeapRegions is gone once that function returns")
            if self.array is not None:
                try:
                    region = image.struct_layout("HeapRegion_t")
                except ElfError:
                    region = image.struct_layout("HeapRegion")
                self.r_start = region.member("pucStartAddress").offset
                self.r_size = region.member("xSizeInBytes").offset
                self.r_stride = region.size

    def regions(self, read_memory: ReadMemory) -> list[tuple[int, int]]:
        """``[(pucStartAddress, xSizeInBytes)]`` as vPortDefineHeapRegions took them; raises
        :class:`HeapNotWalkableError` when they cannot be known."""
        if self.given is not None:
            return list(self.given)
        if self.array is None:
            raise HeapNotWalkableError(
                f"memhil cannot walk this heap_5 heap: its regions are not known ({self.array_problem}). heap_5 forgets a "
                "region on its free list once the region's last block is freed, so the free list cannot stand in for them",
                hint="define the HeapRegion_t array at file scope (e.g. static const HeapRegion_t xHeapRegions[]), name it with "
                     "regions_symbol=, or pass regions=[(start, size), ...] to FreeRtosHeap5Walker / TargetHeap; or " + _HOOKS_HINT,
            )
        raw = bytes(read_memory(self.array.address, self.array.size))
        out = []
        for off in range(0, len(raw) - self.r_stride + 1, self.r_stride):
            size = _u(raw, off + self.r_size)
            if size == 0:
                return out
            out.append((_u(raw, off + self.r_start), size))
        raise HeapNotWalkableError(f"the HeapRegion_t array {self.array.name} at {self.array.address:#010x} has no terminating "
                                   "{ NULL, 0 } entry within its size, so it is not the table vPortDefineHeapRegions took",
                                   hint="end the array with { NULL, 0 }, as heap_5 requires, or pass regions=[(start, size), ...]")

    def _spans(self, regions: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """``[(first block, end marker)]`` of each region, as vPortDefineHeapRegions lays them out."""
        out = []
        for start, size in regions:
            aligned = self._align_up(start)
            total = size - (aligned - start)
            out.append((aligned, (aligned + total - self.head) & ~(self.alignment - 1)))
        return out

    def walk_regions(self, read_memory: ReadMemory) -> list[HeapWalk]:
        """One walk per region, the free list checked across them all (its errors on the first region's walk)."""
        end = _u(bytes(read_memory(self.end_ptr, 4)))
        regions = self.regions(read_memory)
        spans = self._spans(regions)
        walks = [HeapWalk(first, marker + self.head - first, self.head, 0, has_modules=False) for first, marker in spans]
        if end == 0:  # vPortDefineHeapRegions has not run yet: nothing is allocated
            return walks or [HeapWalk(0, 0, self.head, 0, has_modules=False)]
        if not spans:
            raise HeapNotWalkableError(f"the HeapRegion_t array {self.array.name if self.array is not None else ''} is empty, but "
                                       f"vPortDefineHeapRegions has run (pxEnd {end:#010x}): it was given another table",
                                       hint="pass regions=[(start, size), ...] or regions_symbol= naming the table it was given")
        where = f"the regions of {self.array.name}" if self.array is not None else "the regions given"
        for i, (first, marker) in enumerate(spans):
            if marker < first + self.head or (i and first <= spans[i - 1][1]):
                walks[i].errors.append(HeapError(first, "pool-header", f"region {i} ({regions[i][0]:#010x}, {regions[i][1]} bytes) of {where} "
                                                 "is too small or does not start above the previous region's end"))
                return walks
        if end != spans[-1][1]:
            walks[-1].errors.append(HeapError(self.end_ptr, "pool-header",
                                              f"pxEnd {end:#010x} is not the end marker of the last region of {where} ({spans[-1][1]:#010x}): "
                                              "the regions are not those vPortDefineHeapRegions was given, or pxEnd was overwritten"))
            return walks
        free_seen: list[int] = []
        read_memory = _ReadThrough(read_memory)
        for walk, (first, marker) in zip(walks, spans):
            walk.end_node = marker
            data = read_memory.keep(first, memoryview(bytes(read_memory(first, marker + self.head - first))))
            free = self._tile(walk, data[: marker - first], first, marker, null_next=True, what_end="the region's end marker")
            if free is None:
                return walks
            raw_end = _u(data, marker - first + self.size_off, self.word)
            if raw_end != 0:
                walk.errors.append(HeapError(marker, "end-node", f"the region's end marker at {marker:#010x} has xBlockSize {raw_end:#x} (heap_5 "
                                                                 "writes 0)", walk.nodes[-1].address if walk.nodes else None, None,
                                             bytes(data[marker - first : marker - first + self.head])))
                return walks
            free_seen += free
        markers = {m for _, m in spans[:-1]}
        chain, broken = self._follow(read_memory, end)
        if broken:
            walks[0].errors.append(HeapError(chain[-1][0] if chain else self.start, "free-link", broken))
            return walks
        listed, last = [], 0
        for addr, raw in chain:
            if addr <= last:
                walks[0].errors.append(HeapError(addr, "free-link", f"the free list is not in address order (heap_5 keeps it so): {addr:#010x} "
                                                                    f"comes after {last:#010x}"))
                return walks
            last = addr
            if addr not in markers:
                listed.append(addr)
        if listed != free_seen:
            self._list_mismatch(walks[0], listed, free_seen, "in the regions")
        return walks

    def walk(self, read_memory: ReadMemory) -> HeapWalk:
        """All regions as one walk: ``pool`` is the first region's first block, ``pool_size`` spans to the last
        region's end marker (the gaps between regions are not heap; ``pools`` lists the regions), ``end_node`` is pxEnd."""
        walks = self.walk_regions(read_memory)
        return replace(combine_walks(walks), pool_size=walks[-1].pool + walks[-1].pool_size - walks[0].pool, end_node=walks[-1].end_node)


class FreeRtosHeap1:
    """heap_1: ``ucHeap`` handed out from ``xNextFreeByte`` upwards, no block headers, nothing ever freed."""

    scheme = "heap_1"

    def __init__(self, image: Image, *, alignment: int = DEFAULT_ALIGNMENT) -> None:
        missing = [s for s in HEAP1_SYMBOLS if image.find_symbol(s) is None]
        if missing:
            raise ConfigError(f"this firmware has no FreeRTOS heap_1 state ({', '.join(missing)} missing)", hint=_HOOKS_HINT)
        self.heap = image.symbol("ucHeap")
        self.next_free = image.symbol("xNextFreeByte")
        self.alignment = alignment

    @property
    def size(self) -> int:
        """configADJUSTED_HEAP_SIZE: ucHeap less one alignment unit (heap_1 aligns its start up)."""
        return self.heap.size - self.alignment

    def totals(self, read_memory: ReadMemory) -> dict[str, int]:
        """``used`` (``xNextFreeByte``: every byte handed out, none ever freed) and ``free`` bytes; no block count."""
        used = _u(bytes(read_memory(self.next_free.address, self.next_free.size or 4)), 0, self.next_free.size or 4)
        if used > self.size:
            raise HeapCorruptionError(f"heap_1's xNextFreeByte is {used}, past the heap's {self.size} usable bytes: it was overwritten",
                                      hint="look for a write through a stray pointer into xNextFreeByte's neighbours", pool=self.heap.address)
        return {"used": used, "free": self.size - used}

    def walk(self, read_memory: ReadMemory) -> HeapWalk:
        raise HeapNotWalkableError(
            "heap_1 keeps no block headers (only xNextFreeByte), so a walk of its heap cannot list blocks: no snapshot, "
            "reachability or leak verdict can come from it (the used-bytes total can: TargetHeap.totals)",
            hint=_HOOKS_HINT,
        )


def find_region_arrays(image: Image) -> list:
    """Object symbols whose DWARF type is an array of ``HeapRegion_t`` (heap_5's region table)."""
    out = []
    pattern = re.compile(r"^(const |volatile )*(HeapRegion_t|struct HeapRegion)\[\d+\]$")
    types = image.types  # DebugInfoMissingError without DWARF: no table could be told from any other variable
    for sym in image.symbols():
        if sym.kind != "object" or not sym.size:
            continue
        kind = types.variable_type(sym.name.split(".", 1)[0])
        if kind and pattern.match(kind):
            out.append(sym)
    return out
