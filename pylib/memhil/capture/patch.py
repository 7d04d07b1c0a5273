"""Hooks at trace speed: the allocator patched in emulator memory, each call written into a RAM ring.

While the target is halted, for every allocator function the profile names (the ELF on disk stays as it is):

- its first instructions move into a *body* stub (``<moved instructions>; b.w F+n``, :mod:`.relocate`);
- a *wrapper* (Thumb-2 made by :mod:`.asm`) calls the body with the original r0-r3, then claims the next slot
  of a RAM ring and writes one record: sequence, function, r0-r3, result, caller LR, entry SP, the firmware's
  uptime, the allocator's node header of the block (LiteOS) and ``stack_words`` words from the entry SP for the
  host's unwinder (none for a free when the host keeps no stack of it: :attr:`PatchCapture.free_stacks`);
- the function's entry becomes ``b.w wrapper``; a ``bl``/``b.w`` from one hooked function to another goes
  straight to the callee's body (such a call is nested: no wrapper to run).

The ring is claimed without masking interrupts: masking (``cpsid``/``msr primask``) ends QEMU's translated block
and sends it back to its main loop twice a call, about as costly as the rest of the wrapper. A wrapper claims a
slot with ``ldrex``/``strex`` on the header's ``claim`` count (an interrupt's call that claims in between makes
it try again), writes the record, its sequence number last (the record is then complete), and advances the
header's ``head`` over every complete record in order, its own and any an interrupted wrapper finished
meanwhile; the host takes [tail, head). Claims start past any sequence number the slots may still hold.

A function whose first instructions cannot move (PC-relative, IT, branch) keeps its code and is caught by
gdbstub breakpoints instead (:class:`~memhil.capture.hooks.HookCapture`), with the reason logged.

Where the code goes matters to QEMU: it chains a translated block to the next only within a 1 KiB page, and keeps
recent jump targets in a cache whose slots pages share; each wrapper with its body gets a page of its own, at
pages whose slots the firmware's code does not use (:meth:`PatchCapture._jump_cache_clashes`).

Which call is an event follows the breakpoint hooks: a call whose return address lies inside a hooked function
or inside the wrappers (a tail call from one) is nested and writes nothing, so ``LOS_MemMfree`` calling
``LOS_MemFree`` is one event; an interrupt handler's call is its own event (its return address is the handler's).
Times and node headers are taken where the breakpoint hooks take them: at entry for frees (and for a realloc
that frees), at return for the rest.

The ring drains as trace capture's does (:class:`~memhil.capture.base.RingCapture`). On QEMU the host copies it
while the firmware runs, through a live window on QEMU's memory, and decodes on its other core; when a record
fills the ring (the host is behind, or has no window), the wrapper stores to a doorbell word under a write
watchpoint (QEMU 7.2 does not flush its translation cache for those; the word has a 1 KiB page of its own, as
every access to a watched page takes QEMU's slow path) and the host copies the records at that stop. A wrapper
that finds the ring full rings and waits, so nothing is lost, and a sequence gap would be reported
(:attr:`PatchCapture.gaps`). One case cannot wait: a full ring none of whose records is complete, whose oldest
record's wrapper is the one this call interrupted (an interrupt handler that allocates while every slot is
claimed by calls it interrupted); that record is dropped, counted in the header's ``lost`` and reported as a
gap ("lost"). On an engine that cannot stop the firmware but works at the ends of its run slices
(Renode), the ring is drained at every slice end instead, with no doorbell stop. Fed to the session's ledger
alone, records become rows and stacks (``Ledger.apply_rows``), no event objects.
Stacks are unwound on the host when first read (:mod:`.lazystack`). Patches are put back after a reset.

What it costs the firmware and where it stops being exact:

- each hooked call runs ~150-250 more instructions (the nesting check is two compares for a caller outside the
  hooked functions, the stack words are copied three at a time; a free without its stack words ~100) and uses
  24 more bytes of stack while the hooked
  function runs (40 for a LiteOS free, which keeps the time and two header words), 36 after it (the wrapper's
  frame, which holds no callee-saved register and no stale word, so a firmware's own stack scan sees what it sees
  unpatched);
- the wrapper passes r0-r3 only: a hooked function that takes arguments on the stack (a fifth one) would read
  the wrapper's frame instead (no profile has one);
- an interrupt that comes between a wrapper's claim and its record's completion may have its own record
  published first: records come in the order they were claimed, which for calls that overlap is not always the
  order they returned;
- a firmware that checksums its own flash sees the patches (use ``capture=breakpoints``);
- nesting is decided by the caller's return address (inside a hooked function, or a tail call from a wrapper),
  as the breakpoint hooks' first rule; their last rule (a live frame just above on the same stack, for a hooked
  function reached through an unhooked one) has no counterpart here;
- the ``lrs`` a LiteOS leak-check build records in its nodes come from its own scan of the stack for words that
  look like return addresses, stale ones included: the wrapper's frame shifts the stack by 24 bytes, so where
  that scan picked a stale word it may pick another (memhil's own stacks, unwound from CFI, are unaffected).
"""

from __future__ import annotations

import logging
import struct
from operator import itemgetter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Iterable

from elftools.elf.constants import P_FLAGS

from memhil.capture.asm import LR, SP, Assembler, encode_b_w, encode_bl
from memhil.capture.base import EventSink, RingCapture, read_many, uptime_var
from memhil.capture.lazystack import LazyStack, StackResolver
from memhil.capture.nodes import LiteosNodes
from memhil.capture.profiles import AllocatorProfile, FunctionSpec, load_profile
from memhil.capture.relocate import PATCH_BYTES, Branch, Declined, Relocation, relocate_prologue
from memhil.capture.scratch import Area, find_flash, find_ram, writable
from memhil.capture.thumb import direct_branches
from memhil.capture.trace import _SETTERS, TraceGap
from memhil.engines.base import Capability
from memhil.errors import CaptureError, MemhilError
from memhil.events import AllocEvent, EventFlag, EventKind

if TYPE_CHECKING:
    from memhil.elf import Image

log = logging.getLogger("memhil.capture")

MAGIC = 0x4B50484D  # "MHPK"
VERSION = 3
#: ring header: byte offsets of its words. ``claim``: records claimed by the wrappers; ``head``: records complete, in
#: order (the host takes [tail, head)); ``lost``: records a wrapper could not write (see the module's docstring);
#: ``free_stacks``: nonzero when a free's record takes its stack words
HDR = {"magic": 0, "enabled": 4, "head": 8, "tail": 12, "capacity": 16, "drain_at": 20, "claim": 24, "lost": 28,
       "slots": 32, "doorbell": 36, "rec_size": 40, "version": 44, "free_stacks": 48}
HDR_SIZE = 52
#: set in a record's function word when the wrapper left its stack words out (a free, ``free_stacks`` off)
NO_STACK = 0x100
#: fixed words at the start of a record: seq, function, r0-r3, result, lr, sp, t_lo, t_hi
FIXED = struct.Struct("<11I")
FIXED_WORDS = 11
#: bytes the wrapper pushes below the entry SP: r0-r3, lr
PUSHED = 20
#: bytes of the wrapper's frame made after the hooked function returns: its result, the record, its claim
POST = 12
#: most records the ring holds (the drain is one read of the whole ring)
MAX_CAPACITY = 4096
#: fewest records worth a ring
MIN_CAPACITY = 16
#: QEMU's page for an M-profile core (TARGET_PAGE_BITS 10): every access to a page that holds a watched word takes
#: QEMU's slow path, so the doorbell gets a page of its own, past the slots, where the area has room for one; and
#: QEMU chains a translated block straight to the next only within its page (a jump to another page is looked up
#: in a hash table each time), so each wrapper and its body are kept in one page, where the flash has room
PAGE = BELL_PAGE = 1024
ALIGNED, USED, SIZE_MASK = 0x40000000, 0x80000000, 0x3FFFFFFF


def record_size(header_words: int, stack_words: int) -> int:
    """Bytes of one ring record: the fixed words, the node header, the stack words."""
    return 4 * (FIXED_WORDS + header_words + stack_words)


@dataclass(frozen=True)
class PatchedFunction:
    """One hooked function: its spec, where it is, and how it is caught (``relocation`` or ``declined``)."""

    fid: int
    spec: FunctionSpec
    address: int
    size: int
    relocation: Relocation | None
    declined: Declined | None = None
    wrapper: int = 0  # addresses once laid out
    body: int = 0


