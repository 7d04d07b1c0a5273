"""The optional firmware contract: the names memhil looks for in a firmware ELF, in one place.

None of it is required. A firmware that has a piece gets what it buys (see ``firmware/README.md``); one that
has none still runs, with the costs the README states. Engines, captures, the target map and the session read
the names from here, never spell them themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

# -- time ----------------------------------------------------------------------------------------------------
#: u64 milliseconds since reset, exact to the firmware's 1 ms tick
UPTIME_SYMBOL = "g_memhil_uptime_ms"
#: u64 deadline the host writes (first member of ``struct memhil_barrier``, alone on its 1 KiB page);
#: the firmware resets it to NO_BARRIER, then calls BARRIER_FUNCTION, once uptime reaches it
BARRIER_SYMBOL = "g_memhil_barrier_ms"
BARRIER_FUNCTION = "memhil_time_barrier"
NO_BARRIER = (1 << 64) - 1
#: SysTick wake-ups counted by memhil's tickless idle (diagnostics and tests)
WAKEUPS_SYMBOL = "g_memhil_wakeups"


@dataclass(frozen=True)
class TickCounter:
    """A firmware's own tick counter: ``symbol`` counts ticks of ``1 / hz`` seconds (``hz`` None: the rate is
    a build option the ELF does not hold, given by the user or 1000 by default)."""

    symbol: str
    hz: int | None


#: tick counters of the RTOSes memhil knows, in the order they are looked for: memhil's own uptime first, then
#: LiteOS (``g_ullTickCount``, LOSCFG_BASE_CORE_TICK_PER_SECOND) and FreeRTOS (``xTickCount``, configTICK_RATE_HZ)
TICK_COUNTERS = (
    TickCounter(UPTIME_SYMBOL, 1000),  # memhil's firmware contract
    TickCounter("g_ullTickCount", None),  # LiteOS
    TickCounter("xTickCount", None),  # FreeRTOS
)
DEFAULT_TICK_HZ = 1000

# -- trace ring (debug builds) ----------------------------------------------------------------------------------
RING_SYMBOL = "g_memhil_trace"
RING_STRUCT = "memhil_trace_ring"
HALF_FULL_FUNCTION = "memhil_trace_half_full"
DRAIN_AT_SYMBOL = "g_memhil_trace_drain_at"
#: the trace doorbell is a member of the barrier's page (``struct memhil_barrier``.trace_doorbell)
DOORBELL_SYMBOL = BARRIER_SYMBOL
BARRIER_STRUCT = "memhil_barrier"
DOORBELL_MEMBER = "trace_doorbell"

# -- stacks, heap, modules ------------------------------------------------------------------------------------------
STACKS_SYMBOL = "g_memhil_stacks"
STACK_COUNT_SYMBOL = "g_memhil_stack_count"
PAINT_SYMBOL = "g_memhil_stack_paint"
CUR_TASK_SYMBOL = "g_memhil_cur_task"
POOL_SYMBOL = "m_aucSysMem0"
MODULE_USED_SYMBOL = "g_moduleMemUsedSize"

# -- console ----------------------------------------------------------------------------------------------------
#: the LiteOS shell's prompt (memhil's firmware and LiteOS's own shell print it)
SHELL_PROMPT = r"LiteOS # "
