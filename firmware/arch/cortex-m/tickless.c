/* Tickless SysTick (ARM ARMv7-M B3.3): one SysTick period spans the whole idle gap, up to the 24-bit reload limit.
 *
 * Clock choice (B3.3.3 SYST_CSR.CLKSOURCE): the counter runs on the IMPLEMENTATION DEFINED reference clock when the
 * SoC provides one, else on the processor clock. "If no external clock is provided, this bit reads as one and ignores
 * writes", so arch_tick_init() writes CLKSOURCE=0 and reads it back. The STM32F4 feeds HCLK/8 to the reference input
 * (RM0090 6.2; QEMU 7.2's stm32f405 SoC wires refclk = sysclk/8 = 21 MHz): a sleep may then span 798 ms instead of
 * 99 ms at 168 MHz, so the soak's 250 ms NET period costs one wake-up instead of three. Renode's NVIC has no
 * reference clock (CLKSOURCE reads as one, SYST_CALIB.NOREF set): there the counter stays on systickFrequency
 * (BOARD_SYSTICK_HZ) and sleeps are capped at 99 ms as before.
 *
 * Elapsed time is measured from CVR/COUNTFLAG on every wake-up, early or not, and kept in counter ticks with the
 * sub-millisecond remainder carried, so g_memhil_uptime_ms never drifts against the emulator's virtual clock except
 * for the few instructions between reading CVR and restarting the counter. */
#include "memhil_timer.h"
#include "memhil_board.h"
#include "cmsis_min.h"
#include "los_hwi.h"
#include "stm32_usart.h"

/* Reference clock fed to SysTick when CLKSOURCE=0 (STM32F4: HCLK/8). */
#ifndef BOARD_SYSTICK_REF_HZ
#define BOARD_SYSTICK_REF_HZ (BOARD_SYSTICK_HZ / 8U)
#endif

_Static_assert(BOARD_SYSTICK_HZ % 1000U == 0U, "BOARD_SYSTICK_HZ must be whole ticks per millisecond");
_Static_assert(BOARD_SYSTICK_REF_HZ % 1000U == 0U, "BOARD_SYSTICK_REF_HZ must be whole ticks per millisecond");
_Static_assert((SYST_MAX_RELOAD + 1U) / (BOARD_SYSTICK_HZ / 1000U) >= 1U, "SysTick cannot span 1 ms");

/* SysTick counter frequency in use (the host reads it: 0 before arch_tick_init). */
__attribute__((used)) volatile UINT32 g_memhil_tick_hz;

static UINT32 s_ticks_per_ms;  /* counter ticks per millisecond on the chosen clock */
static UINT32 s_max_sleep_ms;  /* longest sleep one 24-bit period spans */
static UINT32 s_csr_clksource; /* CLKSOURCE value written with each start */
static UINT32 s_carry_ticks;   /* ticks elapsed but not yet a whole millisecond */

void arch_tick_init(void)
{
    SYST_CSR = 0U; /* counter off, CLKSOURCE=0: keeps 0 only where a reference clock exists */
    UINT32 hz = ((SYST_CSR & SYST_CSR_CLKSOURCE) == 0U) ? BOARD_SYSTICK_REF_HZ : BOARD_SYSTICK_HZ;
    s_csr_clksource = (hz == BOARD_SYSTICK_HZ) ? SYST_CSR_CLKSOURCE : 0U;
    s_ticks_per_ms = hz / 1000U;
    s_max_sleep_ms = (SYST_MAX_RELOAD + 1U) / s_ticks_per_ms;
    s_carry_ticks = 0U;
    g_memhil_tick_hz = hz;
}

void SysTick_Handler(void)
{
    /* Never reached in practice: the sleeper runs with PRIMASK set and clears the pending SysTick itself. */
}

void arch_idle_sleep(uint64_t max_ms)
{
    UINT32 ms = (max_ms > s_max_sleep_ms) ? s_max_sleep_ms : (UINT32)max_ms;
    if (ms == 0U) {
        ms = 1U;
    }
    UINT32 period = ms * s_ticks_per_ms - s_carry_ticks; /* wake exactly on a millisecond boundary */
    UINT32 primask = LOS_IntLock();                      /* pending IRQs still wake WFI */
    if (console_rx_pending()) {
        LOS_IntRestore(primask);
        return;
    }
    SYST_RVR = period - 1U;
    SYST_CVR = 0U;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | s_csr_clksource;
    __asm volatile("dsb\n wfi" ::: "memory");
    UINT32 cvr = SYST_CVR;
    UINT32 wrapped = SYST_CSR & SYST_CSR_COUNTFLAG;
    SYST_CSR = 0U;
    SCB_ICSR = SCB_ICSR_PENDSTCLR;
    UINT32 elapsed;
    if (wrapped != 0U) {
        elapsed = period + ((cvr == 0U) ? 0U : (period - cvr));
    } else {
        elapsed = (cvr == 0U) ? 0U : (period - cvr);
    }
    UINT32 total = s_carry_ticks + elapsed;
    g_memhil_uptime_ms += total / s_ticks_per_ms;
    s_carry_ticks = total % s_ticks_per_ms;
    g_memhil_wakeups++;
    LOS_IntRestore(primask);
}
