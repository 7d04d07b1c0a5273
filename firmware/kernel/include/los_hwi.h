/* Interrupt masking used by the kernel (PRIMASK on Cortex-M, no-op on the host build). */
#ifndef LOS_HWI_H
#define LOS_HWI_H

#include "los_typedef.h"

#if defined(__arm__)
static inline UINT32 LOS_IntLock(void)
{
    UINT32 primask;
    __asm volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
    return primask;
}
static inline void LOS_IntRestore(UINT32 primask)
{
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
}
#else
static inline UINT32 LOS_IntLock(void) { return 0; }
static inline void LOS_IntRestore(UINT32 primask) { (void)primask; }
#endif

#endif
