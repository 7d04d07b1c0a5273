/* LiteOS 5.0.0 bestfit memory API and data layout (kernel/include/los_memory.h, kernel/base/mem/bestfit).
 * The struct and member names are a contract: the host heap walker reads them by name from DWARF. */
#ifndef LOS_MEMORY_H
#define LOS_MEMORY_H

#include "los_typedef.h"

/* ---- configuration ---- */
#ifndef OS_SYS_MEM_SIZE
#define OS_SYS_MEM_SIZE (64U * 1024U) /* 128 KiB of SRAM: the debug build's 40 KiB trace ring, the stack */
#endif
#define MEM_MODULE_MAX 0x20U
#define LOS_OMIT_LR_CNT 2U
#define LOS_RECORD_LR_CNT 3U

/* Module ids used by the memhil scenarios. */
#define MEM_MODULE_SYS 0U
#define MEM_MODULE_NET 1U
#define MEM_MODULE_FS 2U
#define MEM_MODULE_APP 3U
#define MEM_MODULE_SHELL 4U

/* ---- layout ---- */
typedef struct LOS_DL_LIST {
    struct LOS_DL_LIST *pstPrev;
    struct LOS_DL_LIST *pstNext;
} LOS_DL_LIST;

typedef struct {
    union {
        LOS_DL_LIST freeNodeInfo; /* free node: links in its size-class list */
        struct {                  /* used node */
            UINT32 magic;         /* (UINTPTR)&node ^ ~0 */
            UINT32 taskId : 16;
            UINT32 moduleId : 16;
        };
    };
    struct tagLosMemDynNode *preNode;
#ifdef LOSCFG_MEM_LEAKCHECK
    UINTPTR linkReg[LOS_RECORD_LR_CNT];
#endif
    UINT32 sizeAndFlag; /* always last, directly before the user pointer */
} LosMemCtlNode;

typedef struct tagLosMemDynNode {
    LosMemCtlNode selfNode;
} LosMemDynNode;

typedef struct {
    UINT32 memTotalUsed;
    UINT32 memTotalPeak;
} Memstat;

typedef struct {
    VOID *pool;
    UINT32 poolSize;
    Memstat stat;
} LosMemPoolInfo;

#define OS_MIN_MULTI_DLNK_LOG2 4
#define OS_MAX_MULTI_DLNK_LOG2 29
#define OS_MULTI_DLNK_NUM ((OS_MAX_MULTI_DLNK_LOG2 - OS_MIN_MULTI_DLNK_LOG2) + 1)

typedef struct {
    LOS_DL_LIST listHead[OS_MULTI_DLNK_NUM];
} LosMultipleDlinkHead;

#define OS_MEM_NODE_HEAD_SIZE ((UINT32)sizeof(LosMemDynNode))
#define OS_MEM_ALIGN_SIZE ((UINT32)sizeof(UINTPTR))
#define OS_MEM_NODE_USED_FLAG 0x80000000U
#define OS_MEM_NODE_ALIGNED_FLAG 0x40000000U
#define OS_MEM_NODE_ALIGNED_AND_USED_FLAG (OS_MEM_NODE_USED_FLAG | OS_MEM_NODE_ALIGNED_FLAG)
#define OS_MEM_NODE_GET_SIZE(sizeAndFlag) ((sizeAndFlag) & ~OS_MEM_NODE_ALIGNED_AND_USED_FLAG)
#define OS_MEM_MIN_POOL_SIZE \
    ((UINT32)(sizeof(LosMemPoolInfo) + sizeof(LosMultipleDlinkHead)) + 2U * OS_MEM_NODE_HEAD_SIZE + 16U)

typedef struct {
    UINT32 uwTotalUsedSize;
    UINT32 uwTotalFreeSize;
    UINT32 uwMaxFreeNodeSize;
    UINT32 uwUsedNodeNum;
    UINT32 uwFreeNodeNum;
    UINT32 uwUsageWaterLine;
} LOS_MEM_POOL_STATUS;

/* ---- the system pool ---- */
extern UINT8 *m_aucSysMem0;
#define OS_SYS_MEM_ADDR ((VOID *)m_aucSysMem0)
extern UINT32 g_moduleMemUsedSize[MEM_MODULE_MAX + 1];
/* Initialises m_aucSysMem0 (the .heap section) as the system pool. */
VOID OsSysMemInit(VOID);

/* ---- API (LiteOS names and return values) ---- */
UINT32 LOS_MemInit(VOID *pool, UINT32 size);
VOID *LOS_MemAlloc(VOID *pool, UINT32 size);
VOID *LOS_MemAllocAlign(VOID *pool, UINT32 size, UINT32 boundary);
VOID *LOS_MemRealloc(VOID *pool, VOID *ptr, UINT32 size);
UINT32 LOS_MemFree(VOID *pool, VOID *ptr);
UINT32 LOS_MemInfoGet(VOID *pool, LOS_MEM_POOL_STATUS *poolStatus);
UINT32 LOS_MemTotalUsedGet(VOID *pool);
UINT32 LOS_MemUsedBlksGet(VOID *pool);
UINT32 LOS_MemFreeBlksGet(VOID *pool);
UINT32 LOS_MemPoolSizeGet(const VOID *pool);
UINT32 LOS_MemTaskIdGet(const VOID *ptr);
UINT32 LOS_MemIntegrityCheck(const VOID *pool);
UINT32 LOS_MemPeakGet(const VOID *pool);

VOID *LOS_MemMalloc(VOID *pool, UINT32 size, UINT32 module);
VOID *LOS_MemMallocAlign(VOID *pool, UINT32 size, UINT32 boundary, UINT32 module);
UINT32 LOS_MemMfree(VOID *pool, VOID *ptr, UINT32 module);
VOID *LOS_MemMrealloc(VOID *pool, VOID *ptr, UINT32 size, UINT32 module);
UINT32 LOS_MemMusedGet(UINT32 module);

/* Shell helper: rows of used nodes with their recorded LRs (memused). */
VOID OsMemUsedNodeShow(VOID *pool);

#endif
