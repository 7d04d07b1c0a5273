/* leak_demo scenario logic, portable (also built for the host under valgrind, tests/firmware). */
#ifndef LEAK_DEMO_H
#define LEAK_DEMO_H

#include "los_typedef.h"

#define LEAK_DEMO_PERIOD_MS 50U
#define LEAK_DEMO_LEAK_EVERY 16U
#define LEAK_DEMO_LEAK_SIZE 64U

/* APP (module 3): handles one request; every 16th request leaks one 64-byte block. */
void app_handle_request(UINT32 request);
/* NET (module 1) and FS (module 2): allocate and free correctly. */
void net_worker(UINT32 round);
void fs_worker(UINT32 round);
/* Number of blocks app_handle_request leaked so far. */
extern UINT32 g_app_leaked;

#endif
