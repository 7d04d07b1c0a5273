/* APP module request handler with a planted leak on a rare path. */
#include <string.h>
#include "leak_demo.h"
#include "los_memory.h"

UINT32 g_app_leaked;

static __attribute__((noinline)) UINT32 app_checksum(const UINT8 *buf, UINT32 len)
{
    UINT32 sum = 0;
    for (UINT32 i = 0; i < len; i++) {
        sum = sum * 31U + buf[i];
    }
    return sum;
}

/* Builds the response in a fresh buffer; on the rare "cache" path the buffer is kept nowhere. */
static __attribute__((noinline)) UINT32 app_build_response(UINT32 request)
{
    UINT8 *buf = LOS_MemMalloc(OS_SYS_MEM_ADDR, LEAK_DEMO_LEAK_SIZE, MEM_MODULE_APP); /* LEAK-SITE */
    if (buf == NULL) {
        return 0;
    }
    memset(buf, (int)(request & 0xFFU), LEAK_DEMO_LEAK_SIZE);
    UINT32 sum = app_checksum(buf, LEAK_DEMO_LEAK_SIZE);
    if ((request % LEAK_DEMO_LEAK_EVERY) == LEAK_DEMO_LEAK_EVERY - 1U) {
        g_app_leaked++;
        return sum; /* rare path: returns without freeing buf */
    }
    (void)LOS_MemMfree(OS_SYS_MEM_ADDR, buf, MEM_MODULE_APP);
    return sum;
}

static __attribute__((noinline)) UINT32 app_parse_request(UINT32 request)
{
    UINT8 *hdr = LOS_MemMalloc(OS_SYS_MEM_ADDR, 24, MEM_MODULE_APP);
    if (hdr == NULL) {
        return 0;
    }
    memset(hdr, 0x5A, 24);
    UINT32 sum = app_build_response(request) ^ hdr[0];
    (void)LOS_MemMfree(OS_SYS_MEM_ADDR, hdr, MEM_MODULE_APP);
    return sum;
}

volatile UINT32 g_app_last_sum;

void app_handle_request(UINT32 request)
{
    g_app_last_sum = app_parse_request(request);
}
