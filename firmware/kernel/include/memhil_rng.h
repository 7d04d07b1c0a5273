/* xorshift32 (Marsaglia 2003): the apps' deterministic workload generator, one state word per app. */
#ifndef MEMHIL_RNG_H
#define MEMHIL_RNG_H

#include "los_typedef.h"

static inline UINT32 memhil_xorshift32(UINT32 *state)
{
    UINT32 x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

#endif
