/* Leak-check link registers on Cortex-M by stack scan, as LiteOS-M does (there is no frame-pointer chain):
 * walk the stack words from the current SP up to the stack top; a word is a return address if it is odd (Thumb),
 * value-1 lies in .text, and the instruction before it is a BL (32-bit: first halfword 0xF000/0xF800 mask,
 * second halfword with bits 15,14,12 set; ARM ARMv7-M A6.7.18) or a BLX register (0x4780 mask 0xFF87; A6.7.19).
 *
 * Recorded value: value-1, the return address with the Thumb bit cleared (LiteOS-M records the same); the call
 * instruction is 4 (BL) or 2 (BLX) bytes before it.
 *
 * Omitted layers: LiteOS skips LOS_OMIT_LR_CNT (2) layers, the allocator's own frames. Their number on Cortex-M
 * depends on inlining (-Og vs -O2), so this port omits every return address that lies inside the allocator's own
 * code (kernel/mem, collected by the linker script between __los_mem_text_start and __los_mem_text_end) and
 * records the next LOS_RECORD_LR_CNT: LR[0] is always the call site of the LOS_Mem* API. */
#include "los_memory_pri.h"
#include "cmsis_min.h"

extern const UINT8 __text_start[], __text_end[];
extern const UINT8 __los_mem_text_start[], __los_mem_text_end[];
extern UINT32 _estack;

#define MAX_SCAN_WORDS 512U

#if defined(LOSCFG_MEM_LEAKCHECK) || defined(LOSCFG_MEM_TRACE)

static BOOL IsCallReturn(UINT32 value)
{
    if ((value & 1U) == 0U) {
        return FALSE;
    }
    UINT32 ret = value - 1U;
    if (ret < (UINT32)(UINTPTR)__text_start + 4U || ret > (UINT32)(UINTPTR)__text_end) {
        return FALSE;
    }
    UINT16 hw1 = *(const volatile UINT16 *)(UINTPTR)(ret - 4U);
    UINT16 hw2 = *(const volatile UINT16 *)(UINTPTR)(ret - 2U);
    if ((hw1 & 0xF800U) == 0xF000U && (hw2 & 0xD000U) == 0xD000U) {
        return TRUE; /* BL <label> */
    }
    return (hw2 & 0xFF87U) == 0x4780U; /* BLX Rm */
}

static BOOL InAllocator(UINT32 addr)
{
    return addr >= (UINT32)(UINTPTR)__los_mem_text_start && addr < (UINT32)(UINTPTR)__los_mem_text_end;
}

__attribute__((noinline)) VOID OsMemRecordLR(OsMemCallCtx *ctx)
{
    UINT32 count = 0;
    for (UINT32 i = 0; i < LOS_RECORD_LR_CNT; i++) {
        ctx->lr[i] = 0;
    }
    const UINT32 *sp = (const UINT32 *)(UINTPTR)arch_get_sp();
    const UINT32 *top = &_estack;
    for (UINT32 n = 0; sp < top && n < MAX_SCAN_WORDS && count < LOS_RECORD_LR_CNT; sp++, n++) {
        UINT32 value = *sp;
        if (!IsCallReturn(value) || InAllocator(value - 1U)) {
            continue;
        }
        ctx->lr[count++] = value - 1U;
    }
}
#else
VOID OsMemRecordLR(OsMemCallCtx *ctx)
{
    for (UINT32 i = 0; i < LOS_RECORD_LR_CNT; i++) {
        ctx->lr[i] = 0;
    }
}
#endif
