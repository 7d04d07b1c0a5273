/* Small printf for the console: %d %i %u %x %X %p %s %c with flags '-', '0', width and 'l'/'ll'/'z'.
 * "\n" is emitted as "\r\n" by the console driver. */
#ifndef LOS_PRINTF_H
#define LOS_PRINTF_H

#include <stdarg.h>
#include "los_typedef.h"

/* Console output hook: the USART driver on target, a capture buffer on the host. */
void memhil_console_putc(char c);

int memhil_vprintf(const char *fmt, va_list ap);
int memhil_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int memhil_snprintf(char *buf, UINT32 size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define PRINTK(...) memhil_printf(__VA_ARGS__)
#define PRINT_ERR(...) memhil_printf(__VA_ARGS__)

#endif
