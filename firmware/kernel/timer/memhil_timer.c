/* Software timers on the tickless tick, the host time barrier and the main loop. */
#include "memhil_timer.h"
#include "shell.h"

volatile uint64_t g_memhil_uptime_ms;
struct memhil_barrier g_memhil_barrier_ms __attribute__((aligned(1024))) = {.ms = UINT64_MAX};
volatile UINT32 g_memhil_cur_task = MEMHIL_TASK_IDLE;
volatile UINT32 g_memhil_wakeups;

struct memhil_timer {
    uint64_t next_ms;
    UINT32 period_ms;
    memhil_timer_fn fn;
    void *arg;
    UINT32 task_id;
    BOOL active;
};

static struct memhil_timer s_timers[MEMHIL_TIMER_MAX];

__attribute__((noinline, used)) void memhil_time_barrier(void)
{
    __asm volatile("nop" ::: "memory");
}

INT32 memhil_timer_start(UINT32 period_ms, memhil_timer_fn fn, void *arg, UINT32 task_id)
{
    if (period_ms == 0U || fn == NULL) {
        return -1;
    }
    for (INT32 i = 0; i < MEMHIL_TIMER_MAX; i++) {
        if (!s_timers[i].active) {
            s_timers[i].next_ms = g_memhil_uptime_ms + period_ms;
            s_timers[i].period_ms = period_ms;
            s_timers[i].fn = fn;
            s_timers[i].arg = arg;
            s_timers[i].task_id = task_id;
            s_timers[i].active = TRUE;
            return i;
        }
    }
    return -1;
}

void memhil_timer_stop(INT32 id)
{
    if (id >= 0 && id < MEMHIL_TIMER_MAX) {
        s_timers[id].active = FALSE;
    }
}

/* Runs every expired timer once (in table order) and returns the next deadline. */
static uint64_t run_expired(void)
{
    uint64_t next = UINT64_MAX;
    for (INT32 i = 0; i < MEMHIL_TIMER_MAX; i++) {
        struct memhil_timer *t = &s_timers[i];
        if (t->active && t->next_ms <= g_memhil_uptime_ms) {
            g_memhil_cur_task = t->task_id;
            t->fn(t->arg);
            g_memhil_cur_task = MEMHIL_TASK_IDLE;
            t->next_ms += t->period_ms;
        }
        if (t->active && t->next_ms < next) {
            next = t->next_ms;
        }
    }
    return next;
}

void memhil_os_run(void)
{
    for (;;) {
        uint64_t next = run_expired();
        if (g_memhil_uptime_ms >= g_memhil_barrier_ms.ms) {
            g_memhil_barrier_ms.ms = UINT64_MAX;
            memhil_time_barrier();
            continue; /* the host may have written a new barrier */
        }
        shell_poll();
        uint64_t now = g_memhil_uptime_ms;
        uint64_t barrier = g_memhil_barrier_ms.ms;
        if (barrier < next) {
            next = barrier;
        }
        if (shell_typing(now) && next > now + 1U) {
            next = now + 1U; /* the next console byte comes after a wake-up (shell.h) */
        }
        if (next <= now) {
            continue;
        }
        arch_idle_sleep(next - now);
    }
}
