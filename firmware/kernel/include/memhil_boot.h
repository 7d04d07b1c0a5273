/* Board bring-up shared by every app: console, tick, system memory pool, banner. */
#ifndef MEMHIL_BOOT_H
#define MEMHIL_BOOT_H

/* Initialises USART1, the tickless tick and the system pool, then prints
 * "memhil <app> <config> <board> ready". */
void memhil_boot(const char *app);

#endif
