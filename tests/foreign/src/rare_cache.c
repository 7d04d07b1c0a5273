/* The FS module's cache of the rare-path scenario (see rare_net.c): a refresh builds a new entry and, on this
 * path, drops it instead of installing it. */
#include <string.h>
#include "los_memory.h"
#include "rare_path.h"

volatile UINT32 g_cache_refreshes;

struct cache_entry {
    UINT32 key;
    UINT32 stamp;
    UINT8 data[32];
};

static __attribute__((noinline)) struct cache_entry *cache_entry_new(UINT32 key)
{
    struct cache_entry *entry = LOS_MemMalloc(OS_SYS_MEM_ADDR, sizeof(struct cache_entry), MEM_MODULE_FS); /* RARE-LEAK */
    if (entry != NULL) {
        entry->key = key;
        entry->stamp = g_cache_refreshes;
        memset(entry->data, 0, sizeof(entry->data));
    }
    return entry;
}

__attribute__((noinline)) void cache_refresh(UINT32 key)
{
    struct cache_entry *entry = cache_entry_new(key);
    if (entry != NULL) {
        g_cache_refreshes++;
    }
    /* the new entry should replace the old one in the cache table; it is dropped instead */
}
