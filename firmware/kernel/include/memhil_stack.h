/* Stack descriptors the host reads (by symbol name) to measure stack high-water marks. */
#ifndef MEMHIL_STACK_H
#define MEMHIL_STACK_H

#include "los_typedef.h"

#define MEMHIL_STACK_PAINT 0xCACACACAU

struct memhil_stack_desc {
    const char *name;
    UINT32 base; /* lowest address */
    UINT32 size; /* bytes */
};

extern const struct memhil_stack_desc g_memhil_stacks[];
extern const UINT32 g_memhil_stack_count;
extern const UINT32 g_memhil_stack_paint;

#endif
