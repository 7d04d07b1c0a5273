/* Host port of the allocator (tests/firmware via ctypes and valgrind): console capture, clock and task id,
 * and OsMemRecordLR from __builtin_return_address (no stack scan on the host). */
#include <stdio.h>
#include <string.h>
#include <stdint.h>
#include "los_memory_pri.h"
#include "los_printf.h"

volatile uint64_t g_memhil_uptime_ms;
volatile UINT32 g_memhil_cur_task;

#define CAPTURE_SIZE 65536
static char s_capture[CAPTURE_SIZE];
static size_t s_capture_len;
int g_host_console_echo;

void memhil_console_putc(char c)
{
    if (s_capture_len + 1 < CAPTURE_SIZE) {
        s_capture[s_capture_len++] = c;
        s_capture[s_capture_len] = '\0';
    }
    if (g_host_console_echo) {
        fputc(c, stdout);
    }
}

/* Returns everything printed since the last call and clears it. */
const char *host_console_take(void)
{
    static char out[CAPTURE_SIZE];
    memcpy(out, s_capture, s_capture_len + 1);
    s_capture_len = 0;
    s_capture[0] = '\0';
    return out;
}

UINT32 host_node_head_size(void)
{
    return OS_MEM_NODE_HEAD_SIZE;
}

UINT32 host_pool_overhead(void)
{
    return (UINT32)(sizeof(LosMemPoolInfo) + sizeof(LosMultipleDlinkHead));
}

__attribute__((noinline)) VOID OsMemRecordLR(OsMemCallCtx *ctx)
{
    for (UINT32 i = 0; i < LOS_RECORD_LR_CNT; i++) {
        ctx->lr[i] = 0;
    }
    ctx->lr[0] = (UINTPTR)__builtin_return_address(0);
}
