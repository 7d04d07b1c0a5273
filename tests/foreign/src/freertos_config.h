/* What the heap<N>.c files take from FreeRTOS.h, as FreeRTOS's portable/MemMang/heap_N.c do: the port's alignment
 * (portmacro.h, portable.h) and the heap size (FreeRTOSConfig.h). Each heap keeps its own BlockLink_t and allocated
 * bit, as each heap_N.c does. */
#ifndef FREERTOS_CONFIG_H
#define FREERTOS_CONFIG_H

#define portBYTE_ALIGNMENT 8
#define portBYTE_ALIGNMENT_MASK (portBYTE_ALIGNMENT - 1)
#define configTOTAL_HEAP_SIZE (12 * 1024)

#endif
