/* Tickless timer service, virtual clock and host time barrier (see firmware/README.md "Time"). */
#ifndef MEMHIL_TIMER_H
#define MEMHIL_TIMER_H

#include <stdint.h>
#include "los_typedef.h"

/* Milliseconds since reset, exact to the 1 ms tick. Written only by thread context. */
extern volatile uint64_t g_memhil_uptime_ms;
/* The page the host watches. .ms: deadline written by the host; UINT64_MAX = none. When reached, set back to
 * UINT64_MAX and memhil_time_barrier() is called. .trace_doorbell: written by memhil_trace_half_full() when
 * the trace ring wants draining. The host stops on these writes with write watchpoints (QEMU 7.2 flushes its
 * whole translation cache on every breakpoint stop, not on a watchpoint stop), or with breakpoints on the
 * two functions. QEMU takes every access to a watched 1 KiB page the slow way, so nothing else lives here. */
struct memhil_barrier {
    volatile uint64_t ms;
    volatile UINT32 trace_doorbell;
    uint8_t rest_of_page[1024U - sizeof(uint64_t) - sizeof(UINT32)];
};
extern struct memhil_barrier g_memhil_barrier_ms;
/* Task/context id of the running work item; stored in each allocated node's taskId. */
extern volatile UINT32 g_memhil_cur_task;
/* Number of wake-ups from WFI (the cost of virtual time). */
extern volatile UINT32 g_memhil_wakeups;

void memhil_time_barrier(void);

#define MEMHIL_TIMER_MAX 16
#define MEMHIL_TASK_IDLE 0U

typedef void (*memhil_timer_fn)(void *arg);

/* Periodic software timer: first expiry at now + period_ms. Returns a timer id >= 0, or -1 if the table is
 * full or the arguments are bad (period 0, NULL callback). */
INT32 memhil_timer_start(UINT32 period_ms, memhil_timer_fn fn, void *arg, UINT32 task_id);
void memhil_timer_stop(INT32 id);

/* Runs forever: expired timers, the host barrier, the console shell, then sleep until the next deadline. */
void memhil_os_run(void) __attribute__((noreturn));

/* Architecture part of the tickless timer. */
void arch_tick_init(void);
/* Sleep in WFI for at most max_ms (>= 1) milliseconds or until an interrupt, then add the exact elapsed time
 * to g_memhil_uptime_ms. */
void arch_idle_sleep(uint64_t max_ms);

#endif
