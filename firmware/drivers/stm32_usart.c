/* STM32F4 USART driver: polled TX, interrupt-driven RX into a ring (console on USART1). */
#include "stm32_usart.h"
#include "cmsis_min.h"
#include "los_printf.h"

#define USART_SR(b) REG32((b) + 0x00U)
#define USART_DR(b) REG32((b) + 0x04U)
#define USART_BRR(b) REG32((b) + 0x08U)
#define USART_CR1(b) REG32((b) + 0x0CU)
#define SR_TXE (1U << 7)
#define SR_RXNE (1U << 5)
#define CR1_UE (1U << 13)
#define CR1_RXNEIE (1U << 5)
#define CR1_TE (1U << 3)
#define CR1_RE (1U << 2)

#define RX_RING_SIZE 256U /* power of two */

static volatile UINT8 s_rx_ring[RX_RING_SIZE];
static volatile UINT32 s_rx_head;
static volatile UINT32 s_rx_tail;

void usart_init(UINT32 base, UINT32 irqn)
{
    USART_BRR(base) = 0x0683U; /* 115200 Bd at 16 MHz; the emulators ignore it */
    USART_CR1(base) = CR1_UE | CR1_TE | CR1_RE | CR1_RXNEIE;
    nvic_enable_irq(irqn);
}

void usart_putc(UINT32 base, char c)
{
    while ((USART_SR(base) & SR_TXE) == 0U) {
    }
    USART_DR(base) = (UINT8)c;
}

void memhil_console_putc(char c)
{
    if (c == '\n') {
        usart_putc(USART1_BASE, '\r');
    }
    usart_putc(USART1_BASE, c);
}

void USART1_IRQHandler(void)
{
    while ((USART_SR(USART1_BASE) & SR_RXNE) != 0U) {
        UINT8 byte = (UINT8)USART_DR(USART1_BASE);
        if (s_rx_head - s_rx_tail < RX_RING_SIZE) {
            s_rx_ring[s_rx_head & (RX_RING_SIZE - 1U)] = byte;
            s_rx_head++;
        }
    }
}

void USART2_IRQHandler(void)
{
    while ((USART_SR(USART2_BASE) & SR_RXNE) != 0U) {
        (void)USART_DR(USART2_BASE);
    }
}

int console_getc(void)
{
    if (s_rx_tail == s_rx_head) {
        return -1;
    }
    int c = s_rx_ring[s_rx_tail & (RX_RING_SIZE - 1U)];
    s_rx_tail++;
    return c;
}

BOOL console_rx_pending(void)
{
    return s_rx_tail != s_rx_head;
}
