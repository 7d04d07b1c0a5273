/* LiteOS 5.0.0 "bestfit" dynamic memory (kernel/base/mem/bestfit/los_memory.c), re-implemented:
 * 26 size-class free lists (first fit within a class, LIFO insert), split when the rest can hold a node,
 * merge with free neighbours on free, an END node, the aligned-allocation gap word, and the leak-check link
 * registers in each node header. Every public call is checked (pool, size flags, node magic and neighbour
 * links), so bad input returns the LiteOS error value without corrupting the pool. */
#include <stddef.h>
#include <string.h>
#include "los_memory_pri.h"
#include "los_hwi.h"
#include "los_printf.h"
#include "memhil_timer.h"

/* ---- doubly linked list (los_list.h) ---- */
static inline VOID ListInit(LOS_DL_LIST *list)
{
    list->pstPrev = list;
    list->pstNext = list;
}

static inline VOID ListAdd(LOS_DL_LIST *head, LOS_DL_LIST *node)
{
    node->pstNext = head->pstNext;
    node->pstPrev = head;
    head->pstNext->pstPrev = node;
    head->pstNext = node;
}

static inline VOID ListDelete(LOS_DL_LIST *node)
{
    node->pstNext->pstPrev = node->pstPrev;
    node->pstPrev->pstNext = node->pstNext;
    node->pstNext = NULL;
    node->pstPrev = NULL;
}

/* ---- size classes ---- */
static inline UINT32 OsLog2(UINT32 size)
{
    return (size == 0U) ? 0U : (31U - (UINT32)__builtin_clz(size));
}

static inline LosMultipleDlinkHead *OsMemDlnk(VOID *pool)
{
    return (LosMultipleDlinkHead *)((UINT8 *)pool + sizeof(LosMemPoolInfo));
}

static inline UINT32 OsMemListIndex(UINT32 size)
{
    UINT32 log2 = OsLog2(size);
    if (log2 < OS_MIN_MULTI_DLNK_LOG2) {
        return 0U;
    }
    if (log2 > OS_MAX_MULTI_DLNK_LOG2) {
        log2 = OS_MAX_MULTI_DLNK_LOG2;
    }
    return log2 - OS_MIN_MULTI_DLNK_LOG2;
}

static inline LOS_DL_LIST *OsMemHead(VOID *pool, UINT32 size)
{
    return &OsMemDlnk(pool)->listHead[OsMemListIndex(size)];
}

static inline VOID OsMemListAdd(VOID *pool, LosMemDynNode *node)
{
    ListAdd(OsMemHead(pool, node->selfNode.sizeAndFlag), &node->selfNode.freeNodeInfo);
}

static LosMemDynNode *OsMemFindSuitableFreeBlock(VOID *pool, UINT32 allocSize)
{
    LosMultipleDlinkHead *dlnk = OsMemDlnk(pool);
    for (UINT32 idx = OsMemListIndex(allocSize); idx < OS_MULTI_DLNK_NUM; idx++) {
        LOS_DL_LIST *head = &dlnk->listHead[idx];
        for (LOS_DL_LIST *it = head->pstNext; it != head; it = it->pstNext) {
            LosMemDynNode *node = (LosMemDynNode *)(VOID *)it;
            if (node->selfNode.sizeAndFlag >= allocSize) {
                return node;
            }
        }
    }
    return NULL;
}

/* ---- node helpers ---- */
/* Leak check: the node keeps the caller LRs of its last allocation or free. */
static inline VOID OsMemNodeSetLRs(LosMemDynNode *node, const OsMemCallCtx *ctx)
{
#ifdef LOSCFG_MEM_LEAKCHECK
    for (UINT32 i = 0; i < LOS_RECORD_LR_CNT; i++) {
        node->selfNode.linkReg[i] = ctx->lr[i];
    }
#else
    (void)node;
    (void)ctx;
#endif
}

static inline VOID OsMemStatAdd(VOID *pool, UINT32 size)
{
    Memstat *stat = &((LosMemPoolInfo *)pool)->stat;
    stat->memTotalUsed += size;
    if (stat->memTotalUsed > stat->memTotalPeak) {
        stat->memTotalPeak = stat->memTotalUsed;
    }
}

