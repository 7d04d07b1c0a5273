/* A heap_2-style allocator (FreeRTOS portable/MemMang/heap_2.c's data and algorithm as of 10.5/11: ucHeap, the
 * list head xStart and the list end xEnd -- a struct, not a pointer --, BlockLink_t headers padded to 8 bytes, the
 * free list ordered by block size, best fit, split, no coalescing, the allocated bit in the top bit of
 * xBlockSize), so memhil walks a heap it did not build. */
#include <stddef.h>
#include <stdint.h>

#include "freertos_config.h"

#define configADJUSTED_HEAP_SIZE (configTOTAL_HEAP_SIZE - portBYTE_ALIGNMENT)
#define heapBLOCK_ALLOCATED_BITMASK (((size_t)1) << ((sizeof(size_t) * 8) - 1))

typedef struct A_BLOCK_LINK {
    struct A_BLOCK_LINK *pxNextFreeBlock;
    size_t xBlockSize;
} BlockLink_t;

static uint8_t ucHeap[configTOTAL_HEAP_SIZE];
static const uint16_t heapSTRUCT_SIZE = (sizeof(BlockLink_t) + portBYTE_ALIGNMENT_MASK) & ~portBYTE_ALIGNMENT_MASK;
#define heapMINIMUM_BLOCK_SIZE ((size_t)(heapSTRUCT_SIZE * 2))
static BlockLink_t xStart, xEnd;
static size_t xFreeBytesRemaining = configADJUSTED_HEAP_SIZE;

/* Smallest blocks first: walk past every block smaller than the one inserted. */
static void insert_by_size(BlockLink_t *block)
{
    BlockLink_t *it = &xStart;
    while (it->pxNextFreeBlock->xBlockSize < block->xBlockSize) it = it->pxNextFreeBlock;
    block->pxNextFreeBlock = it->pxNextFreeBlock;
    it->pxNextFreeBlock = block;
}

static void heap_setup(void)
{
    BlockLink_t *first = (BlockLink_t *)(((uintptr_t)&ucHeap[portBYTE_ALIGNMENT - 1]) & ~(uintptr_t)portBYTE_ALIGNMENT_MASK);
    xStart.pxNextFreeBlock = first;
    xStart.xBlockSize = 0;
    xEnd.xBlockSize = configADJUSTED_HEAP_SIZE;
    xEnd.pxNextFreeBlock = NULL;
    first->xBlockSize = configADJUSTED_HEAP_SIZE;
    first->pxNextFreeBlock = &xEnd;
}

__attribute__((noinline)) void *pvPortMalloc(size_t xWantedSize)
{
    static int xHeapHasBeenInitialised;
    void *out = NULL;
    if (!xHeapHasBeenInitialised) {
        heap_setup();
        xHeapHasBeenInitialised = 1;
    }
    if (xWantedSize == 0) return NULL;
    /* 10.5+ adds the header and then a whole alignment unit less the low bits (8 more when already aligned) */
    xWantedSize += heapSTRUCT_SIZE + portBYTE_ALIGNMENT - (xWantedSize & portBYTE_ALIGNMENT_MASK);
    if (xWantedSize & heapBLOCK_ALLOCATED_BITMASK || xWantedSize > xFreeBytesRemaining) return NULL;
    BlockLink_t *prev = &xStart, *block = xStart.pxNextFreeBlock;
    while (block->xBlockSize < xWantedSize && block->pxNextFreeBlock != NULL) {
        prev = block;
        block = block->pxNextFreeBlock;
    }
    if (block == &xEnd) return NULL;
    out = (uint8_t *)block + heapSTRUCT_SIZE;
    prev->pxNextFreeBlock = block->pxNextFreeBlock;
    if (block->xBlockSize - xWantedSize > heapMINIMUM_BLOCK_SIZE) {
        BlockLink_t *rest = (BlockLink_t *)((uint8_t *)block + xWantedSize);
        rest->xBlockSize = block->xBlockSize - xWantedSize;
        block->xBlockSize = xWantedSize;
        insert_by_size(rest);
    }
    xFreeBytesRemaining -= block->xBlockSize;
    block->xBlockSize |= heapBLOCK_ALLOCATED_BITMASK;
    block->pxNextFreeBlock = NULL;
    return out;
}

__attribute__((noinline)) void vPortFree(void *pv)
{
    if (pv == NULL) return;
    BlockLink_t *link = (BlockLink_t *)((uint8_t *)pv - heapSTRUCT_SIZE);
    if (!(link->xBlockSize & heapBLOCK_ALLOCATED_BITMASK) || link->pxNextFreeBlock != NULL) return;
    link->xBlockSize &= ~heapBLOCK_ALLOCATED_BITMASK;
    insert_by_size(link);
    xFreeBytesRemaining += link->xBlockSize;
}
