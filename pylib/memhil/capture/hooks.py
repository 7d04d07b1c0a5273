"""Capture by breakpoints (``capture=breakpoints``, the exact fallback of the patched hooks): gdbstub breakpoints
on allocator entry and return, per an allocator profile.

Per call the target stops at most twice, and each stop makes at most one (pipelined) read:

- entry: arguments come from the stop's registers (AAPCS r0-r3); a free is complete here (its node
  header is still intact), so it reads the header, the stack and the uptime together and is done;
- return: a permanent breakpoint on each return instruction of the function (found by
  :mod:`.thumb`); the frame is found by the stack pointer it had at entry (``sp + popped bytes``),
  so nested and interleaved calls on several task stacks stay apart. A function that leaves by a tail
  call into something not hooked, or returns conditionally, gets a breakpoint on its return address
  instead (installed once per call site and kept).

Only the outermost call of a nest is an event: an entry whose return address lies inside a hooked
function (``LOS_MemMalloc`` calling ``LOS_MemAlloc``), or that a live frame on the same stack may
reach through its ``calls`` list (``malloc`` tail-calling ``_malloc_r``), is skipped.

The call stack is unwound on the host (DWARF CFI, :class:`memhil.elf.Unwinder`) from the registers
at entry over ``stack_bytes`` of stack read at the entry SP; the caller's frames above it do not
change during the call, so that read is made at return together with the node header.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable

from memhil.capture.base import Capture, EventSink, read_many, release_breakpoints, uptime_var
from memhil.capture.nodes import LiteosNodes, NodeInfo
from memhil.capture.profiles import AllocatorProfile, FunctionSpec, load_profile
from memhil.capture.thumb import ExitScan, scan_exits
from memhil.errors import CaptureError, MemhilError
from memhil.events import AllocEvent, EventFlag, EventKind

if TYPE_CHECKING:
    from memhil.elf import Image

log = logging.getLogger("memhil.capture")

#: an entry this close below a live frame's SP, on a function that frame may call, is nested in it
NEST_WINDOW = 2048
#: most bytes a return site's SP may lie below the entry SP for them to be read with the stack
MAX_LEAD = 256


@dataclass(frozen=True)
class FunctionPlan:
    """How one hooked function is caught: its code range and its exits."""

    spec: FunctionSpec
    address: int
    end: int
    scan: ExitScan
    reliable: bool  # the return sites (its own or those of hooked tail-call targets) catch every exit


@dataclass(slots=True)
class _Frame:
    plan: FunctionPlan
    sp: int
    lr: int
    regs: dict[str, int]
    size: int
    old_ptr: int
    boundary: int
    module: int
    return_addr: int | None = None  # set when caught by a breakpoint on the return address
    pre: tuple | None = None  # (NodeInfo | None, stack, t_us) read at entry (realloc to size 0)


class HookCapture(Capture):
    mode = "breakpoints"

    def __init__(
        self,
        engine,
        image: Image,
        profile: str | AllocatorProfile = "liteos",
        *,
        sinks: Iterable[EventSink] = (),
        unwind_depth: int = 16,
        stack_bytes: int = 256,
        unwinder=None,
        seq_start: int = 0,
        fallback_for: str | None = None,
    ) -> None:
        super().__init__(engine, image, sinks=sinks)
        #: the patched capture this one serves: its profile holds only the functions patching declined (maybe
        #: only a free, or only an allocation), so it is not checked as a whole allocator on its own
        self.fallback_for = fallback_for
        if unwind_depth < 1 or stack_bytes < 0 or stack_bytes % 4:
            raise CaptureError(
                f"bad hook settings unwind_depth={unwind_depth}, stack_bytes={stack_bytes}",
                hint="unwind_depth >= 1 and stack_bytes a multiple of 4 (>= 0)",
            )
        self.profile = load_profile(profile)
        self.unwind_depth = unwind_depth
        self.stack_bytes = stack_bytes
        self._unwinder = unwinder
        self.seq = seq_start
        self.nodes = LiteosNodes(image) if self.profile.nodes == "liteos" else None
        self.uptime = uptime_var(image)
        self.stack_top = _stack_top(image)
        self.plans: dict[str, FunctionPlan] = {}
        self._ranges: list[tuple[int, int]] = []
        self._frames: dict[int, _Frame] = {}
        self._last_entry: dict[int, tuple[int, str]] = {}  # sp -> (lr, function) of the last outermost entry
        self._breakpoints: list = []
        self._return_sites: dict[int, tuple[FunctionPlan, int]] = {}
        self._ret_addr_bps: dict[int, object] = {}
        #: more (start, end) code ranges a call returning into is nested (see PatchCapture's fallback)
        self.nested_ranges: list[tuple[int, int]] = []
        self.stats = {"stops": 0, "entries": 0, "nested": 0, "returns": 0, "foreign_returns": 0, "stale_frames": 0, "extra_reads": 0, "rejected_frees": 0}

    # -- set-up ---------------------------------------------------------------------------
    def plan(self) -> dict[str, FunctionPlan]:
        """Work out every hooked function's exits from its code (no engine needed)."""
        if self.fallback_for is None:
            self.profile.check(self.image)
        scans: dict[str, tuple[FunctionSpec, int, ExitScan]] = {}
        for spec in self.profile.present(self.image):
            sym = self.image.symbol(spec.name)
            size = sym.size or 2
            try:
                code = self.image.read(sym.address, size)
            except MemhilError as exc:
                raise CaptureError(f"cannot read the code of {spec.name} from the ELF: {exc.message}", hint="hook functions that live in flash/loadable code") from exc
            scans[spec.name] = (spec, sym.address, scan_exits(code, sym.address))
        entries = {addr: name for name, (_, addr, _) in scans.items()}
        memo: dict[str, bool] = {}

        def reliable(name: str, stack: tuple[str, ...] = ()) -> bool:
            if name in memo:
                return memo[name]
            spec, _, scan = scans[name]
            ok = not scan.unknown_exits and (bool(scan.returns) or bool(scan.tail_calls))
            for target in scan.tail_calls:
                callee = entries.get(target)
                ok = ok and callee is not None and callee in self.profile.calls_closure(name) and callee not in stack and reliable(callee, stack + (name,))
            memo[name] = ok
            return ok

        self.plans = {name: FunctionPlan(spec, addr, scan.end, scan, reliable(name)) for name, (spec, addr, scan) in scans.items()}
        self._ranges = sorted((p.address, p.end) for p in self.plans.values())
        return self.plans

    def _return_catchers(self) -> set[str]:
        """Functions whose return sites get breakpoints: each reliable function that needs its result,
        and the hooked functions it tail-calls (their returns are its returns). Callees reached by a
        normal call return into their caller, so they get none: fewer wasted stops."""
        entries = {p.address: name for name, p in self.plans.items()}
        out: set[str] = set()
        todo = [n for n, p in self.plans.items() if p.spec.needs_return and p.reliable]
        while todo:
            name = todo.pop()
            if name in out:
                continue
            out.add(name)
            todo.extend(entries[t] for t in self.plans[name].scan.tail_calls if t in entries)
        return out

    def attach(self) -> None:
        if self.attached:
            return
        self.plan()
        if self._unwinder is None:
            self._unwinder = _make_unwinder(self.image)
        need_returns = self._return_catchers()
        try:
            for name, p in self.plans.items():
                self._breakpoints.append(self.engine.add_breakpoint(p.address, self._entry_callback(p)))
                if name in need_returns:
                    for site in p.scan.returns:
                        self._return_sites[site.address] = (p, site.sp_adjust)
                        self._breakpoints.append(self.engine.add_breakpoint(site.address, self._on_return_site))
        except BaseException:
            self._remove_all()
            raise
        self.attached = True
        log.info("hooks attached: %d functions, %d return sites, fallback for %s", len(self.plans), len(self._return_sites),
                 [n for n, p in self.plans.items() if p.spec.needs_return and not p.reliable] or "none")

    def detach(self) -> None:
        if not self.attached:
            return
        self._remove_all()
        self.attached = False
        if self._frames:
            log.info("hooks detached with %d call(s) still in progress (not reported)", len(self._frames))
        self._frames.clear()

    def _remove_all(self) -> None:
        bps = self._breakpoints + list(self._ret_addr_bps.values())
        self._breakpoints, self._ret_addr_bps, self._return_sites = [], {}, {}
        release_breakpoints(self.engine, bps, "a hook breakpoint")

    # -- stops ----------------------------------------------------------------------------------
    def _entry_callback(self, plan: FunctionPlan) -> Callable:
        return lambda ctx: self._on_entry(plan, ctx)

    def _inside_hooked(self, addr: int) -> bool:
        for lo, hi in self._ranges:
            if lo <= addr < hi:
                return True
        for lo, hi in self.nested_ranges:  # functions hooked another way (patched), and their wrappers
            if lo <= addr < hi:
                return True
        return False

    def _is_nested(self, plan: FunctionPlan, sp: int, lr: int) -> bool:
        if self._inside_hooked(lr):
            return True
        name = plan.spec.name
        last = self._last_entry.get(sp)
        if last is not None and last[0] == lr and name in self.profile.calls_closure(last[1]):
            return True  # tail call from the outer function: same SP, same return address
        for frame in self._frames.values():
            if 0 <= frame.sp - sp <= NEST_WINDOW and name in self.profile.calls_closure(frame.plan.spec.name):
                return True
        return False

    def _on_entry(self, plan: FunctionPlan, ctx) -> None:
        self.stats["stops"] += 1
        regs = ctx.regs
        sp, lr = regs["sp"], regs["lr"] & ~1
        if self._is_nested(plan, sp, lr):
            self.stats["nested"] += 1
            return
        self.stats["entries"] += 1
        spec = plan.spec
        self._last_entry[sp] = (lr, spec.name)
        if spec.kind is EventKind.FREE:
            ptr = spec.arg(regs, spec.ptr)
            if ptr:
                info, stack, t_us = self._read_state(ctx, ptr, regs, plan, sp)
                if self.nodes is not None and info is None:
                    self._rejected(spec.name, ptr)
                    return
                self._emit_event(spec, EventKind.FREE, ptr, 0, info, stack, t_us, spec.arg(regs, spec.module))
            return
        stale = self._frames.pop(sp, None)
        if stale is not None:
            self.stats["stale_frames"] += 1
            log.warning("call of %s at sp=%#x never returned as seen by the hooks; dropped", stale.plan.spec.name, sp)
        frame = _Frame(plan, sp, lr, dict(regs), spec.size_of(regs), spec.arg(regs, spec.ptr), spec.arg(regs, spec.boundary), spec.arg(regs, spec.module))
        if spec.kind is EventKind.REALLOC and frame.size == 0 and frame.old_ptr:
            frame.pre = self._read_state(ctx, frame.old_ptr, regs, plan, sp)  # the block is gone at return
        if not plan.reliable:
            frame.return_addr = lr
            if lr not in self._ret_addr_bps:
                self._ret_addr_bps[lr] = self.engine.add_breakpoint(lr, self._on_return_address)
        self._frames[sp] = frame

    def _on_return_site(self, ctx) -> None:
        self.stats["stops"] += 1
        site = self._return_sites.get(ctx.pc & ~1)
        if site is None:
            return
        plan, adjust = site
        entry_sp = ctx.regs["sp"] + adjust
        frame = self._frames.get(entry_sp)
        if frame is None or frame.return_addr is not None or not (
            frame.plan is plan or plan.spec.name in self.profile.calls_closure(frame.plan.spec.name)
        ):
            self.stats["foreign_returns"] += 1
            return
        del self._frames[entry_sp]
        self._complete(frame, ctx)

    def _on_return_address(self, ctx) -> None:
        self.stats["stops"] += 1
        sp = ctx.regs["sp"]
        frame = self._frames.get(sp)
        if frame is None or frame.return_addr != (ctx.pc & ~1):
            self.stats["foreign_returns"] += 1
            return
        del self._frames[sp]
        self._complete(frame, ctx)

    def _complete(self, frame: _Frame, ctx) -> None:
        self.stats["returns"] += 1
        spec = frame.plan.spec
        ret = ctx.regs["r0"] & 0xFFFFFFFF
        if ret == 0:
            if spec.kind is EventKind.REALLOC and frame.size == 0 and frame.old_ptr and frame.pre is not None:
                info, stack, t_us = frame.pre
                if self.nodes is not None and info is None:
                    self._rejected(spec.name, frame.old_ptr)
                    return
                self._emit_event(spec, EventKind.FREE, frame.old_ptr, 0, info, stack, t_us, frame.module)
            return  # a failed allocation is not an event
        # also read the words between the SP now and the entry SP: the POP that returns needs them,
        # and the engine takes them from this read rather than asking again
        lead = frame.sp - ctx.regs["sp"]
        info, stack, t_us = self._read_state(ctx, ret, frame.regs, frame.plan, frame.sp, frame.boundary,
                                             lead=lead if 0 < lead <= MAX_LEAD else 0)
        kind = spec.kind
        if kind is EventKind.REALLOC and not frame.old_ptr:
            kind = EventKind.ALLOC  # realloc(NULL, n) is malloc(n), as the firmware's trace records it
        self._emit_event(spec, kind, ret, frame.size, info, stack, t_us, frame.module, frame.old_ptr)

    def _rejected(self, name: str, ptr: int) -> None:
        """A free of a pointer whose header is not a used node: the allocator refuses it, so no event."""
        self.stats["rejected_frees"] += 1
        log.warning("%s(%#x): not a used block (double free or foreign pointer); the allocator rejects it, no event", name, ptr)

    # -- reading the target ----------------------------------------------------------------------
    def _read_state(self, ctx, ptr: int, regs: dict[str, int], plan: FunctionPlan, sp: int, boundary: int = 0,
                    *, lead: int = 0) -> tuple[NodeInfo | None, tuple[int, ...], int]:
        """Node header of ``ptr``, the stack at the entry ``sp`` (and ``lead`` bytes below it), and the
        uptime: one pipelined read."""
        requests: list[tuple[int, int]] = []
        if self.nodes is not None:
            requests.append(self.nodes.window(ptr, boundary))
        nstack = self.stack_bytes
        if self.stack_top is not None and sp < self.stack_top:
            nstack = min(nstack, self.stack_top - sp)
        if nstack > 0:
            requests.append((sp - lead, nstack + lead))
        if self.uptime is not None:
            requests.append(self.uptime)
        blobs = read_many(ctx, requests) if requests else []
        i = 0
        info = None
        if self.nodes is not None:
            addr, _ = requests[0]
            info = self.nodes.decode(ptr, blobs[0], addr, self._counted_reader(ctx))
            i = 1
        stack_buf = blobs[i][lead:] if nstack > 0 else b""
        if self.uptime is not None:
            t_us = int.from_bytes(blobs[-1], "little") * 1000
        else:
            t_us = int(self.engine.virtual_time() * 1_000_000)
        return info, self._unwind(ctx, plan, regs, sp, stack_buf), t_us

    def _counted_reader(self, ctx) -> Callable[[int, int], bytes]:
        def read(addr: int, size: int) -> bytes:
            self.stats["extra_reads"] += 1
            return ctx.read_memory(addr, size)

        return read

    def _unwind(self, ctx, plan: FunctionPlan, regs: dict[str, int], sp: int, buf: bytes) -> tuple[int, ...]:
        lr = regs["lr"] & ~1
        if self._unwinder is None or self.unwind_depth <= 1:
            return (lr,)
        slow = self._counted_reader(ctx)

        def read(addr: int, size: int) -> bytes:
            off = addr - sp
            if 0 <= off and off + size <= len(buf):
                return buf[off : off + size]
            return slow(addr, size)

        start = dict(regs)
        start["pc"] = plan.address | 1
        try:
            pcs = list(self._unwinder.unwind(start, read, max_depth=self.unwind_depth + 1))
        except MemhilError as exc:
            log.debug("unwinding from %s failed: %s", plan.spec.name, exc)
            return (lr,)
        stack = tuple(pcs[1:]) if len(pcs) > 1 else (lr,)
        return stack

    def _emit_event(self, spec: FunctionSpec, kind: EventKind, ptr: int, size: int, info: NodeInfo | None,
                    stack: tuple[int, ...], t_us: int, module_arg: int, old_ptr: int = 0) -> None:
        if info is not None:
            node_size, module, task, lrs = info.node_size, info.module, info.task, info.lrs
        else:
            node_size, module, task, lrs = 0, module_arg, 0, ()
        if kind is EventKind.FREE:
            lrs = ()  # the header holds the allocation's LRs, not the free's
        ev = AllocEvent(self.seq, t_us, kind, ptr, size, node_size, module, task, stack, old_ptr, lrs,
                        EventFlag.UNTRACKED if spec.untracked else EventFlag.NONE)
        self.seq += 1
        self._emit(ev)


def _make_unwinder(image):
    if not getattr(image, "has_cfi", False):
        log.warning("the ELF has no call-frame information: stacks hold the caller only")
        return None
    try:
        from memhil.elf import Unwinder
    except ImportError:  # the ELF layer is older than this module
        return None
    try:
        unwinder = Unwinder(image)
    except MemhilError as exc:
        log.warning("no host unwinder (%s): stacks hold the caller only", exc.message)
        return None
    return unwinder if getattr(unwinder, "has_cfi", True) else None


def _stack_top(image) -> int | None:
    """Highest stack address (``_estack``): stack reads never go past it."""
    if image is None:
        return None
    sym = image.find_symbol("_estack") or image.find_symbol("__StackTop")
    return sym.address if sym is not None else None
