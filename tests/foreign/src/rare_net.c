/* A leak two calls deep on a rare path, in a module other than the obvious one, with its truth
 * (tests/foreign/truth.py, "rare_path"); the LiteOS module API on memhil's LiteOS-bestfit kernel (firmware/).
 *
 *   NET (this file)  net_handle_request serves RARE_REQUESTS requests; each takes a request buffer (NET, 64 B) and
 *                    frees it. On 1 request in RARE_EVERY (a counter, not chance) it asks the cache to refresh.
 *   FS (rare_cache.c) cache_refresh calls cache_entry_new, which allocates an entry (FS, 40 B); cache_refresh loses
 *                    it. Everything else is freed.
 *
 *   definitely lost  RARE_REQUESTS / RARE_EVERY entries of 40 B, one loss record, one leak site: the allocating
 *                    line in cache_entry_new (RARE-LEAK), under cache_refresh and net_handle_request; charged to FS
 *   nothing else is live
 *
 * Built for the STM32F405 as an app of memhil's firmware tree, and for the host with the same allocator, its pool
 * annotated for valgrind (MEMHIL_VALGRIND), where memcheck checks the same truth (VALGRIND_DO_LEAK_CHECK where the
 * firmware reports it is done). */
#include <string.h>
#include "los_memory.h"
#include "rare_path.h"

#ifdef HOST
#include <stdio.h>
#include <stdlib.h>
#include <valgrind/memcheck.h>
#define POOL_SIZE (64U * 1024U)
UINT8 *m_aucSysMem0;
#else
#include "los_printf.h"
#include "memhil_boot.h"
#include "memhil_timer.h"
#include "shell.h"
#endif

volatile UINT32 g_rare_done;
volatile UINT32 g_rare_sum;

__attribute__((noinline)) void net_handle_request(UINT32 request)
{
    UINT8 *req = LOS_MemMalloc(OS_SYS_MEM_ADDR, 64, MEM_MODULE_NET);
    if (req == NULL) {
        return;
    }
    memset(req, (int)(request & 0xFFU), 64);
    g_rare_sum += req[request % 64U];
    if ((request % RARE_EVERY) == RARE_EVERY - 1U) {
        cache_refresh(request);
    }
    (void)LOS_MemMfree(OS_SYS_MEM_ADDR, req, MEM_MODULE_NET);
}

/* Clears the stack below main's frame, where the callees left copies of the pointers they held. */
static __attribute__((noinline)) void scrub_stack(void)
{
    volatile UINT8 area[1024];
    for (UINT32 i = 0; i < sizeof(area); i++) {
        area[i] = 0;
    }
}

int main(void)
{
#ifdef HOST
    /* a malloc'd superblock, as tests/firmware's host build of leak_demo has it (memcheck counts its chunks) */
    m_aucSysMem0 = malloc(POOL_SIZE);
    if (m_aucSysMem0 == NULL || LOS_MemInit(m_aucSysMem0, POOL_SIZE) != LOS_OK) {
        return 2;
    }
#else
    memhil_boot("rare_path");
#endif
    for (UINT32 i = 0; i < RARE_REQUESTS; i++) {
        net_handle_request(i);
    }
    scrub_stack();
    g_rare_done = 1;
#ifdef HOST
    VALGRIND_DO_LEAK_CHECK;
    printf("RARE DONE refreshed %u\n", (unsigned)g_cache_refreshes);
    return 0;
#else
    PRINTK("RARE DONE refreshed %u\n", (unsigned)g_cache_refreshes);
    shell_start();
    memhil_os_run();
#endif
}
