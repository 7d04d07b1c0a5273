"""A time barrier for firmware that has none: the SysTick vector patched in emulator memory.

The firmware's own tick counter (:mod:`memhil.engines.clock`, kind ``tick``) says what time it is, but nothing in
the firmware stops at a deadline. Polling it from the host by interrupts is only as exact as the host's timing:
on a busy machine the interrupt comes late and the run overshoots by hundreds of ticks. So the engine writes, in
emulator memory only (the ELF stays as it is), a small SysTick handler that calls the firmware's own handler and
then, once the counter has reached the deadline the host wrote, clears an ``armed`` word. A write watchpoint on
that word stops the target at exactly that tick, as memhil's barrier does on its own firmware:

    stub:   push  {r4, lr}
            ldr   r4, =firmware's SysTick handler
            blx   r4                      @ the tick counter moves here
            ldr   r0, =counter
            ldr   r1, =data               @ {armed, deadline low, deadline high}
            ldr   r2, [r1]
            cbz   r2, done                @ not armed
            (compare the counter with the deadline: 64-bit unsigned, or 32-bit modulo 2**32)
            blo   done
            movs  r2, #0
            str   r2, [r1]                @ disarm: the watched store
    done:   pop   {r4, pc}                @ EXC_RETURN from the stacked lr

The vector is the one the core uses: entry 15 of the table at ``VTOR`` (read at every run, since a firmware may
move its table to RAM at boot; a table copied after patching carries the patch along). Code and data go in
scratch RAM (:mod:`memhil.capture.scratch`), recorded in the engine's ``scratch_taken``.

The first run checks, at its first tick, that the counter moves inside the stub's call of the firmware's handler
(a write watchpoint on the counter, and the stub's return address on the stack). A counter advanced elsewhere
(another timer, or ticks counted in thread code) is polled by the host instead. A tickless idle that adds the
ticks it slept in thread code (FreeRTOS's ``vTaskStepTick``) is seen by the stub at the next SysTick: a deadline
inside such a sleep is met up to the rest of that sleep late.
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING

from memhil.errors import MemhilError

if TYPE_CHECKING:
    from memhil.engines.clock import Clock

log = logging.getLogger("memhil.engines.tick_stop")

VTOR = 0xE000ED08
SYSTICK_EXCEPTION = 15
#: bytes of scratch RAM: the code (under 64 bytes with its literals) and the 12-byte data block, 8-aligned
AREA_SIZE = 96
DATA_OFFSET = 80


def build_stub(base: int, handler: int, counter: int, counter_size: int) -> tuple[bytes, int]:
    """The stub's code placed at ``base`` (its data block at ``base + DATA_OFFSET``), and the return address of
    its call of ``handler`` (Thumb bit set)."""
    from memhil.capture.asm import Assembler

    data = base + DATA_OFFSET
    a = Assembler()
    a.push(4, 14)
    a.load_const(4, handler | 1)
    a.blx(4)
    a.label("back")
    a.load_const(0, counter)
    a.load_const(1, data)
    a.ldr(2, 1, 0)
    a.cbz(2, "done")
    if counter_size == 8:
        a.ldr(2, 0, 4)  # counter high
        a.ldr(3, 1, 8)  # deadline high
        a.cmp(2, 3)
        a.b("fire", "hi")
        a.b("done", "lo")
        a.ldr(2, 0, 0)
        a.ldr(3, 1, 4)
        a.cmp(2, 3)
        a.b("done", "lo")
    else:
        a.ldr(2, 0, 0)
        a.ldr(3, 1, 4)
        a.subs_reg(2, 2, 3)
        a.b("done", "mi")  # counter - deadline < 0 modulo 2**32: not yet
    a.label("fire")
    a.movs(2, 0)
    a.str(2, 1, 0)
    a.label("done")
    a.pop(4, 15)
    code = a.assemble(base)
    if len(code) > DATA_OFFSET:  # pragma: no cover - a layout bug
        raise AssertionError(f"tick stop code is {len(code)} bytes, more than {DATA_OFFSET}")
    return code, a.layout(base)["back"] | 1


def _u32(raw: bytes) -> int:
    return int.from_bytes(raw[:4], "little")


class TickStop:
    """The patched SysTick vector of one started target. ``engine`` reads and writes memory while halted;
    ``clock`` is the tick counter (kind ``tick``)."""

    #: words of the stack searched for the stub's return address when a counter write is checked
    STACK_WORDS = 64

    def __init__(self, engine, clock: Clock, image, platform, *, enabled: bool = True) -> None:
        self.engine, self.clock, self.image, self.platform = engine, clock, image, platform
        self.area = None
        self.code: bytes | None = None
        self.handler: int | None = None
        self.back: int | None = None  # the return address into the stub of its call of the firmware's handler
        self.slot: int | None = None  # the vector table entry patched (SysTick's, in the table VTOR names)
        #: False once given up: turned off, no scratch RAM, no vector to patch, or a counter written elsewhere
        self.usable = True
        #: True once a write of the counter was seen inside the stub's call of the firmware's handler (check_caller)
        self.proven = False
        self.reason = ""
        if not enabled:
            self._give_up("turned off (tick_stop=False)")

    @property
    def status(self) -> str:
        if not self.usable:
            return f"polled from the host, its last ticks stopped at one by one ({self.reason})"
        if self.proven:
            return "runs end at the deadline's tick on a SysTick stop patched in emulator memory"
        return "a SysTick stop is patched in emulator memory; the first run checks that the counter moves inside it"

    @property
    def armed_address(self) -> int:
        assert self.area is not None
        return self.area.base + DATA_OFFSET

    def _place(self) -> bool:
        from memhil.capture.scratch import find_ram, writable

        taken = self.engine.scratch_taken
        try:
            self.area = find_ram(self.image, self.platform, AREA_SIZE, missing=self.engine.missing_regions,
                                 probe=writable(self.engine), taken=taken)
        except MemhilError as exc:
            return self._give_up(f"no scratch RAM for it ({exc})")
        taken.append(self.area)
        return True

    def _give_up(self, why: str) -> bool:
        self.usable, self.reason = False, why
        log.info("no tick stop: %s; run_for polls the tick counter %s from the host", why, self.clock.symbol)
        return False

    def ensure(self) -> bool:
        """Make sure the core's SysTick vector leads to the stub (patch or re-patch it); False when the stub
        cannot be used on this target. Call with the target halted."""
        if not self.usable:
            return False
        eng = self.engine
        if self.slot is not None and self.code is not None:  # the usual case: one request finds all in place
            vtor, entry, code = eng.read_memory_many([(VTOR, 4), (self.slot, 4), (self.area.base, len(self.code))])
            if (_u32(vtor) & ~0x7F) + 4 * SYSTICK_EXCEPTION == self.slot and _u32(entry) == self.area.base | 1 and code == self.code:
                return True
        slot = (_u32(eng.read_memory(VTOR, 4)) & ~0x7F) + 4 * SYSTICK_EXCEPTION
        entry = _u32(eng.read_memory(slot, 4))
        if self.area is None and not self._place():
            return False
        stub = self.area.base | 1
        if entry == stub and eng.read_memory(self.area.base, len(self.code or b"")) == self.code:
            return True
        if entry != stub:
            if not entry & 1 or entry == 1:
                return self._give_up(f"the SysTick vector at {slot:#010x} holds {entry:#010x}, not a Thumb handler")
            self.handler = entry
        assert self.handler is not None
        self.code, self.back = build_stub(self.area.base, self.handler, self.clock.address, self.clock.size)  # type: ignore[arg-type]
        eng.write_memory(self.area.base, self.code + bytes(DATA_OFFSET - len(self.code)) + bytes(12))
        eng.write_memory(slot, struct.pack("<I", stub))
        if _u32(eng.read_memory(slot, 4)) != stub:
            return self._give_up(f"the SysTick vector at {slot:#010x} cannot be written")
        self.slot = slot
        log.debug("tick stop: SysTick vector %#010x -> stub at %#010x (firmware handler %#010x)", slot, stub, self.handler)
        return True

    def stack_bytes(self, sp: int) -> int:
        """Bytes of stack to search at ``sp``: STACK_WORDS, or fewer where the RAM region holding it ends sooner
        (QEMU 10 maps the chip's 128 KiB of SRAM and nothing past it)."""
        region = self.platform.region_at(sp)
        most = 4 * self.STACK_WORDS
        return max(0, min(most, region.end - sp)) if region is not None else most

    def check_caller(self, regs: dict[str, int], stack: bytes) -> bool:
        """At a write of the counter (``regs`` and the words at SP): does it come from inside the stub's call of
        the firmware's handler (the return address into the stub in LR or on the stack)? Proven from then on if
        so; given up if not (the counter moves elsewhere: another timer, or ticks added in thread code)."""
        words = struct.unpack(f"<{len(stack) // 4}I", stack[: len(stack) // 4 * 4])
        if regs.get("lr") == self.back or self.back in words:
            self.proven = True
            log.debug("tick stop: the counter %s moves inside SysTick's handler; runs end on the stop", self.clock.symbol)
            return True
        self._give_up(f"the tick counter {self.clock.symbol} was written outside the SysTick handler (pc {regs.get('pc', 0):#010x})")
        return False

    def arm(self, deadline: int) -> bytes:
        """The RSP memory-write packet that arms the stub for ``deadline`` (counter value, modulo its width)."""
        mask = (1 << 8 * self.clock.size) - 1
        return b"M%x,c:" % self.armed_address + struct.pack("<IQ", 1, deadline & mask).hex().encode()
