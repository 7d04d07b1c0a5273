"""Where the patched hooks' code goes inside its flash area, so that QEMU finds it fast.

QEMU chains a translated block straight to the next only for a direct jump within the same guest page (1 KiB on
an M-profile core: ``TARGET_PAGE_BITS`` 10). Any other jump (a return, a jump to another page, the first block
after an exit to QEMU's main loop, which a write to PRIMASK causes) looks the next block up in a per-CPU cache of
4096 entries indexed by a hash of the address (``tb_jmp_cache_hash_func`` in QEMU's ``include/exec/tb-hash.h``,
the same in QEMU 7.2 and 10.x). The hash keeps only 64 entries for the addresses of one page, and pages share
them: it ignores address bits 20 and up, and mixes the page number's bits by an exclusive or. Two hot addresses with one index evict each other at every call, and each
miss takes QEMU's slow path: a lookup in a hash table keyed by physical address, about ten times the cost of
a hit. Counted on ``burst`` (``perf probe`` on ``qht_lookup_custom``): the firmware alone misses about 3 times
per allocator call; the first layout of the hooks' code added 3.5 more, 2.9 of them from its own addresses.

So the layout keeps each wrapper and its body inside one page (their jumps chain), and picks where each
starts, and how many of a function's first instructions move to its body (which sets the address at which the
function goes on), so that the addresses QEMU looks up on a hooked call (:func:`jump_slot`) do not share an
index with each other nor with the firmware's own: its functions' entries, its return sites (the
instruction after each ``bl``/``blx``) and the instructions after its own PRIMASK writes (``cpsid``/``cpsie``,
``msr``). Addresses in the hooked functions, in what they call, and the return
sites of their callers weigh most (:data:`HOT`): they run at every call. Other engines lose nothing by it.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import TYPE_CHECKING, Iterable, Iterator

if TYPE_CHECKING:
    from memhil.elf import Image

#: QEMU's guest page for an M-profile core, and its jump cache's size (TB_JMP_CACHE_BITS 12)
JUMP_PAGE = 1024
JUMP_SLOTS = 4096
#: weight of an address that runs at every hooked call (1 for the rest of the firmware's)
HOT = 16
#: how deep the hooked functions' callees count as hot
HOT_DEPTH = 3


def jump_slot(pc: int) -> int:
    """The index of QEMU's jump cache for the block at ``pc`` (``tb_jmp_cache_hash_func`` with 1 KiB pages)."""
    t = pc ^ (pc >> 4)
    return ((t >> 4) & (JUMP_SLOTS - 64)) | (t & 63)


def _sweep(code: bytes, start: int) -> Iterator[tuple[int, int, int, int]]:
    """(address, size, first halfword, second halfword or 0) of each instruction, by a linear sweep."""
    count = len(code) // 2
    hws = struct.unpack_from(f"<{count}H", code)
    i = 0
    while i < count:
        hw1 = hws[i]
        if hw1 >> 11 in (0b11101, 0b11110, 0b11111) and i + 1 < count:
            yield start + 2 * i, 4, hw1, hws[i + 1]
            i += 2
        else:
            yield start + 2 * i, 2, hw1, 0
            i += 1


def _bl_target(hw1: int, hw2: int, pc: int) -> int | None:
    """The target of a ``bl`` (A7.7.18 T1), else None."""
    if hw1 & 0xF800 != 0xF000 or hw2 & 0xD000 != 0xD000:
        return None
    s = (hw1 >> 10) & 1
    j1, j2 = (hw2 >> 13) & 1, (hw2 >> 11) & 1
    i1, i2 = 1 ^ j1 ^ s, 1 ^ j2 ^ s
    off = s << 24 | i1 << 23 | i2 << 22 | (hw1 & 0x3FF) << 12 | (hw2 & 0x7FF) << 1
    if s:
        off -= 1 << 25
    return pc + 4 + off


