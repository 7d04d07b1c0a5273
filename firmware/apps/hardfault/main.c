/* hardfault: a firmware bug the way it shows up in the field. A sensor task keeps a table of calibration records on
 * the heap; its fourth record (332 ms of uptime) has an index past the table, the bounds check is an assert
 * (configASSERT-style: a trap instruction), and the core takes a UsageFault (UNDEFINSTR), escalated to HardFault
 * because the firmware never enabled UsageFault. memhil must stop the run at the handler and name the assert's line. */
#include "los_memory.h"
#include "los_printf.h"
#include "memhil_boot.h"
#include "memhil_timer.h"
#include "shell.h"

#define CAL_RECORDS 8U
#define POLL_MS 83U

#define CAL_ASSERT(x)                                                                                          \
    do {                                                                                                       \
        if (!(x)) {                                                                                            \
            __builtin_trap(); /* CAL-ASSERT */                                                                 \
        }                                                                                                      \
    } while (0)

struct cal_record {
    UINT32 gain;
    UINT32 offset;
};

static struct cal_record *s_table;
static UINT32 s_next_index;

static __attribute__((noinline)) void cal_store(UINT32 index, UINT32 gain)
{
    CAL_ASSERT(index < CAL_RECORDS);
    s_table[index].gain = gain;
    s_table[index].offset = index;
}

static __attribute__((noinline)) void sensor_poll(void *arg)
{
    (void)arg;
    /* one record per period; the feed skips ahead by 3 each time, so after a few periods the index runs past */
    cal_store(s_next_index, 1000U + s_next_index);
    s_next_index += 3U;
}

int main(void)
{
    memhil_boot("hardfault");
    s_table = LOS_MemMalloc(OS_SYS_MEM_ADDR, CAL_RECORDS * sizeof(struct cal_record), MEM_MODULE_APP);
    (void)memhil_timer_start(POLL_MS, sensor_poll, NULL, MEM_MODULE_APP);
    shell_start();
    memhil_os_run();
}
