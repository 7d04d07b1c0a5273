/* Trace ring writer. Single producer (thread context), single consumer (the host while the core is halted). */
#include "memhil_trace.h"
#include "los_memory_pri.h"
#include "memhil_timer.h"

#ifdef LOSCFG_MEM_TRACE
_Static_assert(sizeof(struct memhil_trace_rec) == 40, "trace record must be 40 bytes");
_Static_assert((MEMHIL_TRACE_CAPACITY & (MEMHIL_TRACE_CAPACITY - 1U)) == 0U, "capacity must be a power of two");

struct memhil_trace_ring g_memhil_trace = {
    .magic = MEMHIL_TRACE_MAGIC,
    .version = MEMHIL_TRACE_VERSION,
    .rec_size = (UINT16)sizeof(struct memhil_trace_rec),
    .capacity = MEMHIL_TRACE_CAPACITY,
    .recs = {[MEMHIL_TRACE_CAPACITY - 1U] = {0}},
};

/* Fill level at which memhil_trace_half_full() is called: half the ring unless the host writes another value
 * (1..capacity; the host that drains at a breakpoint writes the capacity: half as many stops). */
volatile UINT32 g_memhil_trace_drain_at = MEMHIL_TRACE_CAPACITY / 2U;

#ifndef __arm__
/* Host build: tests install a drain callback here. */
void (*g_memhil_host_half_full)(void);
#endif

__attribute__((noinline, used)) void memhil_trace_half_full(void)
{
    __asm volatile("nop" ::: "memory");
#ifdef __arm__
    g_memhil_barrier_ms.trace_doorbell = g_memhil_trace.head; /* the host watches this write (memhil_timer.h) */
#endif
#ifndef __arm__
    if (g_memhil_host_half_full != NULL) {
        g_memhil_host_half_full();
    }
#endif
}

VOID OsMemTraceRecord(UINT32 kind, UINT32 module, const VOID *ptr, const VOID *oldPtr, UINT32 size,
                      UINT32 nodeSize, const OsMemCallCtx *ctx)
{
    struct memhil_trace_ring *r = &g_memhil_trace;
    if (r->enabled == 0U) {
        return;
    }
    while (r->head - r->tail >= MEMHIL_TRACE_CAPACITY) {
        memhil_trace_half_full(); /* full: wait for the host, never overwrite */
    }
    UINT32 seq = r->head;
    struct memhil_trace_rec *rec = &r->recs[seq & (MEMHIL_TRACE_CAPACITY - 1U)];
    rec->seq = seq;
    rec->t_ms = (UINT32)g_memhil_uptime_ms;
    rec->kind = (UINT8)kind;
    rec->module = (UINT8)module;
    rec->task = (UINT16)g_memhil_cur_task;
    rec->ptr = (UINT32)(UINTPTR)ptr;
    rec->old_ptr = (UINT32)(UINTPTR)oldPtr;
    rec->size = size;
    rec->node_size = nodeSize;
    for (UINT32 i = 0; i < 3U; i++) {
        rec->lr[i] = (UINT32)ctx->lr[i];
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    r->head = seq + 1U;
    UINT32 drainAt = g_memhil_trace_drain_at;
    if (drainAt == 0U || drainAt > MEMHIL_TRACE_CAPACITY) {
        drainAt = MEMHIL_TRACE_CAPACITY / 2U;
    }
    if (r->head - r->tail >= drainAt) {
        memhil_trace_half_full();
    }
}
#else
VOID OsMemTraceRecord(UINT32 kind, UINT32 module, const VOID *ptr, const VOID *oldPtr, UINT32 size,
                      UINT32 nodeSize, const OsMemCallCtx *ctx)
{
    (void)kind;
    (void)module;
    (void)ptr;
    (void)oldPtr;
    (void)size;
    (void)nodeSize;
    (void)ctx;
}
#endif
