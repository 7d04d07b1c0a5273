/* STM32F4 USART: SR 0x00 (TXE bit 7, RXNE bit 5), DR 0x04, CR1 0x0C (UE bit 13, RXNEIE bit 5, TE bit 3, RE bit 2).
 * USART1 0x40011000 IRQ 37 (console), USART2 0x40004400 IRQ 38 (spare trace UART). TX polled, RX by interrupt. */
#ifndef STM32_USART_H
#define STM32_USART_H

#include "los_typedef.h"

#define USART1_BASE 0x40011000U
#define USART2_BASE 0x40004400U
#define USART1_IRQN 37U
#define USART2_IRQN 38U

void usart_init(UINT32 base, UINT32 irqn);
void usart_putc(UINT32 base, char c);
/* Console (USART1) receive ring, filled by the RX interrupt. Returns -1 when empty. */
int console_getc(void);
BOOL console_rx_pending(void);

#endif
