/* Board facts the firmware takes from platforms/<board>/platform.toml. */
#ifndef MEMHIL_BOARD_H
#define MEMHIL_BOARD_H

#ifndef BOARD_NAME
#define BOARD_NAME "stm32f4"
#endif
/* SysTick clock (platform.toml systick_hz); both engines run the core clock at 168 MHz. */
#ifndef BOARD_SYSTICK_HZ
#define BOARD_SYSTICK_HZ 168000000U
#endif
#ifndef MEMHIL_CONFIG_NAME
#define MEMHIL_CONFIG_NAME "custom"
#endif

#endif