static inline VOID OsMemStatReduce(VOID *pool, UINT32 size)
{
    ((LosMemPoolInfo *)pool)->stat.memTotalUsed -= size;
}

static inline VOID OsMemSetUsed(LosMemDynNode *node, const OsMemCallCtx *ctx)
{
    node->selfNode.sizeAndFlag |= OS_MEM_NODE_USED_FLAG;
    if (offsetof(LosMemCtlNode, sizeAndFlag) + sizeof(UINT32) != OS_MEM_NODE_HEAD_SIZE) {
        /* 64-bit host build: the header has tail padding, the "gap word" before the user pointer is not
         * sizeAndFlag and must read as 0 (no gap). On Cortex-M this is compiled out. */
        *(UINT32 *)(VOID *)((UINT8 *)node + OS_MEM_NODE_HEAD_SIZE - sizeof(UINT32)) = 0U;
    }
    node->selfNode.magic = OS_MEM_NODE_MAGIC(node);
    node->selfNode.taskId = (UINT16)g_memhil_cur_task;
    node->selfNode.moduleId = 0U;
    OsMemNodeSetLRs(node, ctx);
}

/* Merges node into its previous node (which absorbs it). */
static inline VOID OsMemMergeNode(LosMemDynNode *node)
{
    LosMemDynNode *prev = node->selfNode.preNode;
    prev->selfNode.sizeAndFlag += node->selfNode.sizeAndFlag;
    LosMemDynNode *next = OS_MEM_NEXT_NODE(node);
    next->selfNode.preNode = prev;
}

/* Splits the (flag-free) node at allocSize; the rest becomes a free node, merged with a free successor. */
static VOID OsMemSplitNode(VOID *pool, LosMemDynNode *node, UINT32 allocSize)
{
    LosMemDynNode *rest = (LosMemDynNode *)(VOID *)((UINT8 *)node + allocSize);
    rest->selfNode.preNode = node;
    rest->selfNode.sizeAndFlag = node->selfNode.sizeAndFlag - allocSize;
    node->selfNode.sizeAndFlag = allocSize;
    LosMemDynNode *next = OS_MEM_NEXT_NODE(rest);
    next->selfNode.preNode = rest;
    if (!OS_MEM_USED(next)) {
        ListDelete(&next->selfNode.freeNodeInfo);
        OsMemMergeNode(next);
    }
    OsMemListAdd(pool, rest);
}

static inline BOOL OsMemCanSplit(UINT32 allocSize, UINT32 nodeSize)
{
    return (allocSize + OS_MEM_NODE_HEAD_SIZE + OS_MEM_ALIGN_SIZE) <= nodeSize;
}

/* ---- init ---- */
UINT32 LOS_MemInit(VOID *pool, UINT32 size)
{
    if (pool == NULL || size < OS_MEM_MIN_POOL_SIZE || !OS_MEM_IS_ALIGNED(pool, OS_MEM_ALIGN_SIZE)) {
        return LOS_NOK;
    }
    size &= ~(OS_MEM_ALIGN_SIZE - 1U);
    UINT32 intSave = LOS_IntLock();
    LosMemPoolInfo *info = (LosMemPoolInfo *)pool;
    info->pool = pool;
    info->poolSize = size;
    info->stat.memTotalUsed = 0;
    info->stat.memTotalPeak = 0;
    LosMultipleDlinkHead *dlnk = OsMemDlnk(pool);
    for (UINT32 i = 0; i < OS_MULTI_DLNK_NUM; i++) {
        ListInit(&dlnk->listHead[i]);
    }
    LosMemDynNode *first = OS_MEM_FIRST_NODE(pool);
    LosMemDynNode *end = OS_MEM_END_NODE(pool, size);
    memset(first, 0, sizeof(*first));
    first->selfNode.sizeAndFlag = (UINT32)((UINT8 *)end - (UINT8 *)first);
    first->selfNode.preNode = end;
    OsMemListAdd(pool, first);
    memset(end, 0, sizeof(*end));
    end->selfNode.preNode = first;
    end->selfNode.sizeAndFlag = OS_MEM_NODE_HEAD_SIZE;
    OsMemCallCtx none = {{0}};
    OsMemSetUsed(end, &none);
    end->selfNode.taskId = 0U;
    OsMemStatAdd(pool, OS_MEM_NODE_HEAD_SIZE);
    LOS_IntRestore(intSave);
    OS_MEM_VG_CREATE(pool);
    return LOS_OK;
}

