/* bad_input: every bad input of issue 3, one line per case "bad_input <case>: <what the call returned>". */
#include "los_memory.h"
#include "los_printf.h"
#include "memhil_boot.h"
#include "memhil_timer.h"
#include "shell.h"

#define POOL OS_SYS_MEM_ADDR

static const char *ptr_str(const VOID *p)
{
    return (p == NULL) ? "NULL" : "non-NULL";
}

static const char *ret_str(UINT32 r)
{
    return (r == LOS_OK) ? "LOS_OK" : (r == LOS_NOK) ? "LOS_NOK" : "other";
}

static UINT32 s_foreign[16];

static void run_cases(void)
{
    PRINTK("bad_input init_null_pool: LOS_MemInit(NULL) = %s\n", ret_str(LOS_MemInit(NULL, 4096)));
    PRINTK("bad_input alloc_null_pool: LOS_MemAlloc(NULL, 16) = %s\n", ptr_str(LOS_MemAlloc(NULL, 16)));
    PRINTK("bad_input malloc_null_pool: LOS_MemMalloc(NULL, 16, 1) = %s\n", ptr_str(LOS_MemMalloc(NULL, 16, 1)));
    PRINTK("bad_input alloc_size_0: LOS_MemAlloc(pool, 0) = %s\n", ptr_str(LOS_MemAlloc(POOL, 0)));
    PRINTK("bad_input alloc_used_flag: LOS_MemAlloc(pool, 0x80000010) = %s\n",
           ptr_str(LOS_MemAlloc(POOL, 0x80000010U)));
    PRINTK("bad_input alloc_aligned_flag: LOS_MemAlloc(pool, 0x40000010) = %s\n",
           ptr_str(LOS_MemAlloc(POOL, 0x40000010U)));
    PRINTK("bad_input alloc_too_big: LOS_MemAlloc(pool, 0x100000) = %s\n", ptr_str(LOS_MemAlloc(POOL, 0x100000U)));
    PRINTK("bad_input align_boundary_24: LOS_MemAllocAlign(pool, 64, 24) = %s\n",
           ptr_str(LOS_MemAllocAlign(POOL, 64, 24)));
    PRINTK("bad_input align_boundary_0: LOS_MemAllocAlign(pool, 64, 0) = %s\n",
           ptr_str(LOS_MemAllocAlign(POOL, 64, 0)));
    PRINTK("bad_input align_boundary_2: LOS_MemAllocAlign(pool, 64, 2) = %s\n",
           ptr_str(LOS_MemAllocAlign(POOL, 64, 2)));
    PRINTK("bad_input malloc_module_33: LOS_MemMalloc(pool, 16, 33) = %s\n",
           ptr_str(LOS_MemMalloc(POOL, 16, MEM_MODULE_MAX + 1U)));
    PRINTK("bad_input musedget_module_33: LOS_MemMusedGet(33) = 0x%x\n",
           (unsigned)LOS_MemMusedGet(MEM_MODULE_MAX + 1U));
    VOID *p = LOS_MemMalloc(POOL, 32, MEM_MODULE_NET);
    PRINTK("bad_input mfree_module_33: LOS_MemMfree(pool, p, 33) = %s\n",
           ret_str(LOS_MemMfree(POOL, p, MEM_MODULE_MAX + 1U)));
    PRINTK("bad_input free_null: LOS_MemFree(pool, NULL) = %s\n", ret_str(LOS_MemFree(POOL, NULL)));
    PRINTK("bad_input free_foreign: LOS_MemFree(pool, &static) = %s\n", ret_str(LOS_MemFree(POOL, &s_foreign[8])));
    PRINTK("bad_input free_interior: LOS_MemFree(pool, p + 8) = %s\n",
           ret_str(LOS_MemFree(POOL, (UINT8 *)p + 8)));
    PRINTK("bad_input realloc_foreign: LOS_MemRealloc(pool, &static, 64) = %s\n",
           ptr_str(LOS_MemRealloc(POOL, &s_foreign[8], 64)));
    PRINTK("bad_input realloc_used_flag: LOS_MemRealloc(pool, p, 0x80000040) = %s\n",
           ptr_str(LOS_MemRealloc(POOL, p, 0x80000040U)));
    PRINTK("bad_input mfree_wrong_module: LOS_MemMfree(pool, p, 2) = %s\n",
           ret_str(LOS_MemMfree(POOL, p, MEM_MODULE_FS)));
    PRINTK("bad_input mfree_wrong_module_charged: LOS_MemMusedGet(1) = %u LOS_MemMusedGet(2) = %u\n",
           (unsigned)LOS_MemMusedGet(MEM_MODULE_NET), (unsigned)LOS_MemMusedGet(MEM_MODULE_FS));
    VOID *q = LOS_MemAlloc(POOL, 48);
    PRINTK("bad_input free_once: LOS_MemFree(pool, q) = %s\n", ret_str(LOS_MemFree(POOL, q)));
    PRINTK("bad_input double_free: LOS_MemFree(pool, q) = %s\n", ret_str(LOS_MemFree(POOL, q)));
    VOID *r = LOS_MemMalloc(POOL, 48, MEM_MODULE_APP);
    (void)LOS_MemMfree(POOL, r, MEM_MODULE_APP);
    PRINTK("bad_input double_mfree: LOS_MemMfree(pool, r, 3) = %s\n", ret_str(LOS_MemMfree(POOL, r, MEM_MODULE_APP)));
    PRINTK("bad_input realloc_freed: LOS_MemRealloc(pool, q, 64) = %s\n", ptr_str(LOS_MemRealloc(POOL, q, 64)));
    PRINTK("bad_input done integrity %s\n", (LOS_MemIntegrityCheck(POOL) == LOS_OK) ? "ok" : "FAILED");
}

int main(void)
{
    memhil_boot("bad_input");
    run_cases();
    shell_start();
    memhil_os_run();
}
