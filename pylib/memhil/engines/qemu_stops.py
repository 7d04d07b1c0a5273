"""The QEMU engine's stop state: what the target was halted on, and how the host leaves it.

QEMU 7.2's gdbstub flushes its whole translation cache on every breakpoint stop and single step, not on watchpoint
stops. So the engine leaves a breakpoint by performing its instruction on the host (a PUSH/NOP/POP/BX LR at
function entries and returns, see :mod:`memhil.engines.thumb_emulate`) and a watched access by making the store,
or the load with the value read through the gdbstub, itself; anything else is stepped with the watchpoints on its
address lifted. These methods are mixed into :class:`memhil.engines.qemu.QemuEngine` and use its state.
"""

from __future__ import annotations

import re
import struct
import time
from typing import Callable

from memhil.engines import faults, thumb_emulate
from memhil.engines.base import CORE_REGS, EngineState, EngineStop
from memhil.engines.gdb_rsp import SIGINT, StopReply
from memhil.errors import EngineTimeout, ProtocolError

#: gdbstub watchpoint types (Z2 write, Z3 read) and the stop-reply keys that name them
WRITE, READ = 2, 3
_STOP_KINDS = {"watch": WRITE, "rwatch": READ}


def _effect_requests(effect: thumb_emulate.Effect) -> list[bytes]:
    """The gdbstub requests that make ``effect`` on the target: its store (``M``), then its registers
    (``P``, ascending, so PC is written last)."""
    out = []
    if effect.store is not None:
        address, data = effect.store
        out.append(b"M%x,%x:" % (address, len(data)) + data.hex().encode())
    for number, value in sorted(effect.registers.items()):
        out.append(b"P%x=" % number + struct.pack("<I", value & 0xFFFFFFFF).hex().encode())
    return out


def decode_g(raw: bytes) -> dict[str, int]:
    """Registers from a ``g`` reply of QEMU's ARM target: r0-r15, then (without target
    XML) eight 12-byte FPA registers and fps, then cpsr/xpsr (GDB register 25)."""
    if len(raw) < 64:
        raise ProtocolError(f"register block of {len(raw)} bytes is too short for r0-r15", hint="the stub is not an ARM target")
    values = struct.unpack_from("<16I", raw)
    regs = dict(zip(CORE_REGS[:16], values))
    if len(raw) >= 168:
        regs["xpsr"] = struct.unpack_from("<I", raw, 164)[0]
    elif len(raw) >= 68:
        regs["xpsr"] = struct.unpack_from("<I", raw, 64)[0]
    return regs


#: the program status in QEMU's ``info registers`` (HMP), read over QMP while the core runs
_XPSR = re.compile(r"XPSR=([0-9a-fA-F]{8})")


