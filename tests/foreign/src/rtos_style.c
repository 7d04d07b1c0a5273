/* FreeRTOS-style kernel state on newlib malloc (heap_3: pvPortMalloc/vPortFree wrap malloc/free) or, built with
 * -DPORT_HEAP, on heap1.c, heap2.c, heap4.c or heap5.c (-DHEAP5 also defines two heap regions), with its truth
 * (tests/foreign/truth.py). The records have FreeRTOS's names and shapes (tasks.c TCB_t, list.h List_t and
 * ListItem_t, queue.c Queue_t, timers.c Timer_t); the kernel lists live in the section FreeRTOS-MPU calls
 * privileged_data. Kernel objects are referenced only from kernel lists and other heap blocks:
 *
 *   task A  ready, not running: TCB and stack on the heap; its saved context (live stack) holds a_ctx; a stale
 *           pointer to a_stale lies below its saved SP
 *   task B  blocked forever on queue Q (suspended list; its event item in Q's waiting list); live stack holds b_msg
 *   task C  running (pxCurrentTCB; the core's PSP is in its stack): c_local in its live frame, c_stale left in
 *           a returned frame below SP, and reg_only held in r8 only when the firmware parks
 *   task D  delayed, created statically (TCB and stack in .bss): d_ctx live, d_stale below its saved SP
 *   Q       a queue (one block: Queue_t and its storage) holding a pointer to q_item, referenced only through
 *           B's event list item
 *   T       a timer on the active timer list; its timer ID points at t_ctx
 *   lost_msg  allocated and dropped
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void fw_puts(const char *s);
__attribute__((noreturn)) void park(void *p);
__attribute__((noreturn)) void start_first_task(uint32_t *top, void (*entry)(void));

#define PRIVILEGED_DATA __attribute__((section("privileged_data")))
#define STACK_WORDS 128
#define CONTEXT_WORDS 16 /* r4-r11 and the exception frame, as port.c saves them */

struct xLIST;
struct xLIST_ITEM {
    uint32_t xItemValue;
    struct xLIST_ITEM *pxNext;
    struct xLIST_ITEM *pxPrevious;
    void *pvOwner;
    struct xLIST *pxContainer;
};
typedef struct xLIST_ITEM ListItem_t;
struct xMINI_LIST_ITEM {
    uint32_t xItemValue;
    struct xLIST_ITEM *pxNext;
    struct xLIST_ITEM *pxPrevious;
};
typedef struct xMINI_LIST_ITEM MiniListItem_t;
typedef struct xLIST {
    volatile uint32_t uxNumberOfItems;
    ListItem_t *pxIndex;
    MiniListItem_t xListEnd;
} List_t;

typedef struct tskTaskControlBlock {
    volatile uint32_t *pxTopOfStack;
    ListItem_t xStateListItem;
    ListItem_t xEventListItem;
    uint32_t uxPriority;
    uint32_t *pxStack;
    char pcTaskName[12];
} tskTCB;
typedef tskTCB TCB_t;

typedef struct QueueDefinition {
    int8_t *pcHead;
    int8_t *pcWriteTo;
    List_t xTasksWaitingToSend;
    List_t xTasksWaitingToReceive;
    volatile uint32_t uxMessagesWaiting;
    uint32_t uxLength;
    uint32_t uxItemSize;
} Queue_t;

typedef struct tmrTimerControl {
    const char *pcTimerName;
    ListItem_t xTimerListItem;
    uint32_t xTimerPeriodInTicks;
    void *pvTimerID;
    void (*pxCallbackFunction)(void *);
} Timer_t;

PRIVILEGED_DATA TCB_t *volatile pxCurrentTCB;
PRIVILEGED_DATA static List_t pxReadyTasksLists[4];
PRIVILEGED_DATA static List_t xDelayedTaskList1;
PRIVILEGED_DATA static List_t xDelayedTaskList2;
PRIVILEGED_DATA static List_t *volatile pxDelayedTaskList;
PRIVILEGED_DATA static List_t *volatile pxOverflowDelayedTaskList;
PRIVILEGED_DATA static List_t xPendingReadyList;
PRIVILEGED_DATA static List_t xTasksWaitingTermination;
PRIVILEGED_DATA static List_t xSuspendedTaskList;
PRIVILEGED_DATA static List_t xActiveTimerList1;
PRIVILEGED_DATA static List_t *pxCurrentTimerList;

