/* LiteOS-style task records on newlib malloc, with their truth (tests/foreign/truth.py). The records have LiteOS
 * 5.0.0's names and shapes (los_task_pri.h: LosTaskCB in g_taskCBArray[g_taskMaxNum], g_losTask.runTask):
 * topOfStack is the lowest address of a task's stack, stackSize its size, stackPointer the saved SP.
 *
 *   task 0  running (g_losTask.runTask; the core's PSP is in its stack): t0_local in its live frame, t0_stale left
 *           in a returned frame below SP, reg_only held in r8 only when the firmware parks
 *   task 1  ready, not running: its saved context holds t1_ctx; t1_stale lies below its saved SP
 *   task 2  an unused entry (OS_TASK_STATUS_UNUSED)
 *   task 3  pending: its saved context holds t3_msg
 *   dropped allocated and dropped
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void fw_puts(const char *s);
__attribute__((noreturn)) void park(void *p);
__attribute__((noreturn)) void start_first_task(uint32_t *top, void (*entry)(void));

typedef struct {
    void *pstPrev;
    void *pstNext;
} LOS_DL_LIST;

typedef struct {
    void *stackPointer;
    uint16_t taskStatus;
    uint16_t priority;
    uint32_t taskFlags;
    uint32_t stackSize;
    uintptr_t topOfStack;
    uint32_t taskID;
    void *taskEntry;
    void *taskSem;
    void *taskMux;
    uintptr_t args[4];
    char *taskName;
    LOS_DL_LIST pendList;
} LosTaskCB;

typedef struct {
    LosTaskCB *runTask;
    LosTaskCB *newTask;
} LosTask;

#define OS_TASK_STATUS_UNUSED 0x0001U
#define OS_TASK_STATUS_READY 0x0004U
#define OS_TASK_STATUS_PEND 0x0008U
#define OS_TASK_STATUS_RUNNING 0x0010U
#define STACK_BYTES 512
#define CONTEXT_WORDS 16

LosTaskCB *g_taskCBArray;
uint32_t g_taskMaxNum;
LosTask g_losTask;

static void task_init(LosTaskCB *cb, uint32_t id, char *name, uint16_t status, uint32_t size, void *live, void *stale)
{
    uint32_t *stack = malloc(size);
    memset(stack, 0, size);
    uint32_t words = size / 4;
    cb->topOfStack = (uintptr_t)stack;
    cb->stackSize = size;
    cb->stackPointer = &stack[words - CONTEXT_WORDS];
    stack[words - CONTEXT_WORDS + 4] = (uint32_t)live;
    stack[4] = (uint32_t)stale;
    cb->taskStatus = status;
    cb->taskID = id;
    cb->taskName = name;
}

__attribute__((noinline)) static void lose_pointer_in_dead_frame(void)
{
    volatile uintptr_t slots[32];
    slots[0] = (uintptr_t)malloc(36); /* t0_stale */
    for (int i = 1; i < 32; i++) slots[i] = 0;
}

__attribute__((noinline, noreturn)) static void task0_main(void)
{
    volatile uintptr_t t0_local = (uintptr_t)malloc(20);
    lose_pointer_in_dead_frame();
    void *reg_only = malloc(28);
    fw_puts("READY liteos_style\r\n");
    (void)t0_local;
    park(reg_only);
}

static char g_names[4][8] = {"main", "net", "idle", "fs"};

int main(void)
{
    free(malloc(8)); /* a freed block: not live, not reported */
    g_taskMaxNum = 4;
    g_taskCBArray = malloc(g_taskMaxNum * sizeof(LosTaskCB));
    memset(g_taskCBArray, 0, g_taskMaxNum * sizeof(LosTaskCB));
    task_init(&g_taskCBArray[1], 1, g_names[1], OS_TASK_STATUS_READY, STACK_BYTES, malloc(52) /* t1_ctx */, malloc(44) /* t1_stale */);
    g_taskCBArray[2].taskStatus = OS_TASK_STATUS_UNUSED;
    task_init(&g_taskCBArray[3], 3, g_names[3], OS_TASK_STATUS_PEND, STACK_BYTES, malloc(64) /* t3_msg */, NULL);
    void *dropped = malloc(92);
    __asm volatile("" ::"r"(dropped) : "memory");
    task_init(&g_taskCBArray[0], 0, g_names[0], OS_TASK_STATUS_RUNNING, 2 * STACK_BYTES, NULL, NULL);
    g_losTask.runTask = &g_taskCBArray[0];
    start_first_task((uint32_t *)(g_taskCBArray[0].topOfStack + g_taskCBArray[0].stackSize), task0_main);
}
