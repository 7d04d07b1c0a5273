"""Host-side call-stack unwinding for Cortex-M from registers and stack memory.

- Call frame information: DWARF 4 section 6.4 (``.debug_frame``; ``.eh_frame`` as in the LSB when
  present). Registers use the ARM DWARF numbering (AADWARF32: r0-r15 = 0-15). Each FDE's table is
  decoded once, on first use, into sorted rows searched with bisect.
- Exception entry/return: ARMv7-M ARM, B1.5.6 (exception entry behaviour), B1.5.7 (stack alignment:
  xPSR bit 9 says the frame was pushed with 4 bytes of padding) and B1.5.8 (EXC_RETURN: 0xFFFFFFxx;
  bit 2 selects the stack (0 = MSP, 1 = PSP), bit 4 = 0 means an extended frame with FP context,
  26 words instead of 8).

The unwinder never guesses: without CFI for a pc it stops and says why in ``Backtrace.stop_reason``.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from elftools.dwarf.callframe import FDE, RegisterRule

from ..errors import ElfError

if TYPE_CHECKING:
    from .image import Image

log = logging.getLogger("memhil.trace.unwind")

SP, LR, PC = 13, 14, 15
EXC_RETURN_MASK = 0xFFFFFF00
_BASIC_FRAME_WORDS = 8  # r0, r1, r2, r3, r12, lr, pc, xpsr
_EXTENDED_FRAME_WORDS = 26  # + s0-s15, fpscr, reserved
_REG_ALIASES = {"sp": SP, "lr": LR, "pc": PC, "fp": 11, "ip": 12, "r13": SP, "r14": LR, "r15": PC}

#: stop reasons after which the stack is known to be complete
COMPLETE_REASONS = frozenset({"outermost", "reset-handler"})


class Backtrace(list):  # type: ignore[type-arg]
    """The pcs of a call stack, innermost first (a ``list[int]``), with why unwinding stopped.

    ``exact`` holds the indexes whose pc is the exact instruction (the innermost frame and pcs popped
    from exception frames); all others are return addresses (symbolize with ``is_return_address``).
    """

    def __init__(self, pcs: list[int] | None = None) -> None:
        super().__init__(pcs or [])
        self.stop_reason = ""
        self.exact: set[int] = set()
        self.exception_frames: list[int] = []

    @property
    def complete(self) -> bool:
        return self.stop_reason in COMPLETE_REASONS

    def is_return_address(self, index: int) -> bool:
        return index not in self.exact


class _Stop(Exception):  # internal control flow only, never escapes unwind()
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _FdeTable:
    __slots__ = ("fde", "lo", "hi", "_pcs", "_rows")

    def __init__(self, fde: FDE) -> None:
        self.fde = fde
        self.lo = int(fde.header["initial_location"])
        self.hi = self.lo + int(fde.header["address_range"])
        self._pcs: list[int] | None = None
        self._rows: list[dict[Any, Any]] = []

    def row(self, pc: int) -> dict[Any, Any] | None:
        if self._pcs is None:
            table = self.fde.get_decoded().table
            self._rows = list(table)
            self._pcs = [r["pc"] for r in table]
        i = bisect.bisect_right(self._pcs, pc) - 1
        return self._rows[i] if i >= 0 else None

    @property
    def return_column(self) -> int:
        return int(self.fde.cie["return_address_register"])


class Unwinder:
    """CFI-based unwinder for one image. Build once; :meth:`unwind` is cheap per call."""

    def __init__(self, image: Image) -> None:
        self.image = image
        tables: list[_FdeTable] = []
        if image.has_cfi:
            dwarf = image.dwarf
            seen: set[int] = set()
            sources = []
            if dwarf.has_CFI():
                sources.append(dwarf.CFI_entries())
            if dwarf.has_EH_CFI():
                sources.append(dwarf.EH_CFI_entries())
            for entries in sources:  # .debug_frame first: it wins for a pc both describe
                for entry in entries:
                    if isinstance(entry, FDE):
                        t = _FdeTable(entry)
                        if t.hi > t.lo and t.lo not in seen:
                            seen.add(t.lo)
                            tables.append(t)
        tables.sort(key=lambda t: t.lo)
        self._tables = tables
        self._starts = [t.lo for t in tables]
        entry_sym = image.symbol_at(image.entry) or image.find_symbol("Reset_Handler")
        self._reset = (entry_sym.address, entry_sym.end or entry_sym.address + 2) if entry_sym is not None else None

    @property
    def has_cfi(self) -> bool:
        return bool(self._tables)

    def _table(self, pc: int) -> _FdeTable | None:
        i = bisect.bisect_right(self._starts, pc) - 1
        if i >= 0 and pc < self._tables[i].hi:
            return self._tables[i]
        return None

    def unwind(
        self,
        regs: Mapping[str | int, int],
        read_memory: Callable[[int, int], bytes],
        max_depth: int = 32,
        *,
        stack_range: tuple[int, int] | None = None,
    ) -> Backtrace:
        """Walk the stack from ``regs`` (``r0``..``r12``, ``sp``, ``lr``, ``pc``; optional ``msp``/``psp``).

        ``read_memory(addr, size)`` returns target bytes; an exception from it stops the walk
        ("memory-unreadable"). ``stack_range=(lo, hi)`` bounds every frame's stack pointer.
        Returns a :class:`Backtrace` of at most ``max_depth`` pcs, innermost first.
        """
        if max_depth < 1:
            raise ElfError(f"max_depth must be at least 1, got {max_depth}", hint="pass max_depth >= 1")
        cur, banked = _normalise(regs)
        pc = cur[PC] & ~1
        bt = Backtrace([pc])
        bt.exact.add(0)
        exact = True
        try:
            while True:
                if self._reset is not None and self._reset[0] <= pc < self._reset[1]:
                    raise _Stop("reset-handler")
                if len(bt) >= max_depth:
                    raise _Stop("max-depth")
                cur = self._step(cur, pc, exact, read_memory)
                ret = cur[PC]
                if ret is None or ret in (0, 0xFFFFFFFF):
                    raise _Stop("outermost")
                if (ret & EXC_RETURN_MASK) == EXC_RETURN_MASK:
                    cur = _pop_exception_frame(cur, ret, banked, read_memory, stack_range)
                    pc = cur[PC] & ~1
                    bt.exception_frames.append(len(bt))
                    bt.exact.add(len(bt))
                    bt.append(pc)
                    exact = True
                    continue
                pc = ret & ~1
                exact = False
                _check_sp(cur[SP], stack_range)
                bt.append(pc)
        except _Stop as stop:
            bt.stop_reason = stop.reason
        log.debug("unwound %d frames, stop: %s", len(bt), bt.stop_reason)
        return bt

    def _step(self, cur: dict[int, Any], pc: int, exact: bool, read_memory: Callable[[int, int], bytes]) -> dict[int, Any]:
        """One CFA step (DWARF 4 section 6.4.1): registers of the caller of the frame at ``pc``."""
        look = pc if exact else pc - 2  # a return address may follow a noreturn call at a function's end
        table = self._table(look)
        if table is None:
            raise _Stop("no-cfi" if self.image.symbol_at(look) is not None else "unknown-pc")
        row = table.row(look)
        if row is None:
            raise _Stop("no-cfi")
        cfa_rule = row["cfa"]
        if cfa_rule.expr is not None or cfa_rule.reg is None or cur.get(cfa_rule.reg) is None:
            raise _Stop("cfa-unsupported")
        cfa = (cur[cfa_rule.reg] + cfa_rule.offset) & 0xFFFFFFFF
        new = dict(cur)
        ra_col = table.return_column
        for reg, rule in row.items():
            if not isinstance(reg, int):
                continue
            kind, arg = rule.type, rule.arg
            if kind == RegisterRule.OFFSET:
                new[reg] = _word(read_memory, cfa + arg)
            elif kind == RegisterRule.VAL_OFFSET:
                new[reg] = (cfa + arg) & 0xFFFFFFFF
            elif kind == RegisterRule.REGISTER:
                new[reg] = cur.get(arg)
            elif kind == RegisterRule.UNDEFINED:
                new[reg] = None
            elif kind == RegisterRule.SAME_VALUE:
                pass
            else:
                raise _Stop("cfa-unsupported")
        new[PC] = new.get(ra_col)
        new[SP] = cfa
        if cur[SP] is not None and cfa < cur[SP]:
            raise _Stop("no-progress")
        if cfa == cur[SP] and new[PC] is not None and (new[PC] & ~1) == pc and not exact:
            raise _Stop("no-progress")
        return new


def _normalise(regs: Mapping[str | int, int]) -> tuple[dict[int, Any], dict[str, int]]:
    cur: dict[int, Any] = {}
    banked: dict[str, int] = {}
    for key, value in regs.items():
        if isinstance(key, int):
            num: int | None = key
        else:
            k = key.lower()
            if k in ("msp", "psp", "xpsr"):
                banked[k] = int(value)
                continue
            num = _REG_ALIASES.get(k)
            if num is None and k.startswith("r") and k[1:].isdigit():
                num = int(k[1:])
        if num is not None and 0 <= num <= 15:
            cur[num] = int(value) & 0xFFFFFFFF
    for need in (SP, PC):
        if need not in cur:
            raise ElfError(
                f"registers for unwinding lack {'sp' if need == SP else 'pc'}",
                hint="pass at least pc, sp and lr (e.g. the engine's read_registers())",
                given=sorted(str(k) for k in regs),
            )
    return cur, banked


def _word(read_memory: Callable[[int, int], bytes], addr: int) -> int:
    try:
        data = read_memory(addr, 4)
    except Exception as exc:  # the caller's memory reader (engine, dump): any failure ends the walk cleanly
        log.debug("stack read at %#x failed: %s", addr, exc)
        raise _Stop("memory-unreadable") from None
    if len(data) != 4:
        raise _Stop("memory-unreadable")
    return int.from_bytes(data, "little")


def _check_sp(sp: int, stack_range: tuple[int, int] | None) -> None:
    if stack_range is not None and not (stack_range[0] <= sp <= stack_range[1]):
        raise _Stop("stack-out-of-range")


def _pop_exception_frame(
    cur: dict[int, Any],
    exc_return: int,
    banked: dict[str, int],
    read_memory: Callable[[int, int], bytes],
    stack_range: tuple[int, int] | None,
) -> dict[int, Any]:
    """Undo exception entry (ARMv7-M ARM B1.5.6-B1.5.8): read the stacked r0-r3, r12, lr, pc, xPSR."""
    if (exc_return & 0xF) not in (0x1, 0x9, 0xD):
        raise _Stop("bad-exc-return")
    sp = cur[SP]
    if exc_return & 0x4:  # return to thread mode on the process stack: the frame is on PSP
        psp = banked.get("psp")
        if psp is None:
            raise _Stop("psp-unknown")
        sp = psp
    _check_sp(sp, stack_range)
    words = [_word(read_memory, sp + 4 * i) for i in range(_BASIC_FRAME_WORDS)]
    r0, r1, r2, r3, r12, lr, pc, xpsr = words
    size = 4 * (_BASIC_FRAME_WORDS if exc_return & 0x10 else _EXTENDED_FRAME_WORDS)
    if xpsr & (1 << 9):
        size += 4
    new = dict(cur)
    new.update({0: r0, 1: r1, 2: r2, 3: r3, 12: r12, LR: lr, PC: pc, SP: sp + size})
    _check_sp(sp + size, stack_range)
    return new
