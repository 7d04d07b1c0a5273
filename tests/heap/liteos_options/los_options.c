/* The LiteOS 5.0.0 bestfit memory structures (kernel/base/mem/bestfit/los_memory_internal.h, los_memory.h,
 * los_multipledlinkhead.h), field for field, under the build options that change them: LOSCFG_MEM_MUL_MODULE,
 * LOSCFG_MEM_HEAD_BACKUP, LOSCFG_MEM_LEAKCHECK, LOSCFG_MEM_TASK_STAT, LOSCFG_MEM_MUL_POOL. Compiled with -g for
 * Cortex-M4 so memhil reads the layout from the DWARF a real build of each option emits. */
#include <stdint.h>

typedef uint32_t UINT32;
typedef uint16_t UINT16;
typedef uintptr_t UINTPTR;
typedef void VOID;

typedef struct LOS_DL_LIST {
    struct LOS_DL_LIST *pstPrev;
    struct LOS_DL_LIST *pstNext;
} LOS_DL_LIST;

#define LOS_RECORD_LR_CNT 3
#define OS_MULTI_DLNK_NUM 26

typedef struct {
    union {
        LOS_DL_LIST freeNodeInfo;
        struct {
            UINT32 magic;
            UINT32 taskId : 16;
#ifdef LOSCFG_MEM_MUL_MODULE
            UINT32 moduleId : 16;
#endif
        };
    };
    struct tagLosMemDynNode *preNode;
#ifdef LOSCFG_MEM_HEAD_BACKUP
    UINT32 gapSize;
    UINTPTR checksum;
#endif
#ifdef LOSCFG_MEM_LEAKCHECK
    UINTPTR linkReg[LOS_RECORD_LR_CNT];
#endif
    UINT32 sizeAndFlag;
} LosMemCtlNode;

typedef struct tagLosMemDynNode {
#ifdef LOSCFG_MEM_HEAD_BACKUP
    LosMemCtlNode backupNode;
#endif
    LosMemCtlNode selfNode;
} LosMemDynNode;

typedef struct {
    UINT32 memUsed;
    UINT32 memPeak;
} TaskMemUsedInfo;

typedef struct {
    UINT32 memTotalUsed;
    UINT32 memTotalPeak;
    TaskMemUsedInfo taskMemstats[4];
} Memstat;

typedef struct {
    VOID *pool;
    UINT32 poolSize;
#ifdef LOSCFG_MEM_TASK_STAT
    Memstat stat;
#endif
#ifdef LOSCFG_MEM_MUL_POOL
    VOID *nextPool;
#endif
} LosMemPoolInfo;

typedef struct {
    LOS_DL_LIST listHead[OS_MULTI_DLNK_NUM];
} LosMultipleDlinkHead;

LosMemDynNode g_node;
LosMemCtlNode g_ctl;
LosMemPoolInfo g_poolInfo;
LosMultipleDlinkHead g_heads;

void Reset_Handler(void)
{
    for (;;) {}
}
