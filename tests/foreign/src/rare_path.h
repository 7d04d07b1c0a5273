/* The rare-path scenario's two modules (rare_net.c, rare_cache.c). */
#ifndef RARE_PATH_H
#define RARE_PATH_H
#include "los_memory.h"

#define RARE_REQUESTS 200U
#define RARE_EVERY 50U

extern volatile UINT32 g_cache_refreshes;
void cache_refresh(UINT32 key);
void net_handle_request(UINT32 request);

#endif
