/* Tickless SysTick (ARM ARMv7-M B3.3): one SysTick period spans the whole idle gap, up to the 24-bit reload
 * limit (~99 ms at 168 MHz). Elapsed time is measured from CVR/COUNTFLAG on every wake-up, early or not, and kept
 * in CPU cycles with the sub-millisecond remainder carried, so g_memhil_uptime_ms never drifts against the
 * emulator's virtual clock except for the few instructions between reading CVR and restarting the counter. */
#include "memhil_timer.h"
#include "memhil_board.h"
#include "cmsis_min.h"
#include "los_hwi.h"
#include "stm32_usart.h"

#define CYCLES_PER_MS (BOARD_SYSTICK_HZ / 1000U)
#define MAX_SLEEP_MS ((SYST_MAX_RELOAD + 1U) / CYCLES_PER_MS)

static UINT32 s_carry_cycles; /* cycles elapsed but not yet a whole millisecond */

void arch_tick_init(void)
{
    SYST_CSR = 0;
    s_carry_cycles = 0;
}

void SysTick_Handler(void)
{
    /* Never reached in practice: the sleeper runs with PRIMASK set and clears the pending SysTick itself. */
}

void arch_idle_sleep(uint64_t max_ms)
{
    UINT32 ms = (max_ms > MAX_SLEEP_MS) ? MAX_SLEEP_MS : (UINT32)max_ms;
    if (ms == 0U) {
        ms = 1U;
    }
    UINT32 period = ms * CYCLES_PER_MS - s_carry_cycles; /* wake exactly on a millisecond boundary */
    UINT32 primask = LOS_IntLock();                      /* pending IRQs still wake WFI */
    if (console_rx_pending()) {
        LOS_IntRestore(primask);
        return;
    }
    SYST_RVR = period - 1U;
    SYST_CVR = 0U;
    SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE;
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
    UINT32 total = s_carry_cycles + elapsed;
    g_memhil_uptime_ms += total / CYCLES_PER_MS;
    s_carry_cycles = total % CYCLES_PER_MS;
    g_memhil_wakeups++;
    LOS_IntRestore(primask);
}
