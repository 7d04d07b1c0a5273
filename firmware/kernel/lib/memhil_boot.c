#include "memhil_boot.h"
#include "memhil_board.h"
#include "memhil_timer.h"
#include "los_printf.h"
#include "stm32_usart.h"
#include "los_memory.h"


void memhil_boot(const char *app)
{
    usart_init(USART1_BASE, USART1_IRQN);
    arch_tick_init();
    OsSysMemInit();
    PRINTK("memhil %s %s %s ready\n", app, MEMHIL_CONFIG_NAME, BOARD_NAME);
}
