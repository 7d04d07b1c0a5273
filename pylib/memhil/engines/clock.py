"""Where an engine reads virtual time from, and how ``run_for`` stops exactly, for any firmware.

In order of preference:

- **barrier**: memhil's time barrier (``g_memhil_uptime_ms``, ``g_memhil_barrier_ms``, ``memhil_time_barrier``):
  the host writes a deadline, the firmware's own loop stops there. Exact to the 1 ms tick, one stop per run.
- **tick**: the firmware's own tick counter (memhil's uptime, LiteOS ``g_ullTickCount``, FreeRTOS ``xTickCount``,
  or the symbol the user names). The engine patches, in emulator memory, a stub into the SysTick vector that calls
  the firmware's handler and then stops the target at the deadline's tick (:mod:`memhil.engines.tick_stop`): one
  watchpoint stop per run, exact to the tick whatever the host's load. Where it cannot be patched, or the counter
  does not move inside the SysTick interrupt, the target runs free, polled by interrupts, and the last ticks are
  stopped at one by one by a write watchpoint on the counter: exact unless the host is so late that the polled
  run passes the deadline (then it says by how much).
- **wall**: no counter by name. The run lasts that many wall seconds and virtual time counts them; the engine
  logs a warning, and ``time_source`` says so.

Why not a stop at every tick: under ``-icount sleep=off``, QEMU (7.2 and 10.0) advances its virtual clock to the
next timer deadline at every debug stop (a breakpoint or watchpoint hit) while a timer is pending: between the
vCPU's debug exception and ``vm_stop``, its main loop sees the vCPU stopped and the VM running and warps the clock
(``main_loop_wait`` -> ``icount_start_warp_timer``). A stop inside the tick interrupt therefore costs the rest of
that tick: the next tick is pending as the handler returns and thread code never runs. Interrupting the target
(``^C``) does not warp. So the tick source never stops at every tick: the tick stop ends the run from inside the
last tick's interrupt, and the polled fallback stops on the counter's writes only for the last few ticks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from memhil import contract
from memhil.errors import ConfigError

log = logging.getLogger("memhil.engines.clock")


@dataclass(frozen=True)
class Clock:
    kind: str  # "barrier" | "tick" | "wall"
    symbol: str | None = None  # the counter read for virtual time
    address: int | None = None
    size: int = 8  # bytes of the counter
    hz: int = 1000  # counter increments per virtual second

    @property
    def description(self) -> str:
        if self.kind == "barrier":
            return "memhil's time barrier (exact to the firmware's 1 ms tick)"
        if self.kind == "tick":
            return f"the firmware's tick counter {self.symbol} at {self.hz} Hz"
        return "wall-clock time (the firmware has no tick counter memhil knows; pass tick_symbol=)"

    def ticks(self, seconds: float) -> int:
        """Counter increments in ``seconds``, rounded to the nearest tick."""
        return round(seconds * self.hz)

    def decode(self, raw: bytes) -> int:
        return int.from_bytes(raw[: self.size], "little")


def choose_clock(firmware, *, tick_symbol: str | None = None, tick_hz: int | None = None) -> Clock:
    """The best time source ``firmware`` (a :class:`~memhil.engines.firmware.FirmwareInfo`) offers."""
    if tick_hz is not None and (not isinstance(tick_hz, int) or tick_hz <= 0):
        raise ConfigError(f"tick_hz={tick_hz!r} is not a positive whole number", hint="give the firmware's tick rate in Hz, e.g. 1000")
    has = firmware.address
    if tick_symbol is None and all(has(s) is not None for s in (contract.UPTIME_SYMBOL, contract.BARRIER_SYMBOL, contract.BARRIER_FUNCTION)):
        return Clock("barrier", contract.UPTIME_SYMBOL, has(contract.UPTIME_SYMBOL), 8, 1000)
    if tick_symbol is not None:
        if has(tick_symbol) is None:
            raise ConfigError(f"the firmware has no symbol {tick_symbol!r} for its tick counter",
                              hint="name a global variable the tick interrupt increments (e.g. xTickCount)", elf=str(firmware.path))
        counters = [contract.TickCounter(tick_symbol, None)]
    else:
        counters = [c for c in contract.TICK_COUNTERS if has(c.symbol) is not None]
    if counters:
        counter = counters[0]
        size = firmware.sizes.get(counter.symbol) or 4
        if size not in (4, 8):
            raise ConfigError(f"tick counter {counter.symbol} is {size} bytes", hint="a tick counter is a 32- or 64-bit integer")
        hz = counter.hz or tick_hz or contract.DEFAULT_TICK_HZ
        return Clock("tick", counter.symbol, has(counter.symbol), size, hz)
    log.warning("%s has no tick counter memhil knows (%s): run_for counts wall-clock seconds; name it with tick_symbol=",
                firmware.path, ", ".join(c.symbol for c in contract.TICK_COUNTERS))
    return Clock("wall")
