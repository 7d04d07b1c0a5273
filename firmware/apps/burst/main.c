/* burst: a dense allocator workload for measuring trace capture capacity. Every BURST_PERIOD_MS, each of four
 * modules (NET, FS, APP, SHELL) performs BURST_OPS_PER_TICK operations on its own table of live blocks: an empty
 * slot gets LOS_MemMalloc (16-512 B, xorshift32 PRNG with a fixed seed), a full slot is LOS_MemMrealloc'd (one in
 * four) or LOS_MemMfree'd. APP also leaks one 48-byte block every BURST_LEAK_EVERY of its operations, at most
 * BURST_LEAK_MAX in all (planted for the leak analysis). g_burst_ops[] counts the firmware's own successful calls
 * per kind (index = trace event kind: 1 alloc, 2 free, 3 realloc), for the host to compare with the trace.
 * The work comes in few dense wake-ups (every 10 ms, 480 calls each): QEMU costs ~0.1 ms of wall time per
 * wake-up whatever the firmware does, so a capacity workload wakes rarely and works hard. */
#include <string.h>
#include "los_memory.h"
#include "memhil_boot.h"
#include "memhil_timer.h"
#include "shell.h"
#include "memhil_rng.h"

#define BURST_PERIOD_MS 10U
#define BURST_OPS_PER_TICK 120U
#define BURST_MODULES 4U
#define BURST_SLOTS 16U
#define BURST_MIN_SIZE 16U
#define BURST_MAX_SIZE 512U
#define BURST_LEAK_EVERY 4096U
#define BURST_LEAK_MAX 64U
#define BURST_LEAK_SIZE 48U

struct burst_module {
    UINT32 module;
    UINT32 ops;
    VOID *slots[BURST_SLOTS];
};

static struct burst_module s_mods[BURST_MODULES] = {
    {.module = MEM_MODULE_NET}, {.module = MEM_MODULE_FS}, {.module = MEM_MODULE_APP}, {.module = MEM_MODULE_SHELL},
};
static UINT32 s_rng = 0x9E3779B9U;

/* Successful allocator calls made by the workload, by trace event kind (0 and 4 unused). */
volatile UINT32 g_burst_ops[5];
volatile UINT32 g_burst_leaked;
VOID *g_burst_leak_last; /* overwritten each time: older leaks become unreachable */

static UINT32 rng_next(void)
{
    return memhil_xorshift32(&s_rng);
}

static UINT32 rng_size(void)
{
    return BURST_MIN_SIZE + rng_next() % (BURST_MAX_SIZE - BURST_MIN_SIZE + 1U);
}

static __attribute__((noinline)) void burst_remember(void)
{
    VOID *p = LOS_MemMalloc(OS_SYS_MEM_ADDR, BURST_LEAK_SIZE, MEM_MODULE_APP); /* LEAK-SITE */
    if (p != NULL) {
        memset(p, 0x6B, BURST_LEAK_SIZE);
        g_burst_leak_last = p;
        g_burst_leaked++;
        g_burst_ops[1]++;
    }
}

static __attribute__((noinline)) void burst_op(struct burst_module *m)
{
    UINT32 r = rng_next();
    VOID **slot = &m->slots[r % BURST_SLOTS];
    if (*slot == NULL) {
        UINT32 size = rng_size();
        *slot = LOS_MemMalloc(OS_SYS_MEM_ADDR, size, m->module);
        if (*slot != NULL) {
            ((UINT8 *)*slot)[0] = (UINT8)size;
            g_burst_ops[1]++;
        }
    } else if ((r >> 8) % 4U == 0U) {
        VOID *p = LOS_MemMrealloc(OS_SYS_MEM_ADDR, *slot, rng_size(), m->module);
        if (p != NULL) {
            *slot = p;
            g_burst_ops[3]++;
        }
    } else {
        if (LOS_MemMfree(OS_SYS_MEM_ADDR, *slot, m->module) == LOS_OK) {
            g_burst_ops[2]++;
        }
        *slot = NULL;
    }
    m->ops++;
}

static void burst_tick(void *arg)
{
    struct burst_module *m = arg;
    for (UINT32 i = 0; i < BURST_OPS_PER_TICK; i++) {
        burst_op(m);
    }
    if (m->module == MEM_MODULE_APP && g_burst_leaked < BURST_LEAK_MAX && m->ops % BURST_LEAK_EVERY < BURST_OPS_PER_TICK) {
        burst_remember();
    }
}

int main(void)
{
    memhil_boot("burst");
    for (UINT32 i = 0; i < BURST_MODULES; i++) {
        (void)memhil_timer_start(BURST_PERIOD_MS, burst_tick, &s_mods[i], s_mods[i].module);
    }
    shell_start();
    memhil_os_run();
}