/* ---- node validation (LOSCFG_MEM_DEBUG checks, always on: they keep bad input from corrupting the pool) ---- */
static BOOL OsMemInPool(const VOID *pool, const VOID *addr)
{
    const LosMemPoolInfo *info = pool;
    const UINT8 *first = (const UINT8 *)OS_MEM_FIRST_NODE(pool);
    const UINT8 *end = (const UINT8 *)OS_MEM_END_NODE(pool, info->poolSize);
    return (const UINT8 *)addr >= first && (const UINT8 *)addr < end;
}

static BOOL OsMemUsedNodeValid(const VOID *pool, const LosMemDynNode *node)
{
    const LosMemPoolInfo *info = pool;
    if (!OsMemInPool(pool, node) || !OS_MEM_IS_ALIGNED(node, OS_MEM_ALIGN_SIZE)) {
        return FALSE;
    }
    if (!OS_MEM_USED(node) || node->selfNode.magic != OS_MEM_NODE_MAGIC(node)) {
        return FALSE;
    }
    UINT32 size = OS_MEM_NODE_GET_SIZE(node->selfNode.sizeAndFlag);
    const UINT8 *endNode = (const UINT8 *)OS_MEM_END_NODE(pool, info->poolSize);
    if (size < OS_MEM_NODE_HEAD_SIZE || (const UINT8 *)node + size > endNode) {
        return FALSE;
    }
    const LosMemDynNode *next = OS_MEM_NEXT_NODE(node);
    if (next->selfNode.preNode != node) {
        return FALSE;
    }
    const LosMemDynNode *prev = node->selfNode.preNode;
    if (node == OS_MEM_FIRST_NODE(pool)) {
        return (const UINT8 *)prev == endNode;
    }
    return OsMemInPool(pool, prev) && OS_MEM_NEXT_NODE(prev) == node;
}

LosMemDynNode *OsMemUsedNodeGet(const VOID *pool, const VOID *ptr, BOOL verbose)
{
    if (pool == NULL || ptr == NULL || !OS_MEM_IS_ALIGNED(ptr, sizeof(UINT32))) {
        return NULL;
    }
    if (!OsMemInPool(pool, (const UINT8 *)ptr - OS_MEM_NODE_HEAD_SIZE)) {
        if (verbose) {
            PRINT_ERR("[%s] %p is not in pool %p\n", __func__, ptr, pool);
        }
        return NULL;
    }
    UINT32 gapSize = *((const UINT32 *)ptr - 1);
    if ((gapSize & OS_MEM_NODE_ALIGNED_AND_USED_FLAG) == OS_MEM_NODE_ALIGNED_AND_USED_FLAG) {
        if (verbose) {
            PRINT_ERR("[%s:%d]gapSize:0x%x error\n", __func__, __LINE__, gapSize);
        }
        return NULL;
    }
    const UINT8 *nodeAddr;
    if ((gapSize & OS_MEM_NODE_ALIGNED_FLAG) != 0U) {
        gapSize &= ~OS_MEM_NODE_ALIGNED_AND_USED_FLAG;
        if ((gapSize & (OS_MEM_ALIGN_SIZE - 1U)) != 0U || !OsMemInPool(pool, (const UINT8 *)ptr - gapSize -
                                                                                   OS_MEM_NODE_HEAD_SIZE)) {
            if (verbose) {
                PRINT_ERR("[%s:%d]illegal gapSize: 0x%x\n", __func__, __LINE__, gapSize);
            }
            return NULL;
        }
        nodeAddr = (const UINT8 *)ptr - gapSize - OS_MEM_NODE_HEAD_SIZE;
    } else {
        nodeAddr = (const UINT8 *)ptr - OS_MEM_NODE_HEAD_SIZE;
    }
    LosMemDynNode *node = (LosMemDynNode *)(UINTPTR)nodeAddr;
    if (!OsMemUsedNodeValid(pool, node)) {
        if (verbose) {
            PRINT_ERR("[%s] %p is not a used node of pool %p (double free or foreign pointer)\n", __func__, ptr,
                      pool);
        }
        return NULL;
    }
    return node;
}

