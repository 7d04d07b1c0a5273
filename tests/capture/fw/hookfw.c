/* Test firmware for the patched hooks: newlib's malloc family (every entry point of memhil's newlib profile),
 * an allocation from an interrupt handler (SysTick), a function whose first instruction cannot be moved
 * (odd_malloc: an IT block in its first bytes), realloc in place and moved, failed calls. Built by tests/capture/conftest.py
 * with arm-none-eabi-gcc and newlib-nano; runs on QEMU's netduinoplus2 (STM32F405).
 * g_ops[] counts the calls that succeed, by the kind memhil reports (1 alloc, 2 free, 3 realloc, 4 aligned). */
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <reent.h>
#include <errno.h>

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define ROUNDS 60u

volatile uint64_t g_memhil_uptime_ms; /* the uptime memhil reads for event times and run_for */
volatile uint32_t g_ops[5];
volatile uint32_t g_isr_allocs;
volatile uint32_t g_failed;
volatile uint32_t g_in_place;
volatile uint32_t g_moved;
volatile uint32_t g_done;
static volatile uint32_t s_in_alloc; /* newlib-nano's allocator is not reentrant: the handler stays out of it */
void *g_leak;

void *odd_malloc(size_t n);
__asm__(
    ".syntax unified\n.thumb\n.global odd_malloc\n.type odd_malloc, %function\n"
    "odd_malloc:\n"
    "  cmp r0, #0\n"
    "  it eq\n"
    "  bxeq lr\n"
    "  push {r4, lr}\n"
    "  bl malloc\n"
    "  pop {r4, pc}\n"
    ".size odd_malloc, . - odd_malloc\n");

/* A FreeRTOS-style heap (the entry points of memhil's freertos profile): first fit over a static pool. */
#define RTOS_POOL 4096u
typedef struct rtos_blk {
    size_t size;
    struct rtos_blk *next;
} rtos_blk;
static uint8_t s_rtos_pool[RTOS_POOL] __attribute__((aligned(8)));
static rtos_blk *s_rtos_free;
static uint32_t s_rtos_ready;
volatile uint32_t g_rtos_ops[3];
volatile uint32_t g_rtos_failed;

void *pvPortMalloc(size_t n)
{
    if (!s_rtos_ready) {
        s_rtos_free = (rtos_blk *)s_rtos_pool;
        s_rtos_free->size = RTOS_POOL;
        s_rtos_free->next = NULL;
        s_rtos_ready = 1u;
    }
    size_t need = (n + sizeof(rtos_blk) + 7u) & ~(size_t)7u;
    for (rtos_blk **link = &s_rtos_free; *link != NULL; link = &(*link)->next) {
        rtos_blk *b = *link;
        if (b->size < need) {
            continue;
        }
        if (b->size - need >= 2u * sizeof(rtos_blk)) {
            rtos_blk *rest = (rtos_blk *)((uint8_t *)b + need);
            rest->size = b->size - need;
            rest->next = b->next;
            b->size = need;
            *link = rest;
        } else {
            *link = b->next;
        }
        return b + 1;
    }
    return NULL;
}

void vPortFree(void *p)
{
    if (p == NULL) {
        return;
    }
    rtos_blk *b = (rtos_blk *)p - 1;
    b->next = s_rtos_free;
    s_rtos_free = b;
}

extern char end, __heap_end;
static char *s_brk = &end;

void *_sbrk(ptrdiff_t incr)
{
    char *prev = s_brk;
    if (s_brk + incr > &__heap_end || s_brk + incr < &end) {
        errno = ENOMEM;
        return (void *)-1;
    }
    s_brk += incr;
    return prev;
}

void SysTick_Handler(void)
{
    g_memhil_uptime_ms++;
    if (!s_in_alloc && !g_done) { /* after g_done the counters hold still, for the host to compare */
        void *p = malloc(24);
        if (p != NULL) {
            g_ops[1]++;
            g_isr_allocs++;
            free(p);
            g_ops[2]++;
        }
    }
}

static void *count(void *p, uint32_t kind)
{
    if (p != NULL) {
        g_ops[kind]++;
    } else {
        g_failed++;
    }
    return p;
}

static void round_of_calls(uint32_t i)
{
    struct _reent *r = _REENT;
    s_in_alloc = 1u;
    void *a = count(malloc(16u + i % 64u), 1);
    void *b = count(calloc(4u, 8u + i % 8u), 1);
    void *c = count(memalign(32u, 40u), 4);
    void *d = count(_malloc_r(r, 24u), 1);
    void *e = count(_calloc_r(r, 2u, 12u), 1);
    void *f = count(_memalign_r(r, 16u, 20u), 4);
    void *o = count(odd_malloc(40u + i % 8u), 1);
    (void)count(odd_malloc(0u), 1);                 /* fails: no event */
    (void)count(malloc(0x7FFFFFF0u), 1);            /* fails: no event */
    void *a2 = realloc(a, 200u + i % 50u);          /* grows: usually moved */
    if (a2 != NULL) { g_ops[3]++; if (a2 == a) g_in_place++; else g_moved++; a = a2; }
    void *d2 = _realloc_r(r, d, 8u);                /* shrinks: in place */
    if (d2 != NULL) { g_ops[3]++; if (d2 == d) g_in_place++; else g_moved++; d = d2; }
    void *g = count(realloc(NULL, 12u), 1);         /* realloc(NULL, n) is an allocation */
    free(a); g_ops[2]++;
    free(b); g_ops[2]++;
    free(c); g_ops[2]++;
    _free_r(r, d); g_ops[2]++;
    _free_r(r, e); g_ops[2]++;
    free(f); g_ops[2]++;
    free(g); g_ops[2]++;
    free(NULL);                                     /* no event */
    if (i % 20u == 0u) {
        g_leak = o;                                  /* kept: a leak every 20 rounds */
    } else {
        free(o); g_ops[2]++;
    }
    void *q = pvPortMalloc(32u + i % 16u);
    if (q != NULL) { g_rtos_ops[1]++; } else { g_rtos_failed++; }
    if (pvPortMalloc(0x10000u) == NULL) { g_rtos_failed++; } else { g_rtos_ops[1]++; }
    vPortFree(q); if (q != NULL) { g_rtos_ops[2]++; }
    vPortFree(NULL);
    s_in_alloc = 0u;
}

int main(void)
{
    SYST_RVR = 168000u - 1u; /* 1 ms at 168 MHz */
    SYST_CVR = 0u;
    SYST_CSR = 7u;           /* processor clock, interrupt, enable */
    for (uint32_t i = 0; i < ROUNDS; i++) {
        round_of_calls(i);
        for (volatile uint32_t w = 0; w < 400000u; w++) { /* a few milliseconds: ticks land here */
        }
    }
    g_done = 1u;
    for (;;) {
        __asm__ volatile("wfi");
    }
}

/* ---- start-up ---- */
extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
void Reset_Handler(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0u;
    }
    main();
}

void Default_Handler(void)
{
    for (;;) {
    }
}

__attribute__((section(".isr_vector"), used)) void (*const g_vectors[16])(void) = {
    (void (*)(void))&_estack, Reset_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler, SysTick_Handler,
};
