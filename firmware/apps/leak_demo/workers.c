/* NET and FS modules of leak_demo: every block they allocate is freed in the same round. */
#include <string.h>
#include "leak_demo.h"
#include "los_memory.h"

void net_worker(UINT32 round)
{
    UINT8 *pkt = LOS_MemMalloc(OS_SYS_MEM_ADDR, 128U + (round % 4U) * 32U, MEM_MODULE_NET);
    UINT8 *ack = LOS_MemMalloc(OS_SYS_MEM_ADDR, 16, MEM_MODULE_NET);
    if (pkt != NULL) {
        memset(pkt, 0xEE, 128);
    }
    if (ack != NULL) {
        memset(ack, 0x11, 16);
    }
    (void)LOS_MemMfree(OS_SYS_MEM_ADDR, ack, MEM_MODULE_NET);
    (void)LOS_MemMfree(OS_SYS_MEM_ADDR, pkt, MEM_MODULE_NET);
}

void fs_worker(UINT32 round)
{
    UINT8 *blk = LOS_MemMalloc(OS_SYS_MEM_ADDR, 256, MEM_MODULE_FS);
    if (blk == NULL) {
        return;
    }
    memset(blk, (int)round, 256);
    UINT8 *bigger = LOS_MemMrealloc(OS_SYS_MEM_ADDR, blk, 512, MEM_MODULE_FS);
    (void)LOS_MemMfree(OS_SYS_MEM_ADDR, (bigger != NULL) ? bigger : blk, MEM_MODULE_FS);
}