/* ---- alloc / free / realloc, unlocked, no trace ---- */
static LosMemDynNode *OsMemAllocNode(VOID *pool, UINT32 size, const OsMemCallCtx *ctx)
{
    UINT32 allocSize = (UINT32)OS_MEM_ALIGN(size + OS_MEM_NODE_HEAD_SIZE, OS_MEM_ALIGN_SIZE);
    if (allocSize < size) {
        return NULL; /* overflow */
    }
    LosMemDynNode *node = OsMemFindSuitableFreeBlock(pool, allocSize);
    if (node == NULL) {
#ifdef LOSCFG_MEM_DEBUG
        PRINT_ERR("[%s] No suitable free block, require free node size: 0x%x\n", __func__, allocSize);
#endif
        return NULL;
    }
    ListDelete(&node->selfNode.freeNodeInfo);
    if (OsMemCanSplit(allocSize, node->selfNode.sizeAndFlag)) {
        OsMemSplitNode(pool, node, allocSize);
    }
    OsMemSetUsed(node, ctx);
    OsMemStatAdd(pool, OS_MEM_NODE_GET_SIZE(node->selfNode.sizeAndFlag));
    return node;
}

static VOID OsMemFreeNode(VOID *pool, LosMemDynNode *node, const OsMemCallCtx *ctx)
{
    OsMemStatReduce(pool, OS_MEM_NODE_GET_SIZE(node->selfNode.sizeAndFlag));
    node->selfNode.sizeAndFlag = OS_MEM_NODE_GET_SIZE(node->selfNode.sizeAndFlag);
    OsMemNodeSetLRs(node, ctx);
    LosMemDynNode *prev = node->selfNode.preNode;
    if (node != OS_MEM_FIRST_NODE(pool) && !OS_MEM_USED(prev)) {
        ListDelete(&prev->selfNode.freeNodeInfo);
        OsMemMergeNode(node);
        node = prev;
    }
    LosMemDynNode *next = OS_MEM_NEXT_NODE(node);
    if (!OS_MEM_USED(next)) {
        ListDelete(&next->selfNode.freeNodeInfo);
        OsMemMergeNode(next);
    }
    OsMemListAdd(pool, node);
}

static inline VOID *OsMemUserPtr(LosMemDynNode *node)
{
    return (UINT8 *)node + OS_MEM_NODE_HEAD_SIZE;
}

static inline BOOL OsMemSizeBad(UINT32 size)
{
    return (size & OS_MEM_NODE_ALIGNED_AND_USED_FLAG) != 0U;
}

static VOID *OsMemAllocLocked(VOID *pool, UINT32 size, const OsMemCallCtx *ctx)
{
    if (pool == NULL || size == 0U || OsMemSizeBad(size)) {
        return NULL;
    }
    LosMemDynNode *node = OsMemAllocNode(pool, size, ctx);
    return (node == NULL) ? NULL : OsMemUserPtr(node);
}

