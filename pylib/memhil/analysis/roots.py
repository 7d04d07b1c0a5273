"""Roots of the reachability scan, taken as Valgrind memcheck takes them (user manual 4.2.8, mc_leakcheck.c).

memcheck scans the client's writable mapped segments, each thread's registers and each thread's *live* stack
(from its stack pointer up). On a halted microcontroller that is:

- every allocated writable ELF section (``SHF_ALLOC | SHF_WRITE``, ELF gABI "Sections"), whatever its name
  (``.data``, ``.bss``, ``.bss.*``, ``privileged_data``, ``.app_state`` ...), minus the heap arenas (heap memory
  is reached through the blocks, never scanned as a root), minus every stack's storage, minus the symbols that
  hold copies of pointers for the host's sake (memhil's trace ring);
- the halted core's registers r0-r12 and lr;
- each RTOS task's live stack, from its saved SP (the running task: the core's SP) to its stack top, found from
  the RTOS's own task records (:mod:`memhil.analysis.rtos`);
- the main stack from SP to the vector table's initial SP (ARMv7-M B1.5.3: word 0 of the vector table is the
  reset value of SP_main), when the core is on it. Never "SP to the end of RAM".

Block contents are read from the target block by block (coalesced), wherever the allocator put them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

from elftools.elf.constants import SH_FLAGS

from memhil.contract import RING_SYMBOL
from memhil.heap.model import LiveBlock

from .reachability import Reachability, Region, classify
from .rtos import TaskStack, block_holding, find_tasks

if TYPE_CHECKING:
    from memhil.elf import Image

log = logging.getLogger("memhil.analysis.roots")

ReadMemory = Callable[[int, int], bytes]

SHF_WRITE, SHF_ALLOC, SHF_EXECINSTR = SH_FLAGS.SHF_WRITE, SH_FLAGS.SHF_ALLOC, SH_FLAGS.SHF_EXECINSTR
#: symbols whose contents hold copies of pointers for the host's sake, not the program's
NOT_ROOTS = (RING_SYMBOL,)
#: registers scanned as roots (pc, sp and xpsr hold no data pointers)
ROOT_REGISTERS = tuple(f"r{i}" for i in range(13)) + ("lr",)
#: the vector table's initial SP and a main stack are believed only this large
MAX_MAIN_STACK = 1 << 20
#: blocks closer than this are read in one piece
_COALESCE = 256


@dataclass(frozen=True)
class StackRoot:
    """One stack: its storage ``[base, top)`` (base None when unknown) and the live part ``[sp, top)`` scanned."""

    name: str
    base: int | None
    sp: int
    top: int
    source: str
    note: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "base": self.base, "sp": self.sp, "top": self.top, "source": self.source, "note": self.note}


@dataclass
class RootSet:
    """What one reachability scan reads: ``roots`` (scanned for pointers), ``heap`` (block contents),
    ``views`` (blocks whose contents are only partly live: heap-allocated task stacks), the stacks found and notes."""

    roots: list[Region] = field(default_factory=list)
    heap: list[Region] = field(default_factory=list)
    views: dict[int, Region] = field(default_factory=dict)
    stacks: list[StackRoot] = field(default_factory=list)
    tasks: list[TaskStack] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    heuristic: object | None = None
    registers: dict[str, int] = field(default_factory=dict)

    def classify(self, blocks: Iterable[LiveBlock]) -> Reachability:
        """memcheck's verdict on ``blocks`` from what this scan read (:func:`memhil.analysis.reachability.classify`)."""
        return classify(blocks, self.roots, self.heap, views=self.views, heuristic=self.heuristic)  # type: ignore[arg-type]


def writable_sections(image: Image) -> list:
    """Sections the program can write at run time: ``SHF_ALLOC | SHF_WRITE``, non-empty, at a non-zero address."""
    return [s for s in image.sections if s.flags & SHF_ALLOC and s.flags & SHF_WRITE and s.size > 0 and s.addr]


def initial_sp(image: Image) -> int | None:
    """Word 0 of the vector table (the reset SP_main), from the ELF.

    The vector table is the allocated, non-writable section whose first word is a plausible stack top (word
    aligned, inside or just past a writable section) and whose second word is an odd (Thumb) address inside an
    executable section: the reset handler (ARMv7-M B1.5.3)."""
    writable = writable_sections(image)
    code = [s for s in image.sections if s.flags & SHF_ALLOC and s.flags & SHF_EXECINSTR and s.size]
    for sec in sorted((s for s in image.sections if s.flags & SHF_ALLOC and not s.flags & SHF_WRITE and s.size >= 8), key=lambda s: s.addr):
        try:
            raw = image.read(sec.addr, 8)
        except Exception:  # noqa: BLE001 - a NOBITS or unreadable section is not the vector table
            continue
        sp, reset = int.from_bytes(raw[:4], "little"), int.from_bytes(raw[4:], "little")
        if sp % 4 or not reset & 1:
            continue
        if not any(c.addr <= (reset & ~1) < c.addr + c.size for c in code):
            continue
        if any(w.addr < sp <= w.addr + w.size for w in writable) or _ram_like(sp):
            return sp
    return None


def _ram_like(address: int) -> bool:
    """Cortex-M SRAM region (0x20000000-0x3FFFFFFF) or CCM-style data RAM at 0x10000000 (ARMv7-M B3.1)."""
    return 0x20000000 <= address < 0x40000000 or 0x10000000 <= address < 0x20000000


