/* A LiteOS app with a second memory pool made by LOS_MemInit on a static buffer (no LOSCFG_MEM_MUL_POOL: nothing
 * chains it to the system pool), built against memhil's LiteOS-bestfit kernel (firmware/) as firmware/apps/<app>.
 * Blocks come from both pools, and one leak in each pool; the truth (tests/foreign/truth.py):
 *
 *   g_keep -> keep (system pool, 40 B, APP) -> kept (net pool, 24 B, NET)   both still reachable; kept only through
 *                                                                              a block of the other pool
 *   lost (net pool, 48 B, NET), dropped            definitely lost                    line LEAK-NET
 *   lost->peer (system pool, 32 B, FS)             indirectly lost: referenced only   line LEAK-SYS
 *                                                  from the lost block in the net pool
 *   a buffer in each pool, allocated and freed
 *   a scratch pool made, used and retired with LOS_MemDeInit (this kernel has none: the app's clears the pool
 *   header as LiteOS 5.0.0's does once the pool is off its list), so it is no longer a pool to walk
 */
#include <string.h>
#include "los_memory.h"
#include "los_printf.h"
#include "memhil_boot.h"
#include "memhil_timer.h"
#include "shell.h"

#define NET_POOL_SIZE 2048U
#define SCRATCH_POOL_SIZE 512U

__attribute__((aligned(8))) UINT8 g_netPool[NET_POOL_SIZE];
__attribute__((aligned(8))) UINT8 g_scratchPool[SCRATCH_POOL_SIZE];
VOID *g_keep;
volatile UINT32 g_pools_done;

struct lost_msg {
    struct lost_msg *peer;
    UINT8 payload[44];
};

static __attribute__((noinline)) VOID *sys_peer_alloc(void)
{
    return LOS_MemMalloc(OS_SYS_MEM_ADDR, 32, MEM_MODULE_FS); /* LEAK-SYS */
}

static __attribute__((noinline)) void net_drop_message(void)
{
    struct lost_msg *lost = LOS_MemMalloc(g_netPool, sizeof(struct lost_msg), MEM_MODULE_NET); /* LEAK-NET */
    if (lost == NULL) {
        return;
    }
    memset(lost, 0, sizeof(*lost));
    lost->peer = sys_peer_alloc();
    /* the message is dropped: nothing else holds it or its peer */
}

static __attribute__((noinline)) void keep_across_pools(void)
{
    VOID **keep = LOS_MemMalloc(OS_SYS_MEM_ADDR, 40, MEM_MODULE_APP);
    if (keep == NULL) {
        return;
    }
    memset(keep, 0, 40);
    keep[0] = LOS_MemMalloc(g_netPool, 24, MEM_MODULE_NET);
    g_keep = keep;
}

static __attribute__((noinline)) void transient(void)
{
    UINT8 *a = LOS_MemMalloc(g_netPool, 100, MEM_MODULE_NET);
    UINT8 *b = LOS_MemMalloc(OS_SYS_MEM_ADDR, 60, MEM_MODULE_APP);
    if (a != NULL) {
        memset(a, 0xA5, 100);
    }
    if (b != NULL) {
        memset(b, 0x5A, 60);
    }
    (void)LOS_MemMfree(g_netPool, a, MEM_MODULE_NET);
    (void)LOS_MemMfree(OS_SYS_MEM_ADDR, b, MEM_MODULE_APP);
}

__attribute__((noinline)) UINT32 LOS_MemDeInit(VOID *pool)
{
    if (pool == NULL || ((LosMemPoolInfo *)pool)->pool != pool) {
        return LOS_NOK;
    }
    memset(pool, 0, sizeof(LosMemPoolInfo));
    return LOS_OK;
}

static __attribute__((noinline)) void scratch(void)
{
    if (LOS_MemInit(g_scratchPool, SCRATCH_POOL_SIZE) != LOS_OK) {
        return;
    }
    UINT8 *tmp = LOS_MemMalloc(g_scratchPool, 64, MEM_MODULE_APP);
    (void)LOS_MemMfree(g_scratchPool, tmp, MEM_MODULE_APP);
    (void)LOS_MemDeInit(g_scratchPool);
    (void)LOS_MemDeInit(g_scratchPool); /* retired already: fails, changes nothing */
}

/* Clears the stack below main's frame, where the callees above left copies of the pointers they held: the lost
 * blocks must not stay reachable from dead frames that the shell's live frames later cover. */
static __attribute__((noinline)) void scrub_stack(void)
{
    volatile UINT8 area[1024];
    for (UINT32 i = 0; i < sizeof(area); i++) {
        area[i] = 0;
    }
}

int main(void)
{
    memhil_boot("liteos_pools");
    UINT32 ret = LOS_MemInit(g_netPool, NET_POOL_SIZE);
    PRINTK("net pool init %s\n", ret == LOS_OK ? "ok" : "failed");
    (void)LOS_MemInit(NULL, NET_POOL_SIZE); /* a failed call makes no pool */
    keep_across_pools();
    transient();
    scratch();
    net_drop_message();
    scrub_stack();
    g_pools_done = 1;
    PRINTK("POOLS DONE\n");
    shell_start();
    memhil_os_run();
}