static VOID *OsMemAllocAlignLocked(VOID *pool, UINT32 size, UINT32 boundary, const OsMemCallCtx *ctx)
{
    if (pool == NULL || size == 0U || boundary == 0U || !OS_MEM_IS_POW_TWO(boundary) ||
        !OS_MEM_IS_ALIGNED(boundary, sizeof(VOID *)) || OsMemSizeBad(size)) {
        return NULL;
    }
    if ((boundary - sizeof(UINT32)) > (0xFFFFFFFFU - size)) {
        return NULL;
    }
    UINT32 useSize = size + boundary - (UINT32)sizeof(UINT32);
    if (OsMemSizeBad(useSize)) {
        return NULL;
    }
    LosMemDynNode *node = OsMemAllocNode(pool, useSize, ctx);
    if (node == NULL) {
        return NULL;
    }
    UINT8 *ptr = OsMemUserPtr(node);
    UINT8 *aligned = (UINT8 *)OS_MEM_ALIGN(ptr, boundary);
    if (aligned != ptr) {
        UINT32 gapSize = (UINT32)(aligned - ptr);
        node->selfNode.sizeAndFlag |= OS_MEM_NODE_ALIGNED_FLAG;
        *((UINT32 *)(VOID *)aligned - 1) = gapSize | OS_MEM_NODE_ALIGNED_FLAG;
    }
    return aligned;
}

/* Usable bytes from ptr to the end of its node. */
static inline UINT32 OsMemUsable(const LosMemDynNode *node, const VOID *ptr)
{
    return (UINT32)(((const UINT8 *)node + OS_MEM_NODE_GET_SIZE(node->selfNode.sizeAndFlag)) - (const UINT8 *)ptr);
}

static VOID *OsMemReallocLocked(VOID *pool, LosMemDynNode *node, VOID *ptr, UINT32 size, const OsMemCallCtx *ctx)
{
    UINT32 allocSize = (UINT32)OS_MEM_ALIGN(size + OS_MEM_NODE_HEAD_SIZE, OS_MEM_ALIGN_SIZE);
    UINT32 nodeSize = OS_MEM_NODE_GET_SIZE(node->selfNode.sizeAndFlag);
    if (allocSize < size) {
        return NULL;
    }
    if (!OS_MEM_ALIGNED(node)) {
        LosMemDynNode *next = OS_MEM_NEXT_NODE(node);
        UINT32 avail = nodeSize + (OS_MEM_USED(next) ? 0U : OS_MEM_NODE_GET_SIZE(next->selfNode.sizeAndFlag));
        if (allocSize <= avail) { /* in place: shrink, or grow into the free successor */
            UINT32 taskId = node->selfNode.taskId;
            UINT32 moduleId = node->selfNode.moduleId;
            node->selfNode.sizeAndFlag = nodeSize;
            if (allocSize > nodeSize) {
                ListDelete(&next->selfNode.freeNodeInfo);
                OsMemMergeNode(next);
            }
            if (OsMemCanSplit(allocSize, node->selfNode.sizeAndFlag)) {
                OsMemSplitNode(pool, node, allocSize);
            }
            OsMemSetUsed(node, ctx);
            node->selfNode.taskId = (UINT16)taskId;
            node->selfNode.moduleId = (UINT16)moduleId;
            UINT32 newSize = OS_MEM_NODE_GET_SIZE(node->selfNode.sizeAndFlag);
            OsMemStatAdd(pool, newSize);
            OsMemStatReduce(pool, nodeSize);
            return ptr;
        }
    }
    LosMemDynNode *newNode = OsMemAllocNode(pool, size, ctx);
    if (newNode == NULL) {
        return NULL;
    }
    VOID *newPtr = OsMemUserPtr(newNode);
    UINT32 oldUsable = OsMemUsable(node, ptr);
    memcpy(newPtr, ptr, (oldUsable < size) ? oldUsable : size);
    newNode->selfNode.moduleId = node->selfNode.moduleId;
    OsMemFreeNode(pool, node, ctx);
    return newPtr;
}

static inline UINT32 OsMemNodeSize(const LosMemDynNode *node)
{
    return OS_MEM_NODE_GET_SIZE(node->selfNode.sizeAndFlag);
}

static inline LosMemDynNode *OsMemNodeOf(VOID *pool, VOID *ptr)
{
    return OsMemUsedNodeGet(pool, ptr, FALSE);
}

/* ---- public API: one LR record and one trace record per call ---- */

/* Trace records of the plain API (LOS_MemAlloc & co.) carry this module id: the node itself gets
 * module 0, as LiteOS does, but the host learns the block is not in the module statistics. */
#define OS_MEM_TRACE_MODULE_UNTRACKED 0xFFU