class JumpTargets:
    """The weights, by jump-cache index, of the addresses QEMU looks up while the firmware runs (see the
    module's docstring); :meth:`add` counts more addresses in, :meth:`cost` weighs a set of them."""

    def __init__(self, image: Image, hooked: Iterable[int]) -> None:
        self.weights = [0] * JUMP_SLOTS
        hooked = set(hooked)
        funcs = [s for s in image.symbols() if s.kind == "func" and s.size >= 2]
        calls: dict[int, list[tuple[int, int | None]]] = {}  # function -> (looked-up site, bl target or None)
        for sym in funcs:
            try:
                code = image.read(sym.address, sym.size & ~1)
            except Exception:  # noqa: BLE001 - a symbol outside the loaded image has no code to weigh
                continue
            sites = []
            for addr, size, hw1, hw2 in _sweep(code, sym.address):
                if size == 4:
                    target = _bl_target(hw1, hw2, addr)
                    if target is not None:
                        sites.append((addr + 4, target))
                    elif hw1 & 0xFFF0 == 0xF380 and hw2 & 0xFF00 == 0x8800:  # msr: QEMU's block ends after it
                        sites.append((addr + 4, None))
                elif hw1 & 0xFF87 == 0x4780 or hw1 & 0xFFEF == 0xB662:  # blx rm; cpsie/cpsid i
                    sites.append((addr + 2, None))
            calls[sym.address] = sites
        hot = self._hot(calls, hooked)
        for sym in funcs:
            self.weights[jump_slot(sym.address)] += HOT if sym.address in hot else 1
            for site, target in calls.get(sym.address, ()):
                self.weights[jump_slot(site)] += HOT if sym.address in hot or target in hooked else 1

    @staticmethod
    def _hot(calls: dict[int, list[tuple[int, int | None]]], hooked: set[int]) -> set[int]:
        hot, todo = set(hooked), deque((f, 0) for f in hooked)
        while todo:
            func, depth = todo.popleft()
            if depth >= HOT_DEPTH:
                continue
            for _, target in calls.get(func, ()):
                if target is not None and target in calls and target not in hot:
                    hot.add(target)
                    todo.append((target, depth + 1))
        return hot

    def cost(self, pcs: list[int]) -> int:
        """What ``pcs`` would share: the weights at their indexes, and :data:`HOT` for each index two of them share."""
        slots = [jump_slot(pc) for pc in pcs]
        return sum(self.weights[k] for k in slots) + HOT * (len(slots) - len(set(slots)))

    def add(self, pcs: Iterable[int], weight: int = HOT) -> None:
        for pc in pcs:
            self.weights[jump_slot(pc)] += weight

    def copy(self) -> JumpTargets:
        new = object.__new__(JumpTargets)
        new.weights = list(self.weights)
        return new


def place_units(targets: JumpTargets, base: int, units: list[tuple[int, list[int]]]) -> tuple[int, list[int]]:
    """Offsets from ``base`` (page-aligned) for code units laid out a page each after a first page of shared code:
    each unit is (size, offsets of its looked-up addresses from its start). A unit that fits in a page starts where
    its addresses cost least, counting those of the units placed before it; a larger one starts at its first
    page. Returns the total cost and the offsets (``targets`` is left as it was)."""
    targets = targets.copy()
    offsets, total, page = [], 0, base + JUMP_PAGE
    for size, looked_up in units:
        pages = max(1, -(-size // JUMP_PAGE))
        best = (0, 0)
        if size <= JUMP_PAGE:
            best = min(((targets.cost([page + start + t for t in looked_up]), start)
                        for start in range(0, JUMP_PAGE - size + 1, 4)), default=(0, 0))
        else:
            best = (targets.cost([page + t for t in looked_up]), 0)
        targets.add(page + best[1] + t for t in looked_up)
        offsets.append(page - base + best[1])
        total += best[0]
        page += pages * JUMP_PAGE
    return total, offsets


def choose_base(targets: JumpTargets, gaps: Iterable[tuple[int, int]], units: list[tuple[int, list[int]]],
                most: int = 32) -> tuple[int, list[int]] | None:
    """The page-aligned base, among the highest ``most`` that fit in the free ``gaps`` ([start, end) ranges), whose
    :func:`place_units` costs least (the highest of equals), with its offsets; None when none fits."""
    need = spread_size(units)
    bases: list[int] = []
    for start, end in sorted(gaps, key=lambda g: g[1] - g[0], reverse=True):
        top = (end - need) // JUMP_PAGE * JUMP_PAGE
        while top >= start and len(bases) < most:
            bases.append(top)
            top -= JUMP_PAGE
    best: tuple[int, int, list[int]] | None = None
    for base in bases:
        cost, offsets = place_units(targets, base, units)
        if best is None or cost < best[0]:
            best = (cost, base, offsets)
    return None if best is None else (best[1], best[2])


def spread_size(units: list[tuple[int, list[int]]]) -> int:
    """Bytes a spread layout of ``units`` takes (see :func:`place_units`)."""
    return JUMP_PAGE * (1 + sum(max(1, -(-size // JUMP_PAGE)) for size, _ in units))
