/* Memory shell commands in the LiteOS 5.0.0 formats (shellcmd/mempt_shellcmd.c). */
#include "shell.h"
#include "los_memory.h"
#include "los_printf.h"

UINT32 OsShellCmdMemUsed(INT32 argc, const CHAR *argv[])
{
    (void)argv;
    if (argc > 0) {
        PRINTK("\nUsage: memused\n");
        return OS_ERROR;
    }
    OsMemUsedNodeShow(OS_SYS_MEM_ADDR);
    return LOS_OK;
}

static BOOL ParseUint(const CHAR *s, UINT32 *out)
{
    UINT32 v = 0;
    if (*s == '\0') {
        return FALSE;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9' || v > 100000U) {
            return FALSE;
        }
        v = v * 10U + (UINT32)(*s - '0');
    }
    *out = v;
    return TRUE;
}

UINT32 OsShellCmdMemStat(INT32 argc, const CHAR *argv[])
{
    UINT32 module = 0;
    UINT32 total = 0;
    if (argc > 1 || (argc == 1 && (!ParseUint(argv[0], &module) || module > MEM_MODULE_MAX))) {
        PRINTK("Usage: memstat [module 0-%u]\n", (unsigned)MEM_MODULE_MAX);
        return OS_ERROR;
    }
    for (UINT32 m = 0; m <= MEM_MODULE_MAX; m++) {
        UINT32 used = LOS_MemMusedGet(m);
        total += used;
        if ((argc == 1 && m == module) || (argc == 0 && used != 0U)) {
            PRINTK("module %u mem used size %u\n", (unsigned)m, (unsigned)used);
        }
    }
    PRINTK("total used %u\n", (unsigned)total);
    return LOS_OK;
}

UINT32 OsShellCmdFree(INT32 argc, const CHAR *argv[])
{
    UINT32 shift = 0;
    if (argc > 1) {
        PRINTK("\nUsage: free [-k/-m]\n");
        return OS_ERROR;
    }
    if (argc == 1) {
        if (argv[0][0] == '-' && argv[0][1] == 'k' && argv[0][2] == '\0') {
            shift = 10;
        } else if (argv[0][0] == '-' && argv[0][1] == 'm' && argv[0][2] == '\0') {
            shift = 20;
        } else {
            PRINTK("\nUsage: free [-k/-m]\n");
            return OS_ERROR;
        }
    }
    UINT32 total = LOS_MemPoolSizeGet(OS_SYS_MEM_ADDR);
    UINT32 used = LOS_MemTotalUsedGet(OS_SYS_MEM_ADDR);
    PRINTK("        total        used          free\n");
    PRINTK("Mem:    %-9u    %-10u    %-10u\n", (unsigned)(total >> shift), (unsigned)(used >> shift),
           (unsigned)((total - used) >> shift));
    return LOS_OK;
}

UINT32 OsShellCmdMemCheck(INT32 argc, const CHAR *argv[])
{
    (void)argv;
    if (argc > 0) {
        PRINTK("\nUsage: memcheck\n");
        return OS_ERROR;
    }
    if (LOS_MemIntegrityCheck(OS_SYS_MEM_ADDR) == LOS_OK) {
        PRINTK("system memcheck over, all passed!\n");
    }
    return LOS_OK;
}