VOID *OsMemAllocTagged(VOID *pool, UINT32 size, UINT32 boundary, UINT32 module)
{
    OsMemCallCtx ctx;
    OsMemRecordLR(&ctx);
    UINT32 intSave = LOS_IntLock();
    VOID *ptr = (boundary == 0U) ? OsMemAllocLocked(pool, size, &ctx)
                                 : OsMemAllocAlignLocked(pool, size, boundary, &ctx);
    UINT32 nodeSize = 0U;
    if (ptr != NULL) {
        LosMemDynNode *node = OsMemNodeOf(pool, ptr);
        node->selfNode.moduleId = (UINT16)((module == OS_MEM_TRACE_MODULE_UNTRACKED) ? 0U : module);
        nodeSize = OsMemNodeSize(node);
    }
    LOS_IntRestore(intSave);
    if (ptr != NULL) {
        OS_MEM_VG_ALLOC(pool, ptr, size);
        OsMemTraceRecord((boundary == 0U) ? OS_MEM_TRACE_ALLOC : OS_MEM_TRACE_ALIGNED_ALLOC, module, ptr, NULL,
                         size, nodeSize, &ctx);
    }
    return ptr;
}

VOID *LOS_MemAlloc(VOID *pool, UINT32 size)
{
    return OsMemAllocTagged(pool, size, 0U, OS_MEM_TRACE_MODULE_UNTRACKED);
}

VOID *LOS_MemAllocAlign(VOID *pool, UINT32 size, UINT32 boundary)
{
    if (boundary == 0U) {
        return NULL;
    }
    return OsMemAllocTagged(pool, size, boundary, OS_MEM_TRACE_MODULE_UNTRACKED);
}

/* Common start of the calls that take a block back (free, realloc): record the caller's LRs, lock, and find
 * the used node of ptr. Returns NULL, with the lock released again, for a pointer that is not a used block. */
static LosMemDynNode *OsMemLockUsedNode(VOID *pool, VOID *ptr, OsMemCallCtx *ctx, UINT32 *intSave)
{
    OsMemRecordLR(ctx);
    *intSave = LOS_IntLock();
    LosMemDynNode *node = OsMemUsedNodeGet(pool, ptr, TRUE);
    if (node == NULL) {
        LOS_IntRestore(*intSave);
    }
    return node;
}

UINT32 LOS_MemFree(VOID *pool, VOID *ptr)
{
    OsMemCallCtx ctx;
    if (pool == NULL || ptr == NULL || !OS_MEM_IS_ALIGNED(ptr, sizeof(UINT32))) {
        return LOS_NOK;
    }
    UINT32 intSave;
    LosMemDynNode *node = OsMemLockUsedNode(pool, ptr, &ctx, &intSave);
    if (node == NULL) {
        return LOS_NOK;
    }
    UINT32 nodeSize = OsMemNodeSize(node);
    UINT32 module = node->selfNode.moduleId;
    UINT32 usable = OsMemUsable(node, ptr);
    OsMemFreeNode(pool, node, &ctx);
    LOS_IntRestore(intSave);
    OS_MEM_VG_FREE(pool, ptr, usable);
    OsMemTraceRecord(OS_MEM_TRACE_FREE, module, ptr, NULL, 0U, nodeSize, &ctx);
    return LOS_OK;
}

VOID *OsMemReallocTagged(VOID *pool, VOID *ptr, UINT32 size, UINT32 module)
{
    OsMemCallCtx ctx;
    UINT32 intSave;
    LosMemDynNode *node = OsMemLockUsedNode(pool, ptr, &ctx, &intSave);
    if (node == NULL) {
        return NULL;
    }
    UINT32 oldUsable = OsMemUsable(node, ptr);
    VOID *newPtr = OsMemReallocLocked(pool, node, ptr, size, &ctx);
    UINT32 nodeSize = 0U;
    if (newPtr != NULL) {
        LosMemDynNode *newNode = OsMemNodeOf(pool, newPtr);
        if (module != OS_NULL_INT) {
            newNode->selfNode.moduleId = (UINT16)module;
            module = newNode->selfNode.moduleId;
        } else {
            /* plain LOS_MemRealloc: the block keeps its module; a module-0 block is an untracked one */
            module = newNode->selfNode.moduleId;
            if (module == 0U) {
                module = OS_MEM_TRACE_MODULE_UNTRACKED;
            }
        }
        nodeSize = OsMemNodeSize(newNode);
    }
    LOS_IntRestore(intSave);
    if (newPtr != NULL) {
        OS_MEM_VG_FREE(pool, ptr, oldUsable);
        OS_MEM_VG_ALLOC(pool, newPtr, size);
        OsMemTraceRecord(OS_MEM_TRACE_REALLOC, module, newPtr, ptr, size, nodeSize, &ctx);
    }
    return newPtr;
}

