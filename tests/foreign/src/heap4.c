/* A heap_4-style allocator (FreeRTOS portable/MemMang/heap_4.c's data and algorithm: ucHeap, the address-ordered
 * free list from xStart to the end marker pxEnd, BlockLink_t headers padded to 8 bytes, the allocated bit in the
 * top bit of xBlockSize, first fit, split, coalesce on free), so memhil walks a heap it did not build. */
#include <stddef.h>
#include <stdint.h>

#include "freertos_config.h"

#define heapBLOCK_ALLOCATED_BITMASK (((size_t)1) << ((sizeof(size_t) * 8) - 1))

typedef struct A_BLOCK_LINK {
    struct A_BLOCK_LINK *pxNextFreeBlock;
    size_t xBlockSize;
} BlockLink_t;

static uint8_t ucHeap[configTOTAL_HEAP_SIZE];
static const size_t xHeapStructSize = (sizeof(BlockLink_t) + portBYTE_ALIGNMENT_MASK) & ~((size_t)portBYTE_ALIGNMENT_MASK);
static BlockLink_t xStart;
static BlockLink_t *pxEnd = NULL;

static void prvHeapInit(void)
{
    uintptr_t start = ((uintptr_t)ucHeap + portBYTE_ALIGNMENT_MASK) & ~(uintptr_t)portBYTE_ALIGNMENT_MASK;
    uintptr_t end = ((uintptr_t)ucHeap + configTOTAL_HEAP_SIZE - xHeapStructSize) & ~(uintptr_t)portBYTE_ALIGNMENT_MASK;
    xStart.pxNextFreeBlock = (BlockLink_t *)start;
    xStart.xBlockSize = 0;
    pxEnd = (BlockLink_t *)end;
    pxEnd->xBlockSize = 0;
    pxEnd->pxNextFreeBlock = NULL;
    BlockLink_t *first = (BlockLink_t *)start;
    first->xBlockSize = end - start;
    first->pxNextFreeBlock = pxEnd;
}

static void prvInsertBlockIntoFreeList(BlockLink_t *pxBlockToInsert)
{
    BlockLink_t *pxIterator;
    for (pxIterator = &xStart; pxIterator->pxNextFreeBlock < pxBlockToInsert; pxIterator = pxIterator->pxNextFreeBlock) {}
    if ((uint8_t *)pxIterator + pxIterator->xBlockSize == (uint8_t *)pxBlockToInsert) {
        pxIterator->xBlockSize += pxBlockToInsert->xBlockSize;
        pxBlockToInsert = pxIterator;
    }
    BlockLink_t *next = pxIterator->pxNextFreeBlock;
    if ((uint8_t *)pxBlockToInsert + pxBlockToInsert->xBlockSize == (uint8_t *)next && next != pxEnd) {
        pxBlockToInsert->xBlockSize += next->xBlockSize;
        pxBlockToInsert->pxNextFreeBlock = next->pxNextFreeBlock;
    } else {
        pxBlockToInsert->pxNextFreeBlock = next;
    }
    if (pxIterator != pxBlockToInsert) pxIterator->pxNextFreeBlock = pxBlockToInsert;
}

__attribute__((noinline)) void *pvPortMalloc(size_t xWantedSize)
{
    if (pxEnd == NULL) prvHeapInit();
    if (xWantedSize == 0) return NULL;
    xWantedSize = (xWantedSize + xHeapStructSize + portBYTE_ALIGNMENT_MASK) & ~(size_t)portBYTE_ALIGNMENT_MASK;
    BlockLink_t *pxPrevious = &xStart, *pxBlock = xStart.pxNextFreeBlock;
    while (pxBlock->xBlockSize < xWantedSize && pxBlock->pxNextFreeBlock != NULL) {
        pxPrevious = pxBlock;
        pxBlock = pxBlock->pxNextFreeBlock;
    }
    if (pxBlock == pxEnd) return NULL;
    pxPrevious->pxNextFreeBlock = pxBlock->pxNextFreeBlock;
    if (pxBlock->xBlockSize - xWantedSize > 2 * xHeapStructSize) {
        BlockLink_t *pxNew = (BlockLink_t *)((uint8_t *)pxBlock + xWantedSize);
        pxNew->xBlockSize = pxBlock->xBlockSize - xWantedSize;
        pxBlock->xBlockSize = xWantedSize;
        prvInsertBlockIntoFreeList(pxNew);
    }
    pxBlock->xBlockSize |= heapBLOCK_ALLOCATED_BITMASK;
    pxBlock->pxNextFreeBlock = NULL;
    return (uint8_t *)pxBlock + xHeapStructSize;
}

__attribute__((noinline)) void vPortFree(void *pv)
{
    if (pv == NULL) return;
    BlockLink_t *pxLink = (BlockLink_t *)((uint8_t *)pv - xHeapStructSize);
    pxLink->xBlockSize &= ~heapBLOCK_ALLOCATED_BITMASK;
    prvInsertBlockIntoFreeList(pxLink);
}
