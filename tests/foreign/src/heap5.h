/* heap_5's region table type and set-up call (FreeRTOS portable.h). */
#ifndef HEAP5_H
#define HEAP5_H
#include <stddef.h>
#include <stdint.h>

typedef struct HeapRegion {
    uint8_t *pucStartAddress;
    size_t xSizeInBytes;
} HeapRegion_t;

void vPortDefineHeapRegions(const HeapRegion_t *const pxHeapRegions);
#endif
