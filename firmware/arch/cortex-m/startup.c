/* Reset handler and vector table for the STM32F405 (ARM ARMv7-M B1.5.3 vector table, 16 + 82 entries).
 * No RCC/clock setup: QEMU's netduinoplus2 does not model the RCC, polling it would hang. */
#include <stdint.h>
#include "cmsis_min.h"
#include "los_printf.h"
#include "memhil_stack.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _sstack, _estack, __main_stack_size;
extern int main(void);

const UINT32 g_memhil_stack_paint = MEMHIL_STACK_PAINT;
const struct memhil_stack_desc g_memhil_stacks[] = {
    {"main", (UINT32)(UINTPTR)&_sstack, (UINT32)(UINTPTR)&__main_stack_size},
};
const UINT32 g_memhil_stack_count = sizeof(g_memhil_stacks) / sizeof(g_memhil_stacks[0]);

void Reset_Handler(void) __attribute__((noreturn));
void Default_Handler(void);
void HardFault_Handler(void);
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));
void USART1_IRQHandler(void) __attribute__((weak, alias("Default_Handler")));
void USART2_IRQHandler(void) __attribute__((weak, alias("Default_Handler")));

void Reset_Handler(void)
{
    uint32_t *src = &_sidata;
    uint32_t *dst;
    for (dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    /* Paint the unused part of the main stack, below the current SP (this function makes no call until after). */
    volatile uint32_t *p = &_sstack;
    uint32_t sp = arch_get_sp();
    while ((uint32_t)(uintptr_t)p < sp - 16U) {
        *p++ = MEMHIL_STACK_PAINT;
    }
    (void)main();
    for (;;) {
        __asm volatile("wfi");
    }
}

void Default_Handler(void)
{
    memhil_printf("\nunexpected exception %u\n", (unsigned)(SCB_ICSR & 0x1FFU));
    for (;;) {
    }
}

void HardFault_Handler(void)
{
    memhil_printf("\nHardFault\n");
    for (;;) {
    }
}

typedef void (*vector_fn)(void);
#define VEC_COUNT (16 + 82)

__attribute__((section(".isr_vector"), used)) const vector_fn g_vectors[VEC_COUNT] = {
    [0] = (vector_fn)(uintptr_t)&_estack,
    [1] = Reset_Handler,
    [2] = Default_Handler,   /* NMI */
    [3] = HardFault_Handler, /* HardFault */
    [4] = Default_Handler,   /* MemManage */
    [5] = Default_Handler,   /* BusFault */
    [6] = Default_Handler,   /* UsageFault */
    [11] = Default_Handler,  /* SVCall */
    [12] = Default_Handler,  /* DebugMon */
    [14] = Default_Handler,  /* PendSV */
    [15] = SysTick_Handler,
    [16 + 37] = USART1_IRQHandler,
    [16 + 38] = USART2_IRQHandler,
};
