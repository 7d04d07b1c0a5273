/* The leak_demo scenario logic on the host, for valgrind memcheck (pool annotated with mempool client requests):
 * runs NET, FS and APP rounds as the firmware's timers would; APP leaks on every 16th request. */
#include <stdio.h>
#include <stdlib.h>
#include "leak_demo.h"
#include "los_memory.h"

#define POOL_SIZE (64U * 1024U)
UINT8 *m_aucSysMem0;

int main(int argc, char **argv)
{
    UINT32 rounds = (argc > 1) ? (UINT32)strtoul(argv[1], NULL, 10) : 32U;
    /* The pool is a malloc'd superblock: memcheck runs its leak search only when the malloc list is not
     * empty, and then reports mempool chunks nobody points to. */
    m_aucSysMem0 = malloc(POOL_SIZE);
    if (m_aucSysMem0 == NULL || LOS_MemInit(m_aucSysMem0, POOL_SIZE) != LOS_OK) {
        return 2;
    }
    for (UINT32 i = 0; i < rounds; i++) {
        net_worker(i);
        fs_worker(i);
        app_handle_request(i);
    }
    printf("rounds %u leaked %u app used %u\n", rounds, g_app_leaked, LOS_MemMusedGet(MEM_MODULE_APP));
    return LOS_MemIntegrityCheck(m_aucSysMem0) == LOS_OK ? 0 : 1;
}
