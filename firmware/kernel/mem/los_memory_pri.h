/* Allocator internals shared by the kernel/mem sources. */
#ifndef LOS_MEMORY_PRI_H
#define LOS_MEMORY_PRI_H

#include "los_memory.h"

#define OS_MEM_ALIGN(v, a) (((UINTPTR)(v) + (a) - 1U) & ~((UINTPTR)(a) - 1U))
#define OS_MEM_IS_ALIGNED(v, a) ((((UINTPTR)(v)) & ((UINTPTR)(a) - 1U)) == 0U)
#define OS_MEM_IS_POW_TWO(v) ((((UINTPTR)(v)) & ((UINTPTR)(v) - 1U)) == 0U)
#define OS_MEM_NODE_MAGIC(node) ((UINT32)((UINTPTR)(node) ^ ~(UINTPTR)0))
#define OS_MEM_FIRST_NODE(pool) \
    ((LosMemDynNode *)((UINT8 *)(pool) + sizeof(LosMemPoolInfo) + sizeof(LosMultipleDlinkHead)))
#define OS_MEM_END_NODE(pool, size) ((LosMemDynNode *)(((UINT8 *)(pool) + (size)) - OS_MEM_NODE_HEAD_SIZE))
#define OS_MEM_NEXT_NODE(node) \
    ((LosMemDynNode *)((UINT8 *)(node) + OS_MEM_NODE_GET_SIZE((node)->selfNode.sizeAndFlag)))
#define OS_MEM_USED(node) (((node)->selfNode.sizeAndFlag & OS_MEM_NODE_USED_FLAG) != 0U)
#define OS_MEM_ALIGNED(node) (((node)->selfNode.sizeAndFlag & OS_MEM_NODE_ALIGNED_FLAG) != 0U)

/* Call context of one public API call: the link registers recorded for it. */
typedef struct {
    UINTPTR lr[LOS_RECORD_LR_CNT];
} OsMemCallCtx;

/* Fills ctx with LOS_RECORD_LR_CNT return addresses of the caller (arch/cortex-m/los_backtrace.c; host port). */
VOID OsMemRecordLR(OsMemCallCtx *ctx);

/* Node of a user pointer (handles the aligned gap word); NULL if the pointer is not a valid used node. */
LosMemDynNode *OsMemUsedNodeGet(const VOID *pool, const VOID *ptr, BOOL verbose);

/* Allocation/realloc with the module recorded in the node and the trace (boundary 0: unaligned;
 * module OS_NULL_INT for realloc: keep the node's module). */
VOID *OsMemAllocTagged(VOID *pool, UINT32 size, UINT32 boundary, UINT32 module);
VOID *OsMemReallocTagged(VOID *pool, VOID *ptr, UINT32 size, UINT32 module);

/* Trace ring (memhil_trace.c); a no-op unless LOSCFG_MEM_TRACE. */
VOID OsMemTraceRecord(UINT32 kind, UINT32 module, const VOID *ptr, const VOID *oldPtr, UINT32 size,
                      UINT32 nodeSize, const OsMemCallCtx *ctx);
#define OS_MEM_TRACE_ALLOC 1U
#define OS_MEM_TRACE_FREE 2U
#define OS_MEM_TRACE_REALLOC 3U
#define OS_MEM_TRACE_ALIGNED_ALLOC 4U

/* Valgrind mempool client requests for the host build (tests/firmware). */
#ifdef MEMHIL_VALGRIND
#include <valgrind/memcheck.h>
#define OS_MEM_VG_CREATE(pool) VALGRIND_CREATE_MEMPOOL((pool), 0, 0)
#define OS_MEM_VG_ALLOC(pool, ptr, size) VALGRIND_MEMPOOL_ALLOC((pool), (ptr), (size))
#define OS_MEM_VG_FREE(pool, ptr, size)             \
    do {                                            \
        VALGRIND_MEMPOOL_FREE((pool), (ptr));       \
        VALGRIND_MAKE_MEM_DEFINED((ptr), (size));   \
    } while (0)
#else
#define OS_MEM_VG_CREATE(pool) ((void)(pool))
#define OS_MEM_VG_ALLOC(pool, ptr, size) ((void)(pool), (void)(ptr), (void)(size))
#define OS_MEM_VG_FREE(pool, ptr, size) ((void)(pool), (void)(ptr), (void)(size))
#endif

#endif
