/* module_stats: the seed's multi-module programming example, then live allocations in more modules. */
#include "los_memory.h"
#include "los_printf.h"
#include "memhil_boot.h"
#include "memhil_timer.h"
#include "shell.h"

/* Live blocks stay referenced from here (reachable, not leaks). */
VOID *g_module_stats_live[8];

/* The programming example of "Multi-Module Memory Statistics", verbatim apart from its PRINTK. */
static void test(void)
{
    void *ptr = NULL;
    void *ptrTmp = NULL;
    UINT32 size = 0x10;
    UINT32 module = 0;
    UINT32 memUsed = 0;

    ptr = LOS_MemMalloc(OS_SYS_MEM_ADDR, size, module);
    if (ptr == NULL) {
        PRINTK("module %d malloc failed\n", module);
    } else {
        PRINTK("module %d malloc successed\n", module);
    }
    memUsed = LOS_MemMusedGet(module);
    PRINTK("module %d mem used size %d\n", module, memUsed);

    module = 1;
    ptrTmp = LOS_MemMalloc(OS_SYS_MEM_ADDR, size, module);
    if (ptrTmp == NULL) {
        PRINTK("module %d malloc failed\n", module);
    } else {
        PRINTK("module %d malloc successed\n", module);
    }
    memUsed = LOS_MemMusedGet(module);
    PRINTK("module %d mem used size %d\n", module, memUsed);

    module = 0;
    LOS_MemMfree(OS_SYS_MEM_ADDR, ptr, module);
    module = 1;
    LOS_MemMfree(OS_SYS_MEM_ADDR, ptrTmp, module);
}

static void more_modules(void)
{
    for (UINT32 i = 0; i < 3U; i++) {
        g_module_stats_live[i] = LOS_MemMalloc(OS_SYS_MEM_ADDR, 100, 2);
    }
    PRINTK("module %u mem used size %u\n", 2U, (unsigned)LOS_MemMusedGet(2));
    g_module_stats_live[3] = LOS_MemMallocAlign(OS_SYS_MEM_ADDR, 64, 32, 5);
    PRINTK("module %u mem used size %u\n", 5U, (unsigned)LOS_MemMusedGet(5));
    VOID *p = LOS_MemMalloc(OS_SYS_MEM_ADDR, 40, 7);
    g_module_stats_live[4] = LOS_MemMrealloc(OS_SYS_MEM_ADDR, p, 200, 7);
    PRINTK("module %u mem used size %u\n", 7U, (unsigned)LOS_MemMusedGet(7));
    /* Plain LOS_MemAlloc: module 0 in the node, not counted by the module statistics (seed 000, Precautions). */
    g_module_stats_live[5] = LOS_MemAlloc(OS_SYS_MEM_ADDR, 0x10);
    PRINTK("module %u mem used size %u\n", 0U, (unsigned)LOS_MemMusedGet(0));
}

int main(void)
{
    memhil_boot("module_stats");
    test();
    more_modules();
    shell_start();
    memhil_os_run();
}