static TCB_t d_tcb;
static uint32_t d_stack[STACK_WORDS];

#ifdef PORT_HEAP
void *pvPortMalloc(size_t size); /* heap1.c, heap2.c, heap4.c or heap5.c */
void vPortFree(void *p);
#else
__attribute__((noinline)) void *pvPortMalloc(size_t size) { return malloc(size); }
__attribute__((noinline)) void vPortFree(void *p) { free(p); }
#endif

#ifdef HEAP5
/* heap_5's regions, as a port with two RAM areas gives them: a small one in the application's section (below
 * .bss) and a larger one in .bss, in increasing address order and ended by { NULL, 0 }. */
#include "heap5.h"
__attribute__((section(".app_state"), aligned(8))) static uint8_t ucHeapLow[1536];
static uint8_t ucHeapHigh[8 * 1024] __attribute__((aligned(8)));
#if !defined(HEAP5_LOCAL_TABLE) && !defined(HEAP5_STATIC_LOCAL_TABLE)
static const HeapRegion_t xHeapRegions[] = {{ucHeapLow, sizeof ucHeapLow}, {ucHeapHigh, sizeof ucHeapHigh}, {NULL, 0}};
#endif
static void heap_regions_init(void)
{
#ifdef HEAP5_LOCAL_TABLE /* the table as a local of the set-up function: gone once it returns */
    HeapRegion_t xHeapRegions[] = {{ucHeapLow, sizeof ucHeapLow}, {ucHeapHigh, sizeof ucHeapHigh}, {NULL, 0}};
#elif defined(HEAP5_STATIC_LOCAL_TABLE) /* a static local: in static storage, its symbol xHeapRegions.N */
    static const HeapRegion_t xHeapRegions[] = {{ucHeapLow, sizeof ucHeapLow}, {ucHeapHigh, sizeof ucHeapHigh}, {NULL, 0}};
#endif
    vPortDefineHeapRegions(xHeapRegions);
}
#endif

static void list_init(List_t *l)
{
    l->uxNumberOfItems = 0;
    l->pxIndex = (ListItem_t *)&l->xListEnd;
    l->xListEnd.xItemValue = 0xFFFFFFFFu;
    l->xListEnd.pxNext = (ListItem_t *)&l->xListEnd;
    l->xListEnd.pxPrevious = (ListItem_t *)&l->xListEnd;
}

static void list_insert_end(List_t *l, ListItem_t *item)
{
    ListItem_t *index = l->pxIndex;
    item->pxNext = index;
    item->pxPrevious = index->pxPrevious;
    index->pxPrevious->pxNext = item;
    index->pxPrevious = item;
    item->pxContainer = l;
    l->uxNumberOfItems++;
}

/* A task whose saved context sits at the top of its stack: ``live`` is stored in the saved r8 slot (live part),
 * ``stale`` at the bottom of the stack, below the saved SP. */
static void task_init(TCB_t *tcb, uint32_t *stack, const char *name, uint32_t prio, void *live, void *stale)
{
    memset(tcb, 0, sizeof *tcb);
    memset(stack, 0, STACK_WORDS * 4);
    tcb->pxStack = stack;
    tcb->pxTopOfStack = &stack[STACK_WORDS - CONTEXT_WORDS];
    stack[STACK_WORDS - CONTEXT_WORDS + 4] = (uint32_t)live;
    stack[8] = (uint32_t)stale;
    tcb->uxPriority = prio;
    strncpy(tcb->pcTaskName, name, sizeof tcb->pcTaskName - 1);
    tcb->xStateListItem.pvOwner = tcb;
    tcb->xEventListItem.pvOwner = tcb;
}

static TCB_t *task_create(const char *name, uint32_t prio, void *live, void *stale)
{
    uint32_t *stack = pvPortMalloc(STACK_WORDS * 4);
    TCB_t *tcb = pvPortMalloc(sizeof(TCB_t));
    task_init(tcb, stack, name, prio, live, stale);
    return tcb;
}

