/* LOSCFG_MEM_MUL_MODULE: per-module accounting (LiteOS 5.0.0 los_memory.c "multi-module" part).
 * A module is charged the whole node size (header included), so malloc(0x10) counts 32 (16-byte header) or 44
 * (28-byte header with LOSCFG_MEM_LEAKCHECK). */
#include "los_memory_pri.h"
#include "los_hwi.h"
#include "los_printf.h"

UINT32 g_moduleMemUsedSize[MEM_MODULE_MAX + 1];

static UINT32 OsMemModCheck(UINT32 module)
{
    if (module > MEM_MODULE_MAX) {
        PRINT_ERR("error module ID input!\n");
        return LOS_NOK;
    }
    return LOS_OK;
}

static VOID OsMemModCharge(VOID *pool, VOID *ptr, UINT32 module)
{
    UINT32 intSave = LOS_IntLock();
    LosMemDynNode *node = OsMemUsedNodeGet(pool, ptr, FALSE);
    if (node != NULL) {
        g_moduleMemUsedSize[module] += OS_MEM_NODE_GET_SIZE(node->selfNode.sizeAndFlag);
    }
    LOS_IntRestore(intSave);
}

VOID *LOS_MemMalloc(VOID *pool, UINT32 size, UINT32 module)
{
    if (OsMemModCheck(module) != LOS_OK) {
        return NULL;
    }
    VOID *ptr = OsMemAllocTagged(pool, size, 0U, module);
    if (ptr != NULL) {
        OsMemModCharge(pool, ptr, module);
    }
    return ptr;
}

VOID *LOS_MemMallocAlign(VOID *pool, UINT32 size, UINT32 boundary, UINT32 module)
{
    if (OsMemModCheck(module) != LOS_OK) {
        return NULL;
    }
    if (boundary == 0U) {
        return NULL;
    }
    VOID *ptr = OsMemAllocTagged(pool, size, boundary, module);
    if (ptr != NULL) {
        OsMemModCharge(pool, ptr, module);
    }
    return ptr;
}

UINT32 LOS_MemMfree(VOID *pool, VOID *ptr, UINT32 module)
{
    if (OsMemModCheck(module) != LOS_OK || ptr == NULL) {
        return LOS_NOK;
    }
    LosMemDynNode *node = OsMemUsedNodeGet(pool, ptr, FALSE);
    if (node == NULL) {
        return LOS_MemFree(pool, ptr); /* prints why and returns LOS_NOK */
    }
    UINT32 size = OS_MEM_NODE_GET_SIZE(node->selfNode.sizeAndFlag);
    if (module != node->selfNode.moduleId) {
        PRINT_ERR("node[%p] alloced in module %lu, but free in module %u\n node's taskId: 0x%x\n", ptr,
                  (unsigned long)node->selfNode.moduleId, (unsigned)module, (unsigned)node->selfNode.taskId);
        module = node->selfNode.moduleId;
    }
    UINT32 ret = LOS_MemFree(pool, ptr);
    if (ret == LOS_OK) {
        UINT32 intSave = LOS_IntLock();
        g_moduleMemUsedSize[module] -= size;
        LOS_IntRestore(intSave);
    }
    return ret;
}

VOID *LOS_MemMrealloc(VOID *pool, VOID *ptr, UINT32 size, UINT32 module)
{
    if (OsMemModCheck(module) != LOS_OK) {
        return NULL;
    }
    if (ptr == NULL) {
        return LOS_MemMalloc(pool, size, module);
    }
    if (size == 0U) {
        (void)LOS_MemMfree(pool, ptr, module);
        return NULL;
    }
    LosMemDynNode *node = OsMemUsedNodeGet(pool, ptr, FALSE);
    if (node == NULL) {
        return LOS_MemRealloc(pool, ptr, size); /* prints why and returns NULL */
    }
    UINT32 oldModule = node->selfNode.moduleId;
    UINT32 oldSize = OS_MEM_NODE_GET_SIZE(node->selfNode.sizeAndFlag);
    if (module != oldModule) {
        PRINT_ERR("node[%p] alloced in module %lu, but realloc in module %u\n node's taskId: 0x%x\n", ptr,
                  (unsigned long)oldModule, (unsigned)module, (unsigned)node->selfNode.taskId);
    }
    if (OS_MEM_NODE_GET_SIZE(size) != size || pool == NULL) {
        return NULL;
    }
    VOID *newPtr = OsMemReallocTagged(pool, ptr, size, module);
    if (newPtr != NULL) {
        UINT32 intSave = LOS_IntLock();
        LosMemDynNode *newNode = OsMemUsedNodeGet(pool, newPtr, FALSE);
        g_moduleMemUsedSize[oldModule] -= oldSize;
        g_moduleMemUsedSize[module] += OS_MEM_NODE_GET_SIZE(newNode->selfNode.sizeAndFlag);
        LOS_IntRestore(intSave);
    }
    return newPtr;
}

UINT32 LOS_MemMusedGet(UINT32 module)
{
    if (OsMemModCheck(module) != LOS_OK) {
        return OS_NULL_INT;
    }
    return g_moduleMemUsedSize[module];
}
