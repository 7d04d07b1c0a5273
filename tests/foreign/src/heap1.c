/* A heap_1-style allocator (FreeRTOS portable/MemMang/heap_1.c's data and algorithm: ucHeap handed out upwards
 * from xNextFreeByte, sizes rounded up to 8, no block headers, vPortFree frees nothing and asserts), so memhil
 * meets a heap that has nothing to walk. */
#include <stddef.h>
#include <stdint.h>

#include "freertos_config.h"

#define configADJUSTED_HEAP_SIZE (configTOTAL_HEAP_SIZE - portBYTE_ALIGNMENT)

/* configASSERT as many ports define it for a debugger: remember where it failed */
volatile unsigned g_assert_line;
#define configASSERT(x) \
    if (!(x)) g_assert_line = __LINE__

static uint8_t ucHeap[configTOTAL_HEAP_SIZE];
static size_t xNextFreeByte = 0;

__attribute__((noinline)) void *pvPortMalloc(size_t xWantedSize)
{
    static uint8_t *pucAlignedHeap = NULL;
    void *out = NULL;
    if (xWantedSize & portBYTE_ALIGNMENT_MASK) xWantedSize += portBYTE_ALIGNMENT - (xWantedSize & portBYTE_ALIGNMENT_MASK);
    if (pucAlignedHeap == NULL)
        pucAlignedHeap = (uint8_t *)(((uintptr_t)&ucHeap[portBYTE_ALIGNMENT - 1]) & ~(uintptr_t)portBYTE_ALIGNMENT_MASK);
    if (xWantedSize > 0 && xNextFreeByte + xWantedSize < configADJUSTED_HEAP_SIZE) {
        out = pucAlignedHeap + xNextFreeByte;
        xNextFreeByte += xWantedSize;
    }
    return out;
}

__attribute__((noinline)) void vPortFree(void *pv)
{
    (void)pv;
    configASSERT(pv == NULL); /* heap_1 cannot free */
}