__attribute__((noinline)) static void lose_pointer_in_dead_frame(void)
{
    volatile uintptr_t slots[32];
    slots[0] = (uintptr_t)pvPortMalloc(36); /* c_stale */
    for (int i = 1; i < 32; i++) slots[i] = 0;
}

__attribute__((noinline, noreturn)) static void task_c_main(void)
{
    volatile uintptr_t c_local = (uintptr_t)pvPortMalloc(20);
    lose_pointer_in_dead_frame();
    void *reg_only = pvPortMalloc(28);
    fw_puts("READY rtos_style\r\n");
    (void)c_local;
    park(reg_only);
}

int main(void)
{
#ifdef HEAP5
    heap_regions_init();
#endif
    for (int i = 0; i < 4; i++) list_init(&pxReadyTasksLists[i]);
    list_init(&xDelayedTaskList1);
    list_init(&xDelayedTaskList2);
    list_init(&xPendingReadyList);
    list_init(&xTasksWaitingTermination);
    list_init(&xSuspendedTaskList);
    list_init(&xActiveTimerList1);
    pxDelayedTaskList = &xDelayedTaskList1;
    pxOverflowDelayedTaskList = &xDelayedTaskList2;
    pxCurrentTimerList = &xActiveTimerList1;
    vPortFree(pvPortMalloc(16)); /* a freed block: not live, not reported */

    TCB_t *a = task_create("A", 1, pvPortMalloc(52) /* a_ctx */, pvPortMalloc(44) /* a_stale */);
    list_insert_end(&pxReadyTasksLists[1], &a->xStateListItem);

    Queue_t *q = pvPortMalloc(sizeof(Queue_t) + 4 * sizeof(void *));
    memset(q, 0, sizeof *q);
    q->pcHead = (int8_t *)(q + 1);
    q->uxLength = 4;
    q->uxItemSize = sizeof(void *);
    list_init(&q->xTasksWaitingToSend);
    list_init(&q->xTasksWaitingToReceive);
    ((void **)q->pcHead)[0] = pvPortMalloc(60); /* q_item */
    q->pcWriteTo = q->pcHead + sizeof(void *);
    q->uxMessagesWaiting = 1;

    TCB_t *b = task_create("B", 2, pvPortMalloc(64) /* b_msg */, NULL);
    list_insert_end(&xSuspendedTaskList, &b->xStateListItem);
    list_insert_end(&q->xTasksWaitingToReceive, &b->xEventListItem);
    q = NULL;

    task_init(&d_tcb, d_stack, "D", 1, pvPortMalloc(68) /* d_ctx */, pvPortMalloc(76) /* d_stale */);
    list_insert_end(pxDelayedTaskList, &d_tcb.xStateListItem);

    Timer_t *t = pvPortMalloc(sizeof(Timer_t));
    memset(t, 0, sizeof *t);
    t->pcTimerName = "T";
    t->pvTimerID = pvPortMalloc(84); /* t_ctx */
    t->xTimerListItem.pvOwner = t;
    list_insert_end(pxCurrentTimerList, &t->xTimerListItem);

    void *lost = pvPortMalloc(92); /* lost_msg */
    __asm volatile("" ::"r"(lost) : "memory");

    uint32_t *c_stack = pvPortMalloc(STACK_WORDS * 8);
    TCB_t *c = pvPortMalloc(sizeof(TCB_t));
    memset(c, 0, sizeof *c);
    c->pxStack = c_stack;
    c->pxTopOfStack = &c_stack[2 * STACK_WORDS];
    c->uxPriority = 3;
    c->pcTaskName[0] = 'C';
    c->xStateListItem.pvOwner = c;
    c->xEventListItem.pvOwner = c;
    list_insert_end(&pxReadyTasksLists[3], &c->xStateListItem);
    pxCurrentTCB = c;
    a = b = c = NULL;
    t = NULL;
    start_first_task(&c_stack[2 * STACK_WORDS], task_c_main); /* task C runs, as a FreeRTOS task does: on PSP */
}
