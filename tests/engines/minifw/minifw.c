/* Throwaway firmware for the engine tests: the memhil firmware contract in ~100 lines.
 * Banner on USART1, 1 kHz SysTick uptime, time barrier, a fake LOS_MemMalloc called
 * every 10 ms, a line echo on the console. Built by tests/engines/conftest.py. */
#include <stdint.h>

#define USART1_SR (*(volatile uint32_t *)0x40011000)
#define USART1_DR (*(volatile uint32_t *)0x40011004)
#define USART1_BRR (*(volatile uint32_t *)0x40011008)
#define USART1_CR1 (*(volatile uint32_t *)0x4001100C)
#define SYST_CSR (*(volatile uint32_t *)0xE000E010)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018)

#if defined(MINIFW_THREAD_TICK) /* xTickCount advanced by thread code for the ticks SysTick counted */
#define MINIFW_FREERTOS_TICK
volatile uint32_t s_ticks_pending;
#endif
#if defined(MINIFW_FREERTOS_TICK) /* FreeRTOS-style: a 32-bit xTickCount, nothing of memhil's contract */
#define MINIFW_NO_BARRIER
volatile uint32_t xTickCount;
#define UPTIME xTickCount
#elif defined(MINIFW_UNKNOWN_TICK) /* a tick counter memhil does not know by name */
#define MINIFW_NO_BARRIER
volatile uint32_t s_board_ticks;
#define UPTIME s_board_ticks
#else
volatile uint64_t g_memhil_uptime_ms;
#define UPTIME g_memhil_uptime_ms
#endif
volatile uint64_t g_memhil_barrier_ms = ~0ull;
volatile uint32_t g_alloc_calls;
uint8_t g_pool[256];

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;

#ifndef MINIFW_NO_BARRIER
void __attribute__((noinline)) memhil_time_barrier(void) { __asm volatile("" ::: "memory"); }
#else
#define memhil_time_barrier() ((void)0)
#endif

void *__attribute__((noinline)) LOS_MemMalloc(void *pool, uint32_t size, uint32_t module)
{
    g_alloc_calls++;
    ((uint8_t *)pool)[module & 0xff] = (uint8_t)size;
    return pool;
}

static void putc_(char c)
{
    while (!(USART1_SR & (1u << 7))) {}
    USART1_DR = (uint32_t)c;
}

static void puts_(const char *s)
{
    while (*s) putc_(*s++);
}

void SysTick_Handler(void)
{
#ifdef MINIFW_THREAD_TICK
    s_ticks_pending++;
    return;
#endif
    UPTIME++;
    if (UPTIME >= g_memhil_barrier_ms) memhil_time_barrier();
}

int main(void)
{
    USART1_BRR = 0x2d9;
    USART1_CR1 = (1u << 13) | (1u << 3) | (1u << 2);
    SYST_RVR = 168000 - 1;
    SYST_CVR = 0;
    SYST_CSR = 7;
    puts_("memhil minifw debug stm32f4 ready\r\n");
    uint64_t last_alloc = 0, last_tick_print = 0;
    char line[64];
    unsigned n = 0;
    for (;;) {
        __asm volatile("wfi");
#ifdef MINIFW_THREAD_TICK
        while (s_ticks_pending) {
            __asm volatile("cpsid i" ::: "memory");
            s_ticks_pending--;
            __asm volatile("cpsie i" ::: "memory");
            UPTIME++;
        }
#endif
        if (UPTIME - last_alloc >= 10) {
            last_alloc = UPTIME;
            LOS_MemMalloc(g_pool, 24, 7);
        }
        if (UPTIME - last_tick_print >= 1000) {
            last_tick_print = UPTIME;
            puts_("tick\r\n");
        }
        while (USART1_SR & (1u << 5)) {
            char c = (char)USART1_DR;
            if (c == '\r' || c == '\n') {
                line[n] = 0;
                puts_("echo: ");
                puts_(line);
                puts_("\r\n");
                n = 0;
            } else if (n < sizeof line - 1) {
                line[n++] = c;
            }
        }
    }
}

void Reset_Handler(void)
{
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
    main();
    for (;;) {}
}

void Default_Handler(void) { for (;;) {} }

__attribute__((section(".isr_vector"), used)) const void *const g_vectors[16] = {
    &_estack, Reset_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler, SysTick_Handler,
};
