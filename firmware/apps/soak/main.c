/* soak: NET allocates 3-10 blocks of 16-512 B every 250 ms (6.25 on average: 25 blocks a second; xorshift32 PRNG,
 * fixed seed) and frees each 2 s later; FS allocates, uses and frees every second; after 6 h of uptime APP leaks
 * one 48-byte block every 10 minutes. Hours of virtual time are cheap: the core sleeps in WFI between deadlines
 * (tickless), and every period is a multiple of NET's, so FS and APP run in NET's wake-ups (the timers started
 * together and expire at the same millisecond): 4 wake-ups per virtual second. Each wake-up costs the emulator a
 * fixed amount of wall time (~0.1 ms on QEMU 7.2), so the load comes in few, larger batches. */
#include <string.h>
#include "los_memory.h"
#include "los_printf.h"
#include "memhil_boot.h"
#include "memhil_timer.h"
#include "shell.h"
#include "memhil_rng.h"

#define NET_PERIOD_MS 250U
#define NET_HOLD_MS 2000U
#define NET_SLOTS 96U /* 8 rounds in flight (a round's blocks are freed before the round 2 s later allocates) x at
                       * most 10 blocks, with margin */
#define FS_PERIOD_MS 1000U
#define APP_PERIOD_MS (10U * 60U * 1000U)
#define APP_LEAK_AFTER_MS (6ULL * 3600ULL * 1000ULL)
#define APP_LEAK_SIZE 48U
#define NET_MAX_PER_ROUND 10U

_Static_assert(FS_PERIOD_MS % NET_PERIOD_MS == 0U && APP_PERIOD_MS % NET_PERIOD_MS == 0U,
               "FS and APP must expire on NET's deadlines (one wake-up each)");
_Static_assert(NET_SLOTS >= (NET_HOLD_MS / NET_PERIOD_MS) * NET_MAX_PER_ROUND, "NET_SLOTS below the blocks in flight");

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
    /* 3 + (0..6) + (1 in 4): mean 6.25 per 250 ms, the same 25 blocks a second as 1-4 every 100 ms */
    UINT32 count = 3U + rng_next() % 7U;
    count += (rng_next() % 4U == 0U) ? 1U : 0U;
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
