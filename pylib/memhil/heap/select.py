"""Which heap a firmware has, found from its ELF, and the walker for it.

- LiteOS bestfit: ``m_aucSysMem0`` (the system pool) and the ``LosMemCtlNode`` type (:mod:`memhil.heap.walker`);
  every pool chained after it with LOSCFG_MEM_MUL_POOL, and the pools the caller knows of besides (those
  ``LOS_MemInit`` made where hooks saw it, and those the user named), each from its own pool header.
- FreeRTOS heap_5: ``xStart``, ``pxEnd`` and ``vPortDefineHeapRegions`` (or no ``ucHeap``), regions from the
  ``HeapRegion_t`` array; heap_4: ``ucHeap``, ``xStart``, ``pxEnd``; heap_2: ``ucHeap``, ``xStart``, ``xEnd``; all with
  ``BlockLink_t`` (:mod:`memhil.heap.freertos`). heap_1 (``ucHeap``, ``xNextFreeByte``) has no block headers: its
  walk is a clear error and only :meth:`TargetHeap.totals` answers.
- newlib nano-malloc (and FreeRTOS heap_3 over it): ``__malloc_sbrk_start``, ``__malloc_free_list`` and the
  ``_sbrk`` break; newlib's full malloc: ``__malloc_av_``, ``__malloc_sbrk_base`` (:mod:`memhil.heap.newlib`).

Anything else is a clear error: memhil never reports an empty heap it could not look at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Iterable

from memhil.contract import POOL_SYMBOL
from memhil.errors import ConfigError

from .freertos import (FreeRtosHeap1, FreeRtosHeap2Walker, FreeRtosHeap5Walker, FreeRtosHeapWalker, is_heap1, is_heap2, is_heap4,
                       is_heap5)
from .layout import NodeLayout
from .newlib import NanoMallocWalker, NewlibMallocWalker, is_full, is_nano
from .walker import HeapWalk, HeapWalker, combine_walks

if TYPE_CHECKING:
    from memhil.elf import Image

ReadMemory = Callable[[int, int], bytes]


class TargetHeap:
    """The heap of one firmware image: ``kind`` is ``"liteos"``, ``"freertos-heap1"``, ``"freertos-heap2"``,
    ``"freertos-heap4"``, ``"freertos-heap5"``, ``"newlib-nano"`` or ``"newlib"``.

    ``heap5_regions`` (``[(start, size), ...]`` as given to vPortDefineHeapRegions) or ``heap5_regions_symbol`` (the
    HeapRegion_t array's name) say where heap_5's regions are when the ELF's own array cannot (see
    :class:`memhil.heap.freertos.FreeRtosHeap5Walker`)."""

    def __init__(self, image: Image, *, heap5_regions=None, heap5_regions_symbol: str | None = None) -> None:
        self.image = image
        if image.find_symbol(POOL_SYMBOL) is not None:
            self.kind = "liteos"
            self.layout = NodeLayout.from_image(image)
            self._walker = HeapWalker(self.layout)
        elif is_heap5(image):
            self.kind = "freertos-heap5"
            self._other = FreeRtosHeap5Walker(image, regions=heap5_regions, regions_symbol=heap5_regions_symbol)
        elif is_heap4(image):
            self.kind = "freertos-heap4"
            self._other = FreeRtosHeapWalker(image)
        elif is_heap2(image):
            self.kind = "freertos-heap2"
            self._other = FreeRtosHeap2Walker(image)
        elif is_heap1(image):
            self.kind = "freertos-heap1"
            self._other = FreeRtosHeap1(image)
        elif is_nano(image):
            self.kind = "newlib-nano"
            self._other = NanoMallocWalker(image)
        elif is_full(image):
            self.kind = "newlib"
            self._other = NewlibMallocWalker(image)
        else:
            raise ConfigError(
                f"memhil cannot walk this firmware's heap: it has no LiteOS pool ({POOL_SYMBOL}), no FreeRTOS heap_1/2/4/5 "
                "state (ucHeap, xStart, xEnd or pxEnd, xNextFreeByte) and no newlib malloc state (__malloc_sbrk_start or __malloc_av_)",
                hint="use capture=hooks with the allocator's profile (liteos, newlib, freertos) so the host sees every call",
                elf=str(getattr(image, "path", "")) or None,
            )

    def walk(self, read_memory: ReadMemory, pools: Iterable[int] = ()) -> HeapWalk:
        """The heap as one walk: LiteOS's system pool with the pools chained after it and ``pools`` (see
        :meth:`walk_all`), FreeRTOS's heap (heap_5: every region), or newlib's sbrk heap. Raises
        :class:`memhil.heap.freertos.HeapNotWalkableError` for heap_1 and for heap_5 with unknown regions: never an
        empty walk of a heap memhil could not look at."""
        if self.kind != "liteos":
            pools = list(pools)
            if pools:
                raise self._not_liteos(pools)
            return self._other.walk(read_memory)
        return combine_walks(self.walk_all(read_memory, pools))

    def walk_all(self, read_memory: ReadMemory, pools: Iterable[int] = ()) -> list[HeapWalk]:
        """Every heap, one walk each: for LiteOS the system pool, the pools chained after it (``nextPool``), then
        ``pools`` (addresses of more pool headers), each pool once; for FreeRTOS heap_5 each region."""
        pools = list(pools)
        if self.kind != "liteos":
            if pools:
                raise self._not_liteos(pools)
            if self.kind == "freertos-heap5":
                return self._other.walk_regions(read_memory)
            return [self._other.walk(read_memory)]
        first = self._walker.walk(read_memory, self.system_pool(read_memory))
        walks = [first, *self._walker.walk_pools(read_memory, first.pool)[1:]] if first.ok else [first]
        seen = {w.pool for w in walks}
        for pool in pools:
            if pool not in seen:
                seen.add(pool)
                walks.append(self._walker.walk(read_memory, pool))
        return walks

    def totals(self, read_memory: ReadMemory) -> dict[str, int]:
        """``used`` and ``free`` bytes of every heap (headers included), and ``blocks`` where blocks can be counted:
        the one figure heap_1 gives (its ``xNextFreeByte``). Raises :class:`memhil.errors.HeapCorruptionError` on a
        broken heap rather than count part of it."""
        if self.kind == "freertos-heap1":
            return self._other.totals(read_memory)
        walks = self.walk_all(read_memory)
        for w in walks:
            w.raise_for_errors()
        return {"used": sum(w.used for w in walks), "free": sum(w.free for w in walks), "blocks": sum(len(w.used_nodes) for w in walks)}

    def system_pool(self, read_memory: ReadMemory) -> int:
        """The system pool's address, read from ``m_aucSysMem0`` (LiteOS only)."""
        return int.from_bytes(bytes(read_memory(self.image.symbol(POOL_SYMBOL).address, 4)), "little")

    def pool_extents(self, read_memory: ReadMemory, pools: Iterable[int] = ()) -> list[tuple[int, int]]:
        """``(start, end)`` of every pool :meth:`walk_all` walks whose header is valid, read from the headers
        alone (no walk): heap memory, which a reachability scan must not take for a root. Empty for other heaps."""
        if self.kind != "liteos":
            return []
        out: list[tuple[int, int]] = []
        for pool in [*self._walker.pool_chain(read_memory, self.system_pool(read_memory)), *pools]:
            size, problem = self._walker.pool_header(read_memory, pool)
            if problem is None and (pool, pool + size) not in out:
                out.append((pool, pool + size))
        return out

    def check_pool(self, read_memory: ReadMemory, pool: int, *, named: str = "") -> int:
        """The size of the LiteOS pool whose header is at ``pool``; a :class:`ConfigError` saying what is wrong
        when there is none there (``named`` is how the user gave it)."""
        if self.kind != "liteos":
            raise self._not_liteos([pool])
        size, problem = self._walker.pool_header(read_memory, pool)
        if problem is not None:
            raise ConfigError(
                f"{named or hex(pool)} ({pool:#010x}) is not a LiteOS memory pool: {problem}",
                hint="name the buffer the firmware passes to LOS_MemInit (its symbol or address), and walk it only after "
                "the firmware has initialised it; pools LOS_MemInit makes while hooks run are found without naming them",
                pool=pool,
            )
        return size

    def _not_liteos(self, pools: list[int]) -> ConfigError:
        return ConfigError(
            f"extra heap pools ({', '.join(hex(p) for p in pools)}) are LiteOS pools, but this firmware's heap is {self.kind}",
            hint="name pools only for firmware built with the LiteOS bestfit allocator (LOS_MemInit)",
            elf=str(getattr(self.image, "path", "")) or None,
        )