def _subtract(start: int, end: int, holes: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    parts = [(start, end)]
    for lo, hi in holes:
        nxt = []
        for a, b in parts:
            if hi <= a or lo >= b:
                nxt.append((a, b))
                continue
            if a < lo:
                nxt.append((a, lo))
            if hi < b:
                nxt.append((hi, b))
        parts = nxt
    return parts


def read_block_contents(read_memory: ReadMemory, blocks: Iterable[LiveBlock]) -> list[Region]:
    """The bytes of every block (requested size), read in coalesced pieces."""
    spans = sorted((b.ptr, b.ptr + max(b.size, 0)) for b in blocks if b.size > 0)
    merged: list[list[int]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1] + _COALESCE:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [Region.read(read_memory, "heap", lo, hi - lo) for lo, hi in merged]


def _containing_object(image: Image, address: int):
    sym = image.symbol_at(address)
    if sym is not None and sym.kind == "object" and sym.size:
        return sym
    return None


def heap_arenas(image: Image, blocks: list[LiveBlock], known: Iterable[tuple[int, int]] = ()) -> list[tuple[int, int]]:
    """Address ranges that are heap, not roots: ``known`` (e.g. a LiteOS pool from its header) and every ELF
    object (``ucHeap``, an ``_sbrk`` arena, a pool array) that contains a live block."""
    out = [tuple(r) for r in known]
    seen: set[int] = set()
    for b in blocks:
        if any(lo <= b.ptr < hi for lo, hi in out):
            continue
        sym = _containing_object(image, b.ptr)
        if sym is not None and sym.address not in seen:
            seen.add(sym.address)
            out.append((sym.address, sym.end))
    return out  # type: ignore[return-value]


def collect_roots(
    image: Image,
    read_memory: ReadMemory,
    registers: dict[str, int],
    blocks: Iterable[LiveBlock],
    *,
    arenas: Iterable[tuple[int, int]] = (),
) -> RootSet:
    """Read the roots and block contents of one reachability scan (see the module docstring)."""
    blocks = list(blocks)
    out = RootSet(registers=dict(registers))
    arena = heap_arenas(image, blocks, arenas)
    sp = registers.get("sp")

    tasks = find_tasks(image, read_memory, blocks)
    out.tasks = tasks.stacks
    out.heuristic = tasks.heuristic
    out.notes.extend(tasks.notes)
    holes: list[tuple[int, int]] = list(arena)
    on_task_stack = False
    for t in tasks.stacks:
        live_sp = t.saved_sp
        note = ""
        if t.running:
            if sp is not None and t.base <= sp < t.top:
                live_sp, on_task_stack = sp, True
            else:
                live_sp = t.base
                note = "running task, but the core's SP is not in its stack (halted in a handler?): its whole stack is scanned"
                out.notes.append(f"task {t.name}: {note}")
        if not t.base <= live_sp <= t.top:
            out.notes.append(f"task {t.name}: saved SP {live_sp:#010x} is outside its stack [{t.base:#010x}, {t.top:#010x}); stack not scanned")
            holes.append((t.base, t.top))
            continue
        root = StackRoot(f"task {t.name}", t.base, live_sp, t.top, t.source, note)
        out.stacks.append(root)
        holes.append((t.base, t.top))
        region = Region.read(read_memory, root.name, live_sp, t.top - live_sp)
        holder = block_holding(blocks, t.base)
        if holder is not None:
            # the stack is a heap block: its contents count only from the saved SP up, and it is not a root itself
            out.views[holder.ptr] = region
        else:
            out.roots.append(region)

    init = initial_sp(image)
    main_base = _main_stack_base(image, init)
    if init is not None and main_base is not None:
        holes.append((main_base, init))
    if sp is not None and not on_task_stack:
        if init is not None and sp <= init and init - sp <= MAX_MAIN_STACK:
            out.stacks.append(StackRoot("main", main_base, sp, init, "vector table"))
            out.roots.append(Region.read(read_memory, "main stack", sp, init - sp))
        else:
            out.notes.append(
                f"the core's SP {sp:#010x} is in no task stack and not below the vector table's initial SP "
                f"({'unknown' if init is None else f'{init:#010x}'}): no stack scanned for it")
    elif init is not None:
        out.notes.append("the core runs a task (SP on its stack): the main stack is not scanned (an RTOS resets it when the scheduler starts)")

    for name in NOT_ROOTS:
        sym = image.find_symbol(name)
        if sym is not None and sym.size:
            holes.append((sym.address, sym.end))
    for sec in writable_sections(image):
        for lo, hi in _subtract(sec.addr, sec.addr + sec.size, holes):
            if hi > lo:
                out.roots.append(Region.read(read_memory, sec.name, lo, hi - lo))

    values = b"".join((registers.get(r, 0) & 0xFFFFFFFF).to_bytes(4, "little") for r in ROOT_REGISTERS if r in registers)
    if values:
        out.roots.append(Region("registers", 0, values))
    out.heap = read_block_contents(read_memory, blocks)
    for note in out.notes:
        log.debug("roots: %s", note)
    return out


def _main_stack_base(image: Image, init: int | None) -> int | None:
    """Lowest address of the main stack's storage: the object the initial SP ends (an array such as
    ``g_main_stack``), else the linker's ``_sstack``; None when neither says."""
    if init is None:
        return None
    sym = _containing_object(image, init - 4)
    if sym is not None and sym.end == init:
        return sym.address
    lo = image.find_symbol("_sstack")
    if lo is not None and lo.address < init and init - lo.address <= MAX_MAIN_STACK:
        return lo.address
    return None
