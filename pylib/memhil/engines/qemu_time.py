"""The QEMU engine's virtual time: ``run_for`` to memhil's time barrier, on the firmware's tick counter, or (no
counter at all) on the wall clock; see :mod:`memhil.engines.clock`. Mixed into :class:`memhil.engines.qemu.QemuEngine`."""

from __future__ import annotations

import logging
import math
import re
import struct
import threading
import time

from memhil import contract
from memhil.engines.base import EngineState
from memhil.engines.gdb_rsp import StopReply
from memhil.engines.qemu_stops import WRITE
from memhil.errors import EngineError

log = logging.getLogger("memhil.engines.qemu")


class VirtualTime:
    """run_for and virtual_time (a mixin of QemuEngine)."""

    # -- time ------------------------------------------------------------------------------------
    def run_for(self, seconds: float) -> None:
        self.check_running()
        if seconds < 0:
            raise EngineError(f"cannot run for {seconds} s", hint="durations must be zero or positive")
        self._run_for(seconds, watch=None)

    def _run_for(self, seconds: float, watch: re.Pattern[str] | None) -> bool:
        """Run ``seconds`` of virtual time; with ``watch``, stop at the console store that makes it match.
        Returns True when stopped by the console."""
        if self.fault is not None:
            raise self.fault  # the target sits in its fault handler until reset
        self._settle_console()
        if watch is not None and self.console.search(watch, consume=False):
            return True
        if round(seconds * 1000) <= 0:
            return False
        wall = self.run_timeout + (0.0 if self.accelerate else seconds)
        if watch is not None:
            self._watch_console(watch)
        try:
            if self.clock.kind == "barrier":
                return self._run_to_barrier(self._read_counter() + round(seconds * 1000), watch, wall)
            if self.clock.kind == "tick":
                return self._run_ticks(self.clock.ticks(seconds), watch, wall)
            return self._run_wall(seconds, watch, wall)
        finally:
            if watch is not None and self.state is EngineState.RUNNING:
                self._watch_console(None)

    def _by_console(self, watch, what: str | None) -> bool:
        return watch is not None and what == "console" and self.console.search(watch, consume=False) is not None

    def _run_until(self, watch, wall: float, reached) -> bool:
        """Run until the console matches ``watch`` (True) or ``reached(stop, regs, what)`` (False)."""
        by_console = False

        def done(stop: StopReply, regs: dict[str, int], what: str | None) -> bool:
            nonlocal by_console
            by_console = self._by_console(watch, what)
            return by_console or reached(stop, regs, what)

        self._run_loop(done, wall)
        return by_console

    def _run_to_barrier(self, target: int, watch, wall: float) -> bool:
        """Run to the time barrier. The firmware contract resets ``g_memhil_barrier_ms`` to NO_BARRIER just
        before it calls ``memhil_time_barrier``: a write watchpoint on that word stops it there. QEMU 7.2's
        gdbstub flushes the whole translation cache on every breakpoint stop but not on a watchpoint stop,
        so the code after the stop is not retranslated. The first run sets both the watchpoint and the
        breakpoint: a firmware whose breakpoint is reached without the write (or a stub without
        watchpoints) keeps the breakpoint from then on."""
        barrier_pc = self.firmware.symbols[contract.BARRIER_FUNCTION]  # type: ignore[union-attr]
        var = self.firmware.symbols[contract.BARRIER_SYMBOL]  # type: ignore[union-attr]
        set_watch, unset_watch = b"Z2,%x,4" % var, b"z2,%x,4" % var
        if self._watch_ok is None:  # probe: does the stub take a write watchpoint?
            if self._gdb_call(self.client.transact, set_watch) != b"OK":
                self._watch_ok = False
        watchpoint = self._watch_ok is not False
        breakpoint = self._watch_ok is not True
        self._barrier_watch = (var, 4) if watchpoint else None
        if watchpoint and self._watch_ok:
            self._resume_prefix.append(set_watch)  # sent with the continue, in one write
        # the deadline is written before the firmware runs again: its next sleep already ends there
        self._resume_prefix.insert(0, b"M%x,8:" % var + struct.pack("<Q", target).hex().encode())
        if breakpoint:
            if barrier_pc not in self._breakpoints:
                self._gdb_call(self.client.insert_breakpoint, barrier_pc)
            self._barrier_bp = barrier_pc

        def done(stop: StopReply, regs: dict[str, int], what: str | None) -> bool:
            if what is not None:
                return False
            watched = watchpoint and self._halted_watch is not None and var <= self._halted_watch < var + 4
            if (watched or breakpoint and regs["pc"] == barrier_pc) and self._read_counter() >= target:
                if self._watch_ok is None:
                    self._watch_ok = watched
                    log.debug("time barrier by %s", "write watchpoint" if watched else "breakpoint (no barrier reset seen)")
                return True
            return False

        try:
            by_console = self._run_until(watch, wall, done)
        finally:
            self._resume_prefix.clear()
            if self.state is EngineState.RUNNING:
                requests = [b"M%x,8:" % var + struct.pack("<Q", contract.NO_BARRIER).hex().encode()]
                if watchpoint:
                    requests.insert(0, unset_watch)
                    if self._halted_watch is not None and var <= self._halted_watch < var + 4:
                        requests += self._leave_access()
                        self._halted_watch = self._halted_kind = None
                if breakpoint:
                    if barrier_pc not in self._breakpoints:
                        requests.append(b"z0,%x,2" % barrier_pc)
                    self._barrier_bp = None
                self._gdb_call(self.client.transact_ok, requests, "leaving the time barrier")
            self._barrier_watch = None
        return by_console

    #: ticks at the end of a polled run stopped at one by one (each such stop costs the firmware the rest of its
    #: tick, see clock.py): at least MIN_APPROACH, and as many as the firmware runs in APPROACH_WALL_S of wall
    #: time, FIRST_APPROACH until that rate is known; the rest of the run goes free
    MIN_APPROACH, FIRST_APPROACH, APPROACH_WALL_S = 2, 32, 0.002

    def _run_ticks(self, ticks: int, watch, wall: float) -> bool:
        """Run ``ticks`` of the firmware's tick counter (counted modulo its width).

        Where the tick stop (:mod:`memhil.engines.tick_stop`) is patched in and the counter moves inside the
        SysTick handler it calls, it is armed for the deadline and stops the target at exactly that tick from
        inside the interrupt, however late the host is. Whether the counter moves there is checked once, at the
        first tick of the first run: a write watchpoint on the counter stops that write, and the stub's return
        address must be on the stack. Elsewhere the target runs free in slices sized from the ticks per wall second
        seen so far (the host interrupts it to read the counter; an interrupt costs no virtual time), and the last
        few ticks (see MIN_APPROACH) are stopped at one by one by a write watchpoint on the counter.

        The two are never combined: QEMU (7.2 and 10.0, under ``-icount``) loses a watchpoint hit that an interrupt
        from the host overtakes, and aborts ("Raised interrupt while not in I/O function") when the target next
        touches the watched page; so no run interrupts the target often while a watchpoint it may hit is set."""
        if ticks <= 0:
            return False
        mask = (1 << 8 * self.clock.size) - 1
        start = self._read_counter()
        deadline = time.monotonic() + wall

        def done() -> int:
            return (self._read_counter() - start) & mask

        guard = self._tick_guard()
        if guard is not None and not guard.proven:
            if self._approach(1, done, guard, watch, deadline):
                return True
            if done() >= ticks:
                return False
            if not guard.proven:
                guard = None
        if guard is not None:
            return self._run_to_tick_stop(guard, (start + ticks) & mask, watch, deadline)
        rate = None  # ticks per wall second while running free (the fastest seen)
        ran = done()  # ticks run so far, read once per slice
        while True:
            approach = self.FIRST_APPROACH if rate is None else max(self.MIN_APPROACH, math.ceil(rate * self.APPROACH_WALL_S))
            left = ticks - ran - approach
            if left <= 0:
                break
            slice_s = 0.0005 if rate is None else min(0.05, max(0.0005, left / 2 / rate))
            started = time.monotonic()
            if self._slice(slice_s, watch, deadline):
                return True
            now, took = done(), time.monotonic() - started
            if now > ran and took > 0:
                rate = (now - ran) / took if rate is None else max(rate, (now - ran) / took)
            ran = now
        if ran >= ticks:
            if ran > ticks:
                log.warning("run_for went %d tick(s) past its end: the firmware ran faster than memhil polled it", ran - ticks)
            return False
        return self._approach(ticks, done, None, watch, deadline)

    def _run_to_tick_stop(self, guard, target: int, watch, deadline: float) -> bool:
        """Run until the tick stop, armed (with the continue) for counter value ``target``, stores to its armed
        word. A run the console ends leaves it armed: with no watchpoint on that word its store stops nothing, and
        the next run arms it afresh."""
        self._resume_prefix.append(guard.arm(target))
        self._set_internal_watch(WRITE, guard.armed_address, self._on_tick_stop)
        try:
            return self._run_until(watch, max(deadline - time.monotonic(), 0.01), lambda stop, regs, what: what == "tick-stop")
        finally:
            self._resume_prefix.clear()
            if self.state is EngineState.RUNNING:
                self._set_internal_watch(WRITE, guard.armed_address, None)

    def _on_tick_stop(self) -> str:
        self._complete_access_now()
        return "tick-stop"

    def _approach(self, ticks: int, done, guard, watch, deadline: float) -> bool:
        """Stop at each of the counter's writes until it reaches ``ticks``. With ``guard`` (a tick stop not yet
        checked), the last write is checked: the return address into the stub on the stack shows it came from inside
        the stub's call of the firmware's SysTick handler (it is trusted from then on); else it is given up."""
        clock = self.clock
        reached = False

        def on_tick() -> str:
            nonlocal reached
            self._complete_access_now()
            reached = done() >= ticks
            if reached and guard is not None:
                regs = self.read_registers()
                guard.check_caller(regs, self.read_memory(regs["sp"], guard.stack_bytes(regs["sp"])))
            return "tick"

        self._set_internal_watch(WRITE, clock.address, on_tick)  # type: ignore[arg-type]
        try:
            return self._run_until(watch, max(deadline - time.monotonic(), 0.01), lambda stop, regs, what: what == "tick" and reached)
        finally:
            if self.state is EngineState.RUNNING:
                self._set_internal_watch(WRITE, clock.address, None)  # type: ignore[arg-type]

    def _tick_guard(self):
        """The tick stop, patched in (again) and ready to arm, or None where it cannot be used."""
        return self._tick_stop if self._tick_stop is not None and self._tick_stop.ensure() else None

    def _slice(self, slice_s: float, watch, deadline: float) -> bool:
        """Run until an interrupt ``slice_s`` of wall time later (or an earlier stop); True when the console
        matched ``watch``."""
        self._resume()
        timer = threading.Timer(slice_s, self.client.interrupt)
        timer.start()
        try:
            stop, regs = self._wait(max(deadline - time.monotonic(), 0.01))
        finally:
            timer.cancel()
        what = self._engine_stop(regs)
        if what is None:
            self._dispatch(regs)
        return self._by_console(watch, what)

    def _run_wall(self, seconds: float, watch, wall: float, slice_s: float = 0.02) -> bool:
        """No tick counter: run in wall-clock slices (interrupts) and count wall seconds as virtual time."""
        end = self._wall_run + seconds
        deadline = time.monotonic() + wall + seconds
        while True:
            started = time.monotonic()
            by_console = self._slice(slice_s, watch, deadline)
            self._wall_run += time.monotonic() - started
            if by_console:
                return True
            if self._wall_run >= end:
                return False

    def virtual_time(self) -> float:
        self.check_running()
        if self.clock.kind in ("barrier", "tick"):
            return self._read_counter() / self.clock.hz
        return self._wall_run