class StopHandling:
    """Leaving stops, waiting for them and dispatching them (a mixin of QemuEngine)."""

    # -- leaving a stop --------------------------------------------------------------------
    def _resume(self) -> None:
        """Continue; if halted on a breakpoint, leave it first (performed on the host, else stepped)."""
        client = self.client
        pc = self._halted_pc
        extra, self._resume_prefix = self._resume_prefix, []  # requests to send before this continue
        if pc is not None and self._halted_watch is not None:
            self._gdb_call(client.resume, prefix=self._leave_access() + extra)
        elif pc is not None and (pc in self._breakpoints or pc == self._barrier_bp):
            prefix = self._emulated_step(pc)
            if prefix is not None:
                self._gdb_call(client.resume, prefix=extra + prefix)
            else:
                if extra:
                    self._gdb_call(client.transact_ok, extra)
                self._gdb_call(client.step_over_breakpoint, pc, 2, self.timeout)
        else:
            self._gdb_call(client.resume, prefix=extra)
        self._clear_halt()
        if self._background:
            self._run_background()

    def _emulated_step(self, pc: int) -> list[bytes] | None:
        """Requests that perform the instruction at ``pc`` on the host (see thumb_emulate), or None
        when it must be stepped. A POP takes the words at SP from what a callback read during this
        stop, else reads them."""
        if not self.emulate_entry or self._halted_regs is None:
            return None
        insn = thumb_emulate.decode(self._code(pc))
        regs = self._halted_regs
        if self._p_ok is None:  # probe 'P' once, writing pc with its own value
            self._p_ok = self._gdb_call(self.client.transact, b"Pf=" + struct.pack("<I", pc).hex().encode()) == b"OK"
        if not self._p_ok:
            return None
        if insn is None or thumb_emulate.in_it_block(regs.get("xpsr", 0)):
            return None
        stack = b""
        if insn.stack_bytes:
            stack = self._stop_read(regs["sp"], insn.stack_bytes)
        effect = thumb_emulate.execute(insn, [regs[name] for name in CORE_REGS[:16]], pc, stack)
        return None if effect is None else _effect_requests(effect)

    def _code(self, pc: int) -> bytes:
        """The 4 bytes of code at ``pc``, read once (every hit of a breakpoint or watched access decodes them)."""
        code = self._code_cache.get(pc)
        if code is None:
            code = self._code_cache[pc] = self._gdb_call(self.client.read_memory, pc, 4)
        return code

    def _stop_read(self, address: int, size: int) -> bytes:
        """``size`` bytes at ``address`` from the reads made during this stop, else from the target."""
        for start, data in self._stop_reads:
            off = address - start
            if 0 <= off and off + size <= len(data):
                return data[off : off + size]
        return self._gdb_call(self.client.read_memory, address, size)

    def _leave_access(self) -> list[bytes]:
        """Halted on a watchpoint, QEMU has not made the access yet: requests that make it from the host and
        move PC past it (a store: its bytes; a load: the register, with the value read now, so a device register's
        read side effect happens once). Another kind of access is stepped now, with the watchpoints on its address
        lifted for the step (a flush, but rare)."""
        pc, regs, hit, kind = self._halted_pc, self._halted_regs, self._halted_watch, self._halted_kind
        assert pc is not None and regs is not None and hit is not None
        values = [regs[name] for name in CORE_REGS[:16]]
        code = self._code(pc)
        effect = None
        if not thumb_emulate.in_it_block(regs.get("xpsr", 0)):
            if kind == READ:
                load = thumb_emulate.decode_load(code)
                if load is not None:
                    data = self._gdb_call(self.client.read_memory, thumb_emulate.load_address(load, values), load.size)
                    effect = thumb_emulate.perform_load(load, values, pc, data)
            else:
                store = thumb_emulate.decode_store(code)
                if store is not None:
                    effect = thumb_emulate.perform_store(store, values, pc)
        if effect is not None:
            new_pc, out = effect.registers[15], _effect_requests(effect)
        else:
            keys = [(k, a, n) for k, a, n in self._watched() if a <= hit < a + n]
            self._gdb_call(self.client.transact_ok, [b"z%d,%x,%x" % k for k in keys], "lifting a watchpoint to step its access")
            self._gdb_call(self.client.step, self.timeout)
            self._gdb_call(self.client.transact_ok, [b"Z%d,%x,%x" % k for k in keys], "re-inserting a watchpoint after its access")
            new_pc = decode_g(self._gdb_call(self.client.read_registers_raw))["pc"]
            out = []
        self._halted_pc = new_pc
        regs["pc"] = new_pc
        return out

    def _complete_access_now(self) -> None:
        """Make the watched access at this stop now (not with the next continue), and leave the target at the next
        instruction as a plain halt: what follows (console bytes, the counter) is then in the target."""
        requests = self._leave_access()
        if requests:
            self._gdb_call(self.client.transact_ok, requests, "performing a watched access")
        self._clear_halt()

    def _clear_halt(self) -> None:
        """Forget the stop: the target is halted at a plain instruction the next continue simply runs from."""
        self._halted_pc = self._halted_regs = self._halted_watch = self._halted_kind = None
        self._stop_reads.clear()

    def _watched(self) -> list[tuple[int, int, int]]:
        """Every inserted watchpoint as (kind, address, size): the user's, the engine's own, and the barrier's
        during a barrier run."""
        out = [(WRITE, a, n) for a, n in self._watchpoints] + list(self._internal)
        if self._barrier_watch:
            out.append((WRITE, *self._barrier_watch))
        return out

    # -- stops -----------------------------------------------------------------------------------
    def _wait(self, wall_timeout: float) -> tuple[StopReply, dict[str, int]]:
        """Wait for the target's stop. Every ``fault_probe_s`` of waiting, look for a fault (``_probe_fault``); with
        polled background work, run it every ``poll_s`` meanwhile, and again at once while it finds work."""
        now = time.monotonic()
        deadline, next_probe = now + wall_timeout, now + self.fault_probe_s
        idle = False  # the polled work said it has nothing to look for: wait on the socket alone
        while True:
            left = deadline - now
            probe = self.catch_faults and left > self.fault_probe_s
            until = min(next_probe, deadline) if probe else deadline
            polled = bool(self._polled) and not idle
            try:  # polled work: look for the stop without waiting (the socket's own timeouts are whole milliseconds)
                stop = self.client.wait_stop(0.0 if polled else max(until - now, 0.001))
                break
            except EngineTimeout:
                pass
            except ProtocolError as exc:
                self._fail(exc)  # diagnoses a QEMU that died
            now = time.monotonic()
            if polled and now < until:
                found = self._run_background(polled=True)
                if found is None:
                    idle = True
                elif not found:
                    time.sleep(self.poll_s)  # nothing found: the firmware needs a while to fill the ring
                now = time.monotonic()
                continue
            if not probe:
                stop = self._where_stuck(wall_timeout)  # raises
            stop = self._probe_fault()
            now = time.monotonic()
            next_probe = now + self.fault_probe_s
            if stop is not None:  # a real stop came with the interrupt
                break
        if stop.exited:
            err = self._died(f"the target exited (stop reply {stop.kind}, status {stop.exit_status or stop.signal})")
            self._cleanup(EngineState.FAILED)
            raise err
        regs = decode_g(self._gdb_call(self.client.read_registers_raw))
        self._clear_halt()
        self._halted_pc, self._halted_regs = regs["pc"], regs
        for key, kind in _STOP_KINDS.items():
            if stop.info.get(key):
                self._halted_watch, self._halted_kind = int(stop.info[key], 16), kind
        self.launch.console.drain()  # type: ignore[union-attr] - everything the target wrote is in hand
        if self._background_error is not None:
            err, self._background_error = self._background_error, None
            raise err
        return stop, regs

    def _probe_fault(self) -> StopReply | None:
        """The run has gone on for a while: look at the running core's IPSR over QMP (``info registers`` reads it
        without stopping anything). In a fault handler (HardFault, MemManage, BusFault, UsageFault), interrupt the
        target there and raise the explained fault; else return None and the run goes on.

        Not a gdbstub interrupt: QEMU (7.2 and 10.0, under ``-icount``) loses a watchpoint hit that an interrupt
        overtakes, and aborts at the target's next access to the watched page ("Raised interrupt while not in I/O
        function"), and a run usually has watchpoints set (time barrier, trace and hook doorbells, console). A stop
        that came in meanwhile is returned as the run's stop."""
        found = _XPSR.search(self._hmp("info registers"))
        if found is None or int(found.group(1), 16) & 0x1FF not in faults.FAULT_NUMBERS:
            return None
        self.client.interrupt()  # it spins in the handler: no watchpoint hit to overtake
        stop = self._gdb_call(self.client.wait_stop, self.timeout)
        if stop.exited or stop.signal != SIGINT:
            return stop
        regs = decode_g(self._gdb_call(self.client.read_registers_raw))
        if regs.get("xpsr", 0) & 0x1FF in faults.FAULT_NUMBERS:
            self._halted_pc, self._halted_regs = regs["pc"], regs
            self.launch.console.drain()  # type: ignore[union-attr]
            fault = faults.explain(regs, self.read_memory, self.firmware.path, engine=f"qemu {self.version}")  # type: ignore[union-attr]
            if fault is not None:
                self.fault = fault
                raise fault
        self._resume()  # the handler returned meanwhile: nothing to leave, the interrupt stopped it between two instructions
        return None

    def _where_stuck(self, wall_timeout: float) -> StopReply:
        """The run's wall-clock limit passed without the stop it waits for. If QEMU still answers, the firmware is
        stuck (a loop with interrupts masked, a wait for a device that never comes): interrupt it and say where it
        is. If QEMU does not answer, it hangs or the host is overloaded."""
        where = None
        try:
            self.client.interrupt()
            self.client.wait_stop(min(self.timeout, 5.0))
            regs = decode_g(self.client.read_registers_raw())
            where = f"{regs['pc']:#010x}"
            try:
                from memhil.elf import Image, Symbolizer

                symbolizer = Symbolizer(Image.open(self.firmware.path))  # type: ignore[union-attr]
                where = f"{symbolizer.function(regs['pc']) or '??'} ({symbolizer.site(regs['pc'])}) at {where}"
            except Exception:  # noqa: BLE001 - the address alone still helps
                pass
        except (EngineTimeout, ProtocolError):
            pass
        if where is None:
            err = self._hung(f"no answer from QEMU within {wall_timeout:g} s of wall time")
        else:
            err = EngineTimeout(
                f"the firmware did not reach the run's end within {wall_timeout:.1f} s of wall time: it is stuck in {where}",
                hint="the firmware spins without its tick (interrupts masked, a busy wait); see the console tail and the "
                     "code at that line, or raise run_timeout if it is only slow", **self.launch.diagnostics())  # type: ignore[union-attr]
        self._cleanup(EngineState.FAILED)
        raise err

    def _engine_stop(self, regs: dict[str, int]) -> str | None:
        """Handle a stop on one of the engine's own watchpoints or fault breakpoints: the name of what happened
        ("console", "input", "tick"), or None for any other stop. A fault raises."""
        if self._halted_watch is not None:
            for (kind, address, size), handler in self._internal.items():
                if kind == self._halted_kind and address <= self._halted_watch < address + size:
                    return handler()
            return None
        return None

    def _dispatch(self, regs: dict[str, int]) -> None:
        if self._halted_watch is not None:
            hit = self._halted_watch
            for (address, size), wps in list(self._watchpoints.items()):
                if address <= hit < address + size:
                    for wp in list(wps):
                        wp.callback(EngineStop(self, regs, complete=True))
            return
        for bp in list(self._breakpoints.get(regs["pc"], ())):
            bp.callback(EngineStop(self, regs, complete=True))

    def _run_loop(self, until: Callable[[StopReply, dict[str, int], str | None], bool], wall_timeout: float) -> StopReply:
        """Continue, handling the engine's own stops and dispatching breakpoint hits, until
        ``until(stop, regs, what)`` is true (``what``: the engine's own stop, else None)."""
        deadline = time.monotonic() + wall_timeout
        while True:
            self._resume()
            stop, regs = self._wait(max(deadline - time.monotonic(), 0.01))
            what = self._engine_stop(regs)
            finished = until(stop, regs, what)
            if what is None or what == "tick" and self._halted_watch is None and regs["pc"] in self._breakpoints:
                # a stop on a user breakpoint is a hit whatever else ended the run: the next resume leaves
                # the instruction, so a hit not dispatched now would be lost
                self._dispatch(regs)
            if finished:
                return stop

    def _run_to(self, address: int) -> None:
        """Run to ``address`` once (boot to main) with a temporary breakpoint."""
        temp = address not in self._breakpoints
        if temp:
            self._gdb_call(self.client.insert_breakpoint, address)
        try:
            self._run_loop(lambda stop, regs, what: what is None and regs["pc"] == address, self.run_timeout)
        finally:
            if temp and self.client is not None and self.state is EngineState.RUNNING:
                self._gdb_call(self.client.remove_breakpoint, address)
