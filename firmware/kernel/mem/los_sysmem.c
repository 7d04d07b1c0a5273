/* The system pool m_aucSysMem0: OS_SYS_MEM_SIZE bytes in the NOLOAD section .heap
 * (linker symbols __heap_start/__heap_end). */
#include "los_memory_pri.h"

__attribute__((section(".heap"), aligned(8))) static UINT8 g_sysMemPool[OS_SYS_MEM_SIZE];
UINT8 *m_aucSysMem0;

VOID OsSysMemInit(VOID)
{
    m_aucSysMem0 = g_sysMemPool;
    (void)LOS_MemInit(m_aucSysMem0, OS_SYS_MEM_SIZE);
}
