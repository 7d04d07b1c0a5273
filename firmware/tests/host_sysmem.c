/* m_aucSysMem0 for the ctypes library: tests point it at a pool they own. */
#include "los_memory.h"

UINT8 *m_aucSysMem0;

void host_set_sys_pool(UINT8 *pool)
{
    m_aucSysMem0 = pool;
}
