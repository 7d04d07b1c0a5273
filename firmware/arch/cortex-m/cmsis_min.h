/* The few ARMv7-M system registers the firmware uses (ARM ARMv7-M B3.2 SCS, B3.3 SysTick, B3.4 NVIC). */
#ifndef CMSIS_MIN_H
#define CMSIS_MIN_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

#define SYST_CSR REG32(0xE000E010U)
#define SYST_RVR REG32(0xE000E014U)
#define SYST_CVR REG32(0xE000E018U)
#define SYST_CSR_ENABLE (1U << 0)
#define SYST_CSR_TICKINT (1U << 1)
#define SYST_CSR_CLKSOURCE (1U << 2)
#define SYST_CSR_COUNTFLAG (1U << 16)
#define SYST_MAX_RELOAD 0x00FFFFFFU

#define SCB_ICSR REG32(0xE000ED04U)
#define SCB_ICSR_PENDSTSET (1U << 26)
#define SCB_ICSR_PENDSTCLR (1U << 25)
#define SCB_VTOR REG32(0xE000ED08U)

#define NVIC_ISER(n) REG32(0xE000E100U + 4U * (n))

static inline void nvic_enable_irq(unsigned irq)
{
    NVIC_ISER(irq >> 5) = 1U << (irq & 31U);
}

static inline uint32_t arch_get_sp(void)
{
    uint32_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

#endif
