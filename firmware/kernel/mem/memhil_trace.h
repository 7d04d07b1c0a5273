/* Allocator trace ring (LOSCFG_MEM_TRACE): one 40-byte record per public allocator call, drained by the host
 * through the debugger. See firmware/README.md "Trace ring". */
#ifndef MEMHIL_TRACE_H
#define MEMHIL_TRACE_H

#include "los_typedef.h"

#define MEMHIL_TRACE_MAGIC 0x4D485452U /* "MHTR" */
#define MEMHIL_TRACE_VERSION 1U
#ifndef MEMHIL_TRACE_CAPACITY
#define MEMHIL_TRACE_CAPACITY 1024U /* power of two */
#endif

struct memhil_trace_rec {
    UINT32 seq;       /* head at write time */
    UINT32 t_ms;      /* g_memhil_uptime_ms, low 32 bits */
    UINT8 kind;       /* 1 ALLOC 2 FREE 3 REALLOC 4 ALIGNED_ALLOC */
    UINT8 module;
    UINT16 task;
    UINT32 ptr;       /* realloc: the new pointer */
    UINT32 old_ptr;   /* realloc: the old pointer */
    UINT32 size;      /* requested size (0 for FREE) */
    UINT32 node_size; /* whole node, header included */
    UINT32 lr[3];
};

struct memhil_trace_ring {
    UINT32 magic;
    UINT16 version;
    UINT16 rec_size;
    UINT32 capacity;
    volatile UINT32 enabled; /* the host writes 1 */
    volatile UINT32 head;    /* records written, ever */
    volatile UINT32 tail;    /* records consumed, the host writes */
    volatile UINT32 lost;    /* always 0: the firmware waits instead of overwriting */
    struct memhil_trace_rec recs[];
};

extern struct memhil_trace_ring g_memhil_trace;
/* Fill level (records) at which memhil_trace_half_full() is called; CAPACITY/2 unless the host writes another
 * value in 1..CAPACITY (out of range: CAPACITY/2). */
extern volatile UINT32 g_memhil_trace_drain_at;
/* Called when the ring is at least g_memhil_trace_drain_at full, and repeatedly while it is full; the host breakpoints here. */
void memhil_trace_half_full(void);

#endif
