/* Leak-check link registers on Cortex-M by stack scan, as LiteOS-M does (there is no frame-pointer chain):
 * walk the stack words from the SP of OsMemRecordLR's caller up to the stack top; a word is a return address if it is odd (Thumb),
 * value-1 lies in .text, and the instruction before it is a BL (32-bit: first halfword 0xF000/0xF800 mask,
 * second halfword with bits 15,14,12 set; ARM ARMv7-M A6.7.18) or a BLX register (0x4780 mask 0xFF87; A6.7.19).
 *
 * Recorded value: value-1, the return address with the Thumb bit cleared (LiteOS-M records the same); the call
 * instruction is 4 (BL) or 2 (BLX) bytes before it.
 *
 * Omitted layers: LiteOS skips LOS_OMIT_LR_CNT (2) layers, the allocator's own frames. Their number on Cortex-M
 * depends on inlining (-Og vs -O2), so this port omits every return address that lies inside the allocator's own
 * code (kernel/mem, collected by the linker script between __los_mem_text_start and __los_mem_text_end) and
 * records the next LOS_RECORD_LR_CNT: LR[0] is always the call site of the LOS_Mem* API.
 *
 * Cost: the scan runs on every allocator call and visits ~50 words, nearly all of them data. The Makefile builds
 * this file at -O2 in every config, and each word is rejected as cheaply as possible: one unsigned compare for the
 * .text range, then the Thumb bit, then the allocator range, and only then the halfword loads of the call check
 * (the same accept/reject decision as checking in the order written above). */
#include "los_memory_pri.h"
#include "cmsis_min.h"

extern const UINT8 __text_start[], __text_end[];
extern const UINT8 __los_mem_text_start[], __los_mem_text_end[];
extern UINT32 _estack;

#define MAX_SCAN_WORDS 512U

#if defined(LOSCFG_MEM_LEAKCHECK) || defined(LOSCFG_MEM_TRACE)

/* TRUE if the instruction ending at ret (a halfword-aligned .text address at least 4 bytes past its start) is
 * BL <label> (A6.7.18, encoding T1) or BLX Rm (A6.7.19). */
static inline __attribute__((always_inline)) BOOL IsCallBefore(UINT32 ret)
{
    UINT32 hw2 = *(const volatile UINT16 *)(UINTPTR)(ret - 2U);
    if ((hw2 & 0xFF87U) == 0x4780U) {
        return TRUE; /* BLX Rm */
    }
    if ((hw2 & 0xD000U) != 0xD000U) {
        return FALSE;
    }
    UINT32 hw1 = *(const volatile UINT16 *)(UINTPTR)(ret - 4U);
    return (hw1 & 0xF800U) == 0xF000U; /* BL <label> */
}

/* Scans from sp (the SP of OsMemRecordLR's caller) up to _estack, at most MAX_SCAN_WORDS words. */
static __attribute__((used, noinline)) VOID OsMemScanStack(OsMemCallCtx *ctx, const UINT32 *sp)
{
    for (UINT32 i = 0; i < LOS_RECORD_LR_CNT; i++) {
        ctx->lr[i] = 0;
    }
    /* Return addresses (value-1) accepted: [textLo, textLo + textSpan], minus [memLo, memLo + memSpan). */
    const UINT32 textLo = (UINT32)(UINTPTR)__text_start + 4U;
    const UINT32 textSpan = (UINT32)(UINTPTR)__text_end - textLo;
    const UINT32 memLo = (UINT32)(UINTPTR)__los_mem_text_start;
    const UINT32 memSpan = (UINT32)(UINTPTR)__los_mem_text_end - memLo;
    const UINT32 *end = &_estack;
    if (end - sp > (INT32)MAX_SCAN_WORDS) {
        end = sp + MAX_SCAN_WORDS;
    }
    UINT32 count = 0;
    for (; sp < end; sp++) {
        UINT32 ret = *sp - 1U;
        if (ret - textLo > textSpan || (ret & 1U) != 0U || ret - memLo < memSpan || !IsCallBefore(ret)) {
            continue;
        }
        ctx->lr[count++] = ret;
        if (count == LOS_RECORD_LR_CNT) {
            break;
        }
    }
}

/* The scan starts at the caller's SP (r1 = SP at entry, then a tail call), so the words it sees do not depend on
 * which registers the compiler saves here. */
__attribute__((naked, noinline)) VOID OsMemRecordLR(OsMemCallCtx *ctx)
{
    (void)ctx;
    __asm volatile("mov r1, sp\n\tb.w OsMemScanStack");
}
#else
VOID OsMemRecordLR(OsMemCallCtx *ctx)
{
    for (UINT32 i = 0; i < LOS_RECORD_LR_CNT; i++) {
        ctx->lr[i] = 0;
    }
}
#endif
