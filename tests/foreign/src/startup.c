/* Start-up for the foreign-style firmware: vector table (initial SP = top of g_main_stack), reset handler that
 * copies .data and clears the NOLOAD sections, newlib's _sbrk (picolibc's sbrk) over an arena in .bss, USART1
 * output, and the start of a first task on the process stack (what an RTOS port does). */
#include <stddef.h>
#include <stdint.h>

#define USART1_SR (*(volatile uint32_t *)0x40011000)
#define USART1_DR (*(volatile uint32_t *)0x40011004)
#define USART1_CR1 (*(volatile uint32_t *)0x4001100C)

extern uint32_t _sidata, _sdata, _edata, _spriv, _epriv, _sapp, _eapp, _sbss, _ebss;
extern int main(void);

__attribute__((section(".main_stack"), aligned(8))) uint32_t g_main_stack[512];
static uint8_t heap_arena[24 * 1024] __attribute__((aligned(8)));
static uint8_t *heap_end = heap_arena;
volatile uint32_t g_parked;

#ifdef PICOLIBC
#define SBRK sbrk /* picolibc's malloc calls sbrk */
#else
#define SBRK _sbrk
#endif

void *SBRK(ptrdiff_t incr)
{
    if (heap_end + incr > heap_arena + sizeof heap_arena || heap_end + incr < heap_arena) return (void *)-1;
    uint8_t *old = heap_end;
    heap_end += incr;
    return old;
}

void fw_puts(const char *s)
{
    while (*s) {
        while (!(USART1_SR & (1u << 7))) {}
        USART1_DR = (uint32_t)*s++;
    }
}

/* Never returns: the pointer passed in r0 is then held in r8 only (r0 is cleared). */
__attribute__((naked, noreturn)) void park(void *p)
{
    __asm volatile("mov r8, r0\n"
                   "movs r0, #0\n"
                   "ldr r1, =g_parked\n"
                   "movs r2, #1\n"
                   "str r2, [r1]\n"
                   "1: b 1b\n"
                   ".ltorg\n");
}

/* Continue at ``entry`` in thread mode on the process stack (PSP = ``top``, CONTROL.SPSEL = 1), as an RTOS port
 * starts its first task: the core's SP is then inside that task's stack. */
__attribute__((naked, noreturn)) void start_first_task(uint32_t *top, void (*entry)(void))
{
    __asm volatile("msr psp, r0\n"
                   "movs r2, #2\n"
                   "msr control, r2\n"
                   "isb\n"
                   "bx r1\n");
}

static void zero(uint32_t *p, uint32_t *end)
{
    while (p < end) *p++ = 0;
}

__attribute__((noreturn)) void reset_handler(void)
{
    for (uint32_t *s = &_sidata, *d = &_sdata; d < &_edata;) *d++ = *s++;
    zero(&_spriv, &_epriv);
    zero(&_sapp, &_eapp);
    zero(&_sbss, &_ebss);
    USART1_CR1 = (1u << 13) | (1u << 3);
    main();
    for (;;) {}
}

static void fault(void)
{
    fw_puts("FAULT\r\n");
    for (;;) {}
}

__attribute__((section(".vectors"), used)) void *const g_vectors[16] = {
    &g_main_stack[512], (void *)reset_handler, (void *)fault, (void *)fault, (void *)fault, (void *)fault, (void *)fault,
};