VOID *LOS_MemRealloc(VOID *pool, VOID *ptr, UINT32 size)
{
    if (OsMemSizeBad(size)) {
        return NULL;
    }
    if (ptr == NULL) {
        return LOS_MemAlloc(pool, size);
    }
    if (size == 0U) {
        (void)LOS_MemFree(pool, ptr);
        return NULL;
    }
    if (pool == NULL) {
        return NULL;
    }
    return OsMemReallocTagged(pool, ptr, size, OS_NULL_INT);
}

/* ---- pool queries ---- */
UINT32 LOS_MemPoolSizeGet(const VOID *pool)
{
    return (pool == NULL) ? OS_NULL_INT : ((const LosMemPoolInfo *)pool)->poolSize;
}

UINT32 LOS_MemPeakGet(const VOID *pool)
{
    return (pool == NULL) ? OS_NULL_INT : ((const LosMemPoolInfo *)pool)->stat.memTotalPeak;
}

UINT32 LOS_MemInfoGet(VOID *pool, LOS_MEM_POOL_STATUS *poolStatus)
{
    if (pool == NULL || poolStatus == NULL) {
        return LOS_NOK;
    }
    LosMemPoolInfo *info = pool;
    LOS_MEM_POOL_STATUS st = {0};
    UINT32 intSave = LOS_IntLock();
    LosMemDynNode *end = OS_MEM_END_NODE(pool, info->poolSize);
    for (LosMemDynNode *n = OS_MEM_FIRST_NODE(pool); n < end; n = OS_MEM_NEXT_NODE(n)) {
        UINT32 size = OsMemNodeSize(n);
        if (OS_MEM_USED(n)) {
            st.uwUsedNodeNum++;
            st.uwTotalUsedSize += size;
        } else {
            st.uwFreeNodeNum++;
            st.uwTotalFreeSize += size;
            if (size > st.uwMaxFreeNodeSize) {
                st.uwMaxFreeNodeSize = size;
            }
        }
    }
    st.uwTotalUsedSize += OS_MEM_NODE_HEAD_SIZE; /* the end node */
    st.uwUsageWaterLine = info->stat.memTotalPeak;
    LOS_IntRestore(intSave);
    *poolStatus = st;
    return LOS_OK;
}

UINT32 LOS_MemTotalUsedGet(VOID *pool)
{
    LOS_MEM_POOL_STATUS st;
    return (LOS_MemInfoGet(pool, &st) == LOS_OK) ? st.uwTotalUsedSize : OS_NULL_INT;
}

UINT32 LOS_MemUsedBlksGet(VOID *pool)
{
    LOS_MEM_POOL_STATUS st;
    return (LOS_MemInfoGet(pool, &st) == LOS_OK) ? st.uwUsedNodeNum : OS_NULL_INT;
}

UINT32 LOS_MemFreeBlksGet(VOID *pool)
{
    LOS_MEM_POOL_STATUS st;
    return (LOS_MemInfoGet(pool, &st) == LOS_OK) ? st.uwFreeNodeNum : OS_NULL_INT;
}

UINT32 LOS_MemTaskIdGet(const VOID *ptr)
{
    const VOID *pool = OS_SYS_MEM_ADDR;
    const LosMemDynNode *node = OsMemUsedNodeGet(pool, ptr, FALSE);
    return (node == NULL) ? OS_NULL_INT : node->selfNode.taskId;
}
