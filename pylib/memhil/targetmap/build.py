"""Build the target memory map from the ELF section headers, linker symbols and the platform.

Sections come from the ELF section header table (System V ABI, "Sections": SHF_ALLOC sections
occupy target memory; SHF_EXECINSTR gives ``x``, SHF_WRITE gives ``w``). The heap pool is the
``.heap`` section bounded by ``__heap_start``/``__heap_end``; stacks come from
:mod:`.stacks`. Whatever memory of the platform is left over is ``[free]``. With ``read_memory``
(a live or finished run) the heap is walked and the stacks measured.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from elftools.elf.constants import SH_FLAGS

from memhil.contract import POOL_SYMBOL
from memhil.errors import MemhilError
from memhil.targetmap.model import MapRegion, TargetMap
from memhil.targetmap.stacks import find_stacks, measure_stack

if TYPE_CHECKING:
    from memhil.elf import Image
    from memhil.platform import Platform

log = logging.getLogger("memhil.targetmap")

SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = SH_FLAGS.SHF_WRITE, SH_FLAGS.SHF_ALLOC, SH_FLAGS.SHF_EXECINSTR
HEAP_SYMBOLS = ("__heap_start", "__heap_end")
#: sections whose extent the linker symbols describe better (``.stack`` spans the gap below the stack)
_SYMBOL_SECTIONS = {".heap": "heap", ".stack": "stack"}

ReadMemory = Callable[[int, int], bytes]


def _perms(flags: int) -> str:
    return "r" + ("w" if flags & SHF_WRITE else "-") + ("x" if flags & SHF_EXECINSTR else "-")


def _kind(name: str, flags: int) -> str:
    if name in (".isr_vector", ".vectors"):
        return "vectors"
    if flags & SHF_EXECINSTR:
        return "text"
    if name.startswith(".bss") or name in (".noinit",):
        return "bss"
    if flags & SHF_WRITE:
        return "data"
    return "rodata"


def build_map(image: Image, platform: Platform, read_memory: ReadMemory | None = None, *, paint: int | None = None) -> TargetMap:
    """The memory map of ``image`` on ``platform``; with ``read_memory``, bytes used of heap and stacks.

    Never raises for symbols the ELF lacks: the regions it can place are shown and the symbols
    it needed are listed in ``missing``.
    """
    tmap = TargetMap(str(image.path), platform.name, [], memories=[(r.name, r.base, r.size, r.kind) for r in platform.regions])

    def memory_of(start: int) -> str:
        region = platform.region_at(start)
        return region.name if region else "?"

    heap_lo, heap_hi = (image.find_symbol(n) for n in HEAP_SYMBOLS)
    have_heap = heap_lo is not None and heap_hi is not None and heap_hi.address >= heap_lo.address
    lookup = find_stacks(image, paint=paint)
    replaced = {".heap"} if have_heap else set()
    if lookup.stacks:
        replaced.add(".stack")

    for sec in image.sections:
        if not sec.flags & SHF_ALLOC or sec.size == 0 or sec.name in replaced:
            continue
        kind = _kind(sec.name, sec.flags)
        if sec.name in _SYMBOL_SECTIONS:
            kind = _SYMBOL_SECTIONS[sec.name]
        used = sec.size if kind not in ("heap", "stack") else None
        note = "section extent only: the symbols bounding it are missing" if sec.name in _SYMBOL_SECTIONS else ""
        tmap.regions.append(MapRegion(sec.name, sec.addr, sec.size, _perms(sec.flags), kind, memory_of(sec.addr), used, note))
    _add_load_images(image, tmap, memory_of)

    if have_heap:
        tmap.regions.append(MapRegion("[heap]", heap_lo.address, heap_hi.address - heap_lo.address, "rw-", "heap", memory_of(heap_lo.address)))
    else:
        tmap.missing.extend(n for n, s in zip(HEAP_SYMBOLS, (heap_lo, heap_hi)) if s is None)
    for desc in lookup.stacks:
        tmap.regions.append(MapRegion(f"[stack:{desc.name}]", desc.base, desc.size, "rw-", "stack", memory_of(desc.base), detail={"source": desc.source}))
    tmap.missing.extend(m for m in lookup.missing if m not in tmap.missing)

    _add_free(platform, tmap)
    tmap.regions.sort(key=lambda r: (r.start, r.kind == "load", r.name))
    if read_memory is not None:
        measure(tmap, image, read_memory, lookup.paint)
    if tmap.missing:
        tmap.notes.append("the ELF lacks " + ", ".join(tmap.missing) + ": regions that need them are not shown or not measured")
    return tmap


def _add_load_images(image: Image, tmap: TargetMap, memory_of: Callable[[int], str]) -> None:
    """Initialised RAM data is stored in flash (PT_LOAD paddr != vaddr) and copied at reset."""
    for seg in image.load_segments:
        if seg.filesz and seg.paddr != seg.vaddr:
            tmap.regions.append(MapRegion(f"[load {seg.vaddr:#x}]", seg.paddr, seg.filesz, "r--", "load", memory_of(seg.paddr), seg.filesz,
                                          note=f"copied to {seg.vaddr:#010x} at reset"))


def _add_free(platform: Platform, tmap: TargetMap) -> None:
    for mem in platform.regions:
        taken = sorted((max(r.start, mem.base), min(r.end, mem.end)) for r in tmap.regions if r.start < mem.end and r.end > mem.base)
        cursor = mem.base
        for lo, hi in taken:
            if lo > cursor:
                tmap.regions.append(MapRegion("[free]", cursor, lo - cursor, "rw-" if mem.kind == "ram" else "r--", "free", mem.name, 0))
            cursor = max(cursor, hi)
        if cursor < mem.end:
            tmap.regions.append(MapRegion("[free]", cursor, mem.end - cursor, "rw-" if mem.kind == "ram" else "r--", "free", mem.name, 0))


def measure(tmap: TargetMap, image: Image, read_memory: ReadMemory, paint: int | None) -> None:
    """Fill ``used`` of the heap pool (a heap walk) and of every stack (paint high-water mark)."""
    tmap.measured = True
    lookup = find_stacks(image, paint=paint)
    by_name = {f"[stack:{d.name}]": d for d in lookup.stacks}
    for region in tmap.regions:
        if region.kind == "stack" and region.name in by_name:
            desc = by_name[region.name]
            usage = measure_stack(desc, bytes(read_memory(desc.base, desc.size)), lookup.paint)
            region.used = usage.used
            region.note = usage.note
            region.detail.update(high_water_addr=usage.high_water_addr, painted=usage.painted)
    for region in tmap.by_kind("heap"):
        _measure_heap(region, image, read_memory, tmap)


def _measure_heap(region: MapRegion, image: Image, read_memory: ReadMemory, tmap: TargetMap) -> None:
    from memhil.heap.layout import NodeLayout
    from memhil.heap.walker import HeapWalker

    if region.size == 0:
        region.note = "empty pool section"
        return
    pool_sym = image.find_symbol(POOL_SYMBOL)
    try:
        pool = int.from_bytes(read_memory(pool_sym.address, 4), "little") if pool_sym is not None else region.start
        walk = HeapWalker(NodeLayout.from_image(image)).walk(read_memory, pool)
    except MemhilError as exc:
        region.note = f"heap not walked: {exc.message}"
        if pool_sym is None and POOL_SYMBOL not in tmap.missing:
            tmap.missing.append(POOL_SYMBOL)
        return
    if walk.errors:  # a pool not yet initialised, or corrupted: no figure rather than a wrong one
        region.note = f"heap walk stopped: {walk.errors[0].kind} at {walk.errors[0].address:#010x}"
        region.detail.update(pool=walk.pool, ok=False, nodes_read=len(walk.nodes))
        return
    frag = walk.fragmentation
    region.used = max(region.size - frag.free_bytes, 0)  # pool header, END node and used nodes count as used
    region.detail.update(pool=walk.pool, pool_size=walk.pool_size, node_bytes=walk.used, free_bytes=frag.free_bytes,
                         largest_free=frag.largest_free, free_blocks=frag.free_blocks, ok=walk.ok)