@dataclass(frozen=True)
class Layout:
    """Where everything went: the code, the ring, and the record's shape."""

    code: Area
    ram: Area
    header_words: int
    stack_words: int
    capacity: int
    bell: int = 0  # the doorbell word (0: the header's)

    @property
    def rec_size(self) -> int:
        return record_size(self.header_words, self.stack_words)

    @property
    def ring(self) -> int:
        return self.ram.base

    @property
    def slots(self) -> int:
        return self.ram.base + HDR_SIZE

    @property
    def doorbell(self) -> int:
        return self.bell or self.ram.base + HDR["doorbell"]


class PatchCapture(RingCapture):
    """Capture ``hooks``: allocator entries patched in emulator memory (see the module's docstring)."""

    mode = "hooks"

    def __init__(self, engine, image: Image, profile: str | AllocatorProfile = "liteos", *, sinks: Iterable[EventSink] = (),
                 unwind_depth: int = 16, stack_words: int = 32, ram: tuple[int, int] | None = None, platform=None,
                 capacity: int | None = None, fallback: bool = True, seq_start: int = 0, unwinder=None,
                 on_pool: Callable[[str, int, int], None] | None = None) -> None:
        super().__init__(engine, image, sinks=sinks)
        # a ring holds ~300 records (64 KiB) that the firmware fills in ~2 ms of wall time: decoding 128 between looks
        # at it (~0.6 ms) halves the per-batch costs of 64 and still looks often enough
        self.chunk = 128
        if unwind_depth < 1 or not 0 <= stack_words <= 255:
            raise CaptureError(f"bad hook settings unwind_depth={unwind_depth}, stack_words={stack_words}",
                               hint="unwind_depth >= 1 and 0 <= stack_words <= 255")
        if capacity is not None and not MIN_CAPACITY <= capacity <= MAX_CAPACITY:
            raise CaptureError(f"ring capacity {capacity} is out of range", hint=f"use {MIN_CAPACITY}..{MAX_CAPACITY} records")
        self.profile = load_profile(profile)
        self.unwind_depth = unwind_depth
        self.stack_words = stack_words
        self.ram_option = ram
        self.platform = platform
        self.capacity_option = capacity
        self.fallback_enabled = fallback
        self.seq = seq_start
        self.nodes = LiteosNodes(image) if self.profile.nodes == "liteos" else None
        self.uptime = uptime_var(image)
        self._unwinder = unwinder
        self.resolver: StackResolver | None = None
        self.functions: list[PatchedFunction] = []
        #: the profile's pool functions (LOS_MemInit ...), patched like the allocator's when ``on_pool`` is given:
        #: a call that returns its success status goes to ``on_pool(kind, pool, size)``, and makes no event. A
        #: gdbstub breakpoint would do, but QEMU runs every instruction of a page holding one as its own block,
        #: and the pool functions share their page with the allocator's hot code
        self.on_pool = on_pool
        self.pool_functions: list[PatchedFunction] = []
        self.layout: Layout | None = None
        self.code = b""
        self._labels: dict[str, int] = {}
        self._originals: dict[int, bytes] = {}
        self.direct_calls: list[tuple[int, bytes, bytes]] = []  # see _direct_calls
        self.fallback = None  # HookCapture for the declined functions
        self.gaps: list[TraceGap] = []
        self.last_seq: int | None = None
        self.drains = 0
        self.resets = 0
        self.stats.update({"records": 0, "nested": 0, "failed": 0, "rejected_frees": 0, "stops": 0, "pool_calls": 0, "pool_failed": 0})
        self._bell = None
        self._watching = False
        self._on_reset_hook = None
        self._regions: list[tuple[int, int]] = []
        self._calls: dict[int, int] = {}  # records per function id
        self._free_stacks = True  # the ring header's free_stacks (see free_stacks)
        #: the claim number the ring starts at when (re)written: past the seqs its slots may hold (see _apply)
        self._ring_start = MIN_CAPACITY
        self._lost = 0  # the ring header's lost count, as last read

    @property
    def free_stacks(self) -> bool:
        """Whether a free's record carries its stack words (on by default: every event's stack is whole).

        A free's stack is worth its cost only to a sink that keeps it: the session's ledger, fed rows, keeps none
        (:meth:`before_run` turns it off for it), and leaving the words out halves what a free's wrapper does. A
        record says in its function word when its words were left out, so a free decoded as an event then has
        the first frame only (its caller, from the record's LR). Set it with the target halted."""
        return self._free_stacks

    @free_stacks.setter
    def free_stacks(self, on: bool) -> None:
        on = bool(on)
        if on != self._free_stacks and self.layout is not None and self.attached:
            self.engine.write_memory(self.layout.ring + HDR["free_stacks"], struct.pack("<I", int(on)))
        self._free_stacks = on

    def before_run(self) -> None:
        """The session's call before the target runs (halted): a free's stack words only for a sink that keeps
        them (:attr:`free_stacks`)."""
        self.free_stacks = not self._rows_mode()

    def _rows_mode(self) -> bool:
        """True when records are decoded to rows for the session's ledger alone (see :meth:`_process`)."""
        lr_count = self.nodes.lr_count if self.nodes is not None else 0
        return self.uptime is not None and lr_count <= 3 and self._takes_rows()

    # -- planning --------------------------------------------------------------------------------
    def plan(self) -> list[PatchedFunction]:
        """Decide, from the ELF alone, which functions are patched and which fall back (with the reason)."""
        self.profile.check(self.image)
        specs = self.profile.present(self.image)
        self.functions = self._demote(self._relocate(specs, 0))
        if self.on_pool is not None:
            self.pool_functions = self._relocate(self.profile.present_pool_functions(self.image), len(specs))
        return self.functions

    @property
    def unpatched_pool_functions(self) -> list[str]:
        """Pool functions the profile names and the ELF has that are not patched (declined, or no ``on_pool``):
        the session sees those by breakpoints."""
        patched = {f.spec.name for f in self.pool_functions if f.relocation is not None}
        return [spec.name for spec in self.profile.present_pool_functions(self.image) if spec.name not in patched]

    def _relocate(self, specs, first_fid: int) -> list[PatchedFunction]:
        out = []
        for fid, spec in enumerate(specs, first_fid):
            sym = self.image.symbol(spec.name)
            size = sym.size or PATCH_BYTES
            try:
                code = self.image.read(sym.address, size)
            except MemhilError as exc:
                raise CaptureError(f"cannot read the code of {spec.name} from the ELF: {exc.message}",
                                   hint="hook functions that live in flash") from exc
            got = relocate_prologue(code, sym.address)
            if isinstance(got, Declined):
                log.warning("%s is not patched (%s): it falls back to breakpoints", spec.name, got)
                out.append(PatchedFunction(fid, spec, sym.address, size, None, got))
            else:
                out.append(PatchedFunction(fid, spec, sym.address, size, got))
        return out

    def _demote(self, funcs: list[PatchedFunction]) -> list[PatchedFunction]:
        """A function on breakpoints that tail-calls a patched one takes it along: the callee's wrapper would see
        the outer caller's return address and report the call a second time, where the breakpoint hooks know a
        tail call from its stack pointer (see HookCapture)."""
        from memhil.capture.thumb import scan_exits

        by_addr = {f.address: f for f in funcs}
        changed = True
        while changed:
            changed = False
            for f in list(by_addr.values()):
                if f.relocation is not None:
                    continue
                for target in scan_exits(self.image.read(f.address, f.size), f.address).tail_calls:
                    g = by_addr.get(target & ~1)
                    if g is not None and g.relocation is not None:
                        why = Declined(g.address, 0, f"{f.spec.name}, which is on breakpoints, tail-calls it")
                        log.warning("%s is not patched (%s): it falls back to breakpoints", g.spec.name, why)
                        by_addr[g.address] = replace(g, relocation=None, declined=why)
                        changed = True
        return [by_addr[f.address] for f in funcs]

    @property
    def calls_by_function(self) -> dict[str, int]:
        """Records taken in per patched function (outermost calls, failed ones included)."""
        names = {f.fid: f.spec.name for f in self.functions}
        return {names[fid]: n for fid, n in sorted(self._calls.items())}

    @property
    def patched(self) -> list[PatchedFunction]:
        return [f for f in self.functions + self.pool_functions if f.relocation is not None]

    @property
    def declined(self) -> list[PatchedFunction]:
        return [f for f in self.functions if f.relocation is None]

    def _platform(self):
        platform = self.platform or getattr(self.engine, "platform", None)
        if platform is None:
            raise CaptureError("patched hooks need the board's memory map", hint="pass platform= (a memhil.platform.Platform)")
        return platform

    def _ram_regions(self) -> list[tuple[int, int]]:
        """(base, end) of each RAM region of the board the emulator maps: pointers and stacks outside them are not read."""
        missing = {getattr(r, "name", r) for r in getattr(self.engine, "missing_regions", ())}
        return [(r.base, r.end) for r in self._platform().ram if r.name not in missing]

    # -- code ----------------------------------------------------------------------------------------
    def _build(self, code_base: int, ring: int, header_words: int, bell: int = 0, code_size: int = 0,
               units: list[int] | None = None, capacity: int = MIN_CAPACITY) -> tuple[Assembler, dict[str, int]]:
        """The code at ``code_base``, its doorbell store to ``bell`` (:attr:`Layout.doorbell`); ``code_size`` is its
        own size (known from a first build: the size does not depend on the addresses), for the nesting check's own
        range. ``units``: the bytes of each wrapper with its body (:meth:`_units`), to start one on the next page
        when it would cross into it (:data:`PAGE`); its way for a full ring follows its body, in any page. ``capacity``: the ring's records (the code's size does not
        depend on it)."""
        a = Assembler()
        regions = self._ram_regions()
        rec_size = record_size(header_words, self.stack_words)
        self._subroutines(a, bell)
        ranges = sorted((f.address, f.size) for f in self.functions)
        own = (code_base, code_size)
        self._is_nested(a, ranges, own)
        lo = min(f.address for f in self.functions)
        box = (lo, max(f.address + f.size for f in self.functions) - lo)  # every hooked function lies in it
        bodies: dict[int, str | int] = {f.address: f"body_{f.fid}" for f in self.patched}  # a moved call to a hooked function: nested
        for k, f in enumerate(self.patched):
            if units is not None:
                at = (code_base + a.size) % PAGE
                if at + units[k] > PAGE >= units[k]:
                    a.raw(b"\x00\xbf" * ((PAGE - at) // 2), "nop: the next wrapper and its body in a page of their own")
            self._wrapper(a, f, ring, header_words, rec_size, box, own, regions, capacity)
            # the body right after its wrapper: QEMU chains a jump within a page, not across one
            a.label(f"body_{f.fid}")
            for k, piece in enumerate(f.relocation.pieces):  # type: ignore[union-attr]
                if isinstance(piece, Branch):
                    if piece.kind == "bl":
                        a.bl(bodies.get(piece.target, piece.target))
                    elif piece.kind == "b":
                        a.b_w(bodies.get(piece.target, piece.target), piece.cond)
                    else:  # cbz rn, T: cbnz rn over a b.w T (and the other way round)
                        a.cbz(piece.reg, f"body_{f.fid}_{k}", nonzero=piece.kind == "cbz")
                        a.b_w(piece.target)
                        a.label(f"body_{f.fid}_{k}")
                else:
                    a.raw(piece, f"moved from {f.spec.name}")
            a.b_w(f.address + f.relocation.length)  # type: ignore[union-attr]
            a.label(f"hot_end_{f.fid}")
            self._full(a, f, ring, capacity, rec_size)
        a.label("code_end")
        return a, a.layout(code_base)

    def _is_nested(self, a: Assembler, ranges: list[tuple[int, int]], own: tuple[int, int]) -> None:
        """r2 = a return address; r0 = 1 when it lies in a hooked function or in this code (``own``: a tail call).
        Clobbers r3."""
        a.label("is_nested")
        for lo, size in ranges + [own]:
            a.load_const(3, lo)
            a.subs_reg(3, 2, 3)
            a.load_const(0, size)
            a.cmp(3, 0)
            a.b_w("nested_yes", "lo")
        a.movs(0, 0)
        a.bx(LR)
        a.label("nested_yes")
        a.movs(0, 1)
        a.bx(LR)

    def _range_check(self, a: Assembler, reg: int, regions: list[tuple[int, int]], low_pad: int, ok: str, bad: str, tag: str) -> None:
        """Branch to ``ok`` when ``reg`` lies in [base + low_pad, end) of one of ``regions``, else to ``bad``. Clobbers r3."""
        for k, (base, end) in enumerate(regions):
            a.load_const(3, base + low_pad)
            a.cmp(reg, 3)
            a.b(f"{tag}_next{k}", "lo")
            a.load_const(3, end)
            a.cmp(reg, 3)
            a.b_w(ok, "lo")
            a.label(f"{tag}_next{k}")
        a.b_w(bad)

    def _read_time(self, a: Assembler) -> None:
        """r0, r1 = the firmware's uptime (ms, 64 bits), inline; clobbers r3."""
        if self.uptime is not None:
            addr, size = self.uptime
            a.load_const(3, addr)
            a.ldr(0, 3, 0)
            if size == 8:
                a.ldr(1, 3, 4)
            else:
                a.movs(1, 0)
        else:
            a.movs(0, 0)
            a.movs(1, 0)

    def _subroutines(self, a: Assembler, bell: int) -> None:
        # ring_bell: the doorbell store (r0 = head); the host stops on it. Clobbers r3
        a.label("ring_bell")
        a.load_const(3, bell)
        a.str(0, 3, 0)
        a.bx(LR)

    def _free_words(self) -> tuple[int, ...]:
        """The node header's words a free's record needs (its size and flags, module and task: the decoder takes no
        link registers from a free), as indexes of the header's words."""
        n = self.nodes
        assert n is not None
        return tuple(sorted({n.size_off // 4, n.module[0] // 4, n.task[0] // 4}))

    def _copy_node(self, a: Assembler, regions: list[tuple[int, int]], header_words: int, invert: bool, t: str,
                   words: Iterable[int] | None = None, *, packed: bool = False) -> None:
        """Inline: the node header of user pointer r1 into [r2] (``header_words`` words, or only those of them whose
        indexes ``words`` gives, each at its own place or, ``packed``, one after the other; ``invert``: each word
        inverted), zeros when r1 is no block; goes on at its end. Clobbers r1, r3, r12. Inline, not a subroutine: a
        return is an indirect jump, which QEMU cannot chain."""
        words = tuple(range(header_words) if words is None else words)
        dest = {j: 4 * (k if packed else j) for k, j in enumerate(words)}
        head = 4 * header_words
        self._range_check(a, 1, regions, head, f"{t}_ok", f"{t}_zero", f"{t}1")
        a.label(f"{t}_ok")
        a.ldr(3, 1, -4)
        a.and_imm(12, 3, ALIGNED | USED)
        a.cmp_imm_w(12, ALIGNED)
        a.b(f"{t}_plain", "ne")
        a.bic_imm(3, 3, ALIGNED | USED)  # an aligned block: the word before it is the gap
        a.subs_reg(1, 1, 3)
        self._range_check(a, 1, regions, head, f"{t}_plain", f"{t}_zero", f"{t}2")
        a.label(f"{t}_plain")
        a.subw(1, 1, head)
        for j in words:
            a.ldr(3, 1, 4 * j)
            if invert:
                a.eor_imm(3, 3, 0xFFFFFFFF)
            a.str(3, 2, dest[j])
        a.b_w(f"{t}_done")
        a.label(f"{t}_zero")
        a.movs(3, 0)
        if invert:
            a.eor_imm(3, 3, 0xFFFFFFFF)
        for j in words:
            a.str(3, 2, dest[j])
        a.label(f"{t}_done")

    def _copy_stack(self, a: Assembler, regions: list[tuple[int, int]], t: str) -> None:
        """Inline: up to ``stack_words`` words from r0 (an entry SP) to [r2], not past the end of sp's RAM region; goes
        on at its end. Clobbers r0-r3, r12."""
        if not self.stack_words:
            return
        for k, (base, end) in enumerate(regions):
            a.load_const(3, base)
            a.cmp(0, 3)
            a.b(f"{t}_next{k}", "lo")
            a.load_const(3, end)
            a.cmp(0, 3)
            a.b(f"{t}_lim", "lo")
            a.label(f"{t}_next{k}")
        a.b_w(f"{t}_done")
        a.label(f"{t}_lim")
        a.subs_reg(3, 3, 0)
        a.lsrs(3, 3, 2)
        a.cmp_imm(3, self.stack_words)
        a.b_w(f"{t}_all", "hs")  # the usual case: every word is there, copied three at a time, no loop
        a.cmp_imm(3, 0)
        a.b(f"{t}_done", "eq")
        a.label(f"{t}_loop")
        a.ldr_post(12, 0, 4)
        a.str_post(12, 2, 4)
        a.subs(3, 1)
        a.b(f"{t}_loop", "ne")
        a.b_w(f"{t}_done")
        a.label(f"{t}_all")
        for _ in range(self.stack_words // 3):
            a.ldmia(0, 1, 3, 12)
            a.stmia(2, 1, 3, 12)
        for _ in range(self.stack_words % 3):
            a.ldr_post(12, 0, 4)
            a.str_post(12, 2, 4)
        a.label(f"{t}_done")

    def _wrapper(self, a: Assembler, f: PatchedFunction, ring: int, header_words: int, rec_size: int,
                 box: tuple[int, int], own: tuple[int, int], regions: list[tuple[int, int]], capacity: int) -> None:
        """The wrapper of one function. It keeps its state in its stack frame and touches no callee-saved
        register, so its frame holds only the caller's arguments and return address, the nesting flag, and for a
        function whose record is taken at entry (a free, a realloc) the time and the entry node header's words a
        free needs, stored inverted (zeros when nested): nothing a firmware's own stack scan (LiteOS's leak-check
        LRs) could take for a return address that it would not see unpatched. The slots only the record needs
        (result, record and claim) are made after the call returns, so nothing is zeroed for an allocation."""
        spec, i = f.spec, f.fid
        kind = spec.kind
        entry_capture = kind in (EventKind.FREE, EventKind.REALLOC)
        words = self._free_words() if entry_capture and header_words else ()
        # during the call: [time lo, time hi, the free's header words, nest] at entry capture, else [nest]
        nest_a = 8 + 4 * len(words) if entry_capture else 0
        pre = nest_a + 4
        if (pre + PUSHED) % 8:
            pre += 4
        # after it, POST more bytes below: [res, rec, claim_slot], and the call's slots POST further up
        res, rec, claim_slot = 0, 4, 8
        nest = nest_a + POST
        saved = pre + POST  # the pushed r0 from SP after both subs; lr at saved + 16; the entry SP is saved + 20
        a.label(f"wrap_{i}")
        a.push(0, 1, 2, 3, LR)
        a.sub_sp(pre)
        if pre > 4:  # the time, header and padding slots: zeros unless written below
            a.movs(3, 0)
            for k in range(0, pre, 4):
                if k != nest_a:
                    a.str(3, SP, k)
        a.ldr(2, SP, pre + 16)
        # nested? A caller outside the hooked functions' span and outside this code (the usual case) is not:
        # decided inline; one inside either is looked up range by range
        for lo, size in (box, own):
            a.load_const(3, lo)
            a.subs_reg(3, 2, 3)
            a.load_const(12, size)
            a.cmp(3, 12)
            a.b_w(f"nest_ask_{i}", "lo")
        a.movs(0, 0)
        a.b(f"nest_done_{i}")
        a.label(f"nest_ask_{i}")
        a.bl("is_nested")
        a.label(f"nest_done_{i}")
        a.str(0, SP, nest_a)
        if entry_capture:
            a.cmp_imm(0, 0)
            a.b_w(f"call_{i}", "ne")
            self._read_time(a)
            a.str(0, SP, 0)
            a.str(1, SP, 4)
            if words:
                a.ldr(1, SP, pre + 4 * (spec.ptr or 0))
                a.add_rd_sp(2, 8)
                self._copy_node(a, regions, header_words, True, f"cni_{i}", words, packed=True)
        a.label(f"call_{i}")
        for k in range(4):
            a.ldr(k, SP, pre + 4 * k)
        a.bl(f"body_{i}")
        a.sub_sp(POST)
        a.str(0, SP, res)
        a.ldr(1, SP, nest)
        a.cmp_imm(1, 0)
        a.b_w(f"done_{i}", "ne")
        a.load_const(2, ring)
        a.ldr(3, 2, HDR["enabled"])
        a.cmp_imm(3, 0)
        a.b_w(f"end_{i}", "eq")
        # claim a slot: claim + 1, unless something came between (an interrupt's call claimed one)
        a.label(f"claim_{i}")
        a.ldrex(0, 2, HDR["claim"])
        self._below(a, "capacity", f"ok_{i}")
        a.b_w(f"full_{i}")
        a.label(f"ok_{i}")
        a.mov(1, 0)
        a.adds(1, 1)
        a.strex(3, 1, 2, HDR["claim"])
        a.cmp_imm(3, 0)
        a.b_w(f"claim_{i}", "ne")
        a.str(0, SP, claim_slot)
        self._slot(a, 0, ring, capacity, rec_size)
        a.str(1, SP, rec)
        a.movs(3, i)
        a.str(3, 1, 4)
        for k in range(4):
            a.ldr(3, SP, saved + 4 * k)
            a.str(3, 1, 8 + 4 * k)
        a.ldr(3, SP, res)
        a.str(3, 1, 24)
        a.ldr(3, SP, saved + 16)
        a.str(3, 1, 28)
        a.add_rd_sp(3, saved + PUSHED)
        a.str(3, 1, 32)

        def at_return() -> None:
            self._read_time(a)
            a.ldr(2, SP, rec)
            a.str(0, 2, 36)
            a.str(1, 2, 40)
            if header_words:
                a.ldr(1, SP, res)
                a.adds(2, 44)
                self._copy_node(a, regions, header_words, False, f"cn_{i}")

        def at_entry() -> None:
            a.ldr(2, SP, rec)
            for k in range(2):
                a.ldr(3, SP, POST + 4 * k)
                a.str(3, 2, 36 + 4 * k)
            for k, j in enumerate(words):  # a free's other header slots in the record are not read
                a.ldr(3, SP, POST + 8 + 4 * k)
                a.eor_imm(3, 3, 0xFFFFFFFF)
                a.str(3, 2, 44 + 4 * j)

        if kind is EventKind.FREE:
            at_entry()
        elif kind is EventKind.REALLOC:
            a.ldr(3, SP, res)
            a.cmp_imm(3, 0)
            a.b_w(f"pre_{i}", "eq")
            at_return()
            a.b_w(f"stk_{i}")
            a.label(f"pre_{i}")
            at_entry()
            a.label(f"stk_{i}")
        else:
            at_return()
        if self.stack_words:
            if kind is EventKind.FREE:  # a free's stack words only when the host asks for them
                a.load_const(3, ring)
                a.ldr(3, 3, HDR["free_stacks"])
                a.cmp_imm(3, 0)
                a.b_w(f"nostack_{i}", "eq")
            a.add_rd_sp(0, saved + PUSHED)
            a.ldr(2, SP, rec)
            a.addw(2, 2, 4 * (FIXED_WORDS + header_words))
            self._copy_stack(a, regions, f"cs_{i}")
            if kind is EventKind.FREE:
                a.b_w(f"stacked_{i}")
                a.label(f"nostack_{i}")
                a.ldr(2, SP, rec)
                a.movw(3, i | NO_STACK)
                a.str(3, 2, 4)
                a.label(f"stacked_{i}")
        # commit: the record's seq, written last, says it is complete; then publish (head) every complete record in
        # order, this one and any an interrupted wrapper finished meanwhile; the doorbell when the ring is due a drain
        a.ldr(0, SP, claim_slot)
        a.ldr(1, SP, rec)
        a.str(0, 1, 0)
        a.load_const(2, ring)
        self._publish(a, ring, capacity, rec_size, f"pub_{i}")
        self._below(a, "drain_at", f"end_{i}")
        a.bl("ring_bell")
        a.label(f"end_{i}")
        a.ldr(0, SP, res)
        a.label(f"done_{i}")
        a.add_sp(saved + 16)
        a.pop(15)

    def _full(self, a: Assembler, f: PatchedFunction, ring: int, capacity: int, rec_size: int) -> None:
        """The wrapper's way when the ring is full, placed after its body (seldom run, it need not share the page):
        publish what is complete, and let the host drain it at the doorbell; when nothing is complete, the oldest
        record's wrapper is the one this call interrupted, which cannot go on before this one returns: the record is
        dropped and counted (lost), not waited for forever."""
        i = f.fid
        a.label(f"full_{i}")
        a.clrex()
        self._publish(a, ring, capacity, rec_size, f"fpub_{i}")
        a.ldr(1, 2, HDR["tail"])
        a.cmp(0, 1)
        a.b_w(f"drop_{i}", "eq")
        a.bl("ring_bell")
        a.b_w(f"claim_{i}")
        a.label(f"drop_{i}")
        a.ldrex(0, 2, HDR["lost"])
        a.adds(0, 1)
        a.strex(3, 0, 2, HDR["lost"])
        a.cmp_imm(3, 0)
        a.b_w(f"drop_{i}", "ne")
        a.b_w(f"end_{i}")

    @staticmethod
    def _slot(a: Assembler, claim: int, ring: int, capacity: int, rec_size: int) -> None:
        """r1 = the slot of claim number ``claim`` (a register): ``(claim % capacity) * rec_size`` past the ring's
        header. Clobbers r3, r12."""
        a.movw(3, capacity)
        a.udiv(1, claim, 3)
        a.mls(1, 1, 3, claim)
        a.movw(3, rec_size)
        a.load_const(12, ring + HDR_SIZE)
        a.mla(1, 1, 3, 12)

    def _publish(self, a: Assembler, ring: int, capacity: int, rec_size: int, t: str) -> None:
        """Inline: head + 1 while the record at head is complete (its seq is head), each step one ldrex/strex;
        ends with r0 = head, r2 = the ring. Clobbers r1, r3, r12."""
        a.label(t)
        a.ldrex(0, 2, HDR["head"])
        self._slot(a, 0, ring, capacity, rec_size)
        a.ldr(1, 1, 0)
        a.cmp(1, 0)
        a.b_w(f"{t}_done", "ne")
        a.mov(1, 0)
        a.adds(1, 1)
        a.strex(3, 1, 2, HDR["head"])
        a.b_w(t)  # the next one (or this one again, when something came between)
        a.label(f"{t}_done")
        a.clrex()

    @staticmethod
    def _below(a: Assembler, limit: str, label: str) -> None:
        """Branch to ``label`` when the ring holds fewer records than its header word ``limit`` (r0 = head,
        r2 = ring header; clobbers r1, r3)."""
        a.ldr(3, 2, HDR["tail"])
        a.subs_reg(3, 0, 3)
        a.ldr(1, 2, HDR[limit])
        a.cmp(3, 1)
        a.b(label, "lo")

    def _jump_cache_clashes(self, size: int) -> Callable[[int], int]:
        """For code of ``size`` bytes at a page-aligned base: how many of its pages share their slots in QEMU's cache
        of recent jump targets with a page of the firmware's own code. That cache (``tb_jmp_cache``, 4096 slots) is
        indexed by ``tb_jmp_cache_hash_func``: with QEMU's 1 KiB pages, 6 bits of the page number, bits 10-15 of an
        address xor bits 14-19. The top of a 1 MiB flash maps onto its bottom (0x080FFC00 onto 0x08000000), where
        the allocator is: there each wrapper would evict the allocator's blocks from the cache and they its, each
        time costing QEMU a lookup in its global table (measured on burst: 5.6 of those a call, 3.7 placed apart,
        3.2 unpatched)."""
        def slot(addr: int) -> int:
            return ((addr >> 10) ^ (addr >> 14)) & 0x3F

        firmware = {slot(page) for seg in self.image.load_segments if seg.flags & P_FLAGS.PF_X
                    for page in range(seg.vaddr & ~(PAGE - 1), seg.vaddr + seg.memsz, PAGE)}
        return lambda base: sum(slot(page) in firmware for page in range(base, base + size, PAGE))

    def _units(self, header_words: int) -> list[int]:
        """Bytes of each patched function's wrapper with its body (what every call runs; its way for a full ring
        comes after), in order (the same wherever the code goes)."""
        labels = self._build(0, 0, header_words)[1]
        return [labels[f"hot_end_{f.fid}"] - labels[f"wrap_{f.fid}"] for f in self.patched]

    def _assemble(self, code_base: int, ring: int, header_words: int, bell: int, units: list[int] | None, capacity: int) -> bytes:
        size = self._build(code_base, ring, header_words, bell, units=units)[0].size  # the same whatever the addresses
        a, labels = self._build(code_base, ring, header_words, bell, size, units, capacity)
        assert labels["code_end"] - code_base == size
        self._labels = labels
        return a.assemble(code_base)

    # -- attaching ------------------------------------------------------------------------------------
    def attach(self) -> None:
        if self.attached:
            return
        if not self.functions:
            self.plan()
        if self._unwinder is None:
            from memhil.capture.hooks import _make_unwinder

            self._unwinder = _make_unwinder(self.image)
        self.resolver = StackResolver(self._unwinder, self.unwind_depth)
        if self.patched:
            self._place()
            self._apply()
            caps = getattr(self.engine, "capabilities", Capability.NONE)
            if self._start_slice_end():
                pass  # drained at the engine's slice ends (Renode): no doorbell stop
            elif Capability.WATCHPOINTS in caps:
                self._bell = self.engine.add_watchpoint(self.layout.doorbell, 4, self._on_bell)  # type: ignore[union-attr]
                self._watching = True
            else:
                self._bell = self.engine.add_breakpoint(self._labels["ring_bell"], self._on_bell)
            self._start_overlap()
            hooks = getattr(self.engine, "reset_hooks", None)
            if hooks is not None:
                self._on_reset_hook = self._on_reset
                hooks.append(self._on_reset_hook)
        if self.declined and self.fallback_enabled:
            self._attach_fallback()
        elif self.declined:
            names = ", ".join(f"{f.spec.name} ({f.declined})" for f in self.declined)
            raise CaptureError(f"cannot patch {names}", hint="allow the breakpoint fallback (fallback=True) or use capture=breakpoints")
        self.attached = True
        log.info("patched hooks: %d functions patched%s; code %s, ring of %d records of %d bytes in %s",
                 len(self.patched), f", {len(self.declined)} on breakpoints" if self.declined else "",
                 self.layout.code.what if self.layout else "-", self.layout.capacity if self.layout else 0,
                 self.layout.rec_size if self.layout else 0, self.layout.ram.what if self.layout else "-")

    def _place(self) -> None:
        platform = self._platform()
        header_words = self.nodes.head // 4 if self.nodes is not None else 0
        taken = getattr(self.engine, "scratch_taken", None)
        units: list[int] | None = self._units(header_words)
        try:  # from a page's start, each wrapper and its body in one page
            size = self._build(0, 0, header_words, units=units)[0].size + 64
            code_area = find_flash(self.image, platform, size, align=PAGE, taken=taken or (), score=self._jump_cache_clashes(size))
        except CaptureError:  # too little flash for that: packed (the code's size does not depend on where it goes)
            units = None
            size = self._build(0, 0, header_words)[0].size + 64
            code_area = find_flash(self.image, platform, size, taken=taken or ())
        rec_size = record_size(header_words, self.stack_words)
        want = HDR_SIZE + rec_size * (self.capacity_option or MAX_CAPACITY)
        need = HDR_SIZE + rec_size * (self.capacity_option or MIN_CAPACITY)
        ram = find_ram(self.image, platform, want, missing=getattr(self.engine, "missing_regions", ()), explicit=self.ram_option,
                       minimum=need, probe=writable(self.engine), taken=taken or ())
        if taken is not None:
            taken += [code_area, ram]
        capacity = min((ram.size - HDR_SIZE) // rec_size, MAX_CAPACITY)
        bell = 0
        page = (ram.end - 4) & ~(BELL_PAGE - 1)  # the page of the area's last word
        below = min((page - ram.base - HDR_SIZE) // rec_size, capacity)
        if below >= max(MIN_CAPACITY, capacity - capacity // 8):  # worth a page: at most an eighth of the slots
            capacity, bell = below, page
        self.layout = Layout(code_area, ram, header_words, self.stack_words, capacity, bell)
        self._regions = self._ram_regions()
        self._decode_table = self._table()
        # a record: the fixed words and the node header as numbers, the stack words left as bytes
        self._rec_struct = struct.Struct(f"<{FIXED_WORDS + header_words}I{4 * self.stack_words}x")
        self._words_cache: dict[int, int] = {}
        self._nodes_fmt = self._node_reader() if self.nodes is not None else None
        self._plain = self._plain_table()
        self._table_words = [word for word, entry in enumerate(self._decode_table) if entry is not None]
        self.code = self._assemble(code_area.base, ram.base, header_words, self.layout.doorbell, units, capacity)
        def placed(funcs: list[PatchedFunction]) -> list[PatchedFunction]:
            return [replace(f, wrapper=self._labels[f"wrap_{f.fid}"], body=self._labels[f"body_{f.fid}"]) if f.relocation else f
                    for f in funcs]

        self.functions, self.pool_functions = placed(self.functions), placed(self.pool_functions)
        self.direct_calls = self._direct_calls()

    def _direct_calls(self) -> list[tuple[int, bytes, bytes]]:
        """The ``bl``/``b.w`` from one patched function to another's entry, as (address, original, retargeted): such
        a call is nested (its return address lies in a hooked function) and makes no event, so it goes straight to
        the callee's body, running no wrapper (``LOS_MemMfree`` calling ``LOS_MemFree``: half a free's wrapper work).
        Decoded from the ELF, literal pools stepped over by the mapping symbols; none without them (a stripped ELF:
        those calls take the wrappers' own nesting check)."""
        bodies = {f.address: f.body for f in self.patched}
        out: list[tuple[int, bytes, bytes]] = []
        for f in self.patched:
            lo, hi = f.address + f.relocation.length, f.address + f.size  # type: ignore[union-attr]
            data = self.image.data_ranges(lo, hi)
            if data is None:
                log.info("no mapping symbols in the ELF: calls between hooked functions go through their wrappers")
                return []
            for br in direct_branches(self.image.read(lo, hi - lo), lo, data):
                body = bodies.get(br.target)
                if body is not None:
                    new = encode_bl(br.address, body) if br.link else encode_b_w(br.address, body)
                    out.append((br.address, self.image.read(br.address, 4), new))
        return out

    def _apply(self) -> None:
        """Write the code, a fresh ring header and the entry branches (target halted)."""
        lay = self.layout
        assert lay is not None
        eng = self.engine
        for f in self.patched:
            now = eng.read_memory(f.address, f.relocation.length)  # type: ignore[union-attr]
            if f.wrapper and now[:PATCH_BYTES] == encode_b_w(f.address, f.wrapper):
                continue  # still patched: the emulator kept the flash across a reset (QEMU does)
            if now != f.relocation.original:  # type: ignore[union-attr]
                raise CaptureError(f"the code of {f.spec.name} in the target ({now.hex()}) is not the ELF's ({f.relocation.original.hex()})",  # type: ignore[union-attr]
                                   hint="run the ELF the session loaded (or detach another patched capture first)")
            self._originals[f.address] = now[:PATCH_BYTES]
        eng.write_memory(lay.code.base, self.code)
        slots = lay.slots
        # claims start past every seq the slots may still hold from before (a record is complete when its seq is its
        # claim): zeros at the first start, at most the claims of the last run after a reset
        start = self._ring_start
        header = {"magic": MAGIC, "enabled": 1, "head": start, "tail": start, "capacity": lay.capacity, "drain_at": lay.capacity,
                  "claim": start, "lost": 0, "slots": slots, "doorbell": 0, "rec_size": lay.rec_size, "version": VERSION,
                  "free_stacks": int(self._free_stacks)}
        self._lost = 0
        raw = bytearray(HDR_SIZE)
        for name, off in HDR.items():
            struct.pack_into("<I", raw, off, header[name])
        eng.write_memory(lay.ring, bytes(raw))
        self._ring_start = (start + 2 * lay.capacity) & 0xFFFFFFFF
        for f in self.patched:
            eng.write_memory(f.address, encode_b_w(f.address, f.wrapper))
        for address, original, new in self.direct_calls:
            now = eng.read_memory(address, 4)
            if now != new:
                if now != original:
                    raise CaptureError(f"the call at {address:#x} in the target ({now.hex()}) is not the ELF's ({original.hex()})",
                                       hint="run the ELF the session loaded (or detach another patched capture first)")
                eng.write_memory(address, new)
            self._originals[address] = original

    def _attach_fallback(self) -> None:
        from memhil.capture.hooks import HookCapture

        specs = {f.spec.name: f.spec for f in self.declined}
        sub = AllocatorProfile(self.profile.name + "-breakpoints", specs, nodes=self.profile.nodes, source=self.profile.source)
        fb = HookCapture(self.engine, self.image, sub, sinks=[self._from_fallback], unwind_depth=self.unwind_depth,
                         unwinder=self._unwinder, fallback_for=self.profile.name)
        extra = [(f.address, f.address + f.size) for f in self.patched]
        if self.layout is not None:
            extra.append((self.layout.code.base, self.layout.code.end))
        fb.nested_ranges = extra
        fb.attach()
        self.fallback = fb

    def _from_fallback(self, event: AllocEvent) -> None:
        """An event of a breakpoint-hooked function: the ring's earlier records go first, then it, renumbered."""
        if self.layout is not None:
            self.drain()
        self._emit(replace(event, seq=self._next_seq()))

    def _next_seq(self) -> int:
        seq = self.seq
        self.seq += 1
        return seq

    def detach(self) -> None:
        if not self.attached:
            return
        try:
            if self.layout is not None:
                self.drain()
                self.engine.write_memory(self.layout.ring + HDR["enabled"], b"\0\0\0\0")
                for address, original in self._originals.items():
                    self.engine.write_memory(address, original)
        finally:
            if self.fallback is not None:
                self.fallback.detach()
                self.fallback = None
            self._stop_overlap()
            self._stop_slice_end()
            if self._bell is not None:
                try:
                    (self.engine.remove_watchpoint if self._watching else self.engine.remove_breakpoint)(self._bell)
                except MemhilError as exc:
                    log.debug("removing the doorbell stop: %s", exc)
                self._bell = None
            hooks = getattr(self.engine, "reset_hooks", None)
            if hooks is not None and self._on_reset_hook in hooks:
                hooks.remove(self._on_reset_hook)
            self.attached = False

    # -- reset ---------------------------------------------------------------------------------------------
    def _on_reset(self, phase: str) -> None:
        """The engine's reset: take in what the ring holds before, patch again after (memory was reloaded)."""
        if phase == "before":
            self.drain()
        elif phase == "after":
            self.resets += 1
            self.last_seq = None
            self._apply()
            log.info("target reset: allocator patched again")

    def _check_patched(self, target) -> bool:
        """True when the first patched entry still holds its branch and the ring its header (a reset the engine did
        not announce may reload the flash or clear the RAM)."""
        f = self.patched[0]
        lay = self.layout
        assert lay is not None
        code, magic = read_many(target, [(f.address, PATCH_BYTES), (lay.ring, 4)])
        return code == encode_b_w(f.address, f.wrapper) and magic == struct.pack("<I", MAGIC)

    # -- draining -----------------------------------------------------------------------------------------
    def _ring_capacity(self) -> int:
        return self.layout.capacity if self.layout is not None else 0

    def _record_size(self) -> int:
        assert self.layout is not None
        return self.layout.rec_size

    def _ring_area(self) -> tuple[int, int]:
        lay = self.layout
        assert lay is not None
        return lay.ring, HDR_SIZE + lay.capacity * lay.rec_size

    def _copy_live(self, window) -> tuple[bytes, int] | None:
        """While the firmware runs: the header, then only the records there are."""
        return self._read_ring(window, whole=False)

    def _on_bell(self, ctx) -> None:
        self.stats["stops"] += 1
        self._at_drain_stop(ctx)

    def _copy_ring(self, target) -> tuple[bytes, int] | None:
        return self._read_ring(target)

    def _read_ring(self, target, *, whole: bool = True) -> tuple[bytes, int] | None:
        """Copy [tail, head) and give the slots back: (raw records in order, count). ``whole`` reads the
        header and every slot in one request (the doorbell rings when the ring is full); else the header first,
        then only the records there are."""
        lay = self.layout
        assert lay is not None
        rs, cap = lay.rec_size, lay.capacity
        if whole:
            blob = target.read_memory(lay.ring, HDR_SIZE + cap * rs)
        else:
            blob = target.read_memory(lay.ring, HDR_SIZE)
        magic, _en, head, tail, _cap, _drain_at, claim, lost = struct.unpack_from("<8I", blob)
        if magic == 0 and not any(blob[:HDR_SIZE]):
            return None  # zeroed by a reset: drain() notices and patches again
        if magic != MAGIC:
            raise CaptureError(f"the hook ring at {lay.ring:#x} lost its header (magic {magic:#010x})",
                               hint="the firmware wrote over the RAM the hooks use; pass ram=(base, size) of an area it leaves alone")
        if lost != self._lost:
            self._gap(TraceGap(head, head, (lost - self._lost) & 0xFFFFFFFF, "lost"))
            self._lost = lost
        self._ring_start = (claim + 2 * cap) & 0xFFFFFFFF
        count = (head - tail) & 0xFFFFFFFF
        if count == 0:
            return None
        if count > cap:
            raise CaptureError(f"the hook ring holds {count} records but has room for {cap} (head={head}, tail={tail})",
                               hint="the ring header was overwritten in target memory; pass ram=(base, size) of an area the firmware leaves alone")
        first = tail % cap
        upto = min(count, cap - first)
        if whole:
            raw = blob[HDR_SIZE + first * rs : HDR_SIZE + (first + upto) * rs]
            if count > upto:
                raw += blob[HDR_SIZE : HDR_SIZE + (count - upto) * rs]
        else:
            requests = [(lay.slots + first * rs, upto * rs)]
            if count > upto:
                requests.append((lay.slots, (count - upto) * rs))
            raw = b"".join(read_many(target, requests))
        target.write_memory(lay.ring + HDR["tail"], struct.pack("<I", head))
        self.drains += 1
        return raw, count

    def drain(self, target=None) -> int:
        """Take in every record the ring holds (records copied at earlier stops first); returns how many."""
        done = self._finish_pending()
        if self.layout is None:
            return done
        target = target or self.engine
        got = self._read_ring(target, whole=False)
        if got is not None:
            self._decode(*got)
            done += got[1]
        if self._originals and not self._check_patched(target):
            self.resets += 1
            self.gaps.append(TraceGap(self.last_seq if self.last_seq is not None else -1, -1, 0, "reset"))
            log.warning("the target was reset without the engine saying so: calls since that reset were not seen; patching again")
            self.last_seq = None
            self._apply()
        return done

    # -- decoding --------------------------------------------------------------------------------------------
    def _table(self) -> list[tuple | None]:
        """Per function id (the list's index), what decoding needs, flattened once into record indexes: (function,
        code, ptr, size, size2, module, flags, success, kind, kind as a row's number). ``code``: 0 free, 1 allocation, 2 realloc, 3 pool call;
        ptr, size, size2 and module index the record's words (-1: none; size2 multiplies size, as calloc's two
        arguments); for a pool call ``kind`` is the call's own ("init" or "deinit") and size its size argument. A free's
        id with :data:`NO_STACK` set (a record without its stack words) has the same entry."""
        frees = [f.fid for f in self.functions if f.spec.kind is EventKind.FREE]
        out: list[tuple | None] = [None] * (1 + max([f.fid for f in self.functions + self.pool_functions] + [fid | NO_STACK for fid in frees], default=-1))

        def reg(r: int | None) -> int:
            return -1 if r is None else 2 + r  # r0 is the record's third word

        for f in self.functions:
            spec = f.spec
            if len(spec.size) > 2:
                raise CaptureError(f"{spec.name}: {len(spec.size)} size arguments; hooks multiply at most two", hint="fix the profile")
            code = {EventKind.FREE: 0, EventKind.REALLOC: 2}.get(spec.kind, 1)
            sizes = [reg(r) for r in spec.size] + [-1, -1]
            out[f.fid] = (f, code, reg(spec.ptr), sizes[0], sizes[1], reg(spec.module),
                          EventFlag.UNTRACKED if spec.untracked else EventFlag.NONE, spec.success, spec.kind, int(spec.kind))
        for fid in frees:
            out[fid | NO_STACK] = out[fid]
        for f in self.pool_functions:
            out[f.fid] = (f, 3, reg(f.spec.pool), reg(f.spec.size), -1, -1, EventFlag.NONE, f.spec.success, f.spec.kind, 0)
        return out

    def _node_reader(self):
        """(size, (word, shift, mask) of module and task, lrs) of the node header, as indexes of the record's words."""
        n = self.nodes
        assert n is not None

        def field(spec: tuple[int, int, int]) -> tuple[int, int, int]:
            off, bit, bits = spec
            return (FIXED_WORDS + off // 4, (off % 4) * 8 + bit, (1 << bits) - 1)

        lrs = tuple(FIXED_WORDS + n.lr_off // 4 + i for i in range(n.lr_count))
        return FIXED_WORDS + n.size_off // 4, field(n.module), field(n.task), lrs

    def _count_calls(self, counts: list[int]) -> None:
        """Add a batch's records per function word (``counts``, indexed as :meth:`_table`) to the calls per function."""
        calls = self._calls
        for word in self._table_words:
            n = counts[word]
            if n:
                fid = word & ~NO_STACK
                calls[fid] = calls.get(fid, 0) + n

    def _plain_table(self) -> list[tuple | None]:
        """Per function word (an id, or a free's id with :data:`NO_STACK`), for :meth:`_rows_each`: None where its
        records are not plain calls (a pool call, an untracked function), else (code, ptr, size, size2, module,
        success, row kind, address) with the record words as in :meth:`_table`."""
        return [None if e is None or e[1] == 3 or e[6] is not EventFlag.NONE else
                (e[1], e[2], e[3], e[4], e[5], e[7], 1 if e[8] is EventKind.ALLOC else e[9], e[0].address)
                for e in self._decode_table]

    def _process(self, raw: bytes, count: int) -> None:
        """Records to rows for the session's ledger alone (:meth:`_rows_each`), else to events for the sinks
        (:meth:`_process_each`)."""
        if self.nodes is not None and self._rows_mode():
            self._rows_each(raw, count)
        else:
            self._process_each(raw, count)

    def _rows_each(self, raw: bytes, count: int) -> None:
        """:meth:`_process_each` for the session's ledger alone (a LiteOS node header in each record), its common
        case only, written out: a plain call in sequence becomes a row and its stack, nothing else is looked at.
        From the first record that is not one (a pool call, an untracked function's, a sequence gap, a free the
        allocator refuses, a function id never patched), the batch goes through :meth:`_process_each`."""
        lay = self.layout
        assert lay is not None and self._nodes_fmt is not None
        rs, sw, regions = lay.rec_size, lay.stack_words, self._regions
        plain, resolver, words_at = self._plain, self.resolver, self._words_cache
        nplain = len(plain)
        stack_off = 4 * (FIXED_WORDS + lay.header_words)
        size_w, (nmod_i, mod_sh, mod_mask), (ntask_i, task_sh, task_mask), lr_is = self._nodes_fmt
        lr_get = itemgetter(*lr_is) if len(lr_is) > 1 else None
        lr_pad = (0, 0, 0)[len(lr_is):]
        last = self.last_seq
        expect = -1 if last is None else (last + 1) & 0xFFFFFFFF
        seq_out = self.seq
        counts = [0] * nplain
        failed = done = 0
        rows: list = []
        stacks: list = []
        row, stack = rows.append, stacks.append
        records = self.stats["records"]
        try:
            for off, rec in zip(range(0, count * rs, rs), self._rec_struct.iter_unpack(raw[: count * rs])):
                seq, fw = rec[0], rec[1]
                e = plain[fw] if fw < nplain else None
                if e is None or seq != expect and expect >= 0:
                    break
                code, ptr_i, size_i, size2_i, mod_i, success, row_kind, address = e
                ret, flag = rec[6], rec[size_w]
                if code == 0:  # a free
                    ptr = rec[ptr_i]
                    if not ptr:
                        pass
                    elif success is not None and ret != success:
                        failed += 1
                    elif flag & USED:
                        row((seq_out, rec[10] << 32 | rec[9], 2, (rec[nmod_i] >> mod_sh) & mod_mask, (rec[ntask_i] >> task_sh) & task_mask,
                             ptr, 0, 0, flag & SIZE_MASK, 0, 0, 0))
                        stack(())
                        seq_out += 1
                    else:
                        break  # no used block: the allocator refuses it, _process_each says so
                else:
                    size = rec[size_i] if size_i >= 0 else 0
                    if size2_i >= 0:
                        size = size * rec[size2_i] & 0xFFFFFFFF
                    old = rec[ptr_i] if code == 2 else 0
                    if ret:
                        if flag & USED:
                            module, task = (rec[nmod_i] >> mod_sh) & mod_mask, (rec[ntask_i] >> task_sh) & task_mask
                            lrs = (lr_get(rec) if lr_get is not None else (rec[lr_is[0]],) if lr_is else ()) + lr_pad
                            node_size = flag & SIZE_MASK
                        else:
                            module, task, lrs, node_size = rec[mod_i] if mod_i >= 0 else 0, 0, (0, 0, 0), 0
                        sp = rec[8]
                        n = words_at.get(sp)
                        if n is None:
                            n = words_at[sp] = self._words_at(sp, regions, sw)
                        row((seq_out, rec[10] << 32 | rec[9], 1 if code == 2 and not old else row_kind, module, task, ret, old, size, node_size) + lrs)
                        stack(LazyStack(resolver, (address, rec[7], sp, raw[off + stack_off : off + stack_off + 4 * n])))  # type: ignore[arg-type]
                        seq_out += 1
                    elif code == 2 and size == 0 and old:  # realloc(p, 0) that freed p
                        if not flag & USED:
                            break
                        row((seq_out, rec[10] << 32 | rec[9], 2, (rec[nmod_i] >> mod_sh) & mod_mask, (rec[ntask_i] >> task_sh) & task_mask,
                             old, 0, 0, flag & SIZE_MASK, 0, 0, 0))
                        stack(())
                        seq_out += 1
                    else:
                        failed += 1
                counts[fw] += 1
                last, expect = seq, (seq + 1) & 0xFFFFFFFF
                done += 1
            self.last_seq, self.seq = last, seq_out
            self.stats["failed"] += failed
            self._count_calls(counts)
            if rows:
                self._emit_rows(rows, stacks)
            if done < count:
                self._process_each(raw[done * rs :], count - done)
        finally:  # a batch's records are counted once it is all taken in, as _process_each counts them
            self.stats["records"] = records
        self.stats["records"] = records + count

    def _process_each(self, raw: bytes, count: int) -> None:
        """Records to events (the same as the breakpoint hooks make) and to the sinks; to the session's ledger
        alone, as rows and their stacks (no event objects, no stack kept for a free), where it takes them.

        The host's cost per call under patched hooks is this loop and the ledger's: a record is one tuple of its
        fixed and node-header words (one C-level unpack of the batch, the stack words left as bytes), read by
        index, with everything about its function looked up once per batch (:meth:`_table`)."""
        lay = self.layout
        assert lay is not None
        rs, hw, sw = lay.rec_size, lay.header_words, lay.stack_words
        table = self._decode_table
        regions = self._regions
        resolver = self.resolver
        stack_off = 4 * (FIXED_WORDS + hw)
        nodes = self.nodes is not None
        if nodes:
            size_i, (nmod_i, mod_sh, mod_mask), (ntask_i, task_sh, task_mask), lr_is = self._nodes_fmt
        else:
            size_i = nmod_i = ntask_i = mod_sh = task_sh = mod_mask = task_mask = 0
            lr_is = ()
        lr_get = itemgetter(*lr_is) if len(lr_is) > 1 else None  # the LR words as a tuple, in C
        have_time = self.uptime is not None
        t_fallback = 0 if have_time else self.engine_time_us()
        FREE, ALLOC = EventKind.FREE, EventKind.ALLOC
        s_seq, s_t, s_kind, s_ptr, s_size, s_node, s_mod, s_task, s_stack, s_old, s_lrs, s_flags = _SETTERS
        new, cls = object.__new__, AllocEvent
        events: list[AllocEvent] = []
        append = events.append
        last = self.last_seq
        expect = None if last is None else (last + 1) & 0xFFFFFFFF
        seq_out = self.seq
        stats = self.stats
        words_at = self._words_cache
        counts = [0] * len(table)
        # rows hold the time in ms and up to three LRs; an untracked call's event goes on its own, in order
        rows_mode = self._rows_mode()
        lr_pad = (0, 0, 0)[len(lr_is):]  # a row's LRs past those the header has
        rows: list = []
        stacks: list = []
        rows_append, stacks_append, no_flags = rows.append, stacks.append, EventFlag.NONE
        failed = 0
        try:
            for off, rec in zip(range(0, count * rs, rs), self._rec_struct.iter_unpack(raw[: count * rs])):
                seq = rec[0]
                if seq != expect:
                    if last is not None:
                        self._gap(TraceGap(last, seq, (seq - last - 1) & 0xFFFFFFFF, "seq-gap"))
                last = seq
                expect = (seq + 1) & 0xFFFFFFFF
                fid = rec[1]
                entry = table[fid] if fid < len(table) else None
                if entry is None:
                    raise CaptureError(f"hook record seq {seq} names function {fid}, which was not patched",
                                       hint="the ring in target memory was overwritten; pass ram=(base, size) of an area the firmware leaves alone")
                f, code, ptr_i, size_i0, size_i1, mod_i, flags, success, kind, kind_n = entry
                ret = rec[6]
                if code == 3:
                    stats["pool_calls"] += 1
                    if ret == success:
                        self.on_pool(kind, rec[ptr_i], rec[size_i0] if size_i0 >= 0 else 0)  # type: ignore[misc]
                    else:
                        stats["pool_failed"] += 1
                    continue
                counts[fid] += 1
                if code == 0:  # a free
                    ptr = rec[ptr_i]
                    if not ptr:
                        continue
                    if success is not None and ret != success:  # refused (a bad module id): the block stays
                        failed += 1
                        continue
                    ekind, old, size = FREE, 0, 0
                else:
                    size = rec[size_i0] if size_i0 >= 0 else 0
                    if size_i1 >= 0:
                        size = size * rec[size_i1] & 0xFFFFFFFF
                    old = rec[ptr_i] if code == 2 else 0
                    if ret:
                        ekind, ptr = (ALLOC if code == 2 and not old else kind), ret
                        knum = 1 if ekind is ALLOC else kind_n
                    elif code == 2 and size == 0 and old:  # realloc(p, 0) that freed p
                        ekind, ptr, old = FREE, old, 0
                    else:
                        failed += 1
                        continue
                module = rec[mod_i] if mod_i >= 0 else 0
                node_size = task = 0
                used = False
                if nodes:
                    size_flag = rec[size_i]
                    if size_flag & USED:
                        used = True
                        node_size = size_flag & SIZE_MASK
                        module = (rec[nmod_i] >> mod_sh) & mod_mask
                        task = (rec[ntask_i] >> task_sh) & task_mask
                    elif ekind is FREE:  # not a used block: the allocator refuses it, no event
                        self._rejected(f.spec.name, ptr)
                        continue
                freed = ekind is FREE
                as_row = rows_mode and flags is no_flags
                if as_row and freed:
                    rows_append((seq_out, rec[10] << 32 | rec[9], 2, module, task, ptr, 0, 0, node_size, 0, 0, 0))
                    stacks_append(())  # the ledger keeps no stack of a free
                    seq_out += 1
                    continue
                sp = rec[8]
                n = words_at.get(sp)
                if n is None:
                    n = words_at[sp] = self._words_at(sp, regions, sw)
                if fid & NO_STACK:
                    n = 0  # unwinding stops at the first frame: the caller
                stack = LazyStack(resolver, (f.address, rec[7], sp, raw[off + stack_off : off + stack_off + 4 * n]))  # type: ignore[arg-type]
                if as_row:
                    if used and lr_is:
                        lrs = lr_get(rec) if lr_get is not None else (rec[lr_is[0]],)
                        rows_append((seq_out, rec[10] << 32 | rec[9], knum, module, task, ptr, old, size, node_size) + lrs + lr_pad)
                    else:
                        rows_append((seq_out, rec[10] << 32 | rec[9], knum, module, task, ptr, old, size, node_size, 0, 0, 0))
                    stacks_append(stack)
                    seq_out += 1
                    continue
                lrs = ()
                if used and not freed and lr_is:
                    lrs = tuple(v for v in (lr_get(rec) if lr_get is not None else (rec[lr_is[0]],)) if v)
                ev = new(cls)
                s_seq(ev, seq_out)
                seq_out += 1
                s_t(ev, (rec[10] << 32 | rec[9]) * 1000 if have_time else t_fallback)
                s_kind(ev, ekind)
                s_ptr(ev, ptr)
                s_size(ev, size)
                s_node(ev, node_size)
                s_mod(ev, module)
                s_task(ev, task)
                s_stack(ev, stack)
                s_old(ev, old)
                s_lrs(ev, lrs)
                s_flags(ev, flags)
                if rows_mode:  # an untracked call amid rows: the rows before it first
                    if rows:
                        self._emit_rows(rows, stacks)
                        rows, stacks = [], []
                        rows_append, stacks_append = rows.append, stacks.append
                    self._emit_many([ev])
                    continue
                append(ev)
        finally:  # what was decoded before a bad record goes on, and is counted
            self.last_seq, self.seq = last, seq_out
            stats["failed"] += failed
            self._count_calls(counts)
            if rows:
                self._emit_rows(rows, stacks)
            if events:
                self._emit_many(events)
        stats["records"] += count

    @staticmethod
    def _words_at(sp: int, regions: list[tuple[int, int]], most: int) -> int:
        """Stack words the wrapper copied at ``sp`` (the same rule as its copy_stack)."""
        for base, end in regions:
            if base <= sp < end:
                return min(most, (end - sp) >> 2)
        return 0

    def engine_time_us(self) -> int:
        return int(self.engine.virtual_time() * 1_000_000)

    def _rejected(self, name: str, ptr: int) -> None:
        self.stats["rejected_frees"] += 1
        log.warning("%s(%#x): not a used block (double free or foreign pointer); the allocator rejects it, no event", name, ptr)

    def _gap(self, gap: TraceGap) -> None:
        self.gaps.append(gap)
        if gap.reason == "lost":
            log.warning("hook ring: %d record(s) lost: the ring was full of a record an interrupted call had not "
                        "finished (raise the ring's capacity, or drain more often)", gap.missing)
        else:
            log.warning("hook ring: %d record(s) missing between seq %d and %d", gap.missing, gap.after_seq, gap.next_seq)
