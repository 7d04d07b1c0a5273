/* A tiny firmware for the fault tests, on the memhil firmware contract (banner on USART1, uptime,
 * time barrier). -DFAULT_HANG: interrupts off and a tight loop after the banner.
 * -DFAULT_WRITE: a store to an address no bus maps (-> BusFault escalated to HardFault, ARMv7-M B1.5). */
#include <stdint.h>

volatile uint64_t g_memhil_uptime_ms;
volatile uint64_t g_memhil_barrier_ms = UINT64_MAX;
extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;

#define USART1_SR (*(volatile uint32_t *)0x40011000u)
#define USART1_DR (*(volatile uint32_t *)0x40011004u)
#define USART1_CR1 (*(volatile uint32_t *)0x4001100Cu)

static void put(const char *s)
{
    while (*s) {
        while ((USART1_SR & (1u << 7)) == 0u) {
        }
        USART1_DR = (uint32_t)*s++;
    }
}

__attribute__((noinline, used)) void memhil_time_barrier(void)
{
    __asm volatile("" ::: "memory");
}

void HardFault_Handler(void)
{
    put("\nHardFault\n");
    for (;;) {
    }
}

void Default_Handler(void)
{
    put("\nunexpected exception\n");
    for (;;) {
    }
}

int main(void)
{
    USART1_CR1 = (1u << 13) | (1u << 3) | (1u << 2);
    put("faultfw ready\n");
#if defined(FAULT_HANG)
    __asm volatile("cpsid i" ::: "memory");
    for (;;) {
    }
#elif defined(FAULT_WRITE)
    *(volatile uint32_t *)FAULT_ADDRESS = 0xDEADBEEFu;
    put("store did not fault\n");
#endif
    for (;;) {
        g_memhil_uptime_ms++;
        if (g_memhil_uptime_ms >= g_memhil_barrier_ms) {
            g_memhil_barrier_ms = UINT64_MAX;
            memhil_time_barrier();
        }
    }
}

void Reset_Handler(void)
{
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0u;
    }
    (void)main();
}

__attribute__((section(".isr_vector"), used)) void (*const g_vectors[16])(void) = {
    (void (*)(void))&_estack, Reset_Handler, Default_Handler, HardFault_Handler, Default_Handler, Default_Handler,
    Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler, Default_Handler,
};
