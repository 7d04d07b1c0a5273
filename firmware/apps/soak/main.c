/* soak: NET allocates 1-4 blocks of 16-512 B every 100 ms (xorshift32 PRNG, fixed seed) and frees each about 2 s
 * later; FS allocates, uses and frees every second; after 6 h of uptime APP leaks one 48-byte block every
 * 10 minutes. Hours of virtual time are cheap: the core sleeps in WFI between deadlines (tickless). */
#include <string.h>
#include "los_memory.h"
#include "los_printf.h"
#include "memhil_boot.h"
#include "memhil_timer.h"
#include "shell.h"
#include "memhil_rng.h"

#define NET_PERIOD_MS 100U
#define NET_HOLD_MS 2000U
#define NET_SLOTS 96U /* 20 rounds in flight x at most 4 blocks, with margin */
#define FS_PERIOD_MS 1000U
#define APP_PERIOD_MS (10U * 60U * 1000U)
#define APP_LEAK_AFTER_MS (6ULL * 3600ULL * 1000ULL)
#define APP_LEAK_SIZE 48U

struct net_block {
    VOID *ptr;
    uint64_t free_at_ms;
};

static struct net_block s_net[NET_SLOTS];
static UINT32 s_rng = 0x2545F491U;
UINT32 g_soak_app_leaked;
VOID *g_soak_app_last; /* overwritten each time: older leaks become unreachable */

static UINT32 rng_next(void)
{
    return memhil_xorshift32(&s_rng);
}

static void net_tick(void *arg)
{
    (void)arg;
    uint64_t now = g_memhil_uptime_ms;
    for (UINT32 i = 0; i < NET_SLOTS; i++) {
        if (s_net[i].ptr != NULL && s_net[i].free_at_ms <= now) {
            (void)LOS_MemMfree(OS_SYS_MEM_ADDR, s_net[i].ptr, MEM_MODULE_NET);
            s_net[i].ptr = NULL;
        }
    }
    UINT32 count = 1U + rng_next() % 4U;
    for (UINT32 i = 0; i < NET_SLOTS && count > 0U; i++) {
        if (s_net[i].ptr == NULL) {
            UINT32 size = 16U + rng_next() % (512U - 16U + 1U);
            s_net[i].ptr = LOS_MemMalloc(OS_SYS_MEM_ADDR, size, MEM_MODULE_NET);
            if (s_net[i].ptr != NULL) {
                memset(s_net[i].ptr, 0xA5, size);
            }
            s_net[i].free_at_ms = now + NET_HOLD_MS;
            count--;
        }
    }
}

static void fs_tick(void *arg)
{
    (void)arg;
    UINT8 *buf = LOS_MemMalloc(OS_SYS_MEM_ADDR, 1024, MEM_MODULE_FS);
    if (buf != NULL) {
        memset(buf, 0x3C, 1024);
        (void)LOS_MemMfree(OS_SYS_MEM_ADDR, buf, MEM_MODULE_FS);
    }
}

static __attribute__((noinline)) void app_remember_session(void)
{
    VOID *p = LOS_MemMalloc(OS_SYS_MEM_ADDR, APP_LEAK_SIZE, MEM_MODULE_APP); /* LEAK-SITE */
    if (p != NULL) {
        memset(p, 0x77, APP_LEAK_SIZE);
        g_soak_app_last = p;
        g_soak_app_leaked++;
    }
}

static void app_tick(void *arg)
{
    (void)arg;
    if (g_memhil_uptime_ms > APP_LEAK_AFTER_MS) {
        app_remember_session();
    }
}

int main(void)
{
    memhil_boot("soak");
    (void)memhil_timer_start(NET_PERIOD_MS, net_tick, NULL, MEM_MODULE_NET);
    (void)memhil_timer_start(FS_PERIOD_MS, fs_tick, NULL, MEM_MODULE_FS);
    (void)memhil_timer_start(APP_PERIOD_MS, app_tick, NULL, MEM_MODULE_APP);
    shell_start();
    memhil_os_run();
}
