/* A heap_5-style allocator (FreeRTOS portable/MemMang/heap_5.c's data and algorithm: no heap array of its own,
 * regions handed to vPortDefineHeapRegions as a HeapRegion_t table ended by { NULL, 0 }, an end marker -- a
 * BlockLink_t of size 0 -- at the top of each region linking to the next region, the last one pxEnd; the
 * address-ordered free list from xStart, first fit, split, coalesce on free (a freed block that ends at a
 * region's marker swallows the marker, which then drops off the list), the allocated bit in the top bit of
 * xBlockSize), so memhil walks a heap it did not build. */
#include <stddef.h>
#include <stdint.h>

#include "freertos_config.h"
#include "heap5.h"

#define heapBLOCK_ALLOCATED_BITMASK (((size_t)1) << ((sizeof(size_t) * 8) - 1))

typedef struct A_BLOCK_LINK {
    struct A_BLOCK_LINK *pxNextFreeBlock;
    size_t xBlockSize;
} BlockLink_t;

static const size_t xHeapStructSize = (sizeof(BlockLink_t) + portBYTE_ALIGNMENT_MASK) & ~((size_t)portBYTE_ALIGNMENT_MASK);
#define heapMINIMUM_BLOCK_SIZE (xHeapStructSize << 1)
static BlockLink_t xStart;
static BlockLink_t *pxEnd = NULL;
static size_t xFreeBytesRemaining;

void vPortDefineHeapRegions(const HeapRegion_t *const pxHeapRegions)
{
    BlockLink_t *previous_marker;
    for (const HeapRegion_t *r = pxHeapRegions; r->xSizeInBytes > 0; r++) {
        uintptr_t start = (uintptr_t)r->pucStartAddress;
        size_t size = r->xSizeInBytes;
        if (start & portBYTE_ALIGNMENT_MASK) {
            uintptr_t aligned = (start + portBYTE_ALIGNMENT_MASK) & ~(uintptr_t)portBYTE_ALIGNMENT_MASK;
            size -= aligned - start;
            start = aligned;
        }
        if (r == pxHeapRegions) {
            xStart.pxNextFreeBlock = (BlockLink_t *)start;
            xStart.xBlockSize = 0;
        }
        previous_marker = pxEnd;
        pxEnd = (BlockLink_t *)((start + size - xHeapStructSize) & ~(uintptr_t)portBYTE_ALIGNMENT_MASK);
        pxEnd->xBlockSize = 0;
        pxEnd->pxNextFreeBlock = NULL;
        BlockLink_t *first = (BlockLink_t *)start;
        first->xBlockSize = (uintptr_t)pxEnd - start;
        first->pxNextFreeBlock = pxEnd;
        if (previous_marker != NULL) previous_marker->pxNextFreeBlock = first;
        xFreeBytesRemaining += first->xBlockSize;
    }
}

static void insert_by_address(BlockLink_t *block)
{
    BlockLink_t *it = &xStart;
    while (it->pxNextFreeBlock < block) it = it->pxNextFreeBlock;
    if ((uint8_t *)it + it->xBlockSize == (uint8_t *)block) { /* merge with the free block before */
        it->xBlockSize += block->xBlockSize;
        block = it;
    }
    BlockLink_t *after = it->pxNextFreeBlock;
    if ((uint8_t *)block + block->xBlockSize == (uint8_t *)after && after != pxEnd) { /* and the one after (or a marker) */
        block->xBlockSize += after->xBlockSize;
        block->pxNextFreeBlock = after->pxNextFreeBlock;
    } else {
        block->pxNextFreeBlock = after;
    }
    if (it != block) it->pxNextFreeBlock = block;
}

__attribute__((noinline)) void *pvPortMalloc(size_t xWantedSize)
{
    if (pxEnd == NULL || xWantedSize == 0) return NULL; /* vPortDefineHeapRegions must come first */
    xWantedSize = (xWantedSize + xHeapStructSize + portBYTE_ALIGNMENT_MASK) & ~(size_t)portBYTE_ALIGNMENT_MASK;
    if (xWantedSize & heapBLOCK_ALLOCATED_BITMASK || xWantedSize > xFreeBytesRemaining) return NULL;
    BlockLink_t *prev = &xStart, *block = xStart.pxNextFreeBlock;
    while (block->xBlockSize < xWantedSize && block->pxNextFreeBlock != NULL) {
        prev = block;
        block = block->pxNextFreeBlock;
    }
    if (block == pxEnd) return NULL;
    prev->pxNextFreeBlock = block->pxNextFreeBlock;
    if (block->xBlockSize - xWantedSize > heapMINIMUM_BLOCK_SIZE) {
        BlockLink_t *rest = (BlockLink_t *)((uint8_t *)block + xWantedSize);
        rest->xBlockSize = block->xBlockSize - xWantedSize;
        block->xBlockSize = xWantedSize;
        insert_by_address(rest);
    }
    xFreeBytesRemaining -= block->xBlockSize;
    block->xBlockSize |= heapBLOCK_ALLOCATED_BITMASK;
    block->pxNextFreeBlock = NULL;
    return (uint8_t *)block + xHeapStructSize;
}

__attribute__((noinline)) void vPortFree(void *pv)
{
    if (pv == NULL) return;
    BlockLink_t *link = (BlockLink_t *)((uint8_t *)pv - xHeapStructSize);
    if (!(link->xBlockSize & heapBLOCK_ALLOCATED_BITMASK) || link->pxNextFreeBlock != NULL) return;
    link->xBlockSize &= ~heapBLOCK_ALLOCATED_BITMASK;
    xFreeBytesRemaining += link->xBlockSize;
    insert_by_address(link);
}
