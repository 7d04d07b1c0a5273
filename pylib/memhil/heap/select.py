"""Which heap a firmware has, found from its ELF, and the walker for it.

- LiteOS bestfit: ``m_aucSysMem0`` (the system pool) and the ``LosMemCtlNode`` type (:mod:`memhil.heap.walker`);
  every pool chained after it with LOSCFG_MEM_MUL_POOL.
- FreeRTOS heap_4: ``ucHeap``, ``xStart``, ``pxEnd`` and ``BlockLink_t`` (:mod:`memhil.heap.freertos`).
- newlib nano-malloc (and FreeRTOS heap_3 over it): ``__malloc_sbrk_start``, ``__malloc_free_list`` and the
  ``_sbrk`` break; newlib's full malloc: ``__malloc_av_``, ``__malloc_sbrk_base`` (:mod:`memhil.heap.newlib`).

Anything else is a clear error: memhil never reports an empty heap it could not look at.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from memhil.contract import POOL_SYMBOL
from memhil.errors import ConfigError

from .freertos import FreeRtosHeapWalker, is_heap4
from .layout import NodeLayout
from .newlib import NanoMallocWalker, NewlibMallocWalker, is_full, is_nano
from .walker import HeapWalk, HeapWalker

if TYPE_CHECKING:
    from memhil.elf import Image

ReadMemory = Callable[[int, int], bytes]


class TargetHeap:
    """The heap of one firmware image: ``kind`` is ``"liteos"``, ``"freertos-heap4"``, ``"newlib-nano"`` or
    ``"newlib"``."""

    def __init__(self, image: Image) -> None:
        self.image = image
        if image.find_symbol(POOL_SYMBOL) is not None:
            self.kind = "liteos"
            self.layout = NodeLayout.from_image(image)
            self._walker = HeapWalker(self.layout)
        elif is_heap4(image):
            self.kind = "freertos-heap4"
            self._other = FreeRtosHeapWalker(image)
        elif is_nano(image):
            self.kind = "newlib-nano"
            self._other = NanoMallocWalker(image)
        elif is_full(image):
            self.kind = "newlib"
            self._other = NewlibMallocWalker(image)
        else:
            raise ConfigError(
                f"memhil cannot walk this firmware's heap: it has no LiteOS pool ({POOL_SYMBOL}), no FreeRTOS heap_4 "
                "(ucHeap, xStart, pxEnd) and no newlib malloc state (__malloc_sbrk_start or __malloc_av_)",
                hint="use capture=hooks with the allocator's profile (liteos, newlib, freertos) so the host sees every call",
                elf=str(getattr(image, "path", "")) or None,
            )

    def walk(self, read_memory: ReadMemory) -> HeapWalk:
        """The main heap: LiteOS's system pool, FreeRTOS's ucHeap, or newlib's sbrk heap."""
        if self.kind == "liteos":
            pool = int.from_bytes(bytes(read_memory(self.image.symbol(POOL_SYMBOL).address, 4)), "little")
            return self._walker.walk(read_memory, pool)
        return self._other.walk(read_memory)

    def walk_all(self, read_memory: ReadMemory) -> list[HeapWalk]:
        """Every heap: the main one and, for LiteOS, the pools chained after it (``nextPool``)."""
        first = self.walk(read_memory)
        if self.kind != "liteos" or not first.ok:
            return [first]
        return [first, *self._walker.walk_pools(read_memory, first.pool)[1:]]
