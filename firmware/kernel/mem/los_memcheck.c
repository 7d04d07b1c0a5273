/* LOS_MemIntegrityCheck and the used-node listing behind the `memused` shell command
 * (LiteOS 5.0.0 los_memory.c OsMemIntegrityCheck / OsMemUsedNodeShow). Unlike LiteOS, a broken pool is reported
 * and LOS_NOK returned instead of a panic, so the host can still read the heap. */
#include "los_memory_pri.h"
#include "los_hwi.h"
#include "los_printf.h"

static BOOL OsMemLinkOk(const VOID *pool, const LOS_DL_LIST *link)
{
    const UINT8 *lo = (const UINT8 *)pool + sizeof(LosMemPoolInfo);
    const UINT8 *hi = (const UINT8 *)OS_MEM_END_NODE(pool, ((const LosMemPoolInfo *)pool)->poolSize);
    return (const UINT8 *)link >= lo && (const UINT8 *)link < hi && OS_MEM_IS_ALIGNED(link, sizeof(UINTPTR));
}

static VOID OsMemBrokenNodeShow(const LosMemDynNode *node, const LosMemDynNode *pre)
{
    const UINT32 *w = (const UINT32 *)(const VOID *)node;
    PRINTK("broken node head: %p  0x%x  0x%x  0x%x, ", (const VOID *)node, w[0], w[1],
           node->selfNode.sizeAndFlag);
    if (pre != NULL) {
        const UINT32 *p = (const UINT32 *)(const VOID *)pre;
        PRINTK("pre node head: %p  0x%x  0x%x  0x%x\n", (const VOID *)pre, p[0], p[1], pre->selfNode.sizeAndFlag);
#ifdef LOSCFG_MEM_LEAKCHECK
        PRINTK("pre node LR:");
        for (UINT32 i = 0; i < LOS_RECORD_LR_CNT; i++) {
            PRINTK(" LR[%u]:%p", i, (VOID *)pre->selfNode.linkReg[i]);
        }
        PRINTK("\n");
#endif
    } else {
        PRINTK("pre node head: none\n");
    }
    PRINTK("node %p memory:\n", (const VOID *)node);
    for (UINT32 i = 0; i < 16U; i += 4U) {
        PRINTK("  0x%08x 0x%08x 0x%08x 0x%08x\n", w[i], w[i + 1U], w[i + 2U], w[i + 3U]);
    }
}

UINT32 LOS_MemIntegrityCheck(const VOID *pool)
{
    if (pool == NULL) {
        return LOS_NOK;
    }
    const LosMemPoolInfo *info = pool;
    UINT32 intSave = LOS_IntLock();
    const LosMemDynNode *end = OS_MEM_END_NODE(pool, info->poolSize);
    const LosMemDynNode *pre = NULL;
    const LosMemDynNode *node = OS_MEM_FIRST_NODE(pool);
    UINT32 ok = LOS_OK;
    while (node < end) {
        UINT32 size = OS_MEM_NODE_GET_SIZE(node->selfNode.sizeAndFlag);
        BOOL bad = size < OS_MEM_NODE_HEAD_SIZE || !OS_MEM_IS_ALIGNED(size, OS_MEM_ALIGN_SIZE) ||
                   (const UINT8 *)node + size > (const UINT8 *)end;
        if (!bad && pre != NULL && node->selfNode.preNode != pre) {
            bad = TRUE;
        }
        if (!bad && OS_MEM_USED(node)) {
            bad = node->selfNode.magic != OS_MEM_NODE_MAGIC(node);
        } else if (!bad) {
            const LOS_DL_LIST *l = &node->selfNode.freeNodeInfo;
            bad = !OsMemLinkOk(pool, l->pstPrev) || !OsMemLinkOk(pool, l->pstNext) || l->pstPrev->pstNext != l ||
                  l->pstNext->pstPrev != l;
        }
        if (bad) {
            OsMemBrokenNodeShow(node, pre);
            ok = LOS_NOK;
            break;
        }
        pre = node;
        node = OS_MEM_NEXT_NODE(node);
    }
    if (ok == LOS_OK && (node != end || end->selfNode.preNode != pre || !OS_MEM_USED(end))) {
        OsMemBrokenNodeShow(end, pre);
        ok = LOS_NOK;
    }
    LOS_IntRestore(intSave);
    return ok;
}

VOID OsMemUsedNodeShow(VOID *pool)
{
    if (LOS_MemIntegrityCheck(pool) != LOS_OK) {
        PRINTK("LOS_MemIntegrityCheck error\n");
        return;
    }
    const LosMemPoolInfo *info = pool;
    const LosMemDynNode *end = OS_MEM_END_NODE(pool, info->poolSize);
    PRINTK("node        ");
#ifdef LOSCFG_MEM_LEAKCHECK
    for (UINT32 i = 0; i < LOS_RECORD_LR_CNT; i++) {
        PRINTK("    LR[%u]   ", i);
    }
#endif
    PRINTK("\n");
    for (const LosMemDynNode *n = OS_MEM_FIRST_NODE(pool); n < end; n = OS_MEM_NEXT_NODE(n)) {
        if (!OS_MEM_USED(n)) {
            continue;
        }
        PRINTK("0x%08lx: ", (unsigned long)(UINTPTR)n); /* LiteOS "%010p: " */
#ifdef LOSCFG_MEM_LEAKCHECK
        for (UINT32 i = 0; i < LOS_RECORD_LR_CNT; i++) {
            PRINTK(" 0x%08lx ", (unsigned long)n->selfNode.linkReg[i]); /* " %010p " */
        }
#endif
        PRINTK("\n");
    }
}
