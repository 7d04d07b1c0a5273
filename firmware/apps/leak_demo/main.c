/* leak_demo: NET, FS and APP work every 50 ms on the tickless timer service; APP leaks on every 16th request. */
#include "leak_demo.h"
#include "los_memory.h"
#include "memhil_boot.h"
#include "memhil_timer.h"
#include "shell.h"

static UINT32 s_rounds[3];

static void net_tick(void *arg)
{
    (void)arg;
    net_worker(s_rounds[0]++);
}

static void fs_tick(void *arg)
{
    (void)arg;
    fs_worker(s_rounds[1]++);
}

static void app_tick(void *arg)
{
    (void)arg;
    app_handle_request(s_rounds[2]++);
}

int main(void)
{
    memhil_boot("leak_demo");
    (void)memhil_timer_start(LEAK_DEMO_PERIOD_MS, net_tick, NULL, MEM_MODULE_NET);
    (void)memhil_timer_start(LEAK_DEMO_PERIOD_MS, fs_tick, NULL, MEM_MODULE_FS);
    (void)memhil_timer_start(LEAK_DEMO_PERIOD_MS, app_tick, NULL, MEM_MODULE_APP);
    shell_start();
    memhil_os_run();
}
